#!/usr/bin/env bats
# The swapfile as a snapshot store: dedup across dumps, snapshots listing
# and deletion (space really returns), checksums at restore, and crash
# safety of a killed dump. Needs `make cryo progs`.

load helpers

: "${BATS_TEST_TIMEOUT:=120}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	LOG=$T/prog.log
}

blocks_kib() {	# FILE -> allocated KiB (st_blocks)
	echo $(($(stat -c %b "$1") * $(stat -c %B "$1") / 1024))
}

# dirty_round PID N: SIGUSR2 makes the dirtier rewrite 1% of its pages;
# wait for its "DIRTIED N" line.
dirty_round() {
	kill -USR2 "$1"
	wait_log "$LOG" "^DIRTIED $2 " 10 || fail "no DIRTIED $2 from pid $1"
}

@test "three dumps of a 512 MiB process dirtying 1% each add ~1% each; deleting the middle snapshot shrinks the file, first and third restore" {
	local pid sw b1 b2 b3 b4 d2 d3 one_pct
	READY_TIMEOUT=40 start_prog "$LOG" dirtier 512
	pid=$PROG_PID
	sw=$T/cryo-$pid.swap
	cryo_dump "$pid" "$T/s1.img" -v
	echo "dump 1: $output"
	b1=$(blocks_kib "$sw")
	dirty_round "$pid" 0
	cryo_dump "$pid" "$T/s2.img" -v
	echo "dump 2: $output"
	[[ $output == *"snapshot 2: "*" reused (dedup)"* ]] || fail "no dedup report in: $output"
	b2=$(blocks_kib "$sw")
	dirty_round "$pid" 1
	cryo_dump "$pid" "$T/s3.img" -v --kill
	wait_gone "$pid" 5
	b3=$(blocks_kib "$sw")
	one_pct=$((512 * 1024 / 100))	# KiB
	d2=$((b2 - b1))
	d3=$((b3 - b2))
	echo "allocated: $b1 -> $b2 (+$d2) -> $b3 (+$d3) KiB; 1% = $one_pct KiB"
	# 1% of the pages plus the snapshot table and hash index (~2% of a
	# page per page, rewritten per commit, the older copy punched)
	((d2 >= one_pct / 2 && d2 <= one_pct * 3)) || fail "dump 2 added $d2 KiB, want about $one_pct"
	((d3 >= one_pct / 2 && d3 <= one_pct * 3)) || fail "dump 3 added $d3 KiB, want about $one_pct"

	run "$CRYO" snapshots "$sw"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"3 snapshots"* ]] || fail "want 3 snapshots: $output"
	for i in 1 2 3; do
		echo "$output" | grep -qE "^$i .*s$i\.img\$" || fail "snapshot $i not listed with s$i.img: $output"
	done

	run "$CRYO" snapshots --delete 2 "$sw"
	echo "$output"
	[ "$status" -eq 0 ]
	b4=$(blocks_kib "$sw")
	echo "after deleting snapshot 2: $b3 -> $b4 KiB"
	# snapshot 2's versions of the dirtied 1% are used by no other snapshot
	((b3 - b4 >= one_pct * 3 / 4)) || fail "deleting snapshot 2 freed $((b3 - b4)) KiB, want about $one_pct"
	run "$CRYO" snapshots "$sw"
	echo "$output"
	[[ $output == *"2 snapshots"* ]] || fail "want 2 snapshots after delete: $output"
	run "$CRYO" snapshots --delete 2 "$sw"
	[ "$status" -eq 1 ] && [[ $output == *"no snapshot 2"* ]] || fail "second delete: $status $output"

	restore_bg "$T/s3.img" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
	restore_bg "$T/s1.img" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "a second dump of an unchanged process writes (almost) no pages" {
	local pid
	READY_TIMEOUT=20 start_prog "$LOG" heap 64
	pid=$PROG_PID
	cryo_dump "$pid" "$T/a.img" -v
	cryo_dump "$pid" "$T/b.img" -v --kill
	echo "$output"
	[[ $output =~ snapshot\ 2:\ ([0-9]+)\ pages\ stored:\ ([0-9]+)\ written,\ ([0-9]+)\ reused ]] ||
		fail "no dedup report: $output"
	((BASH_REMATCH[2] < 64)) || fail "second dump wrote ${BASH_REMATCH[2]} pages"
	((BASH_REMATCH[3] > 16000)) || fail "second dump reused only ${BASH_REMATCH[3]} pages"
	wait_gone "$pid" 5
	restore_bg "$T/b.img" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "a flipped bit in a stored page is caught at restore, naming address and slot; nothing runs" {
	local pid sw slot=1000
	start_prog "$LOG" dirtier 16
	pid=$PROG_PID
	sw=$T/cryo-$pid.swap
	dump_kill "$pid" "$T/img"
	# every slot below the metadata holds a non-zero page (zero pages are
	# not stored); slot 1000 is one of the 4096 pages of the 16 MiB area
	run "$CRYO" show "$T/img" --verify
	[ "$status" -eq 0 ] || fail "image not clean before the flip: $output"
	flip_byte "$sw" $((8192 + slot * 4096 + 123))
	run "$CRYO" show "$T/img" --verify
	echo "$output"
	[ "$status" -eq 1 ] && [[ $output == *"slot $slot"* ]] || fail "show --verify missed the flip"
	run timeout "$CRYO_TIMEOUT" "$CRYO" -r -f "$T/img"
	echo "$output"
	[ "$status" -eq 1 ] || fail "restore of a corrupt page exited $status"
	[[ $output =~ page\ at\ 0x[0-9a-f]+\ \(slot\ $slot, ]] || fail "message does not name address and slot: $output"
	[[ $output == *"fails its checksum"* ]] || fail "message: $output"
	sleep 0.2
	! alive "$pid" || fail "pid $pid runs after a failed restore: $(describe_pid "$pid")"
}

@test "SIGKILL of cryo in the middle of a dump leaves the earlier image restorable" {
	local pid sw cpid
	READY_TIMEOUT=30 start_prog "$LOG" dirtier 256
	pid=$PROG_PID
	sw=$T/cryo-$pid.swap
	cryo_dump "$pid" "$T/a.img"
	dirty_round "$pid" 0
	# a second dump into the same swapfile, with 1% changed, killed
	# after 100 ms; it may or may not have reached its commit
	"$CRYO" -p "$pid" -f "$T/b.img" --swapfile "$sw" &
	cpid=$!
	sleep 0.1
	kill -KILL "$cpid" 2>/dev/null || true
	wait "$cpid" 2>/dev/null || true
	echo "b.img: $(ls -l "$T/b.img" 2>&1)"
	run "$CRYO" snapshots "$sw"
	echo "$output"
	[ "$status" -eq 0 ] || fail "snapshots after a killed dump: $output"
	run "$CRYO" show "$T/a.img" --verify
	[ "$status" -eq 0 ] || fail "a.img no longer verifies: $output"
	# known, outside the page store: the dumped process itself may not
	# survive its tracer's death mid-dump (seen: SIGBUS); only the earlier
	# image's survival is asserted here
	echo "pid $pid after the killed dump: $(describe_pid "$pid")"
	kill -KILL "$pid" 2>/dev/null || true
	wait_gone "$pid" 5
	restore_bg "$T/a.img" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
	# and the swapfile takes new dumps (the lock died with cryo)
	run "$CRYO" snapshots "$sw"
	[ "$status" -eq 0 ]
}
