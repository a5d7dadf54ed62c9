#!/usr/bin/env bats
# Established TCP connections with --tcp-established (tools/cryo/tcp.c,
# TCP repair mode): to a server outside the tree (tests/progs/tcppeer,
# which reports how its connection ended) and between two processes of the
# tree, with bytes queued unread in both directions at the dump.

load helpers

: "${BATS_TEST_TIMEOUT:=60}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	LOG=$T/prog.log
	SRV=$T/server.log
}

# start_peer: tcppeer in the background, outside any dumped tree; sets
# PEER_PID and PORT
start_peer() {
	: >"$SRV"
	"$PROGS/tcppeer" >"$SRV" 2>&1 </dev/null &
	PEER_PID=$!
	CRYO_TEST_PIDS+=("$PEER_PID")
	wait_log "$SRV" '^PORT [0-9]+$' || return 1
	PORT=$(sed -n 's/^PORT //p' "$SRV")
}

# the server's connection ended (a FIN, a reset, an error)
assert_peer_open() {
	if grep -qE '^SERVER (EOF|ERROR)' "$SRV"; then
		fail "the outside server's connection ended: $(grep '^SERVER' "$SRV")"
		return 1
	fi
	alive "$PEER_PID" || fail "the outside server exited: $(cat "$SRV")"
}

@test "tcp: a connection to a server outside the tree survives dump --kill and restore: queued bytes both ways arrive, round trips work, the server sees no reset or EOF" {
	local pid json
	start_peer
	start_prog "$LOG" tcpconn client "$PORT"
	pid=$PROG_PID
	wait_log "$SRV" '^SERVER CONNECTED$'
	cryo_dump "$pid" "$IMG" --kill --tcp-established
	wait_gone "$pid" 5
	# the process died with the socket in repair mode: nothing reached the peer
	sleep 0.2
	assert_peer_open
	run "$CRYO" show "$IMG"
	[[ $output =~ options\ +tcp-established ]] || fail "cryo show names no tcp-established option: $output"
	[[ $output =~ TCP\ 127\.0\.0\.1:[0-9]+\ -\>\ 127\.0\.0\.1:$PORT\ established:\ 0\ bytes\ to\ send\ \(0\ unsent\),\ 5000\ to\ read ]] ||
		fail "cryo show: no TCP connection line with 5000 bytes to read: $output"
	json=$("$CRYO" show --json "$IMG")
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["options"]["tcp_established"] is True, d["options"]
tcp = [f["tcp"] for t in d["tasks"] for f in t["fds"] if "tcp" in f]
assert len(tcp) == 1, tcp
t = tcp[0]
assert t["peer"] == "127.0.0.1:" + sys.argv[2] and t["recv_queued"] == 5000 and t["send_queued"] == 0, t
' "$json" "$PORT" || fail "cryo show --json: $json"
	restore_bg "$IMG" "$LOG" "$pid"
	kill -USR1 "$PEER_PID"	# the server reads the queued request, echoes
	check_pass "$pid" "$LOG"
	check_pass "$pid" "$LOG"
	assert_peer_open
	# the client closes: the server sees its EOF only now, after every
	# byte: the 3000-byte request and 2 checks of 5 x 100-byte round trips
	stop_restored "$pid"
	wait_log "$SRV" '^SERVER (EOF|ERROR)'
	grep -qx 'SERVER EOF after 4000 bytes' "$SRV" || fail "server: $(grep '^SERVER' "$SRV")"
}

@test "tcp: a dump with --tcp-established that leaves the process running leaves its connection untouched" {
	local pid
	start_peer
	start_prog "$LOG" tcpconn client "$PORT"
	pid=$PROG_PID
	wait_log "$SRV" '^SERVER CONNECTED$'
	cryo_dump "$pid" "$IMG" --tcp-established
	assert_running_not_stopped "$pid"
	assert_peer_open
	kill -USR1 "$PEER_PID"
	check_pass "$pid" "$LOG"
	kill -TERM "$pid"
	wait_log "$SRV" '^SERVER (EOF|ERROR)'
	grep -qx 'SERVER EOF after 3500 bytes' "$SRV" || fail "server: $(grep '^SERVER' "$SRV")"
}

@test "tcp: a parent and its forked child connected over 127.0.0.1 (the parent still listening on the port) get their connection back with the bytes queued both ways" {
	local pid
	start_prog "$LOG" tcpconn tree
	pid=$PROG_PID
	cryo_dump "$pid" "$IMG" --kill --tcp-established
	wait_gone "$pid" 5
	run "$CRYO" show "$IMG"
	[[ $output =~ 2000\ to\ read ]] && [[ $output =~ 3000\ to\ read ]] ||
		fail "cryo show: the queued bytes of the two ends: $output"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "tcp: without --tcp-established an established connection is refused naming the flag; the process and its connection keep running" {
	local pid line
	start_peer
	start_prog "$LOG" tcpconn client "$PORT"
	pid=$PROG_PID
	wait_log "$SRV" '^SERVER CONNECTED$'
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "cryo -p $pid exited $status, want 1: $output"
	line=$(grep -E '^cryo: ' <<<"$output" || true)
	[[ $line =~ pid\ $pid\ fd\ 3:\ an\ established\ TCP\ connection\ \(127\.0\.0\.1:[0-9]+\ -\>\ 127\.0\.0\.1:$PORT\)\ is\ not\ supported\ without\ --tcp-established ]] ||
		fail "message: $output"
	[ ! -e "$IMG" ] || fail "an image was written"
	assert_running_not_stopped "$pid"
	assert_peer_open
	kill -USR1 "$PEER_PID"
	check_pass "$pid" "$LOG"
}

@test "tcp: a restore whose connection is still open here fails naming pid, fd and the reason, and leaves nothing behind" {
	local pid st=0
	start_peer
	start_prog "$LOG" tcpconn client "$PORT"
	pid=$PROG_PID
	wait_log "$SRV" '^SERVER CONNECTED$'
	cryo_dump "$pid" "$IMG" --tcp-established
	# the same addresses are still connected: the restore cannot take them
	# (in a new pid namespace, so that the pid is free)
	timeout 20 "$CRYO" -r -f "$IMG" --pidns </dev/null >"$T/out" 2>&1 || st=$?
	[ "$st" -eq 1 ] || fail "cryo -r exited $st: $(cat "$T/out")"
	grep -qE "pid $pid.*fd 3: the TCP connection 127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:$PORT is still open here" "$T/out" ||
		fail "message: $(cat "$T/out")"
	[ -z "$(pgrep -f "tcpconn client $PORT" | grep -vx "$pid")" ] || fail "a restored process is left behind"
	assert_running_not_stopped "$pid"
	assert_peer_open
	kill -USR1 "$PEER_PID"
	check_pass "$pid" "$LOG"
}

@test "tcp: a restore without CAP_NET_ADMIN fails naming pid, fd and EPERM, leaves nothing behind; a restore with it then works" {
	local pid st=0
	command -v capsh >/dev/null || skip "capsh (libcap2-bin) is not installed"
	start_peer
	start_prog "$LOG" tcpconn client "$PORT"
	pid=$PROG_PID
	wait_log "$SRV" '^SERVER CONNECTED$'
	cryo_dump "$pid" "$IMG" --kill --tcp-established
	wait_gone "$pid" 5
	timeout 20 capsh --drop=cap_net_admin -- -c 'exec "$0" -r -f "$1" </dev/null' "$CRYO" "$IMG" \
		>"$T/out" 2>&1 || st=$?
	[ "$st" -eq 1 ] || fail "cryo -r without CAP_NET_ADMIN exited $st: $(cat "$T/out")"
	grep -qE "pid $pid.*fd 3: TCP repair mode for the connection 127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:$PORT: Operation not permitted \(restoring an established TCP connection needs CAP_NET_ADMIN\)" "$T/out" ||
		fail "message: $(cat "$T/out")"
	[ ! -e "/proc/$pid" ] || fail "pid $pid exists after a failed restore"
	assert_peer_open
	restore_bg "$IMG" "$LOG" "$pid"
	kill -USR1 "$PEER_PID"
	check_pass "$pid" "$LOG"
	assert_peer_open
	stop_restored "$pid"
}

@test "tcp: over IPv6 (::1), a parent and its child get their connection back" {
	local pid
	start_prog "$LOG" tcpconn tree v6
	pid=$PROG_PID
	cryo_dump "$pid" "$IMG" --kill --tcp-established
	wait_gone "$pid" 5
	run "$CRYO" show "$IMG"
	[[ $output =~ TCP\ \[::1\]:[0-9]+\ -\>\ \[::1\]:[0-9]+\ established ]] || fail "cryo show: $output"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "tcp: bytes waiting in a send queue, some never sent (the peer's window full), all arrive in order after restore" {
	local pid json
	start_prog "$LOG" tcpconn tree big
	pid=$PROG_PID
	cryo_dump "$pid" "$IMG" --kill --tcp-established
	wait_gone "$pid" 5
	json=$("$CRYO" show --json "$IMG")
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
tcp = [f["tcp"] for t in d["tasks"] for f in t["fds"] if "tcp" in f]
assert len(tcp) == 2, tcp
assert max(t["send_unsent"] for t in tcp) > 0, tcp
' "$json" || fail "no send queue in the image: $json"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG" 10
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}
