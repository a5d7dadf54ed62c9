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

@test "a listener and two forked clients: connections, names and queued requests survive" {
	roundtrip socktree server "$T/srv.sock"
	stop_restored "$RESTORED_PID"
}
