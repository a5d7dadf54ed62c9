#!/usr/bin/env bats
# Process trees (issue #5): tree shape, pids, sessions and groups, zombies,
# open file descriptions shared between processes, refusals.

load helpers

: "${BATS_TEST_TIMEOUT:=90}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	LOG=$T/prog.log
}

tree_pids() {	# ROOT -> "pid:ppid:pgid:sid:state:comm" of the root and its children
	local root=$1 p
	for p in $root $(cat /proc/"$root"/task/*/children 2>/dev/null); do
		awk -v comm="$(cat /proc/"$p"/comm)" '{ s = $0; sub(/.*\) /, "", s); split(s, f, " ");
		       printf "%s:%s:%s:%s:%s:%s\n", $1, f[2], f[3], f[4], f[1], comm }' /proc/"$p"/stat
	done | sort
}

@test "tree: pids, parents, session, groups, names, a zombie and a shared offset survive" {
	local pid before after
	start_prog "$LOG" tree "$T/shared.txt"
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	before=$(tree_pids "$pid")
	[ "$(echo "$before" | wc -l)" -eq 4 ] || fail "expected 4 processes: $before"
	dump_kill "$pid" "$IMG"
	restore_bg "$IMG" "$LOG" "$pid"
	after=$(tree_pids "$pid")
	# the root's parent is cryo now; everything else must be identical
	[ "$(echo "$before" | tail -n +2)" = "$(echo "$after" | tail -n +2)" ] ||
		fail "tree differs: before '$before' after '$after'"
	[ "${after%%:*}" = "$pid" ] || fail "root pid changed: $after"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "restoring a tree whose pid is taken fails clearly and leaves nothing running" {
	local pid n_before n_after
	start_prog "$LOG" tree "$T/shared.txt"
	pid=$PROG_PID
	run "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 0 ] || fail "dump: $output"
	n_before=$(pgrep -fc "$PROGS/tree|tools/cryo/cryo" || true)
	run "$CRYO" -r -f "$IMG"
	[ "$status" -eq 1 ] || fail "restore over a live tree exited $status: $output"
	[[ "$output" == *"pid $pid is in use"* ]] || fail "message: $output"
	n_after=$(pgrep -fc "$PROGS/tree|tools/cryo/cryo" || true)
	[ "$n_after" -eq "$n_before" ] || fail "restore left processes behind ($n_before -> $n_after)"
	check_pass "$pid" "$LOG"
}

@test "pipeline producer | filter | consumer with data in flight: complete output, in order" {
	local pid out=$T/out n0
	sh -c "exec </dev/null 2>/dev/null; '$PROGS/pipeline' produce 3000 | '$PROGS/pipeline' filter |
	       '$PROGS/pipeline' consume '$out'" >/dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	pid=$!
	CRYO_TEST_PIDS+=("$pid")
	sleep 1.2
	run "$CRYO" -p "$pid" -f "$IMG" --kill
	[ "$status" -eq 0 ] || fail "dump: $output"
	wait "$pid" 2>/dev/null || true
	n0=$(wc -l <"$out")
	[ "$n0" -lt 2500 ] || fail "the pipeline was nearly done at the dump ($n0 lines): nothing in flight"
	run timeout 60 "$CRYO" -r -f "$IMG"
	[ "$status" -eq 0 ] || fail "restore: exit $status: $output"
	[ "$(tail -n 1 "$out")" = DONE ] || fail "consumer did not finish: $(tail -n 3 "$out")"
	run awk '/^f/ { n++; if (substr($0, 2) + 0 != n) { print "line", n, "is", $0; exit 1 } }
		 END { if (n != 3000) { print n, "lines"; exit 1 } }' "$out"
	[ "$status" -eq 0 ] || fail "consumer output lost or duplicated data: $output"
}

@test "a pipe shared with a process outside the tree is refused; the process keeps running" {
	local pid holder sub
	# the pipe's write end stays with a process outside the tree: the
	# dumped process is a plain `sleep 1000` holding the read end at fd 3
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
	CRYO_TEST_PIDS+=("$pid")
	sleep 0.3
	run "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ "$output" =~ fd\ 3:\ a\ pipe\ shared\ with\ pid\ $holder\ outside ]] || fail "message: $output"
	assert_running_not_stopped "$pid"
	kill "$pid" "$holder"
}

pidns_restore() {	# IMG LOG: cryo -r --pidns in the background, CRYO_PID
	(exec </dev/null >>"$2" 2>&1; _only_stdio; exec "$CRYO" -r --pidns -f "$1") &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
}

ns_host_pid() {	# PID -> the host pid of the restored shmtree that is PID in a new pid ns
	local h
	h=$(pidns_host_pid "$1" -f "$PROGS/shmtree")
	[ -z "$h" ] || { CRYO_TEST_PIDS+=("$h"); echo "$h"; }
}

shm_inodes() {	# PID -> the inodes of its "/dev/zero (deleted)" mappings, one per line
	awk '/\/dev\/zero \(deleted\)/ { print $5 }' /proc/"$1"/maps | sort -u
}

@test "shared anonymous memory: one object after restore, written by either side, seen by the other" {
	local pid kid pi ci
	start_prog "$LOG" shmtree
	pid=$PROG_PID
	kid=$(sed -n 's/^child //p' "$LOG")
	CRYO_TEST_PIDS+=("$kid")
	[ -n "$kid" ] || fail "no child pid in the log"
	check_pass "$pid" "$LOG"
	# the child maps the object in four pieces (munmap + mremap), the parent
	# in two, and a page only the child maps holds data
	[ "$(grep -c '/dev/zero (deleted)' /proc/"$pid"/maps)" -eq 2 ] ||
		fail "parent's mappings before: $(grep zero /proc/"$pid"/maps)"
	[ "$(grep -c '/dev/zero (deleted)' /proc/"$kid"/maps)" -eq 4 ] ||
		fail "child's mappings before: $(grep zero /proc/"$kid"/maps)"
	dump_kill "$pid" "$IMG"
	wait_gone "$kid" 5
	run "$CRYO" show "$IMG"
	[[ "$output" == *"shared anonymous object 1: 24K, 6 mappings"* ]] || fail "cryo show: $output"
	[[ "$output" == *"object 1 @0x4000"* ]] || fail "cryo show: the moved page's offset: $output"
	run "$CRYO" show --json "$IMG"
	[[ "$(echo "$output" | tr -d ' \n')" == *'"shared_anon":[{"id":1,"size":24576'* ]] ||
		fail "cryo show --json: $output"
	restore_bg "$IMG" "$LOG" "$pid"
	alive "$kid" || fail "child $kid not restored"
	# the parent writes a request, the child answers through its own
	# mappings (one of them moved), and checks a page only it wrote
	check_pass "$pid" "$LOG"
	check_pass "$pid" "$LOG"
	pi=$(shm_inodes "$pid")
	ci=$(shm_inodes "$kid")
	[ -n "$pi" ] && [ "$(echo "$pi" | wc -l)" -eq 1 ] || fail "parent inodes: $pi"
	[ "$pi" = "$ci" ] || fail "parent maps inode $pi, child $ci: not one object"
	[ "$(grep -c '/dev/zero (deleted)' /proc/"$kid"/maps)" -eq 4 ] ||
		fail "child's mappings after: $(grep zero /proc/"$kid"/maps)"
	[ "$(grep -c '/dev/zero (deleted)' /proc/"$pid"/maps)" -eq 2 ] ||
		fail "parent's mappings after: $(grep zero /proc/"$pid"/maps)"
	kill "$kid"
	stop_restored "$pid"
}

@test "shared anonymous memory between processes with --lazy: the shared pages are there at once" {
	local pid kid flags
	start_prog "$LOG" shmtree
	pid=$PROG_PID
	kid=$(sed -n 's/^child //p' "$LOG")
	CRYO_TEST_PIDS+=("$kid")
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	wait_gone "$kid" 5
	restore_bg "$IMG" "$LOG" "$pid" --lazy
	check_pass "$pid" "$LOG"
	[ "$(shm_inodes "$pid")" = "$(shm_inodes "$kid")" ] || fail "not one object"
	# shared memory is filled before the tree runs: no userfaultfd on it
	flags=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { z = /\/dev\/zero \(deleted\)/ }
		     z && /^VmFlags:/ { print }' /proc/"$kid"/smaps)
	[ -n "$flags" ] || fail "no shared mapping in the child's smaps"
	[[ "$flags" != *" uf"* ]] || fail "shared mapping registered with userfaultfd: $flags"
	kill "$kid"
	stop_restored "$pid"
}

@test "shared anonymous memory also mapped outside the tree is refused naming that pid; --allow-leak=shm gives a private copy" {
	local pid kid h
	start_prog "$LOG" shmtree
	pid=$PROG_PID
	kid=$(sed -n 's/^child //p' "$LOG")
	CRYO_TEST_PIDS+=("$kid")
	run "$CRYO" -p "$kid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ "$output" == *"shared anonymous memory"*"mapped by pid $pid outside the tree"*"--allow-leak=shm"* ]] ||
		fail "message: $output"
	[ ! -e "$IMG" ] || fail "an image was written"
	assert_running_not_stopped "$kid"
	check_pass "$pid" "$LOG"
	# the parent keeps the original object: the copy is restored in a new
	# pid namespace while it runs
	cryo_dump "$kid" "$IMG" --allow-leak=shm
	[[ "$output" == *"private copy"* ]] || fail "no warning: $output"
	pidns_restore "$IMG" "$T/restored.log"
	h=$(ns_host_pid "$kid")
	[ -n "$h" ] || fail "restored child not found"
	[ -n "$(shm_inodes "$h")" ] || fail "restored child maps no shared memory"
	[ "$(shm_inodes "$h")" != "$(shm_inodes "$pid")" ] || fail "the copy is not private"
	kill -TERM "$h"
	wait_cryo_exit "$CRYO_PID" 10
	check_pass "$pid" "$LOG"	# the original is untouched
	kill "$kid" "$pid"
}

@test "shared anonymous memory between processes restored with --pidns" {
	local pid kid hp hk
	start_prog "$LOG" shmtree
	pid=$PROG_PID
	kid=$(sed -n 's/^child //p' "$LOG")
	CRYO_TEST_PIDS+=("$kid")
	check_pass "$pid" "$LOG"
	cryo_dump "$pid" "$IMG"	# the original keeps running
	pidns_restore "$IMG" "$T/restored.log"
	hp=$(ns_host_pid "$pid")
	hk=$(ns_host_pid "$kid")
	[ -n "$hp" ] && [ -n "$hk" ] || fail "restored tree not found ($hp, $hk)"
	[ "$(shm_inodes "$hp")" = "$(shm_inodes "$hk")" ] || fail "not one object after restore"
	[ "$(shm_inodes "$hp")" != "$(shm_inodes "$pid")" ] || fail "restored onto the original's object"
	kill -USR1 "$hp"
	wait_log "$T/restored.log" '^(PASS|FAIL) shmtree' 10
	grep -q '^PASS shmtree' "$T/restored.log" || fail "check: $(cat "$T/restored.log")"
	check_pass "$pid" "$LOG"	# the original is untouched
	kill "$hk"
	kill -TERM "$hp"
	wait_cryo_exit "$CRYO_PID" 10
	kill "$kid" "$pid"
}

@test "shared anonymous memory of a tree that runs as another user: the later process gets the object over SCM_RIGHTS" {
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
	local d pid kid hp hk
	# nobody cannot enter the test's own temporary directory
	d=$(mktemp -d /tmp/cryo-nobody.XXXXXX) && chmod 777 "$d"
	(setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "exec '$PROGS/shmtree' >'$d/log' 2>&1 </dev/null" \
		3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-) &
	pid=$!
	CRYO_TEST_PIDS+=("$pid")
	wait_log "$d/log" '^READY' 5
	kid=$(sed -n 's/^child //p' "$d/log")
	CRYO_TEST_PIDS+=("$kid")
	cryo_dump "$pid" "$IMG"	# as root; the original keeps running
	pidns_restore "$IMG" "$T/restored.log"
	hp=$(ns_host_pid "$pid")
	hk=$(ns_host_pid "$kid")
	[ -n "$hp" ] && [ -n "$hk" ] || fail "restored tree not found: $(cat "$T/restored.log")"
	[ "$(proc_status_field "$hk" Uid | awk '{ print $1 }')" = 65534 ] || fail "restored child is not nobody's"
	[ "$(shm_inodes "$hp")" = "$(shm_inodes "$hk")" ] || fail "not one object after restore"
	# the fd it was handed, and the socket that carried it, are gone
	[ "$(ls /proc/"$hk"/fd | wc -l)" -eq 3 ] || fail "child fds: $(ls -l /proc/"$hk"/fd)"
	kill -USR1 "$hp"
	wait_log "$d/log" '^(PASS|FAIL) shmtree' 10
	grep -q '^PASS shmtree' "$d/log" || fail "check: $(cat "$d/log")"
	kill "$hk"
	kill -TERM "$hp"
	wait_cryo_exit "$CRYO_PID" 10
	kill "$kid" "$pid"
	rm -rf "$d"
}

@test "memfd held through one open file description by parent and child stays one memfd" {
	local pid kid
	start_prog "$LOG" shmtree memfd
	pid=$PROG_PID
	kid=$(sed -n 's/^child //p' "$LOG")
	CRYO_TEST_PIDS+=("$kid")
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	wait_gone "$kid" 5
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	check_pass "$pid" "$LOG"
	kill "$kid"
	stop_restored "$pid"
}

@test "two separate opens of one memfd in the tree are refused by name; the tree keeps running" {
	local pid kid
	start_prog "$LOG" shmtree memfd-reopen
	pid=$PROG_PID
	kid=$(sed -n 's/^child //p' "$LOG")
	CRYO_TEST_PIDS+=("$kid")
	run "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ "$output" == *"two separate opens of one memfd (memfd:shmtree"* ]] || fail "message: $output"
	assert_running_not_stopped "$pid"
	assert_running_not_stopped "$kid"
	check_pass "$pid" "$LOG"
	kill "$kid"
}
