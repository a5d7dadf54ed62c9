#!/usr/bin/env bats
# Executable checkpoints on the host kernel (no modules): `cryo register`
# installs a binfmt_misc entry, after which `chmod +x IMAGE && ./IMAGE`
# restores the process in the process the shell started (its pid, its
# parent). The binfmt_cr module path is tested under QEMU (qemu.bats).

load helpers

: "${BATS_TEST_TIMEOUT:=90}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	LOG=$T/prog.log
	MISC=/proc/sys/fs/binfmt_misc/cryo
}

teardown() {
	[ -e "$MISC" ] && echo -1 >"$MISC" 2>/dev/null
	true
}

@test "cryo register + ./IMAGE restores a counter in the shell's process; unregister undoes it" {
	local cnt=$T/counter.txt pid n1 runner
	start_prog "$LOG" counter "$cnt"
	pid=$PROG_PID
	wait_lines "$cnt" 10
	dump_kill "$pid" "$IMG"
	n1=$(count_lines "$cnt")
	chmod +x "$IMG"

	run "$CRYO" register
	[ "$status" -eq 0 ] || fail "cryo register: $output"
	grep -qx enabled "$MISC" || fail "no enabled binfmt_misc entry: $(cat "$MISC")"

	# the restored program must be the very process the shell started
	"$IMG" >>"$LOG" 2>&1 &
	runner=$!
	CRYO_TEST_PIDS+=("$runner")
	wait_lines "$cnt" $((n1 + 25))
	check_consecutive "$cnt"
	[ "$(readlink /proc/$runner/exe)" = "$(readlink -f "$PROGS/counter")" ] ||
		fail "pid $runner runs $(readlink /proc/$runner/exe), not the counter"
	[ "$(proc_status_field "$runner" PPid)" = "$$" ] ||
		fail "pid $runner's parent is $(proc_status_field "$runner" PPid), not the shell $$"
	check_pass "$runner" "$LOG"
	kill "$runner"
	wait "$runner" || true

	run "$CRYO" unregister
	[ "$status" -eq 0 ] || fail "cryo unregister: $output"
	[ ! -e "$MISC" ] || fail "$MISC still exists after unregister"
	# without any handler the shell runs the image's prelude line, which
	# finds no cryo in this PATH and says what is needed
	run env PATH=/nonexistent /bin/sh -c "'$IMG'"
	[ "$status" -eq 126 ] || fail "prelude exit $status: $output"
	[[ "$output" == *"needs cryo"* ]] || fail "prelude said: $output"
}

@test "./IMAGE of a process whose binary changed is refused and nothing runs" {
	local pid runner
	cp "$PROGS/counter" "$T/counter-copy"
	PROGS=$T start_prog "$LOG" counter-copy "$T/c.txt"
	pid=$PROG_PID
	dump_kill "$pid" "$IMG"
	chmod +x "$IMG"
	run "$CRYO" register
	[ "$status" -eq 0 ] || fail "cryo register: $output"
	# same path, different file: a silent restore would run foreign code
	cp "$PROGS/sleeper" "$T/counter-copy.new" && mv "$T/counter-copy.new" "$T/counter-copy"
	run "$IMG"
	[ "$status" -ne 0 ] || fail "restore of a changed binary succeeded"
	[[ "$output" == *"counter-copy"* ]] || fail "message does not name the binary: $output"
}
