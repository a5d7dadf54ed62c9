#!/usr/bin/env bats
# SysV IPC, restore into a new pid namespace, leaks to processes outside
# the tree (issue #5).

load helpers

: "${BATS_TEST_TIMEOUT:=90}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	LOG=$T/prog.log
	IPC_IDS=()	# "-m ID" "-s ID" ... removed in teardown if still there
}

teardown() {
	local i p
	[ -z "${NOBODY_DIR:-}" ] || rm -rf "$NOBODY_DIR"
	for p in "${CRYO_TEST_PIDS[@]}"; do	# the trees' children first
		[ -n "$p" ] && _is_ours "$p" && pkill -KILL -P "$p" 2>/dev/null
	done
	cryo_teardown
	for ((i = 0; i < ${#IPC_IDS[@]}; i += 2)); do
		ipcrm "${IPC_IDS[i]}" "${IPC_IDS[i + 1]}" 2>/dev/null || true
	done
}

ipc_ids() {	# LOG -> sets SHM SEM MSG from the program's "IDS" line
	read -r _ SHM SEM MSG < <(grep -m1 '^IDS ' "$1")
	[ -n "$MSG" ] || fail "no IDS line in $1"
	IPC_IDS+=(-m "$SHM" -s "$SEM" -q "$MSG")
}

ipc_exists() {	# -m|-s|-q ID: the object exists in this IPC namespace
	ipcs "$1" | awk -v id="$2" '$2 == id { found = 1 } END { exit !found }'
}

@test "SysV shm, semaphores and a message queue come back with their ids and contents" {
	local pid n_before n_after
	start_prog "$LOG" sysvipc
	pid=$PROG_PID
	ipc_ids "$LOG"
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	run "$CRYO" show "$IMG"
	[[ "$output" == *"sysv shm   id $SHM"* ]] || fail "show lacks the segment: $output"
	[[ "$output" == *"sysv sem   id $SEM"* ]] || fail "show lacks the semaphore set: $output"
	[[ "$output" == *"sysv msg   id $MSG"* ]] || fail "show lacks the queue: $output"
	# the objects outlive the killed tree: the restore must say so and how
	n_before=$(pgrep -fc "$PROGS/sysvipc" || true)
	run "$CRYO" -r -f "$IMG"
	[ "$status" -eq 1 ] || fail "restore over live objects exited $status: $output"
	[[ "$output" == *"SysV shm segment id $SHM is already taken"*"ipcrm -m $SHM"*"--pidns"* ]] ||
		fail "message: $output"
	n_after=$(pgrep -fc "$PROGS/sysvipc" || true)
	[ "$n_after" -eq "$n_before" ] || fail "restore left processes behind ($n_before -> $n_after)"
	ipcrm -m "$SHM" -s "$SEM" -q "$MSG"
	restore_bg "$IMG" "$LOG" "$pid"
	ipc_exists -m "$SHM" || fail "segment $SHM not recreated"
	ipc_exists -s "$SEM" || fail "semaphore set $SEM not recreated"
	ipc_exists -q "$MSG" || fail "queue $MSG not recreated"
	# the program checks ids, contents, values, messages, and the parent
	# and child seeing each other's writes through the segment
	check_pass "$pid" "$LOG"
	check_pass "$pid" "$LOG"
	[ "$(ipcs -m -i "$SHM" | awk '/nattch/ { sub(/.*nattch=/, ""); print $1 }')" = 2 ] ||
		fail "segment not attached by both processes: $(ipcs -m -i "$SHM")"
	stop_restored "$pid"
}

@test "a failed restore removes the SysV objects it created" {
	local pid
	start_prog "$LOG" sysvipc
	pid=$PROG_PID
	ipc_ids "$LOG"
	dump_kill "$pid" "$IMG"
	# the segment and the set are free again, the queue is still taken
	ipcrm -m "$SHM" -s "$SEM"
	run "$CRYO" -r -f "$IMG"
	[ "$status" -eq 1 ] || fail "restore exited $status: $output"
	[[ "$output" == *"SysV message queue id $MSG is already taken"* ]] || fail "message: $output"
	! ipc_exists -m "$SHM" || fail "segment $SHM left behind"
	! ipc_exists -s "$SEM" || fail "semaphore set $SEM left behind"
}

@test "restore with a taken pid fails naming --pidns; with --pidns the tree gets its pids and tids" {
	local pid child n_before n_after hpid i st
	start_prog "$LOG" pidns
	pid=$PROG_PID
	read -r _ _ child < <(grep -m1 '^PIDS ' "$LOG")
	cryo_dump "$pid" "$IMG"	# the original keeps running: its pids stay taken
	n_before=$(pgrep -fc "$PROGS/pidns|$CRYO" || true)
	run "$CRYO" -r -f "$IMG"
	[ "$status" -eq 1 ] || fail "restore over a live tree exited $status: $output"
	[[ "$output" == *"pid $pid is in use"*"--pidns"* ]] || fail "message: $output"
	n_after=$(pgrep -fc "$PROGS/pidns|$CRYO" || true)
	[ "$n_after" -eq "$n_before" ] || fail "restore left processes behind ($n_before -> $n_after)"

	(exec </dev/null >>"$T/restored.log" 2>&1; _only_stdio; exec "$CRYO" -r --pidns -f "$IMG") &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	# cryo -> the namespace's init -> the restored root (pid $pid inside)
	hpid=$(pidns_host_pid "$pid" -f "$PROGS/pidns")
	[ -n "$hpid" ] || fail "no restored process with pid $pid in a new namespace"
	CRYO_TEST_PIDS+=("$hpid")
	[ "$hpid" != "$pid" ] || fail "restored with the host pid itself"
	[ "$(awk '/^NSpid:/ { print NF - 1 }' /proc/"$hpid"/status)" = 2 ] ||
		fail "not in a nested pid namespace: $(grep NSpid /proc/"$hpid"/status)"
	kill -USR1 "$hpid"
	wait_log "$T/restored.log" '^(PASS|FAIL) pidns' 10
	grep -q '^PASS pidns' "$T/restored.log" || fail "check: $(cat "$T/restored.log")"
	check_pass "$pid" "$LOG"	# the original is untouched
	# cryo -r passes the root's exit status on (the program exits 0 on TERM)
	kill -TERM "$hpid"
	wait_cryo_exit "$CRYO_PID" 10
	[ "$CRYO_STATUS" = 0 ] || fail "cryo -r --pidns exited $CRYO_STATUS"
	wait_gone "$hpid" 5
	kill "$pid"
}

@test "cryo -r --pidns passes on death by a signal as 128+N" {
	local pid hpid i
	start_prog "$LOG" pidns
	pid=$PROG_PID
	cryo_dump "$pid" "$IMG"
	(exec </dev/null >>"$T/restored.log" 2>&1; _only_stdio; exec "$CRYO" -r --pidns -f "$IMG") &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	for ((i = 0; i < 200; i++)); do
		hpid=$(pgrep -P "$(pgrep -P "$CRYO_PID" | head -1)" 2>/dev/null | head -1 || true)
		[ -n "$hpid" ] && [ "$(proc_status_field "$hpid" TracerPid)" = 0 ] && break
		sleep 0.05
	done
	[ -n "$hpid" ] || fail "no restored root under cryo's init"
	kill -KILL "$hpid"
	wait_cryo_exit "$CRYO_PID" 10
	[ "$CRYO_STATUS" = 137 ] || fail "cryo -r --pidns exited $CRYO_STATUS, want 137"
	kill "$pid"
}

@test "a SysV segment attached outside the tree is refused by pid; --allow-leak=shm records it" {
	local pid other
	start_prog "$LOG" sysvipc
	pid=$PROG_PID
	ipc_ids "$LOG"
	start_prog "$T/other.log" sysvipc attach "$SHM"
	other=$PROG_PID
	run "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ "$output" == *"SysV shm segment id $SHM (key 0) is also attached by pid $other outside the tree"*"--allow-leak=shm"* ]] ||
		fail "message: $output"
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
	cryo_dump "$pid" "$IMG" --allow-leak=shm --kill
	wait_gone "$pid" 5
	run "$CRYO" show "$IMG"
	[[ "$output" == *"allow-leak shm"* ]] || fail "show lacks the option: $output"
	run sh -c '"$1" show "$2" --json | python3 -c "import json, sys
d = json.load(sys.stdin)
assert d[\"options\"][\"allow_leak\"] == [\"shm\"], d[\"options\"]
seg = [s for s in d[\"sysv\"][\"shm\"] if s[\"id\"] == int(sys.argv[1])]
assert len(seg) == 1 and seg[0][\"leaked\"] is True, d[\"sysv\"]
assert all(not s[\"leaked\"] for s in d[\"sysv\"][\"shm\"] if s is not seg[0]), d[\"sysv\"]" "$3"' sh "$CRYO" "$IMG" "$SHM"
	[ "$status" -eq 0 ] || fail "json: $output"
	# the original segment is still the outsider's: a private copy, in
	# fresh namespaces
	(exec </dev/null >>"$LOG" 2>&1; _only_stdio; exec "$CRYO" -r --pidns -f "$IMG") &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	local hpid i
	hpid=$(pidns_host_pid "$pid" -f "^$PROGS/sysvipc\$")
	[ -n "$hpid" ] || fail "not restored"
	CRYO_TEST_PIDS+=("$hpid")
	kill -USR1 "$hpid"
	wait_log "$LOG" '^(PASS|FAIL) sysvipc' 10
	[ "$(grep -E '^(PASS|FAIL) sysvipc' "$LOG" | tail -1)" = "PASS sysvipc" ] ||
		fail "check after restore: $(tail -3 "$LOG")"
	kill -TERM "$hpid"
	wait_cryo_exit "$CRYO_PID" 10
	kill "$other"
}

@test "a message queue read by a process outside the tree is refused naming it" {
	local pid other
	start_prog "$LOG" sysvipc
	pid=$PROG_PID
	ipc_ids "$LOG"
	start_prog "$T/other.log" sysvipc recv "$MSG"
	other=$PROG_PID
	run "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ "$output" == *"SysV message queue id $MSG (key 0) is also read by pid $other outside the tree"*"--allow-leak=ipc"* ]] ||
		fail "message: $output"
	assert_running_not_stopped "$pid"
	kill "$other"
	kill -TERM "$pid"
}

@test "--allow-leak rejects an unknown kind" {
	run "$CRYO" -p 1 -f "$IMG" --allow-leak=shm,bogus
	[ "$status" -eq 2 ] || fail "exit $status: $output"
	[[ "$output" == *"unknown kind 'bogus'"* ]] || fail "message: $output"
}

@test "an open file shared with a process outside the tree is refused by pid; --allow-leak=file accepts it" {
	local pid
	echo data >"$T/shared.txt"
	exec 5<"$T/shared.txt"	# this shell keeps the same open file
	sleep 1000 3<&5 </dev/null >/dev/null 2>&1 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	pid=$!
	CRYO_TEST_PIDS+=("$pid")
	sleep 0.2
	run "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ "$output" == *"pid $pid fd 3 ($T/shared.txt): its open file description (one offset) is shared with pid $BASHPID outside the tree"*"--allow-leak=file"* ]] ||
		fail "message: $output"
	assert_running_not_stopped "$pid"
	run "$CRYO" -p "$pid" -f "$IMG" --allow-leak=file
	[ "$status" -eq 0 ] || fail "dump with --allow-leak=file: $output"
	run "$CRYO" show "$IMG"
	[[ "$output" == *"allow-leak file"* ]] || fail "show: $output"
	exec 5<&-
	kill "$pid"
}

@test "--allow-leak=pipe: a pipe to an outside process is restored with that end closed" {
	local pid holder sub
	{ sleep 60 </dev/null 2>/dev/null | sleep 1000 3<&0 </dev/null >/dev/null 2>&1; } \
		>/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	sub=$!
	for _ in $(seq 50); do
		pid=$(pgrep -P "$sub" -f "sleep 1000" || true)
		holder=$(pgrep -P "$sub" -f "sleep 60" || true)
		[ -n "$pid" ] && [ -n "$holder" ] && break
		sleep 0.05
	done
	[ -n "$pid" ] && [ -n "$holder" ] || fail "pipeline did not start"
	CRYO_TEST_PIDS+=("$pid" "$holder")
	sleep 0.3
	ORIG_EXE[$pid]=$(readlink /proc/"$pid"/exe)	# wait_restored waits for it
	run "$CRYO" -p "$pid" -f "$IMG" --allow-leak=pipe --kill
	[ "$status" -eq 0 ] || fail "dump: $output"
	[[ "$output" == *"fd 3: a pipe whose write end is outside the tree: restored with that end closed"* ]] ||
		fail "no warning: $output"
	wait_gone "$pid" 5
	(exec </dev/null >/dev/null 2>&1; _only_stdio; exec "$CRYO" -r -f "$IMG") &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	wait_restored "$pid" "$CRYO_PID" "$LOG"
	[[ "$(readlink /proc/"$pid"/fd/3)" == pipe:* ]] || fail "fd 3 is $(readlink /proc/"$pid"/fd/3)"
	kill "$pid" "$holder"
	wait_cryo_exit "$CRYO_PID" 10
}

@test "--pidns without privilege: through a user namespace, pids and tids come back" {
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
	local d pid hpid i as_nobody
	as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	"${as_nobody[@]}" unshare -U true 2>/dev/null || skip "unprivileged user namespaces are disabled here"
	# nobody cannot enter the test's own temporary directory
	d=$(mktemp -d /tmp/cryo-nobody.XXXXXX) && chmod 777 "$d"
	NOBODY_DIR=$d
	("${as_nobody[@]}" sh -c "exec '$PROGS/pidns' >'$d/log' 2>&1 </dev/null" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-) &
	pid=$!
	CRYO_TEST_PIDS+=("$pid")
	wait_log "$d/log" '^READY' 5
	run "${as_nobody[@]}" "$CRYO" -p "$pid" -f "$d/img" -s "$d/swap"
	[ "$status" -eq 0 ] || fail "dump as nobody: $output"
	run "${as_nobody[@]}" "$CRYO" -r -f "$d/img"
	[ "$status" -eq 1 ] && [[ "$output" == *"--pidns"* ]] || fail "restore without --pidns: $output"
	(exec </dev/null >>"$T/restored.log" 2>&1; _only_stdio; exec "${as_nobody[@]}" "$CRYO" -r --pidns -f "$d/img") &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	hpid=$(pidns_host_pid "$pid" -u 65534 -f "$PROGS/pidns")
	[ -n "$hpid" ] || fail "not restored: $(cat "$T/restored.log")"
	CRYO_TEST_PIDS+=("$hpid")
	kill -USR1 "$hpid"
	wait_log "$d/log" '^(PASS|FAIL) pidns' 10
	grep -q '^PASS pidns' "$d/log" || fail "check: $(cat "$d/log")"
	kill -TERM "$hpid"
	wait_cryo_exit "$CRYO_PID" 10
	[ "$CRYO_STATUS" = 0 ] || fail "cryo -r --pidns exited $CRYO_STATUS: $(cat "$T/restored.log")"
	kill "$pid"
}

@test "a tree in its own IPC namespace: its SysV objects are read there and restored" {
	local pid
	(exec sh -c "exec unshare -i '$PROGS/sysvipc' >'$T/ns.log' 2>&1 </dev/null" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-) &
	pid=$!
	CRYO_TEST_PIDS+=("$pid")
	wait_log "$T/ns.log" '^READY' 5
	ipc_ids "$T/ns.log"
	[ "$(readlink /proc/"$pid"/ns/ipc)" != "$(readlink /proc/self/ns/ipc)" ] || fail "not in its own IPC namespace"
	if ipc_exists -m "$SHM" || ipc_exists -s "$SEM" || ipc_exists -q "$MSG"; then
		skip "objects with ids $SHM/$SEM/$MSG exist here too: the restore would clash"
	fi
	cryo_dump "$pid" "$IMG" --kill
	wait_gone "$pid" 5
	run "$CRYO" show "$IMG"
	[[ "$output" == *"sysv sem   id $SEM"*"values 1 5 7"* ]] || fail "show: $output"
	restore_bg "$IMG" "$T/cryo.log" "$pid"
	kill -USR1 "$pid"
	wait_log "$T/ns.log" '^(PASS|FAIL) sysvipc' 10
	grep -q '^PASS sysvipc' "$T/ns.log" || fail "check: $(cat "$T/ns.log")"
	stop_restored "$pid"
}

@test "a unix socket connected to a process outside the tree is refused naming that process" {
	command -v python3 >/dev/null || skip "python3 is not installed"
	local holder pid i
	python3 -c '
import os, socket, subprocess, sys, time
a, b = socket.socketpair()
p = subprocess.Popen(["sleep", "1000"], pass_fds=[a.fileno()], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
a.close()
print(p.pid, flush=True)
time.sleep(60)
' >"$T/holder.out" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	holder=$!
	CRYO_TEST_PIDS+=("$holder")
	for ((i = 0; i < 100; i++)); do
		pid=$(head -n 1 "$T/holder.out" 2>/dev/null)
		[ -n "$pid" ] && break
		sleep 0.05
	done
	[ -n "$pid" ] || fail "no child"
	CRYO_TEST_PIDS+=("$pid")
	run "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ "$output" == *"pid $pid fd "*": a unix socket connected to a socket held by pid $holder"* ]] ||
		fail "message: $output"
	assert_running_not_stopped "$pid"
	kill "$pid" "$holder"
}

@test "cryo -r --pidns -d prints the restored root's pid as seen from outside" {
	local pid hpid init
	start_prog "$LOG" pidns
	pid=$PROG_PID
	cryo_dump "$pid" "$IMG"
	timeout 20 "$CRYO" -q -r --pidns -d -f "$IMG" >"$T/d.out" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- ||
		fail "cryo -r --pidns -d: $(cat "$T/d.out")"
	hpid=$(head -n 1 "$T/d.out")
	[[ $hpid =~ ^[0-9]+$ ]] || fail "output: $(cat "$T/d.out")"
	CRYO_TEST_PIDS+=("$hpid")
	[ "$(awk '/^NSpid:/ { print NF - 1 ":" $NF }' /proc/"$hpid"/status)" = "2:$pid" ] ||
		fail "pid $hpid: $(grep NSpid /proc/"$hpid"/status)"
	init=$(proc_status_field "$hpid" PPid)
	[ "$(cat /proc/"$init"/comm)" = cryo-init ] || fail "parent of $hpid is $(cat /proc/"$init"/comm)"
	kill -USR1 "$hpid"
	wait_log "$T/d.out" '^(PASS|FAIL) pidns' 10
	grep -q '^PASS pidns' "$T/d.out" || fail "check: $(cat "$T/d.out")"
	kill -TERM "$hpid"
	wait_gone "$init" 5	# init ends with the root
	kill "$pid"
}

@test "a process with SEM_UNDO state using a dumped semaphore set gets a warning naming it" {
	local pid other
	start_prog "$LOG" sysvipc
	pid=$PROG_PID
	ipc_ids "$LOG"
	start_prog "$T/undo.log" sysvipc undo "$SEM"
	other=$PROG_PID
	cryo_dump "$other" "$IMG" --allow-leak=ipc
	[[ "$output" == *"pid $other may hold SysV semaphore undo adjustments (SEM_UNDO)"* ]] ||
		fail "no warning: $output"
	assert_running_not_stopped "$other"
	kill "$other"
	kill -TERM "$pid"
}
