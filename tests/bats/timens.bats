#!/usr/bin/env bats
# CLOCK_MONOTONIC and CLOCK_BOOTTIME across a restore: the image records
# them at the freeze, the restore continues them in a new time namespace
# (as if no time had passed while the tree was stored, like CRIU);
# --no-timens gives the host's clocks.

load helpers

: "${BATS_TEST_TIMEOUT:=90}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	LOG=$T/prog.log
	[ -e /proc/self/ns/time ] || skip "no time namespaces in this kernel (CONFIG_TIME_NS)"
}

teardown() {
	[ -z "${NOBODY_DIR:-}" ] || rm -rf "$NOBODY_DIR"
	[ -z "${REGISTERED:-}" ] || "$CRYO" unregister >/dev/null 2>&1 || true
	cryo_teardown
}

# clocks_line LOG N: the Nth "CLOCKS" line -> MONO BOOT BACK FWD (ms, ms, us, ms)
clocks_line() {
	local l
	l=$(grep '^CLOCKS ' "$1" | sed -n "${2}p")
	[ -n "$l" ] || { fail "no CLOCKS line $2 in $1: $(cat "$1")"; return 1; }
	MONO=$(sed -E 's/.*mono_ms=([0-9]+).*/\1/' <<<"$l")
	BOOT=$(sed -E 's/.*boot_ms=([0-9]+).*/\1/' <<<"$l")
	BACK=$(sed -E 's/.*back_us=([0-9]+).*/\1/' <<<"$l")
	FWD=$(sed -E 's/.*fwd_ms=([0-9]+).*/\1/' <<<"$l")
}

now_ms() {	# wall clock, ms
	echo $((${EPOCHREALTIME/./} / 1000))
}

@test "clocks continue from the dump: the time stored is not seen, no step back, vdso agrees" {
	local pid m0 b0 w0 w1 img_mono
	start_prog "$LOG" clocks
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	clocks_line "$LOG" 1
	m0=$MONO b0=$BOOT w0=$(now_ms)
	dump_kill "$pid" "$IMG"
	# the image holds the clocks of the freeze, a little after the check
	run "$CRYO" show --json "$IMG"
	img_mono=$(python3 -c 'import json,sys; c=json.load(sys.stdin)["clocks"]; print(c["monotonic_ns"] // 1000000 if c["recorded"] else -1)' <<<"$output")
	((img_mono >= m0 && img_mono < m0 + 5000)) || fail "image CLOCK_MONOTONIC $img_mono ms, the program saw $m0 ms just before"
	run "$CRYO" show "$IMG"
	[[ $output == *"clocks   CLOCK_MONOTONIC "*" at the dump"* ]] || fail "cryo show: $output"
	sleep 2
	restore_bg "$IMG" "$LOG" "$pid"
	[ "$(readlink /proc/"$pid"/ns/time)" != "$(readlink /proc/self/ns/time)" ] ||
		fail "the restored process is in this shell's time namespace"
	check_pass "$pid" "$LOG"	# no clock went back; vdso = syscall
	w1=$(now_ms)
	clocks_line "$LOG" 2
	((MONO >= m0 && BOOT >= b0)) || fail "clocks went back: mono $m0 -> $MONO, boot $b0 -> $BOOT"
	# 2 s passed outside while the tree was stored: its clocks did not see them
	((MONO - m0 <= w1 - w0 - 1500)) ||
		fail "CLOCK_MONOTONIC moved $((MONO - m0)) ms while $((w1 - w0)) ms passed, 2000 of them stored"
	((BOOT - b0 <= w1 - w0 - 1500)) ||
		fail "CLOCK_BOOTTIME moved $((BOOT - b0)) ms while $((w1 - w0)) ms passed, 2000 of them stored"
	((FWD < 1500)) || fail "a clock jumped $FWD ms forward between two reads 10 ms apart"
	stop_restored "$pid"
}

@test "an absolute clock_nanosleep(CLOCK_MONOTONIC) in progress wakes at its deadline on the tree's clock" {
	local pid
	start_prog "$LOG" clocks 4000	# a thread sleeps until start + 4 s
	pid=$PROG_PID
	dump_kill "$pid" "$IMG"
	sleep 2
	restore_bg "$IMG" "$LOG" "$pid"
	wait_log "$LOG" '^(WOKE|FAIL)' 15
	grep -q '^WOKE' "$LOG" || fail "sleeper: $(grep FAIL "$LOG")"
	read -r late wall < <(sed -nE 's/^WOKE late_ms=([0-9]+) wall_ms=([0-9]+)/\1 \2/p' "$LOG")
	((late < 1000)) || fail "woke $late ms after its deadline by CLOCK_MONOTONIC"
	# the deadline is on the tree's clock: the 2 s stored add to the wait
	((wall >= 5500)) || fail "woke $wall ms after the start: the stored time was counted"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "--no-timens: the tree gets this host's clocks" {
	local pid m0 w0 w1
	start_prog "$LOG" clocks
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	clocks_line "$LOG" 1
	m0=$MONO w0=$(now_ms)
	dump_kill "$pid" "$IMG"
	sleep 2
	restore_bg "$IMG" "$LOG" "$pid" --no-timens
	[ "$(readlink /proc/"$pid"/ns/time)" = "$(readlink /proc/self/ns/time)" ] ||
		fail "--no-timens, yet in another time namespace"
	check_pass "$pid" "$LOG"
	w1=$(now_ms)
	clocks_line "$LOG" 2
	((MONO - m0 >= 2000)) || fail "CLOCK_MONOTONIC moved only $((MONO - m0)) ms over a 2 s pause"
	((FWD >= 1900)) || fail "no forward jump over the 2 s stored: largest step $FWD ms"
	stop_restored "$pid"
}

@test "a tree in a time namespace of its own: the image has its clocks, and they continue" {
	local pid m0 img_mono host
	start_prog "$LOG" clocks 0 100000	# its clocks are 100000 s ahead of ours
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	clocks_line "$LOG" 1
	m0=$MONO
	host=$(awk '{ printf "%d", $1 * 1000 }' /proc/uptime)
	((m0 > host + 90000000)) || fail "the program's clock $m0 ms is not ahead of the host's $host ms"
	dump_kill "$pid" "$IMG"
	run "$CRYO" show --json "$IMG"
	img_mono=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["clocks"]["monotonic_ns"] // 1000000)' <<<"$output")
	((img_mono >= m0 && img_mono < m0 + 5000)) || fail "image CLOCK_MONOTONIC $img_mono ms, the program saw $m0 ms"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	clocks_line "$LOG" 2
	((MONO >= m0 && MONO < m0 + 5000)) || fail "CLOCK_MONOTONIC $m0 -> $MONO ms"
	stop_restored "$pid"
}

@test "--pidns: the clocks continue in the namespaces it makes" {
	local pid hpid i m0
	start_prog "$LOG" clocks
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	clocks_line "$LOG" 1
	m0=$MONO
	cryo_dump "$pid" "$IMG"	# the original runs on, its pid taken
	sleep 2
	(exec </dev/null >>"$T/restored.log" 2>&1; _only_stdio; exec "$CRYO" -r --pidns -f "$IMG") &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	hpid=$(pidns_host_pid "$pid" -f "$PROGS/clocks")
	[ -n "$hpid" ] || fail "not restored: $(cat "$T/restored.log")"
	CRYO_TEST_PIDS+=("$hpid")
	kill -USR1 "$hpid"
	wait_log "$T/restored.log" '^(PASS|FAIL) clocks' 10
	grep -q '^PASS clocks' "$T/restored.log" || fail "check: $(cat "$T/restored.log")"
	clocks_line "$T/restored.log" 1
	((MONO >= m0 && MONO - m0 < 1500)) || fail "CLOCK_MONOTONIC $m0 -> $MONO ms over a 2 s pause"
	kill -TERM "$hpid"
	wait_cryo_exit "$CRYO_PID" 10
	[ "$CRYO_STATUS" = 0 ] || fail "cryo -r --pidns exited $CRYO_STATUS"
	kill "$pid"
}

@test "without privilege: --pidns makes the clocks continue, through a user namespace" {
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
	local d pid i hpid as_nobody m0
	as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	"${as_nobody[@]}" unshare -U true 2>/dev/null || skip "unprivileged user namespaces are disabled here"
	d=$(mktemp -d /tmp/cryo-nobody.XXXXXX) && chmod 777 "$d"
	NOBODY_DIR=$d
	("${as_nobody[@]}" sh -c "exec '$PROGS/clocks' >'$d/log' 2>&1 </dev/null" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-) &
	pid=$!
	CRYO_TEST_PIDS+=("$pid")
	wait_log "$d/log" '^READY' 5
	kill -USR1 "$pid"
	wait_log "$d/log" '^(PASS|FAIL) clocks' 10
	clocks_line "$d/log" 1
	m0=$MONO
	run "${as_nobody[@]}" "$CRYO" -p "$pid" -f "$d/img" -s "$d/swap" --kill
	[ "$status" -eq 0 ] || fail "dump as nobody: $output"
	wait_gone "$pid" 5
	sleep 2
	(exec </dev/null >>"$T/restored.log" 2>&1; _only_stdio; exec "${as_nobody[@]}" "$CRYO" -r --pidns -f "$d/img") &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	hpid=$(pidns_host_pid "$pid" -u 65534 -f "$PROGS/clocks")
	[ -n "$hpid" ] || fail "not restored with --pidns: $(cat "$T/restored.log")"
	CRYO_TEST_PIDS+=("$hpid")
	! grep -q warning "$T/restored.log" || fail "warning with --pidns: $(cat "$T/restored.log")"
	kill -USR1 "$hpid"
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c '^PASS clocks' "$d/log")" = 2 ] && break
		sleep 0.05
	done
	[ "$(grep -c '^PASS clocks' "$d/log")" = 2 ] || fail "check: $(cat "$d/log")"
	clocks_line "$d/log" 2
	((MONO >= m0 && MONO - m0 < 1500)) || fail "CLOCK_MONOTONIC $m0 -> $MONO ms over a 2 s pause"
	kill -TERM "$hpid"
	wait_cryo_exit "$CRYO_PID" 10
}

@test "./IMAGE: the clocks continue in the shell's process; without privilege, a warning and this host's clocks" {
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
	local pid runner m0 d as_nobody i
	start_prog "$LOG" clocks
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	clocks_line "$LOG" 1
	m0=$MONO
	dump_kill "$pid" "$IMG"
	chmod +x "$IMG"
	run "$CRYO" register
	[ "$status" -eq 0 ] || skip "no binfmt_misc here: $output"
	REGISTERED=1
	sleep 2
	"$IMG" >>"$LOG" 2>&1 &
	runner=$!
	CRYO_TEST_PIDS+=("$runner")
	for ((i = 0; i < 100; i++)); do
		[ "$(readlink /proc/$runner/exe)" = "$(readlink -f "$PROGS/clocks")" ] &&
			[ "$(proc_status_field "$runner" TracerPid)" = 0 ] && break
		sleep 0.05
	done
	check_pass "$runner" "$LOG"
	clocks_line "$LOG" 2
	((MONO >= m0 && MONO - m0 < 1500)) || fail "./IMAGE: CLOCK_MONOTONIC $m0 -> $MONO ms over a 2 s pause"
	kill "$runner"
	wait "$runner" || true

	as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	d=$(mktemp -d /tmp/cryo-nobody.XXXXXX) && chmod 777 "$d"
	NOBODY_DIR=$d
	("${as_nobody[@]}" sh -c "exec '$PROGS/clocks' >'$d/log' 2>&1 </dev/null" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-) &
	pid=$!
	CRYO_TEST_PIDS+=("$pid")
	wait_log "$d/log" '^READY' 5
	run "${as_nobody[@]}" "$CRYO" -p "$pid" -f "$d/img" -s "$d/swap" --kill
	[ "$status" -eq 0 ] || fail "dump as nobody: $output"
	wait_gone "$pid" 5
	chmod +x "$d/img"
	sleep 1
	("${as_nobody[@]}" sh -c "exec '$d/img' >>'$d/log' 2>&1 </dev/null" 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-) &
	runner=$!
	CRYO_TEST_PIDS+=("$runner")
	wait_log "$d/log" 'warning: .*no time namespace.*CLOCK_MONOTONIC jumps [0-9.]+ s forward' 10
	for ((i = 0; i < 100; i++)); do
		[ "$(readlink /proc/$runner/exe)" = "$(readlink -f "$PROGS/clocks")" ] &&
			[ "$(proc_status_field "$runner" TracerPid)" = 0 ] && break
		sleep 0.05
	done
	[ "$(readlink /proc/"$runner"/ns/time)" = "$(readlink /proc/self/ns/time)" ] ||
		fail "no privilege, yet in another time namespace"
	kill -USR1 "$runner"
	wait_log "$d/log" '^(PASS|FAIL) clocks' 10
	grep -q '^PASS clocks' "$d/log" || fail "check: $(cat "$d/log")"
	clocks_line "$d/log" 1
	((FWD >= 900)) || fail "host clocks, yet no forward jump over the 1 s pause: $FWD ms"
	kill "$runner"
}

@test "a tree in two time namespaces is refused by name, and runs on" {
	local pid kid
	start_prog "$LOG" clocks 0 -2	# its child runs 1000 s ahead
	pid=$PROG_PID
	for _ in $(seq 100); do
		kid=$(tr -d " " </proc/"$pid"/task/"$pid"/children)
		[ -n "$kid" ] && [ "$(readlink /proc/"$kid"/ns/time)" != "$(readlink /proc/"$pid"/ns/time)" ] && break
		sleep 0.05
	done
	[ -n "$kid" ] || fail "no child"
	CRYO_TEST_PIDS+=("$kid")
	run "$CRYO" -p "$pid" -f "$IMG" --kill
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ $output == *"pid $kid: in another time namespace than pid $pid"* ]] || fail "message: $output"
	check_pass "$pid" "$LOG"
	alive "$kid" || fail "the child $kid is gone"
	kill "$kid" "$pid"
}

@test "a process that made a time namespace for its children is refused, and runs on" {
	local pid
	start_prog "$LOG" clocks 0 -1	# unshare(CLONE_NEWTIME) without entering it
	pid=$PROG_PID
	run "$CRYO" -p "$pid" -f "$IMG" --kill
	[ "$status" -eq 1 ] || fail "dump exited $status: $output"
	[[ $output == *"pid $pid"*"time namespace its children would be born in"* ]] ||
		fail "message: $output"
	check_pass "$pid" "$LOG"
	kill "$pid"
}

@test "cryo run --cache: host clocks for an entry of this boot; a namespace when the entry's clocks are ahead" {
	command -v unshare >/dev/null && unshare --help 2>&1 | grep -q -- --monotonic ||
		skip "unshare (util-linux) without --monotonic"
	local d=$T/cache before after
	cp "$PROGS/clocks" "$T/clocks"
	# the first run caches its state; a cached run of the same boot sees the
	# time that passed since (a new run on this host)
	"$CRYO" run --cache --cache-dir "$d" -- "$T/clocks" cache </dev/null 2>"$T/err1" | cat >"$T/out1"
	sleep 1.5
	"$CRYO" run --cache --cache-dir "$d" -v -- "$T/clocks" cache </dev/null 2>"$T/err2" | cat >"$T/out2"
	grep -q "restored from cache entry" "$T/err2" || fail "not restored from the cache: $(cat "$T/err2")"
	before=$(sed -nE 's/^BEFORE mono_ms=([0-9]+)/\1/p' "$T/out1")
	after=$(sed -nE 's/^AFTER mono_ms=([0-9]+)/\1/p' "$T/out2")
	((after - before >= 1400)) || fail "cached run: CLOCK_MONOTONIC $before -> $after ms over 1.5 s"
	# an entry made where the clocks were 100000 s ahead (as before a
	# reboot): the cached run continues them instead of going back
	rm -rf "$d"
	unshare -T --monotonic 100000 --boottime 100000 \
		"$CRYO" run --cache --cache-dir "$d" -- "$T/clocks" cache </dev/null 2>"$T/err3" | cat >"$T/out3"
	"$CRYO" run --cache --cache-dir "$d" -v -- "$T/clocks" cache </dev/null 2>"$T/err4" | cat >"$T/out4"
	grep -q "restored from cache entry" "$T/err4" || fail "not restored from the cache: $(cat "$T/err4")"
	grep -q "clocks continue from the dump" "$T/err4" || fail "no time namespace: $(cat "$T/err4")"
	before=$(sed -nE 's/^BEFORE mono_ms=([0-9]+)/\1/p' "$T/out3")
	after=$(sed -nE 's/^AFTER mono_ms=([0-9]+)/\1/p' "$T/out4")
	((after >= before && after - before < 5000)) || fail "cached run: CLOCK_MONOTONIC $before -> $after ms"
}
