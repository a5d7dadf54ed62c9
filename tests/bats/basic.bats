#!/usr/bin/env bats
# Acceptance tests: dump and restore of single-process scenarios
# (tests/progs). Needs `make cryo progs`.

load helpers

# backstop against hangs; each test is meant to take well under 10 s
: "${BATS_TEST_TIMEOUT:=90}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	LOG=$T/prog.log
}

@test "counter: dump --kill + restore keeps the pid and counts on without gap or repeat" {
	local cnt=$T/counter.txt pid n1 children
	start_prog "$LOG" counter "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 10
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	n1=$(count_lines "$cnt")
	check_consecutive "$cnt"
	restore_bg "$IMG" "$LOG" "$pid"
	children=$(cat /proc/"$CRYO_PID"/task/*/children 2>/dev/null | tr -s ' \n' ' ')
	[ "${children% }" = "$pid" ] || fail "cryo $CRYO_PID children '$children', want exactly the original pid $pid"
	wait_lines "$cnt" $((n1 + 25))
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
	check_consecutive "$cnt"
	[ "$(count_lines "$cnt")" -ge $((n1 + 25)) ] || fail "counter did not grow after restore"
}

@test "heap: 256 MiB of patterned malloc memory intact after restore" {
	local pid
	READY_TIMEOUT=20 start_prog "$LOG" heap 256
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	[ -f "$T/cryo-$pid.swap" ] || fail "no swapfile $T/cryo-$pid.swap beside the image: $(ls -l "$T")"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "guards: read-only content and PROT_NONE guards keep perms and bounds" {
	local pid
	start_prog "$LOG" guards
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "vecregs: ymm/xmm registers and MXCSR live across the syscall the dump interrupted survive restore" {
	local pid
	start_prog "$LOG" vecregs
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	restore_bg "$IMG" "$LOG" "$pid"
	sleep 0.1	# a few rounds after the restore
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "privmap: MAP_PRIVATE file mapping keeps modified pages, file unchanged" {
	local pid sum0 sum1
	start_prog "$LOG" privmap "$T/priv.dat"
	pid=$PROG_PID
	sum0=$(sha256sum <"$T/priv.dat")
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	sum1=$(sha256sum <"$T/priv.dat")
	[ "$sum0" = "$sum1" ] || fail "priv.dat changed on disk: $sum0 -> $sum1"
	grep -q " rw-p 00000000 .* $T/priv.dat\$" "/proc/$pid/maps" ||
		fail "no rw-p mapping of $T/priv.dat in restored maps: $(cat "/proc/$pid/maps")"
	stop_restored "$pid"
}

@test "files: fd numbers, offsets, O_APPEND and access flags survive restore" {
	local pid sum0 size
	start_prog "$LOG" files "$T/append.dat" "$T/ro.dat"
	pid=$PROG_PID
	sum0=$(sha256sum <"$T/ro.dat")
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	restore_bg "$IMG" "$LOG" "$pid"
	[ "$(readlink "/proc/$pid/fd/3")" = "$T/append.dat" ] ||
		fail "restored fd 3 -> $(readlink "/proc/$pid/fd/3"), want $T/append.dat"
	[ "$(readlink "/proc/$pid/fd/4")" = "$T/ro.dat" ] ||
		fail "restored fd 4 -> $(readlink "/proc/$pid/fd/4"), want $T/ro.dat"
	grep -q '^pos:[[:space:]]*1234$' "/proc/$pid/fdinfo/4" ||
		fail "restored fd 4 fdinfo: $(cat "/proc/$pid/fdinfo/4")"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
	# 100 bytes + one 16-byte record per check, each check appended once
	size=$(stat -c %s "$T/append.dat")
	[ "$size" -eq 132 ] || fail "append.dat is $size bytes, want 132: $(od -c "$T/append.dat" | tail -n 5)"
	[ "$(sha256sum <"$T/ro.dat")" = "$sum0" ] || fail "ro.dat changed"
}

@test "procstate: cwd, umask and RLIMIT_NOFILE survive restore" {
	local pid dir="$T/work dir"
	mkdir "$dir"
	start_prog "$LOG" procstate "$dir"
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	[ "$(readlink "/proc/$pid/cwd")" = "$dir" ] || fail "restored cwd $(readlink "/proc/$pid/cwd"), want $dir"
	[ "$(proc_status_field "$pid" Umask)" = 0027 ] || fail "restored Umask $(proc_status_field "$pid" Umask)"
	grep -qE '^Max open files +200 ' "/proc/$pid/limits" ||
		fail "restored limits: $(grep 'open files' "/proc/$pid/limits")"
	stop_restored "$pid"
}

@test "piperead: read() blocked on a pipe from the test continues after restore" {
	local pid fifo=$T/in
	mkfifo "$fifo"
	exec 5<>"$fifo"	# the test keeps the pipe open (and writable) throughout
	PROG_STDIN=$fifo start_prog "$LOG" piperead
	pid=$PROG_PID
	echo "before dump" >&5
	wait_log "$LOG" '^GOT before dump$'
	wait_syscall "$pid" 0	# blocked in read(2)
	dump_kill "$pid" "$IMG"
	RESTORE_STDIN=$fifo restore_bg "$IMG" "$LOG" "$pid"
	echo "after restore" >&5
	wait_log "$LOG" '^GOT after restore$' 5
	echo "second line" >&5
	wait_log "$LOG" '^GOT second line$' 5
	if grep -E '^(FAIL|EOF)' "$LOG"; then
		fail "piperead reported a failure or EOF"
	fi
	[ "$(grep -c '^GOT ' "$LOG")" -eq 3 ] || fail "expected exactly 3 GOT lines"
	assert_single_ready "$LOG"
	stop_restored "$pid"
	exec 5>&-
}

@test "sleeper: nanosleep blocked at dump continues after restore without EINTR" {
	local pid got
	start_prog "$LOG" sleeper
	pid=$PROG_PID
	wait_syscall "$pid" '35|230'	# nanosleep or clock_nanosleep
	sleep 0.5
	dump_kill "$pid" "$IMG"
	! grep -q '^SLEPT' "$LOG" || fail "SLEPT printed before the dump (dump was too late)"
	restore_bg "$IMG" "$LOG" "$pid"
	wait_log "$LOG" '^SLEPT 2$' 6
	if grep '^FAIL' "$LOG"; then
		fail "sleeper reported a failure"
	fi
	got=$(grep '^SLEPT' "$LOG" | head -n 2 | tr '\n' ' ')
	[ "$got" = "SLEPT 1 SLEPT 2 " ] || fail "SLEPT lines: '$got'"
	assert_single_ready "$LOG"
	stop_restored "$pid"
}

@test "cmdline: /proc/PID/cmdline and environ equal before and after restore" {
	local pid
	CRYO_TEST_ENV='value with  spaces = "quoted"' start_prog "$LOG" cmdline \
		"first arg" "" "  lead and trail  " "--opt=a b" 'ünï $HOME'
	pid=$PROG_PID
	cp "/proc/$pid/cmdline" "$T/cmdline.before"
	cp "/proc/$pid/environ" "$T/environ.before"
	tr '\0' '\n' <"$T/environ.before" | grep -qx 'CRYO_TEST_ENV=value with  spaces = "quoted"' ||
		fail "test setup: CRYO_TEST_ENV not in the environment"
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	restore_bg "$IMG" "$LOG" "$pid"
	cp "/proc/$pid/cmdline" "$T/cmdline.after"
	cp "/proc/$pid/environ" "$T/environ.after"
	cmp "$T/cmdline.before" "$T/cmdline.after" ||
		fail "cmdline differs: before $(od -c "$T/cmdline.before") after $(od -c "$T/cmdline.after")"
	cmp "$T/environ.before" "$T/environ.after" ||
		fail "environ differs: $(diff <(tr '\0' '\n' <"$T/environ.before") <(tr '\0' '\n' <"$T/environ.after"))"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "restore the same image twice" {
	local pid
	start_prog "$LOG" heap 32
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$IMG"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid" TERM 0
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid" KILL 137
}

# all_threads_stopped PID: every thread of PID in a group stop (state T)
all_threads_stopped() {
	local f s i
	for ((i = 0; i < 40; i++)); do
		s=
		for f in /proc/"$1"/task/*/stat; do
			s+=$(sed 's/.*) \(.\).*/\1/' "$f")
		done
		[[ -n "$s" && "$s" =~ ^T+$ ]] && return 0
		sleep 0.05
	done
	fail "pid $1: threads in states '$s', want all T (stopped)"
}

@test "--leave-stopped: a dump leaves every thread stopped until SIGCONT; a restore starts stopped" {
	local pid rpid
	start_prog "$LOG" manythreads 3
	pid=$PROG_PID
	cryo_dump "$pid" "$IMG" --leave-stopped
	all_threads_stopped "$pid"
	[ "$(proc_status_field "$pid" TracerPid)" = 0 ] || fail "pid $pid is still traced"
	kill -CONT "$pid"
	check_pass "$pid" "$LOG"
	run "$CRYO" -p "$pid" -f "$IMG" --kill --leave-stopped
	[ "$status" -eq 2 ] && [[ "$output" == *"--kill and --leave-stopped exclude each other"* ]] ||
		fail "--kill with --leave-stopped: status $status: $output"
	dump_kill "$pid" "$IMG"
	# -d prints the pid on stdout, which the restored process shares: the log
	(exec </dev/null >>"$LOG" 2>&1; _only_stdio; exec "$CRYO" -r -f "$IMG" -d --leave-stopped) ||
		fail "restore failed: $(tail -3 "$LOG")"
	rpid=$pid
	grep -qx "$pid" "$LOG" || fail "cryo -r -d did not print pid $pid: $(tail -3 "$LOG")"
	CRYO_TEST_PIDS+=("$rpid")
	all_threads_stopped "$rpid"
	kill -CONT "$rpid"
	check_pass "$rpid" "$LOG"
	kill -TERM "$rpid"
	wait_gone "$rpid" 5
}

@test "dump without --kill leaves the process running untouched" {
	local cnt=$T/counter.txt pid n1
	start_prog "$LOG" counter "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 10
	proc_snapshot "$pid" "$T/before"
	cryo_dump "$pid" "$IMG"
	assert_running_not_stopped "$pid"
	assert_snapshot_unchanged "$pid" "$T/before"
	n1=$(count_lines "$cnt")
	wait_lines "$cnt" $((n1 + 25))
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
	kill -TERM "$pid"
	wait_gone "$pid" 5
	check_consecutive "$cnt"
}

# refused_dump PID OBJECT_ERE: cryo -p PID must exit 1 with a "cryo: ..."
# line naming the pid and the object; the process must keep running.
refused_dump() {
	local pid=$1 obj=$2 line
	proc_snapshot "$pid" "$T/before"
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "cryo -p $pid exited $status, want 1: $output"
	line=$(grep -E '^cryo: ' <<<"$output" || true)
	[ "$(grep -c . <<<"$line")" -eq 1 ] || fail "want one 'cryo: ...' line, got: $output"
	[[ $line =~ (^|[^0-9])$pid([^0-9]|$) ]] || fail "message does not name pid $pid: $line"
	grep -qiE -- "$obj" <<<"$line" || fail "message does not name /$obj/: $line"
	assert_running_not_stopped "$pid"
	sleep 0.2
	assert_running_not_stopped "$pid"
	assert_snapshot_unchanged "$pid" "$T/before"
	check_pass "$pid" "$LOG"
}

@test "refuses a process with a seccomp filter; it keeps running" {
	start_prog "$LOG" seccompd
	refused_dump "$PROG_PID" 'seccomp'
}

@test "refuses a process holding an established TCP connection; it keeps running" {
	start_prog "$LOG" tcpest
	refused_dump "$PROG_PID" 'fd [0-9]+: an established TCP connection .* is not supported'
}

@test "refuses io_uring, perf_event and netlink fds by pid, fd and kind; the process keeps running" {
	local kind want
	for kind in iouring perf netlink; do
		case $kind in
		iouring) want='fd 3: .*io_uring' ;;
		perf) want='fd 3: .*perf_event' ;;
		netlink) want='fd 3: .*netlink' ;;
		esac
		start_prog "$T/$kind.log" oddfds "$kind"
		LOG=$T/$kind.log refused_dump "$PROG_PID" "$want"
		kill "$PROG_PID"
	done
}

# refused_restore BAD_IMG PID: cryo -r must exit 1 naming a section, the
# header or truncation, and nothing may run with PID.
refused_restore() {
	local bad=$1 pid=$2 st=0 out
	timeout 5 "$CRYO" -r -f "$bad" </dev/null >"$T/refused.out" 2>&1 || st=$?
	out=$(cat "$T/refused.out")
	[ ! -e "/proc/$pid" ] || fail "a process with the image's pid $pid exists: $(describe_pid "$pid")"
	[ "$st" -eq 1 ] || fail "cryo -r -f $bad exited $st, want 1: $out"
	grep -qE '^cryo: ' <<<"$out" || fail "no 'cryo: ...' message: $out"
	grep -qiE 'section|header|truncat' <<<"$out" || fail "message names no section/header/truncation: $out"
}

@test "corrupted image (one byte flipped) is refused" {
	local pid size off
	start_prog "$LOG" heap 8
	pid=$PROG_PID
	dump_kill "$pid" "$IMG"
	cp "$IMG" "$T/bad.cryo"
	size=$(stat -c %s "$T/bad.cryo")
	off=$(((size / 2) & ~7))	# 8-aligned: never section padding
	flip_byte "$T/bad.cryo" "$off"
	! cmp -s "$IMG" "$T/bad.cryo" || fail "flip_byte changed nothing"
	refused_restore "$T/bad.cryo" "$pid"
	# control: the intact image still restores
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "truncated image is refused" {
	local pid size
	start_prog "$LOG" heap 8
	pid=$PROG_PID
	dump_kill "$pid" "$IMG"
	cp "$IMG" "$T/short.cryo"
	size=$(stat -c %s "$T/short.cryo")
	truncate -s $((size / 2)) "$T/short.cryo"
	refused_restore "$T/short.cryo" "$pid"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}
