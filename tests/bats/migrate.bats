#!/usr/bin/env bats
# Moving a checkpoint without a shared disk: `cryo pack` (pages inside the
# image), streams (`cryo -p PID -f -` to stdout, `cryo -r -f -` from stdin)
# and a migration over TCP between two network namespaces of this machine.
# Needs `make cryo progs`, root, iproute2 and socat (scripts/setup-debian.sh).

load helpers

: "${BATS_TEST_TIMEOUT:=90}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	PACKED=$T/packed.cryo
	LOG=$T/prog.log
	NSA=cryo-mig-a-$$
	NSB=cryo-mig-b-$$
	MISC=/proc/sys/fs/binfmt_misc/cryo
	export TMPDIR=$T	# the stream dump's scratch directory
}

teardown() {
	cryo_teardown
	ip netns del "$NSA" 2>/dev/null || true
	ip netns del "$NSB" 2>/dev/null || true
	if [ -n "${REGISTERED:-}" ] && [ -e "$MISC" ]; then
		echo -1 >"$MISC" 2>/dev/null || true
	fi
	true
}

# the swapfile a dump of PID next to IMG wrote
swapfile_of() {
	echo "$(dirname "$1")/cryo-$2.swap"
}

# offset of the first packed page in FILE (LX_SEC_PACKED_PAGES: "CRYOPACK"
# header, le64 data_off at byte 48 of it)
packed_data_offset() {
	local f=$1 hdr doff
	hdr=$(grep -boa CRYOPACK "$f" | head -n1 | cut -d: -f1)
	[ -n "$hdr" ] || return 1
	doff=$(od -An -tu8 -j $((hdr + 48)) -N8 "$f" | tr -d ' ')
	echo $((hdr + doff))
}

@test "cryo pack: the packed image restores with its swapfile deleted; show, --verify and core read it" {
	local cnt=$T/counter.txt pid n1 sw
	start_prog "$LOG" counter "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 10
	dump_kill "$pid" "$IMG"
	n1=$(count_lines "$cnt")
	run "$CRYO" pack "$IMG" -o "$PACKED"
	[ "$status" -eq 0 ] || fail "cryo pack: $output"
	sw=$(swapfile_of "$IMG" "$pid")
	[ -f "$sw" ] || fail "no swapfile $sw after the dump"
	rm -f "$sw" "$IMG"

	run "$CRYO" show --verify "$PACKED"
	[ "$status" -eq 0 ] || fail "show --verify of the packed image: $output"
	[[ "$output" == *"packed   "*"pages"* ]] || fail "show does not say the pages are packed: $output"
	[[ "$output" =~ ([0-9]+)\ pages\ read\ back,\ 0\ fail ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] ||
		fail "show --verify read no pages or found bad ones: $output"
	run "$CRYO" show --json "$PACKED"
	[ "$status" -eq 0 ] || fail "show --json: $output"
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
p = d["packed_pages"]
assert p and p["pages"] > 0 and p["runs"] > 0, p
assert d["image"]["pages_packed"] and not d["image"]["pages_in_swapfile"], d["image"]
assert d["swapfile"]["consistent"], d["swapfile"]' || fail "show --json packed_pages: $output"
	run "$CRYO" core "$PACKED" -o "$T/core"
	[ "$status" -eq 0 ] || fail "cryo core of the packed image: $output"
	[ -s "$T/core" ] || fail "cryo core wrote no core"

	restore_bg "$PACKED" "$LOG" "$pid"
	wait_lines "$cnt" $((n1 + 25))
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
	check_consecutive "$cnt"
}

# stream_move PID TIMEOUT: cryo -p PID -f - --kill | cryo -r -f -, and wait
# until PID runs again under the restoring cryo ($CRYO_PID)
stream_move() {
	local pid=$1
	ORIG_EXE[$pid]=$(readlink "/proc/$pid/exe")
	ORIG_SIGCGT[$pid]=$(proc_status_field "$pid" SigCgt)
	# messages go to stderr (the log), never into the image on stdout
	"$CRYO" -p "$pid" -f - --kill 2>>"$T/dump.err" |
		(exec >>"$LOG" 2>&1; _only_stdio; exec "$CRYO" -r -f -) &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	# the dump ends the stream only once the killed original is gone, so
	# the restore finds its pid free (this shell reaps it meanwhile)
	RESTORE_TIMEOUT=$2 wait_restored "$pid" "$CRYO_PID" "$LOG" || fail "dump: $(cat "$T/dump.err")"
}

@test "stream: cryo -p PID -f - --kill | cryo -r -f - moves a counter through a plain pipe" {
	local cnt=$T/counter.txt pid n1
	start_prog "$LOG" counter "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 10
	stream_move "$pid" 20
	n1=$(count_lines "$cnt")
	wait_lines "$cnt" $((n1 + 25))
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
	check_consecutive "$cnt"
	! compgen -G "$T/cryo-stream.*" >/dev/null || fail "the stream dump left its scratch directory: $(ls "$T")"
}

@test "stream and pack beyond 1 GiB: 1.1 GiB of memory moves through a pipe and a packed image" {
	local pid
	READY_TIMEOUT=60 start_prog "$LOG" heap 1120
	pid=$PROG_PID
	stream_move "$pid" 60
	check_pass "$pid" "$LOG"
	# the restored one, dumped, packed (more than 1 GiB of pages), and
	# restored from the packed image alone
	cryo_dump "$pid" "$IMG" --kill
	wait_gone "$pid" 10
	run "$CRYO" pack "$IMG" -o "$T/packed.cryo"
	[ "$status" -eq 0 ] || fail "pack: $output"
	[ "$(stat -c %s "$T/packed.cryo")" -gt $((1 << 30)) ] || fail "packed image is not above 1 GiB"
	rm -f "$T"/cryo-*.swap "$IMG"
	RESTORE_TIMEOUT=60 restore_bg "$T/packed.cryo" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "migration: a counter moves from netns A to netns B over TCP (socat) and runs in B" {
	local cnt=$T/counter.txt pid n1 na nb port=7797 i
	command -v ip >/dev/null || skip "no ip tool (iproute2): scripts/setup-debian.sh installs it"
	command -v socat >/dev/null || skip "no socat: scripts/setup-debian.sh installs it"
	if ! ip netns add "$NSA" 2>"$T/netns.err"; then
		skip "cannot create a network namespace here: $(cat "$T/netns.err")"
	fi
	ip netns add "$NSB"
	ip link add "va$$" type veth peer name "vb$$"
	ip link set "va$$" netns "$NSA"
	ip link set "vb$$" netns "$NSB"
	ip -n "$NSA" addr add 10.77.0.1/24 dev "va$$"
	ip -n "$NSB" addr add 10.77.0.2/24 dev "vb$$"
	ip -n "$NSA" link set "va$$" up
	ip -n "$NSB" link set "vb$$" up
	ip -n "$NSA" link set lo up
	ip -n "$NSB" link set lo up
	na=$(stat -L -c %i "/run/netns/$NSA")
	nb=$(stat -L -c %i "/run/netns/$NSB")

	# the counter runs in A (only its network namespace differs)
	printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %s "$@"\n' "$NSA" "$PROGS/counter" >"$T/counter-in-a"
	chmod +x "$T/counter-in-a"
	PROGS=$T start_prog "$LOG" counter-in-a "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 10
	[ "$(stat -L -c %i "/proc/$pid/ns/net")" = "$na" ] || fail "counter pid $pid is not in netns $NSA"
	check_pass "$pid" "$LOG"
	ORIG_EXE[$pid]=$(readlink "/proc/$pid/exe")
	ORIG_SIGCGT[$pid]=$(proc_status_field "$pid" SigCgt)

	# B: listen, restore what arrives
	(exec >>"$LOG" 2>&1; _only_stdio
	 exec ip netns exec "$NSB" "$CRYO" -r -f -) \
		< <(exec ip netns exec "$NSB" socat -u "TCP-LISTEN:$port,bind=10.77.0.2,reuseaddr" STDOUT 2>>"$T/socat-b.err") &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	for ((i = 0; i < 100; i++)); do
		ip netns exec "$NSB" ss -ltn 2>/dev/null | grep -q "10.77.0.2:$port" && break
		sleep 0.05
	done
	# A: dump to the wire
	"$CRYO" -p "$pid" -f - --kill 2>>"$T/dump.err" |
		ip netns exec "$NSA" socat -u STDIN "TCP:10.77.0.2:$port,retry=50,interval=0.1" 2>>"$T/socat-a.err" &
	RESTORE_TIMEOUT=20 wait_restored "$pid" "$CRYO_PID" "$LOG" || fail "dump: $(cat "$T/dump.err"); socat: $(cat "$T/socat-a.err" "$T/socat-b.err")"
	[ "$(stat -L -c %i "/proc/$pid/ns/net")" = "$nb" ] ||
		fail "restored pid $pid is not in netns $NSB (net ns inode $(stat -L -c %i "/proc/$pid/ns/net"), B is $nb)"
	n1=$(count_lines "$cnt")
	wait_lines "$cnt" $((n1 + 25))
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
	check_consecutive "$cnt"
}

@test "stream: a reader that goes away fails the dump and, even with --kill, the process keeps running" {
	local cnt=$T/counter.txt pid
	start_prog "$LOG" counter "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 5
	# the reader exits at once: the image (over 64 KiB, more than the pipe
	# holds) cannot be written
	run bash -c "'$CRYO' -p $pid -f - --kill | true; exit \${PIPESTATUS[0]}"
	[ "$status" -eq 1 ] || fail "stream dump into a closed pipe exited $status: $output"
	[[ "$output" == *"writing the image to stdout"*"left running"* ]] || fail "unclear message: $output"
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
	! compgen -G "$T/cryo-stream.*" >/dev/null || fail "the failed stream dump left its scratch directory"
}

@test "stream: a truncated stream fails naming where it ends, and nothing runs" {
	local cnt=$T/counter.txt pid size
	start_prog "$LOG" counter "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 5
	"$CRYO" -p "$pid" -f - >"$T/stream.img" 2>"$T/dump.err" || fail "stream dump: $(cat "$T/dump.err")"
	# stdout carries the image and nothing else
	[ "$(head -c 8 "$T/stream.img")" = "LX_CKPT=" ] || fail "the stream does not start with an image header"
	run "$CRYO" show "$T/stream.img"
	[ "$status" -eq 0 ] || fail "cryo show of the streamed image: $output"
	assert_running_not_stopped "$pid"
	kill -KILL "$pid"
	wait_gone "$pid" 5
	size=$(stat -c %s "$T/stream.img")
	run bash -c "head -c $((size / 2)) '$T/stream.img' | timeout $CRYO_TIMEOUT '$CRYO' -r -f -"
	[ "$status" -eq 1 ] || fail "restore of a truncated stream exited $status: $output"
	[[ "$output" == *"truncated stream"*"ends at byte $((size / 2)) of the $size"*"offset"* ]] ||
		fail "unclear message for a truncated stream: $output"
	[ ! -e "/proc/$pid" ] || fail "pid $pid exists after a failed restore: $(describe_pid "$pid")"
	run bash -c "head -c 100 '$T/stream.img' | '$CRYO' -r -f -"
	[ "$status" -eq 1 ] && [[ "$output" == *"inside the 256-byte header"* ]] ||
		fail "stream cut inside the header: status $status: $output"
	run bash -c "'$CRYO' -r -f - </dev/null"
	[ "$status" -eq 1 ] && [[ "$output" == *"empty stream"* ]] || fail "empty stream: status $status: $output"
}

@test "pack: a corrupted packed page is named by its address, and nothing runs" {
	local cnt=$T/counter.txt pid off
	start_prog "$LOG" counter "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 5
	dump_kill "$pid" "$IMG"
	run "$CRYO" pack "$IMG" -o "$PACKED"
	[ "$status" -eq 0 ] || fail "cryo pack: $output"
	rm -f "$(swapfile_of "$IMG" "$pid")"
	off=$(packed_data_offset "$PACKED") || fail "no packed pages header in $PACKED"
	flip_byte "$PACKED" $((off + 2 * 4096 + 123))
	run "$CRYO" show --verify "$PACKED"
	[ "$status" -eq 1 ] || fail "show --verify of a corrupt packed page exited $status: $output"
	[[ "$output" =~ packed\ page\ 2\ \(page\ at\ 0x[0-9a-f]+\ of\ pid\ $pid,\ slot\ [0-9]+\)\ fails\ its\ checksum ]] ||
		fail "show --verify does not name the bad page: $output"
	[[ "$output" == *"1 fail their checksum"* ]] || fail "show --verify count: $output"
	run timeout "$CRYO_TIMEOUT" "$CRYO" -r -f "$PACKED"
	[ "$status" -eq 1 ] || fail "restore of a corrupt packed image exited $status: $output"
	[[ "$output" =~ packed\ page\ 2\ \(page\ at\ 0x[0-9a-f]+\ of\ pid\ $pid ]] ||
		fail "restore does not name the bad page: $output"
	[ ! -e "/proc/$pid" ] || fail "pid $pid exists after a failed restore: $(describe_pid "$pid")"
}

@test "pack: a damaged page in the swapfile is named by its address, and nothing is written" {
	local cnt=$T/counter.txt pid sw
	start_prog "$LOG" counter "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 5
	dump_kill "$pid" "$IMG"
	sw=$(swapfile_of "$IMG" "$pid")
	flip_byte "$sw" $((8192 + 4 * 4096 + 77))	# slot 4 (slots start at 8 KiB)
	run "$CRYO" pack "$IMG" -o "$PACKED"
	[ "$status" -eq 1 ] || fail "pack of a damaged swapfile exited $status: $output"
	[[ "$output" =~ page\ at\ 0x[0-9a-f]+\ \(slot\ 4\)\ of\ pid\ $pid\ fails\ its\ checksum ]] ||
		fail "pack does not name the bad page: $output"
	[ ! -e "$PACKED" ] || fail "pack wrote $PACKED despite a bad page"
	! compgen -G "$T/.packed.cryo.tmp*" >/dev/null || fail "pack left a temporary file: $(ls -a "$T")"
}

@test "./PACKED runs through binfmt_misc with no swapfile" {
	local cnt=$T/counter.txt pid n1 runner
	[ -d /proc/sys/fs/binfmt_misc ] && [ -e /proc/sys/fs/binfmt_misc/register ] ||
		skip "binfmt_misc is not mounted at /proc/sys/fs/binfmt_misc"
	start_prog "$LOG" counter "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 10
	dump_kill "$pid" "$IMG"
	n1=$(count_lines "$cnt")
	run "$CRYO" pack "$IMG" -o "$PACKED"
	[ "$status" -eq 0 ] || fail "cryo pack: $output"
	rm -f "$(swapfile_of "$IMG" "$pid")" "$IMG"
	chmod +x "$PACKED"
	run "$CRYO" register
	[ "$status" -eq 0 ] || fail "cryo register: $output"
	REGISTERED=1
	"$PACKED" >>"$LOG" 2>&1 &
	runner=$!
	CRYO_TEST_PIDS+=("$runner")
	wait_lines "$cnt" $((n1 + 25))
	check_consecutive "$cnt"
	[ "$(readlink /proc/$runner/exe)" = "$(readlink -f "$PROGS/counter")" ] ||
		fail "pid $runner runs $(readlink /proc/$runner/exe), not the counter"
	check_pass "$runner" "$LOG"
	kill "$runner"
	wait "$runner" || true
}
