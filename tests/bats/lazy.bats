#!/usr/bin/env bats
# Lazy restore (cryo -r --lazy): the tree runs before its anonymous pages
# are loaded; a page server (cryo-lazy) fills them on fault and in the
# background. Needs `make cryo progs`.
#
# Sizes: the acceptance case restores 1 GiB (issue #7; 10-15 s on this
# 2-core machine), the others 256 MiB; the 1 GiB time until the tree runs
# is measured by `make bench` ("lazy restore of 1 GiB until the tree runs").

load helpers

: "${BATS_TEST_TIMEOUT:=120}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	LOG=$T/prog.log
}

# wait_server_done PID [LOG]: the server's -v line saying every page of PID is in
wait_server_done() {
	wait_log "${2:-$T/err}" "lazy restore: pid $1: done: ([0-9]+) of \\1 pages loaded" 40
}

# lazy_pids LOG: SERVER and GUARD from the page server's last -v line
# naming them (a guard that died is replaced: the line names the new one)
lazy_pids() {
	local log=$1 i
	wait_log "$log" "lazy restore: page server pid [0-9]+, guard pid [0-9]+" 5 || return 1
	SERVER=$(sed -nE 's/.*lazy restore: page server pid ([0-9]+), guard pid.*/\1/p' "$log" | tail -n 1)
	GUARD=$(sed -nE 's/.*lazy restore: page server pid [0-9]+, guard pid ([0-9]+).*/\1/p' "$log" | tail -n 1)
	if grep -q "took its place" "$log"; then
		GUARD=$(sed -nE 's/.*guard \(pid [0-9]+\) died; pid ([0-9]+) took its place.*/\1/p' "$log" | tail -n 1)
	fi
	# teardown kills them if a test fails halfway (a guard left stopped...)
	CRYO_TEST_PIDS+=("$GUARD" "$SERVER")
	[ "$(cat /proc/"$SERVER"/comm 2>/dev/null)" = cryo-lazy ] || fail "pid $SERVER is not cryo-lazy"
	# (the guard names itself once it runs)
	for ((i = 0; i < 20; i++)); do
		[ "$(cat /proc/"$GUARD"/comm 2>/dev/null)" = cryo-lazy-guard ] && break
		sleep 0.05
	done
	[ "$(cat /proc/"$GUARD"/comm 2>/dev/null)" = cryo-lazy-guard ] || fail "pid $GUARD is not cryo-lazy-guard"
}

# assert_outstanding PID: most of lazymem's 128 MiB is not loaded yet
assert_outstanding() {
	local rss
	rss=$(proc_status_field "$1" RssAnon)
	((rss < 100 * 1024)) || fail "RssAnon $rss kB: the load was (nearly) over before the test acted"
}

# start_sweep PID LOG: lazymem reads its pages one by one from the end (the
# background load starts at the front), printing at once a wrong one
start_sweep() {
	kill -WINCH "$1"
	wait_log "$2" "^SWEEP START" 5
	sleep 0.2
}

# assert_killed_not_zeroed PID SERVER LOG MSGLOG: the page server died
# mid-load, during a sweep; the tree must be gone, with the guard's
# message, and the sweep may not have read a wrong page (with the uffds
# closed, the next outstanding page would read as zeros: "SWEEP FAIL")
assert_killed_not_zeroed() {
	local pid=$1 server=$2 log=$3 msglog=$4
	wait_gone "$pid" 10 || return 1
	wait_log "$msglog" "the page server \\(pid $server\\) died before the load completed, [0-9]+ pages not loaded yet \\(pid $pid: [0-9]+\\); the restored tree \\(pid $pid and its descendants\\) was killed" 5 || return 1
	grep "page server" "$msglog"
	! grep -E '^SWEEP (PASS|FAIL)' "$log" || fail "the sweep ended after the page server died: $(grep -E '^SWEEP (PASS|FAIL)' "$log")"
}

@test "lazy restore of 1 GiB returns while most pages are still outstanding; every word and the checksum are intact" {
	local pid rss
	READY_TIMEOUT=60 start_prog "$LOG" lazymem 1024
	pid=$PROG_PID
	dump_kill "$pid" "$T/img"
	# stdout (the pid, then the restored program's lines) into the log
	timeout "$RESTORE_TIMEOUT" "$CRYO" -r --lazy -d -v -f "$T/img" >>"$LOG" 2>"$T/err" ||
		fail "cryo -r --lazy -d exited $?: $(cat "$T/err")"
	rss=$(proc_status_field "$pid" RssAnon)
	echo "RssAnon right after cryo returned: $rss kB"
	[ -n "$rss" ] || fail "pid $pid is not running after cryo -r --lazy -d: $(cat "$T/err")"
	# the area is 1048576 kB: most of it must not be there yet
	((rss < 512 * 1024)) || fail "RssAnon $rss kB at return: the pages were loaded before the tree ran"
	assert_running_not_stopped "$pid"
	[ -z "$(ls -l /proc/"$pid"/fd | grep -i userfaultfd)" ] || fail "the restored process holds a userfaultfd"
	wait_server_done "$pid"
	cat "$T/err"
	check_pass "$pid" "$LOG"
	rss=$(proc_status_field "$pid" RssAnon)
	((rss >= 1024 * 1024)) || fail "RssAnon $rss kB after loading, want the whole area"
	kill -TERM "$pid"
	wait_gone "$pid" 5
}

@test "a corrupted page in the swapfile kills the lazily restored tree with a message naming the address" {
	local pid sw slot=1000
	READY_TIMEOUT=30 start_prog "$LOG" lazymem 64
	pid=$PROG_PID
	sw=$T/cryo-$pid.swap
	dump_kill "$pid" "$T/img"
	# slot 1000 is one of the 16384 pages of the 64 MiB area (a handful of
	# other pages come first)
	flip_byte "$sw" $((8192 + slot * 4096 + 123))
	run timeout "$CRYO_TIMEOUT" "$CRYO" -r --lazy -f "$T/img"
	echo "$output"
	[ "$status" -eq 137 ] || fail "cryo -r --lazy exited $status, want 137 (root killed)"
	[[ $output =~ lazy\ restore:\ pid\ $pid:\ page\ at\ 0x[0-9a-f]+\ \(slot\ $slot, ]] ||
		fail "message does not name pid, address and slot: $output"
	[[ $output == *"fails its checksum"*"the restored tree was killed"* ]] || fail "message: $output"
	wait_gone "$pid" 5
}

@test "a child forked during the lazy period sees the right data; mremap, MADV_DONTNEED and mmap over restored pages behave" {
	local pid rss
	READY_TIMEOUT=30 start_prog "$LOG" lazymem 256
	pid=$PROG_PID
	dump_kill "$pid" "$T/img"
	# a slow background load (20 ms between 2 MiB copies: ~2.6 s for all)
	# so that the fork and the changes happen while pages are outstanding
	CRYO_LAZY_PACE_MS=20 restore_bg "$T/img" "$LOG" "$pid" --lazy -v
	kill -HUP "$pid"
	wait_log "$LOG" "^(CHANGED|FAIL )" 10
	grep -q "^CHANGED" "$LOG" || fail "address space changes: $(grep '^FAIL' "$LOG")"
	kill -USR2 "$pid"
	wait_log "$LOG" "^FORKED " 20
	grep -E "^CHILD|^FORKED" "$LOG"
	grep -qx "CHILD PASS" "$LOG" || fail "the forked child saw wrong data: $(grep '^CHILD' "$LOG")"
	grep -qx "FORKED status=0" "$LOG" || fail "child: $(grep '^FORKED' "$LOG")"
	rss=$(sed -n 's/^CHILD rss_kib=//p' "$LOG")
	# the child's resident size when it started shows the fork happened
	# while the parent still had pages outstanding
	((rss < 200 * 1024)) || fail "the child had $rss kB when it started: the fork came after the load"
	check_pass "$pid" "$LOG" 20
	stop_restored "$pid"
}

@test "a multi-threaded process restored lazily: four threads check their shares at once" {
	local pid
	READY_TIMEOUT=30 start_prog "$LOG" lazymem 128 4
	pid=$PROG_PID
	[ "$(proc_status_field "$pid" Threads)" = 5 ] || fail "lazymem should run 5 threads"
	dump_kill "$pid" "$T/img"
	CRYO_LAZY_PACE_MS=20 restore_bg "$T/img" "$LOG" "$pid" --lazy
	[ "$(proc_status_field "$pid" Threads)" = 5 ] || fail "restored with $(proc_status_field "$pid" Threads) threads"
	check_pass "$pid" "$LOG" 20
	check_pass "$pid" "$LOG" 20
	stop_restored "$pid"
}

@test "without the privilege for userfaultfd, --lazy fails before any process exists, naming the fix" {
	local pid
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	[ "$(cat /proc/sys/vm/unprivileged_userfaultfd)" = 0 ] ||
		skip "vm.unprivileged_userfaultfd is 1: anyone may create a userfaultfd"
	start_prog "$LOG" lazymem 8
	pid=$PROG_PID
	dump_kill "$pid" "$T/img"
	# root without CAP_SYS_PTRACE may not create a userfaultfd that sees
	# kernel-mode faults (and may not ask for fork events)
	run timeout "$CRYO_TIMEOUT" setpriv --bounding-set=-sys_ptrace -- "$CRYO" -r --lazy -f "$T/img"
	echo "$output"
	[ "$status" -eq 1 ] || fail "cryo -r --lazy exited $status, want 1"
	[[ $output == *"--lazy: userfaultfd is not allowed here"*"restore without --lazy"* ]] ||
		fail "message: $output"
	[ ! -e "/proc/$pid" ] || fail "a process with the image's pid exists: $(describe_pid "$pid")"
	# the same image restores eagerly
	restore_bg "$T/img" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "a process tree restored lazily (one userfaultfd per process): ids, zombie, shared offset" {
	local pid
	start_prog "$LOG" tree "$T/shared.txt"
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$T/img"
	restore_bg "$T/img" "$LOG" "$pid" --lazy
	[ "$(cat /proc/"$pid"/task/*/children | wc -w)" -eq 3 ] || fail "the root has not 3 children"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "a pipeline of three processes with data in flight, restored lazily: complete output, in order" {
	local pid out=$T/out n0
	sh -c "exec </dev/null 2>/dev/null; '$PROGS/pipeline' produce 3000 | '$PROGS/pipeline' filter |
	       '$PROGS/pipeline' consume '$out'" >/dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	pid=$!
	CRYO_TEST_PIDS+=("$pid")
	sleep 1.2
	run "$CRYO" -p "$pid" -f "$T/img" --kill
	[ "$status" -eq 0 ] || fail "dump: $output"
	wait "$pid" 2>/dev/null || true
	n0=$(wc -l <"$out")
	[ "$n0" -lt 2500 ] || fail "the pipeline was nearly done at the dump ($n0 lines): nothing in flight"
	run timeout 60 "$CRYO" -r --lazy -f "$T/img"
	[ "$status" -eq 0 ] || fail "restore: exit $status: $output"
	[ "$(tail -n 1 "$out")" = DONE ] || fail "consumer did not finish: $(tail -n 3 "$out")"
	run awk '/^f/ { n++; if (substr($0, 2) + 0 != n) { print "line", n, "is", $0; exit 1 } }
		 END { if (n != 3000) { print n, "lines"; exit 1 } }' "$out"
	[ "$status" -eq 0 ] || fail "consumer output lost or duplicated data: $output"
}

# The basic scenarios whose memory matters, restored lazily: read-only and
# PROT_NONE areas, a private file mapping (loaded eagerly), a read() into
# a buffer whose page is still outstanding (a fault taken in the kernel).
@test "lazily: read-only content and PROT_NONE guards; a MAP_PRIVATE file mapping; the heap" {
	local pid
	start_prog "$T/g.log" guards
	pid=$PROG_PID
	dump_kill "$pid" "$T/g.img"
	restore_bg "$T/g.img" "$T/g.log" "$pid" --lazy
	check_pass "$pid" "$T/g.log"
	stop_restored "$pid"

	start_prog "$T/p.log" privmap "$T/priv.dat"
	pid=$PROG_PID
	dump_kill "$pid" "$T/p.img"
	restore_bg "$T/p.img" "$T/p.log" "$pid" --lazy
	check_pass "$pid" "$T/p.log"
	stop_restored "$pid"

	READY_TIMEOUT=20 start_prog "$T/h.log" heap 64
	pid=$PROG_PID
	dump_kill "$pid" "$T/h.img"
	restore_bg "$T/h.img" "$T/h.log" "$pid" --lazy
	check_pass "$pid" "$T/h.log"
	stop_restored "$pid"
}

@test "lazily: a read() blocked on a pipe at the dump completes into restored memory" {
	local pid fifo=$T/in
	mkfifo "$fifo"
	exec 5<>"$fifo"
	PROG_STDIN=$fifo start_prog "$LOG" piperead
	pid=$PROG_PID
	echo "before dump" >&5
	wait_log "$LOG" '^GOT before dump$'
	wait_syscall "$pid" 0
	dump_kill "$pid" "$T/img"
	RESTORE_STDIN=$fifo CRYO_LAZY_PACE_MS=50 restore_bg "$T/img" "$LOG" "$pid" --lazy
	echo "after restore" >&5
	wait_log "$LOG" '^GOT after restore$' 5
	echo "second line" >&5
	wait_log "$LOG" '^GOT second line$' 5
	! grep -E '^(FAIL|EOF)' "$LOG" || fail "piperead reported a failure or EOF"
	[ "$(grep -c '^GOT ' "$LOG")" -eq 3 ] || fail "expected exactly 3 GOT lines"
	stop_restored "$pid"
	exec 5>&-
}

@test "a dump during the lazy period is refused by name (its outstanding pages are not in its memory yet); it keeps running" {
	local pid
	READY_TIMEOUT=30 start_prog "$LOG" lazymem 64
	pid=$PROG_PID
	dump_kill "$pid" "$T/img"
	CRYO_LAZY_PACE_MS=100 restore_bg "$T/img" "$LOG" "$pid" --lazy
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$T/img2"
	echo "$output"
	[ "$status" -eq 1 ] || fail "dump during the lazy period exited $status"
	[[ $output == *"registered with userfaultfd"*"--lazy"* ]] || fail "message: $output"
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG" 20
	stop_restored "$pid"
}

@test "SIGKILL of the page server mid-load: faults wait, its guard kills the tree with a message naming the pid and the pages left; nothing reads zeros" {
	local pid
	READY_TIMEOUT=30 start_prog "$LOG" lazymem 128
	pid=$PROG_PID
	dump_kill "$pid" "$T/img"
	# 50 ms between 2 MiB copies: 3 s for all
	CRYO_LAZY_PACE_MS=50 restore_bg "$T/img" "$LOG" "$pid" --lazy -v
	lazy_pids "$LOG"
	assert_outstanding "$pid"
	start_sweep "$pid" "$LOG"
	assert_outstanding "$pid"
	# the guard stopped: the faults after the server's death must wait
	# for it, not read zeros (that would end the sweep with FAIL, or crash)
	kill -STOP "$GUARD"
	kill -KILL "$SERVER"
	sleep 1
	! grep -E '^SWEEP (PASS|FAIL)' "$LOG" || fail "the sweep ended after the page server died: $(grep -E '^SWEEP (PASS|FAIL)' "$LOG")"
	alive "$pid" || fail "pid $pid died while the guard was stopped: $(describe_pid "$pid")"
	kill -CONT "$GUARD"
	wait_cryo_exit "$CRYO_PID" 10
	[ "$CRYO_STATUS" = 137 ] || fail "cryo -r exited $CRYO_STATUS, want 137 (root killed)"
	assert_killed_not_zeroed "$pid" "$SERVER" "$LOG" "$LOG"
	wait_gone "$GUARD" 5
}

@test "with -d: SIGKILL of the guard starts another; SIGKILL of the page server then kills the tree; nothing reads zeros" {
	local pid old
	READY_TIMEOUT=30 start_prog "$LOG" lazymem 128
	pid=$PROG_PID
	dump_kill "$pid" "$T/img"
	CRYO_LAZY_PACE_MS=50 timeout "$RESTORE_TIMEOUT" "$CRYO" -r --lazy -d -v -f "$T/img" >>"$LOG" 2>"$T/err" ||
		fail "cryo -r --lazy -d exited $?: $(cat "$T/err")"
	lazy_pids "$T/err"
	assert_outstanding "$pid"
	old=$GUARD
	kill -KILL "$GUARD"
	wait_log "$T/err" "guard \\(pid $old\\) died; pid [0-9]+ took its place" 5
	lazy_pids "$T/err"
	[ "$GUARD" != "$old" ] || fail "no new guard"
	start_sweep "$pid" "$LOG"
	assert_outstanding "$pid"
	kill -KILL "$SERVER"
	assert_killed_not_zeroed "$pid" "$SERVER" "$LOG" "$T/err"
	wait_gone "$GUARD" 5
	cat "$T/err"
}

@test "SIGKILL of cryo -r mid-load: the page server completes the load and the checksum is intact" {
	local pid
	READY_TIMEOUT=30 start_prog "$LOG" lazymem 128
	pid=$PROG_PID
	dump_kill "$pid" "$T/img"
	CRYO_LAZY_PACE_MS=30 restore_bg "$T/img" "$LOG" "$pid" --lazy -v
	lazy_pids "$LOG"
	assert_outstanding "$pid"
	kill -KILL "$CRYO_PID"
	wait_cryo_exit "$CRYO_PID" 5
	assert_running_not_stopped "$pid"
	! grep -q "lazy restore: pid $pid: done" "$LOG" || fail "the load was over before cryo was killed"
	# while loading, and after
	check_pass "$pid" "$LOG" 20
	wait_server_done "$pid" "$LOG"
	check_pass "$pid" "$LOG" 20
	wait_gone "$SERVER" 5
	wait_gone "$GUARD" 5
	# no uffd registration is left behind (a dump refuses registered memory)
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$T/img2"
	[ "$status" -eq 0 ] || fail "dump after the load: $output"
	assert_running_not_stopped "$pid"
	kill -TERM "$pid"
	wait_gone "$pid" 5
}

@test "the tree exits during the load: the page server and its guard exit cleanly, nothing is killed or reported" {
	local pid
	READY_TIMEOUT=30 start_prog "$LOG" lazymem 128
	pid=$PROG_PID
	dump_kill "$pid" "$T/img"
	CRYO_LAZY_PACE_MS=50 restore_bg "$T/img" "$LOG" "$pid" --lazy -v
	lazy_pids "$LOG"
	assert_outstanding "$pid"
	stop_restored "$pid"
	wait_gone "$SERVER" 5
	wait_gone "$GUARD" 5
	grep "lazy restore: pid $pid: exited" "$LOG" || fail "the server did not see pid $pid exit"
	! grep -q "died before the load completed" "$LOG" || fail "a false alarm: $(grep died "$LOG")"
}

@test "SIGKILL of the page server while cryo -r --lazy is still restoring a tree: the restore fails or the tree is killed; no process is left" {
	local pid kids k
	start_prog "$LOG" tree "$T/shared.txt"
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	kids=$(cat /proc/"$pid"/task/*/children)
	dump_kill "$pid" "$T/img"
	(
		exec </dev/null >>"$T/r.log" 2>&1
		_only_stdio
		# the load lasts (4 processes, 500 ms between two copies) so that
		# the kill always comes before its end, whatever the stage
		CRYO_LAZY_PACE_MS=500 exec "$CRYO" -r --lazy -v -f "$T/img"
	) &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	lazy_pids "$T/r.log"
	kill -KILL "$SERVER"
	wait_cryo_exit "$CRYO_PID" 10
	cat "$T/r.log"
	[ "$CRYO_STATUS" != 0 ] || fail "cryo -r exited 0 although its page server was killed"
	grep -qE "died before the (load completed|tree could run)|page server|restore failed" "$T/r.log" ||
		fail "no message says why"
	for k in $pid $kids; do
		wait_gone "$k" 5
	done
	wait_gone "$GUARD" 5
}

@test "the page server stopped as soon as it exists, then SIGKILLed during the restore: its guard takes the uffds cryo queued and kills their processes; the restore fails; nothing is left" {
	local pid kids k srv= i
	start_prog "$LOG" tree "$T/shared.txt"
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	kids=$(cat /proc/"$pid"/task/*/children)
	dump_kill "$pid" "$T/img"
	(
		exec </dev/null >>"$T/r.log" 2>&1
		_only_stdio
		exec "$CRYO" -r --lazy -v -f "$T/img"
	) &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	# cryo's first child is the page server (forked before any process of
	# the tree): stop it at once (read is a builtin: no fork per try)
	for ((i = 0; i < 200000; i++)); do
		read -r srv _ <"/proc/$CRYO_PID/task/$CRYO_PID/children" 2>/dev/null || true
		[ -z "$srv" ] || break
	done
	[ -n "$srv" ] || fail "no page server appeared"
	# and once it has started its guard (its first act)
	for ((i = 0; i < 200000; i++)); do
		read -r GUARD _ <"/proc/$srv/task/$srv/children" 2>/dev/null || true
		[ -z "$GUARD" ] || break
	done
	kill -STOP "$srv"
	CRYO_TEST_PIDS+=("$GUARD" "$srv")
	[ -n "$GUARD" ] || fail "the page server started no guard"
	# cryo hands the uffds over into the socket, then waits for go's answer
	sleep 1
	! grep -q "lazy restore: pid .*: done" "$T/r.log" || fail "the server was stopped too late"
	kill -KILL "$srv"
	wait_cryo_exit "$CRYO_PID" 10
	cat "$T/r.log"
	[ "$CRYO_STATUS" != 0 ] || fail "cryo -r exited 0 although its page server was killed"
	grep -qE "died before the (load completed|tree could run)" "$T/r.log" || fail "no message says why"
	grep -q "restore failed; every process it had created was killed" "$T/r.log" ||
		fail "cryo -r did not fail the restore"
	for k in $pid $kids; do
		wait_gone "$k" 5
	done
	wait_gone "$GUARD" 5
	! grep -E '^(PASS|FAIL) ' "$LOG" | tail -n +2 | grep . || fail "the restored tree ran a check"
}

@test "a process that left the tree during the load (double fork: now cryo's child) is killed too when the page server dies" {
	local pid orphan
	READY_TIMEOUT=30 start_prog "$LOG" lazymem 128
	pid=$PROG_PID
	dump_kill "$pid" "$T/img"
	CRYO_LAZY_PACE_MS=50 restore_bg "$T/img" "$LOG" "$pid" --lazy -v
	lazy_pids "$LOG"
	kill -URG "$pid"
	wait_log "$LOG" "^ORPHAN SWEEP START" 5
	orphan=$(sed -nE 's/^ORPHAN pid=([0-9]+) ppid=.*/\1/p' "$LOG")
	CRYO_TEST_PIDS+=("$orphan")
	[ "$(proc_status_field "$orphan" PPid)" = "$CRYO_PID" ] || fail "the orphan's parent is not cryo: $(describe_pid "$orphan")"
	sleep 0.2
	kill -STOP "$GUARD"
	kill -KILL "$SERVER"
	sleep 1
	! grep -E '^ORPHAN SWEEP (PASS|FAIL)' "$LOG" || fail "the orphan's sweep ended after the server died: $(grep '^ORPHAN SWEEP' "$LOG")"
	kill -CONT "$GUARD"
	wait_cryo_exit "$CRYO_PID" 10
	wait_gone "$orphan" 5
	wait_gone "$pid" 5
	wait_gone "$GUARD" 5
	# the guard exited (the uffds are closed): the orphan must not have run on
	sleep 0.5
	! grep -E '^ORPHAN SWEEP (PASS|FAIL)' "$LOG" || fail "the orphan's sweep ended: $(grep '^ORPHAN SWEEP' "$LOG")"
	grep "page server" "$LOG"
}
