#!/usr/bin/env bats
# Terminals (issues #5 and #6): pty pairs held by the tree with their
# settings and controlling-terminal relations, jobs started from a shell
# (--shell-job) driven through a real pty (tests/progs/ptyrun), and the
# refusals of what cannot be restored.

load helpers

: "${BATS_TEST_TIMEOUT:=90}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	LOG=$T/prog.log
}

# pids of the children and grandchildren of PID
tree_pids() {
	local p
	for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$p"
		tree_pids "$p"
	done
}

@test "pty pair across a tree: termios, window size, lock, packet mode, controlling terminal and foreground group survive" {
	local pid kids k
	start_prog "$LOG" ptypair
	pid=$PROG_PID
	check_pass "$pid" "$LOG"
	kids=$(tree_pids "$pid")
	[ "$(wc -w <<<"$kids")" -eq 2 ] || fail "want 2 descendants of $pid, have: $kids"
	proc_snapshot "$pid" "$T/before"
	cryo_dump "$pid" "$T/live.cryo"
	assert_running_not_stopped "$pid"
	assert_snapshot_unchanged "$pid" "$T/before"
	check_pass "$pid" "$LOG"
	run "$CRYO" show "$T/live.cryo"
	grep -qE 'pty /dev/pts/[0-9]+ .*packet' <<<"$output" || fail "cryo show: $output"
	dump_kill "$pid" "$IMG"
	for k in $kids; do wait_gone "$k" 5; done
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "bytes queued in a pty are refused by name; the tree keeps running" {
	local pid
	start_prog "$LOG" ptypair queued
	pid=$PROG_PID
	proc_snapshot "$pid" "$T/before"
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "cryo exited $status: $output"
	grep -qE "^cryo: pid [0-9]+ fd [0-9]+: pty /dev/pts/[0-9]+: 6 byte\(s\) of input not yet read" <<<"$output" ||
		fail "message: $output"
	assert_running_not_stopped "$pid"
	assert_snapshot_unchanged "$pid" "$T/before"
	check_pass "$pid" "$LOG"
}

@test "a pty slave whose master is outside the tree is refused beyond stdio" {
	local pid
	start_prog "$LOG" ptypair orphan
	pid=$PROG_PID
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "cryo exited $status: $output"
	grep -qE "^cryo: pid $pid fd [0-9]+: /dev/pts/[0-9]+, a pty whose master is outside the tree, is supported only as stdio" <<<"$output" ||
		fail "message: $output"
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
}

@test "a console and a serial line are refused by name" {
	local pid dev what
	for dev in console serial; do
		if [ "$dev" = console ]; then what='the console /dev/console'; else what='the serial line /dev/ttyS0'; fi
		[ -e "/dev/$([ $dev = console ] && echo console || echo ttyS0)" ] || continue
		LOG=$T/$dev.log
		start_prog "$LOG" ptypair "$dev" || {
			grep -q '^SKIP' "$LOG" && continue
			return 1
		}
		pid=$PROG_PID
		run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$IMG"
		[ "$status" -eq 1 ] || fail "cryo exited $status: $output"
		grep -qE "^cryo: pid $pid fd 3: a terminal, $what \(/dev/[a-zS0]+\), is not supported" <<<"$output" ||
			fail "message: $output"
		check_pass "$pid" "$LOG"
		kill "$pid"
	done
}

# start_on_pty FIFO LOG CMD...: run CMD under ptyrun (a new terminal whose
# input comes from FIFO), output appended to LOG; sets PTY_PID
start_on_pty() {
	local fifo=$1 log=$2 w
	shift 2
	mkfifo "$fifo"
	exec {w}<>"$fifo"
	(
		exec <"$fifo" >>"$log" 2>&1
		_only_stdio
		exec "$PROGS/ptyrun" "$@"
	) &
	PTY_PID=$!
	exec {w}>&-
	CRYO_TEST_PIDS+=("$PTY_PID")
}

# shell_job JOB_ARGS...: a ttyjob started by a shell on a terminal is
# refused without --shell-job, dumped with it, and restored under cryo on
# a new terminal, where it passes its checks and reads a line.
shell_job() {
	local pid i st
	start_on_pty "$T/in1" "$LOG" sh -c "$PROGS/ttyjob $*; echo shell-done"
	wait_ready "$PTY_PID" "$LOG" || return 1
	pid=$(awk '$1 == "PID" { print $2 }' "$LOG")
	CRYO_TEST_PIDS+=("$pid")
	check_pass "$pid" "$LOG" || return 1
	echo one >"$T/in1"
	wait_log "$LOG" '^GOT one$' || return 1

	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "cryo without --shell-job exited $status: $output" || return 1
	grep -qE "^cryo: pid $pid: its session [0-9]+ and controlling terminal /dev/pts/[0-9]+ belong to a process outside the tree .*use --shell-job" <<<"$output" ||
		fail "message: $output" || return 1
	assert_running_not_stopped "$pid" || return 1
	check_pass "$pid" "$LOG" || return 1

	cryo_dump "$pid" "$IMG" --shell-job --kill || return 1
	wait_gone "$pid" 5 || return 1
	wait_log "$LOG" '^shell-done$' || return 1
	run "$CRYO" show "$IMG"
	grep -q 'shell-job' <<<"$output" || fail "cryo show does not say shell-job: $output" || return 1

	# restore on a new terminal, cryo its session leader
	start_on_pty "$T/in2" "$LOG" "$CRYO" -r -f "$IMG"
	for ((i = 0; i < 200; i++)); do
		if alive "$pid" && [ "$(proc_status_field "$pid" TracerPid)" = 0 ] &&
			[ "$(readlink "/proc/$(proc_status_field "$pid" PPid)/exe")" = "$(readlink -f "$CRYO")" ]; then
			break
		fi
		sleep 0.05
	done
	alive "$pid" || fail "pid $pid not restored: $(cat "$LOG")" || return 1
	check_pass "$pid" "$LOG" || return 1
	echo two >"$T/in2"
	wait_log "$LOG" '^GOT two$' || return 1
	kill -TERM "$pid"
	st=0
	wait "$PTY_PID" || st=$?
	[ "$st" -eq 0 ] || fail "cryo -r under ptyrun exited $st: $(cat "$LOG")"
}

@test "--shell-job: a job of a shell's terminal is refused without it; restored, it owns cryo's terminal, foreground, input and output (and /dev/tty)" {
	shell_job fg devtty
}

@test "--shell-job: a job in the shell's own process group joins cryo's group and reads the terminal" {
	shell_job
}
