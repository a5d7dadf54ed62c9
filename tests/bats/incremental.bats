#!/usr/bin/env bats
# Incremental dumps: successive dumps into one swapfile store only what
# changed (content dedup), and --pre-dump copies memory while the process
# runs, with kernel dirty tracking (userfaultfd WP_ASYNC + PAGEMAP_SCAN),
# then freezes it for the written delta only. Needs `make cryo progs`.

load helpers

: "${BATS_TEST_TIMEOUT:=180}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	LOG=$T/prog.log
}

blocks_kib() {	# FILE -> allocated KiB (st_blocks)
	echo $(($(stat -c %b "$1") * $(stat -c %B "$1") / 1024))
}

dirty_round() {	# PID N: the dirtier rewrites 1% of its pages
	kill -USR2 "$1"
	wait_log "$LOG" "^DIRTIED $2 " 20 || fail "no DIRTIED $2 from pid $1"
}

# PID -> the VmFlags lines of mappings registered with a userfaultfd
uffd_vmas() {
	grep -E '^VmFlags:.* (uw|um|ui)( |$)' "/proc/$1/smaps" || true
}

# --pre-dump needs userfaultfd WP_ASYNC and PAGEMAP_SCAN (Linux 6.7+)
need_tracking() {
	local c
	c=$("$CRYO" check 2>&1) || true
	if ! grep -qE 'userfaultfd async write-protect +yes' <<<"$c" ||
		! grep -qE 'PAGEMAP_SCAN ioctl +yes' <<<"$c"; then
		skip "no userfaultfd WP_ASYNC or PAGEMAP_SCAN on $(uname -r) (cryo check)"
	fi
}

@test "three dumps of a 512 MiB process changing 1% between dumps add ~1% each; the third restores intact" {
	local pid sw b1 b2 b3 d2 d3 one_pct
	READY_TIMEOUT=60 start_prog "$LOG" dirtier 512
	pid=$PROG_PID
	sw=$T/cryo-$pid.swap
	CRYO_TIMEOUT=60 cryo_dump "$pid" "$T/s1.img"
	echo "dump 1: $output"
	b1=$(blocks_kib "$sw")
	dirty_round "$pid" 0
	CRYO_TIMEOUT=60 cryo_dump "$pid" "$T/s2.img"
	echo "dump 2: $output"
	b2=$(blocks_kib "$sw")
	dirty_round "$pid" 1
	CRYO_TIMEOUT=60 cryo_dump "$pid" "$T/s3.img" --kill
	echo "dump 3: $output"
	wait_gone "$pid" 5
	b3=$(blocks_kib "$sw")
	one_pct=$((512 * 1024 / 100))	# KiB
	d2=$((b2 - b1))
	d3=$((b3 - b2))
	echo "allocated: $b1 -> $b2 (+$d2) -> $b3 (+$d3) KiB; 1% = $one_pct KiB"
	((b1 >= 512 * 1024 * 9 / 10)) || fail "the first dump stored only $b1 KiB of 512 MiB"
	# 1% of the pages plus the rewritten snapshot table and hash index
	((d2 >= one_pct / 2 && d2 <= one_pct * 3)) || fail "dump 2 added $d2 KiB, want about $one_pct"
	((d3 >= one_pct / 2 && d3 <= one_pct * 3)) || fail "dump 3 added $d3 KiB, want about $one_pct"
	run "$CRYO" snapshots "$sw"
	echo "$output"
	[[ $output == *"3 snapshots"* ]] || fail "want 3 snapshots: $output"
	RESTORE_TIMEOUT=60 restore_bg "$T/s3.img" "$LOG" "$pid"
	# the dirtier verifies every word of every page against its generation
	CHECK_TIMEOUT=30 check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "a pre-dump of a process writing all the time restores exactly the memory it had at the freeze" {
	local pid reused written=0 i
	need_tracking
	start_prog "$LOG" seqwriter 64
	pid=$PROG_PID
	sleep 0.3
	# the freeze must have had pages written since the last round to copy
	# (a burst of the writer is 16 pages; a few others change anyway), and
	# the tracking must have done its job: most of the 16384 pages were not
	# copied frozen. Either can miss once on a loaded machine (the writer
	# not running in that window, or outrunning a round and rewriting
	# every page); broken tracking misses every time.
	for i in 1 2 3 4 5; do
		cryo_dump "$pid" "$T/img" --pre-dump=2 -v
		echo "$output"
		[[ $output =~ pages\ scanned,\ ([0-9]+)\ written ]] || fail "no page counts: $output"
		written=${BASH_REMATCH[1]}
		[[ $output =~ pre-dump:\ ([0-9]+)\ rounds ]] || fail "no pre-dump report: $output"
		[[ $output =~ at\ the\ freeze\ ([0-9]+)\ pages\ were\ reused ]] ||
			fail "no reuse count: $output"
		reused=${BASH_REMATCH[1]}
		((written >= 32 && reused > 4096)) && break
	done
	((written >= 32)) || fail "the writer wrote (almost) nothing between the last round and the freeze in 5 tries"
	((reused > 4096)) || fail "only $reused pages reused from the pre-dump in 5 tries"
	kill -KILL "$pid"
	wait_gone "$pid" 5
	restore_bg "$T/img" "$LOG" "$pid"
	# each rewrite checks the page held its previous step, so let the
	# writer pass over every page once before the full check
	kill -USR2 "$pid"
	sleep 1
	kill -USR2 "$pid"
	sleep 0.2
	grep STEP "$LOG" | tail -2
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "a pre-dump of 4 threads writing all the time restores every thread's memory as at the freeze" {
	local pid written=0 i
	need_tracking
	start_prog "$LOG" seqwriter 64 4
	pid=$PROG_PID
	sleep 0.3
	for i in 1 2 3 4 5; do
		cryo_dump "$pid" "$T/img" --pre-dump=6 -v
		echo "$output"
		[[ $output =~ pages\ scanned,\ ([0-9]+)\ written ]] || fail "no page counts: $output"
		written=${BASH_REMATCH[1]}
		((written >= 64)) && break
	done
	((written >= 64)) || fail "the writers wrote (almost) nothing between the last round and the freeze in 5 tries"
	kill -KILL "$pid"
	wait_gone "$pid" 5
	restore_bg "$T/img" "$LOG" "$pid"
	[ "$(proc_status_field "$pid" Threads)" = 5 ] || fail "$(proc_status_field "$pid" Threads) threads after restore, want 5"
	kill -USR2 "$pid"
	sleep 1
	kill -USR2 "$pid"
	sleep 0.2
	grep STEP "$LOG" | tail -2
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "after a pre-dump the process has no userfaultfd, no extra fd, no registered range, and runs on" {
	local pid
	need_tracking
	start_prog "$LOG" seqwriter 16
	pid=$PROG_PID
	proc_snapshot "$pid" "$T/before"
	[ -z "$(uffd_vmas "$pid")" ] || fail "registered before the dump: $(uffd_vmas "$pid")"
	cryo_dump "$pid" "$T/img" --pre-dump -v
	echo "$output"
	[[ $output == *"pages were reused"* ]] || fail "no pre-dump report: $output"
	assert_snapshot_unchanged "$pid" "$T/before"
	[ -z "$(uffd_vmas "$pid")" ] || fail "still registered after the dump: $(uffd_vmas "$pid")"
	! ls -l "/proc/$pid/fd" | grep -q userfaultfd || fail "a userfaultfd is left: $(ls -l /proc/$pid/fd)"
	check_pass "$pid" "$LOG"

	# a pre-dump that fails after its rounds (the image cannot be written)
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$T/no/such/dir/img" --swapfile "$T/x.swap" --pre-dump
	echo "$output"
	[ "$status" -eq 1 ] || fail "dump into a missing directory exited $status"
	assert_snapshot_unchanged "$pid" "$T/before"
	[ -z "$(uffd_vmas "$pid")" ] || fail "still registered after a failed dump: $(uffd_vmas "$pid")"
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
}

@test "dumps report the freeze time and the pages scanned and written" {
	local pid
	need_tracking
	start_prog "$LOG" dirtier 16
	pid=$PROG_PID
	cryo_dump "$pid" "$T/a.img" -v
	echo "$output"
	[[ $output =~ [0-9]+\ pages\ scanned,\ [0-9]+\ written,\ [0-9]+\ zero\;\ frozen\ for\ [0-9.]+\ ms ]] ||
		fail "plain dump: no pages/freeze report: $output"
	dirty_round "$pid" 0
	cryo_dump "$pid" "$T/b.img" --pre-dump=3 -v
	echo "$output"
	[[ $output =~ pre-dump:\ [1-3]\ rounds\ while\ running\ \([0-9]+\ ms\)\ copied\ [0-9]+\ pages ]] ||
		fail "no pre-dump rounds report: $output"
	[[ $output =~ frozen\ for\ [0-9.]+\ ms ]] || fail "no freeze time: $output"
	[[ $output =~ pages\ scanned,\ [0-9]+\ written ]] || fail "no scanned/written: $output"
	check_pass "$pid" "$LOG"
}

@test "a pre-dumped process tree restores and checks itself" {
	need_tracking
	start_prog "$LOG" tree "$T/shared.txt"
	local pid=$PROG_PID
	cryo_dump "$pid" "$T/img" --pre-dump --kill -v
	echo "$output"
	[[ $output == *"pre-dump: "* ]] || fail "no pre-dump report: $output"
	wait_gone "$pid" 5
	restore_bg "$T/img" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "SIGKILL or SIGTERM of cryo during the pre-dump rounds leaves the process unharmed and untracked" {
	local pid cpid sig
	need_tracking
	READY_TIMEOUT=30 start_prog "$LOG" seqwriter 256
	pid=$PROG_PID
	proc_snapshot "$pid" "$T/before"
	for sig in KILL TERM; do
		"$CRYO" -p "$pid" -f "$T/img-$sig" --pre-dump=20 -v 2>"$T/cryo-$sig.log" &
		cpid=$!
		sleep 0.15
		kill -"$sig" "$cpid" 2>/dev/null || true
		wait "$cpid" 2>/dev/null || true
		echo "SIG$sig: $(cat "$T/cryo-$sig.log")"
		sleep 0.1
		[ -z "$(uffd_vmas "$pid")" ] || fail "SIG$sig: still registered: $(uffd_vmas "$pid")"
		assert_running_not_stopped "$pid"
		assert_snapshot_unchanged "$pid" "$T/before"
		check_pass "$pid" "$LOG"
	done
}

@test "a nanosleep that arming interrupted is re-run after the restore, not failed with EINTR" {
	local pid got
	need_tracking
	start_prog "$LOG" sleeper
	pid=$PROG_PID
	wait_syscall "$pid" '35|230'	# nanosleep or clock_nanosleep
	sleep 0.5
	cryo_dump "$pid" "$T/img" --pre-dump --kill
	wait_gone "$pid" 5
	! grep -q '^SLEPT' "$LOG" || fail "SLEPT printed before the dump (dump was too late)"
	restore_bg "$T/img" "$LOG" "$pid"
	wait_log "$LOG" '^SLEPT 2$' 6
	if grep '^FAIL' "$LOG"; then
		fail "sleeper reported a failure"
	fi
	got=$(grep '^SLEPT' "$LOG" | head -n 2 | tr '\n' ' ')
	[ "$got" = "SLEPT 1 SLEPT 2 " ] || fail "SLEPT lines: '$got'"
	stop_restored "$pid"
}
