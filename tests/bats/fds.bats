#!/usr/bin/env bats
# File descriptors beyond plain files (issue #6): one scenario program per
# kind, checked before the dump, after a dump that leaves the process
# running (nothing consumed or changed), and after dump --kill + restore.

load helpers

: "${BATS_TEST_TIMEOUT:=90}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	LOG=$T/prog.log
}

# roundtrip PROG [ARGS...]: start, check, dump (process keeps running),
# check, dump --kill, restore, check twice, stop.
roundtrip() {
	local pid
	start_prog "$LOG" "$@" || return 1
	pid=$PROG_PID
	check_pass "$pid" "$LOG" || return 1
	proc_snapshot "$pid" "$T/before"
	cryo_dump "$pid" "$T/live.cryo" || return 1
	assert_running_not_stopped "$pid" || return 1
	assert_snapshot_unchanged "$pid" "$T/before" || return 1
	check_pass "$pid" "$LOG" || return 1
	dump_kill "$pid" "$IMG" || return 1
	restore_bg "$IMG" "$LOG" "$pid" || return 1
	check_pass "$pid" "$LOG" || return 1
	check_pass "$pid" "$LOG" || return 1
	RESTORED_PID=$pid
}

@test "eventfd: count, semaphore mode, O_NONBLOCK and FD_CLOEXEC survive" {
	roundtrip eventfds
	grep -q '^eventfd-count: *7$' "/proc/$RESTORED_PID/fdinfo/3" ||
		fail "fdinfo 3: $(cat "/proc/$RESTORED_PID/fdinfo/3")"
	stop_restored "$RESTORED_PID"
}

@test "pipes and FIFOs: queued bytes, size, dup'ed ends, O_NONBLOCK, F_SETOWN/F_SETSIG survive" {
	mkfifo "$T/fifo"
	roundtrip pipes "$T/fifo"
	stop_restored "$RESTORED_PID"
}

@test "unix sockets: socketpairs keep queued bytes and datagrams, a listener accepts" {
	roundtrip unixsk "$T/listen.sock"
	stop_restored "$RESTORED_PID"
}

@test "epoll: the set reports the same ready fds, registrations found by fd" {
	roundtrip epollset
	stop_restored "$RESTORED_PID"
}

@test "timerfd: a one-shot timer fires its remaining time after restore; intervals and ticks kept" {
	local pid rem t0 t1 ms
	start_prog "$LOG" timerfds 5000
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	cryo_dump "$pid" "$T/live.cryo"
	check_pass "$pid" "$LOG"
	# remaining time of fd 3 just before the dump
	rem=$(sed -n 's/^it_value: (\([0-9]*\), \([0-9]*\))$/\1 \2/p' "/proc/$pid/fdinfo/3" |
		awk '{ printf "%d", $1 * 1000 + $2 / 1000000 }')
	[ -n "$rem" ] && [ "$rem" -gt 1500 ] || fail "timer remaining '$rem' ms: too late to test"
	dump_kill "$pid" "$IMG"
	sleep 1	# downtime is not taken from the timer
	t0=$(date +%s%N)
	restore_bg "$IMG" "$LOG" "$pid"
	! grep -q '^FIRED' "$LOG" || fail "timer fired before or during the restore"
	check_pass "$pid" "$LOG"
	wait_log "$LOG" '^FIRED' 10
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	[ "$ms" -ge $((rem - 400)) ] && [ "$ms" -le $((rem + 1500)) ] ||
		fail "timer fired $ms ms after restore began, remaining was $rem ms"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "signalfd: the mask survives and a signal is read from it" {
	roundtrip sigfd
	stop_restored "$RESTORED_PID"
}

@test "unlinked-open file: content, offsets and shared inode survive, still nameless" {
	roundtrip unlinked "$T/gone.dat"
	[ ! -e "$T/gone.dat" ] || fail "$T/gone.dat reappeared"
	readlink "/proc/$RESTORED_PID/fd/3" | grep -q '(deleted)$' ||
		fail "fd 3 -> $(readlink "/proc/$RESTORED_PID/fd/3")"
	stop_restored "$RESTORED_PID"
}

@test "memfd: name, content, offset and seals survive" {
	roundtrip memfds
	stop_restored "$RESTORED_PID"
}

@test "inotify: watches keep their numbers and still report a create" {
	mkdir "$T/w1" "$T/w2"
	roundtrip inot "$T/w1" "$T/w2"
	stop_restored "$RESTORED_PID"
}

@test "TCP: a listening socket on 127.0.0.1 still accepts; UDP keeps its port" {
	roundtrip tcplisten
	stop_restored "$RESTORED_PID"
}

@test "locks: flock, POSIX and OFD locks are held again after restore" {
	roundtrip locks "$T/l1" "$T/l2" "$T/l3"
	grep -q POSIX "/proc/$RESTORED_PID/fdinfo/4" || fail "fdinfo 4: $(cat "/proc/$RESTORED_PID/fdinfo/4")"
	stop_restored "$RESTORED_PID"
}

@test "a lock taken by another process meanwhile fails the restore clearly" {
	local pid st=0
	start_prog "$LOG" locks "$T/l1" "$T/l2" "$T/l3"
	pid=$PROG_PID
	dump_kill "$pid" "$IMG"
	flock "$T/l1" sleep 5 &
	sleep 0.3
	timeout 10 "$CRYO" -r -f "$IMG" </dev/null >"$T/out" 2>&1 || st=$?
	[ "$st" -eq 1 ] || fail "cryo -r exited $st: $(cat "$T/out")"
	grep -qE "fd 3: .*flock .*lock.*held by another process" "$T/out" || fail "message: $(cat "$T/out")"
	[ ! -e "/proc/$pid" ] || fail "pid $pid exists after a failed restore"
	kill %1 2>/dev/null || true
}

# refused_dump PID OBJECT_ERE, as in basic.bats
refused() {
	local pid=$1 obj=$2 line
	proc_snapshot "$pid" "$T/before"
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "cryo -p $pid exited $status, want 1: $output"
	line=$(grep -E '^cryo: ' <<<"$output" || true)
	[[ $line =~ pid\ $pid\ fd\ [0-9]+:\  ]] || fail "message does not name pid $pid and a fd: $line"
	grep -qiE -- "$obj" <<<"$line" || fail "message does not name /$obj/: $line"
	assert_running_not_stopped "$pid"
	assert_snapshot_unchanged "$pid" "$T/before"
	check_pass "$pid" "$LOG"
}

@test "an established TCP connection is refused by name; the process keeps running" {
	start_prog "$LOG" tcpest
	refused "$PROG_PID" 'established TCP connection \(127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:[0-9]+\) is not supported'
}

@test "evfd: an eventfd with count 7 is restored with its count" {
	roundtrip evfd
	stop_restored "$RESTORED_PID"
}

# Sockets cryo cannot restore: each refused with pid, fd, kind and reason,
# the process left running as it was.
@test "sockets: a listening unix socket with a connection not yet accepted is refused by name" {
	start_prog "$LOG" skrefuse unixlisten
	refused "$PROG_PID" 'fd 3: listening unix socket with 1 connection\(s\) not yet accepted: not supported'
}

@test "sockets: a TCP listener with a connection not yet accepted is refused by name" {
	start_prog "$LOG" skrefuse tcplisten
	refused "$PROG_PID" 'fd 3: TCP listening socket 127\.0\.0\.1:[0-9]+ with 1 connection\(s\) not yet accepted: not supported'
}

@test "sockets: a unix socket connected outside the tree is refused by name" {
	start_prog "$LOG" skrefuse outside
	refused "$PROG_PID" 'fd 3: a unix socket connected to a socket held by pid [0-9]+ outside the tree is not supported: a restore could not reconnect it \(--allow-leak=socket restores it with its peer closed\)'
}

@test "sockets: a unix stream socket whose peer is gone is refused by name" {
	start_prog "$LOG" skrefuse peergone
	refused "$PROG_PID" 'fd 3: unix socket whose peer is gone \(closed by the other side\): not supported'
}

@test "sockets: a datagram queued on an unconnected unix socket is refused by name" {
	start_prog "$LOG" skrefuse dgramqueued
	refused "$PROG_PID" 'fd 3: unconnected unix socket with 1 bytes queued \(their senders cannot be restored\): not supported'
}

@test "sockets: a datagram queued on a UDP socket is refused by name" {
	start_prog "$LOG" skrefuse udpqueued
	refused "$PROG_PID" 'fd 3: UDP socket 127\.0\.0\.1:[0-9]+ with datagrams queued: not supported'
}

@test "SCM_RIGHTS in flight: a file and a pipe end queued on a socketpair arrive after restore, with the bytes in order, and work" {
	roundtrip scmfds "$T/scm.data"
	run "$CRYO" show "$IMG"
	grep -qE 'scm_rights +task 0 .*4 records' <<<"$output" || fail "cryo show: $output"
	kill -USR2 "$RESTORED_PID"
	wait_log "$LOG" '^RECEIVED '
	grep -qx 'RECEIVED ok' "$LOG" || fail "after restore: $(grep '^RECEIVED' "$LOG")"
	stop_restored "$RESTORED_PID"
}

@test "SCM_RIGHTS in flight: a file cryo cannot reopen (an eventfd) is refused by name" {
	start_prog "$LOG" scmfds "$T/scm.data" eventfd
	refused "$PROG_PID" 'fd [0-9]+: a file in flight \(SCM_RIGHTS\) on this unix socket, anon_inode:\[eventfd\], is not supported'
}

@test "sockets: a unix socket whose bound file was removed is refused by name" {
	start_prog "$LOG" skrefuse unlinked "$T/gone.sock"
	refused "$PROG_PID" "fd 3: unix socket bound to $T/gone.sock, whose file was removed or replaced .*: not supported"
}

@test "sockets: a connection the process made to its own named listener is refused by name" {
	start_prog "$LOG" skrefuse selfconn
	refused "$PROG_PID" 'fd [45]: a named unix socket connected to fd [45] of the same process is not supported'
}

@test "sockets: a raw IPv4 socket is refused by name" {
	start_prog "$LOG" skrefuse raw || { grep -q '^SKIP' "$LOG" && skip "no raw sockets here: $(grep '^SKIP' "$LOG")"; return 1; }
	refused "$PROG_PID" 'fd 3: an IPv4 socket of type 3 protocol 17 is not supported'
}
