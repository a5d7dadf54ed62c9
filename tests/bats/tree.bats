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

tree_pids() {	# ROOT -> "pid:ppid:pgid:sid:state" of the root and its children
	local root=$1 p
	for p in $root $(cat /proc/"$root"/task/*/children 2>/dev/null); do
		awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " ");
		       printf "%s:%s:%s:%s:%s\n", $1, f[2], f[3], f[4], f[1] }' /proc/"$p"/stat
	done | sort
}

@test "tree: pids, parents, session, groups, a zombie and a shared offset survive" {
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

@test "shared anonymous memory between processes is refused by name; the tree keeps running" {
	start_prog "$LOG" shmtree
	run "$CRYO" -p "$PROG_PID" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ "$output" == *"shared anonymous memory between processes"* ]] || fail "message: $output"
	assert_running_not_stopped "$PROG_PID"
	check_pass "$PROG_PID" "$LOG"
	pkill -P "$PROG_PID" || true
}
