#!/usr/bin/env bats
# Unix sockets connected between processes of the tree (issue #5, issue #6
# item 3): each connection is rebuilt once by the restorer with what was
# queued on each end and handed to its holders (tools/cryo/socktree.c).
# Each scenario is checked before the dump, after a dump that leaves the
# tree running (nothing consumed), and twice after dump --kill + restore:
# every check runs one more round of the program's protocol.

load helpers

: "${BATS_TEST_TIMEOUT:=90}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	LOG=$T/prog.log
}

roundtrip() {
	local pid
	start_prog "$LOG" "$@" || return 1
	pid=$PROG_PID
	check_pass "$pid" "$LOG" || return 1
	cryo_dump "$pid" "$T/live.cryo" || return 1
	assert_running_not_stopped "$pid" || return 1
	check_pass "$pid" "$LOG" || return 1
	dump_kill "$pid" "$IMG" || return 1
	restore_bg "$IMG" "$LOG" "$pid" || return 1
	check_pass "$pid" "$LOG" || return 1
	check_pass "$pid" "$LOG" || return 1
	RESTORED_PID=$pid
}

@test "socketpairs between a parent and its child: queued data both ways, seqpacket, shutdown" {
	roundtrip socktree pair
	stop_restored "$RESTORED_PID"
}

@test "a datagram socketpair between processes keeps its message boundaries" {
	roundtrip socktree dgram
	stop_restored "$RESTORED_PID"
}

@test "a listener and two forked clients: connections, names and queued requests survive; a shared TCP listener accepts" {
	roundtrip socktree server "$T/srv.sock"
	stop_restored "$RESTORED_PID"
}

@test "a listener and two forked clients that closed it: the accepted sockets keep the listener's name" {
	roundtrip socktree server "$T/srv.sock" private
	stop_restored "$RESTORED_PID"
}

@test "a file in flight (SCM_RIGHTS) from a parent to its child arrives after restore, at its offset" {
	roundtrip socktree scm
	stop_restored "$RESTORED_PID"
}

@test "a file in flight between processes that the sender still holds open is refused by name; the tree keeps running" {
	local child
	start_prog "$LOG" socktree scmheld
	child=$(pgrep -P "$PROG_PID" | head -n 1)
	run "$CRYO" -p "$PROG_PID" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ "$output" == *"pid $child fd "[0-9]*": a file in flight (SCM_RIGHTS) on a unix socket connected to pid $PROG_PID (another process of the tree) is also open in pid $PROG_PID: not supported"* ]] ||
		fail "message: $output"
	assert_running_not_stopped "$PROG_PID"
	check_pass "$PROG_PID" "$LOG"
}

@test "a unix socket connected outside the tree: refused naming the pid; --allow-leak=socket restores it with its peer closed" {
	local pid holder
	start_prog "$LOG" socktree leak
	pid=$PROG_PID
	holder=$(pgrep -f "socktree leak" | grep -vx "$pid" | head -n 1)
	run "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ "$output" == *"pid $pid fd 3: a unix socket connected to a socket held by pid $holder outside the tree is not supported"*"--allow-leak=socket"* ]] ||
		fail "message: $output"
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
	grep -qx "PEER open" "$LOG" || fail "the peer was closed before the dump: $(cat "$LOG")"
	run "$CRYO" -p "$pid" -f "$IMG" --allow-leak=socket --kill
	[ "$status" -eq 0 ] || fail "dump: $output"
	[[ "$output" == *"restored with its peer closed (--allow-leak=socket)"* ]] || fail "no warning: $output"
	wait_gone "$pid" 5
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	[ "$(grep '^PEER' "$LOG" | tail -n 1)" = "PEER closed" ] ||
		fail "the restored socket's peer is not closed: $(cat "$LOG")"
	stop_restored "$pid"
}
