#!/usr/bin/env bats
# Reliability and security (issue #9): hostile images (fuzz smoke test and
# regression inputs), cryo killed mid-operation, ENOSPC, file permissions,
# planted symlinks, privilege boundaries. Needs `make cryo progs`; the fuzz
# test needs clang (scripts/setup-debian.sh installs it).

load helpers

: "${BATS_TEST_TIMEOUT:=180}"
: "${FUZZ_SMOKE_SECONDS:=20}"	# per fuzz target (make fuzz-short: 30)

ROOT=$(readlink -f "$BATS_TEST_DIRNAME/../..")

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	IMG=$T/img.cryo
	LOG=$T/prog.log
	MNT=
	NOBODY_DIR=
	NOBODY_PIDS=()
}

teardown() {
	cryo_teardown
	local p
	for p in "${NOBODY_PIDS[@]}"; do	# programs run from $NOBODY_DIR
		[[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$NOBODY_DIR"/* ]] && kill -KILL "$p"
	done
	if [ -n "$MNT" ] && mountpoint -q "$MNT"; then
		umount -l "$MNT" || true
	fi
	if [ -n "$NOBODY_DIR" ]; then
		rm -rf "$NOBODY_DIR"
	fi
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root"
}

# cryo_bg LOG ARGS...: cryo ARGS in the background, only fds 0-2, output
# appended to LOG; sets CRYO_PID.
cryo_bg() {
	local log=$1
	shift
	(
		exec </dev/null >>"$log" 2>&1
		_only_stdio
		exec "$CRYO" "$@"
	) &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
}

# kill_cryo_after MS: SIGKILL the background cryo MS milliseconds after it
# started; KILLED_MID=1 if it was still running then, else 0.
kill_cryo_after() {
	local ms=$1
	sleep "$(printf '0.%03d' "$ms")"
	KILLED_MID=0
	if alive "$CRYO_PID"; then
		KILLED_MID=1
		kill -KILL "$CRYO_PID" 2>/dev/null || true
	fi
	wait "$CRYO_PID" 2>/dev/null || true
}

# wait_untraced PID: a dead tracer's tracees are detached by the kernel;
# give it a moment before judging.
wait_untraced() {
	local i
	for ((i = 0; i < 40; i++)); do
		if [ "$(proc_status_field "$1" TracerPid)" = 0 ]; then
			case $(proc_state "$1") in T | t) ;; *) return 0 ;; esac
		fi
		sleep 0.05
	done
}

# ---------------------------------------------------------------- fuzz

@test "fuzz smoke: validator and image reader survive libFuzzer (make fuzz-short), regressions replayed" {
	command -v "${FUZZ_CC:-clang}" >/dev/null || skip "clang is not installed (scripts/setup-debian.sh installs it)"
	run make -s -C "$ROOT" fuzz-build
	[ "$status" -eq 0 ] || fail "make fuzz-build failed: $output"
	run make -s -C "$ROOT" fuzz-short FUZZ_SHORT_SECONDS="$FUZZ_SMOKE_SECONDS"
	echo "$output"
	[ "$status" -eq 0 ] || fail "fuzzing found a crash: $output"
	grep -q '^fuzz: validate: .* no crash$' <<<"$output" || fail "validate target did not run: $output"
	grep -q '^fuzz: image: .* no crash$' <<<"$output" || fail "image target did not run: $output"
}

# ---------------------------------------------------------------- faults

@test "SIGKILL of cryo during a 256 MiB dump: target unharmed, earlier image intact and restorable" {
	local pid ms hits=0 tmp
	READY_TIMEOUT=30 start_prog "$LOG" heap 256
	pid=$PROG_PID
	cryo_dump "$pid" "$IMG"		# the good, earlier image
	cp "$IMG" "$T/good.cryo"	# same directory: same swapfile reference
	assert_running_not_stopped "$pid"
	proc_snapshot "$pid" "$T/before"
	for ms in 50 150 400; do
		cryo_bg "$T/cryo-$ms.log" -p "$pid" -f "$IMG"
		kill_cryo_after "$ms"
		((hits += KILLED_MID))
		wait_untraced "$pid"
		sleep 0.2
		assert_running_not_stopped "$pid" || fail "SIGKILL to cryo ${ms} ms into a dump"
		assert_snapshot_unchanged "$pid" "$T/before"
		# the image is the earlier one, or (cryo was killed after it
		# renamed the new one into place) a complete new one; never a
		# partial one
		if ! cmp -s "$IMG" "$T/good.cryo"; then
			run "$CRYO" show "$IMG"
			[ "$status" -eq 0 ] ||
				fail "cryo killed after ${ms} ms left a changed, unreadable $IMG: $output"
		fi
		check_pass "$pid" "$LOG"
	done
	[ "$hits" -ge 1 ] || fail "every dump finished before its kill: no kill hit a dump in progress"
	echo "# $hits of 3 kills hit a dump in progress" >&3
	# a killed writer cannot remove a temporary file: the image is
	# written unnamed (O_TMPFILE) and named only at commit, so none is left
	for tmp in "$T"/.img.cryo.tmp*; do
		[ -e "$tmp" ] || continue
		fail "left behind by a killed dump: ${tmp##*/} ($(stat -c %s "$tmp") bytes)"
	done
	# the earlier image and the swapfile it points into still restore
	kill -KILL "$pid"
	wait_gone "$pid" 5
	restore_bg "$T/good.cryo" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

# fault_sweep PROG [ARGS...]: (dump options in $SWEEP_ARGS) kill cryo (CRYO_FAULT_INJECT=N, a SIGKILL
# cryo sends itself) at the 1st, 2nd, ... point where the target carries
# injected state, until a dump gets past them all. After each kill the
# target must be untraced, running, with the same mappings (no batch page
# left), fds and signal state, and the earlier image unchanged; at the end
# it must pass its own check.
fault_sweep() {
	local pid n rc
	LOG=$T/$1$(tr -dc a-z <<<"${SWEEP_ARGS:-}").log
	start_prog "$LOG" "$@"
	pid=$PROG_PID
	cryo_dump "$pid" "$IMG"
	cp "$IMG" "$T/good.cryo"
	proc_snapshot "$pid" "$T/before"
	for ((n = 1; n < 300; n++)); do
		rc=0
		# shellcheck disable=SC2086
		(CRYO_FAULT_INJECT=$n "$CRYO" -p "$pid" -f "$IMG" $SWEEP_ARGS >"$T/fault.log" 2>&1) 2>/dev/null ||
			rc=$?
		[ "$rc" -eq 0 ] && break
		[ "$rc" -eq 137 ] || fail "$1: cryo with fault point $n exited $rc: $(cat "$T/fault.log")"
		wait_untraced "$pid"
		assert_running_not_stopped "$pid" ||
			fail "$1: target damaged by a SIGKILL of cryo at injection point $n"
		assert_snapshot_unchanged "$pid" "$T/before" || fail "$1: at injection point $n"
		cmp -s "$IMG" "$T/good.cryo" || fail "$1: a dump killed at point $n changed $IMG"
	done
	[ "$n" -gt 8 ] || fail "$1: only $((n - 1)) injection points: is recovery in use?"
	echo "# $1: killed at each of $((n - 1)) points, then dumped" >&3
	SWEPT_PID=$pid
}

@test "SIGKILL of cryo at each point where the target carries injected state leaves it unharmed" {
	local slept
	# signal dispositions, pending and blocked signals, an alternate stack
	fault_sweep sigstate
	check_pass "$SWEPT_PID" "$LOG"
	kill "$SWEPT_PID"
	# vector registers and MXCSR live across the interrupted syscall: the
	# way back restores the FPU state from the frame
	fault_sweep vecregs
	check_pass "$SWEPT_PID" "$LOG"
	kill "$SWEPT_PID"
	# --pre-dump arms dirty tracking with a userfaultfd made inside the
	# target: a kill at any point leaves no such fd (the way back closes
	# it; the fd list is part of the snapshot)
	SWEEP_ARGS=--pre-dump fault_sweep sigstate
	check_pass "$SWEPT_PID" "$LOG"
	kill "$SWEPT_PID"
	# threads (each is injected on its own, outside the leader's page)
	fault_sweep manythreads 3
	check_pass "$SWEPT_PID" "$LOG"
	kill "$SWEPT_PID"
	# a 2 s nanosleep that the freeze interrupted for the first time is
	# re-run from its start by the way back: not failed with EINTR, not
	# cut short (a sleep already resumed once, through restart_syscall,
	# gets EINTR instead: docs/reliability.md)
	LOG=$T/sleeper.log
	start_prog "$LOG" sleeper
	wait_log "$LOG" '^SLEPT 1$' 5
	(CRYO_FAULT_INJECT=4 "$CRYO" -p "$PROG_PID" -f "$IMG" >"$T/fault.log" 2>&1) 2>/dev/null ||
		slept=$?
	[ "$slept" = 137 ] || fail "sleeper: cryo with fault point 4 exited ${slept:-0}"
	wait_log "$LOG" '^SLEPT 2$' 10
	! grep -q '^FAIL' "$LOG" || fail "sleeper: $(grep '^FAIL' "$LOG")"
	kill "$PROG_PID"
}

@test "a dump without the way back (CRYO_UNSAFE_INJECT, as for code with no signal trampoline) still restores" {
	local pid
	start_prog "$LOG" sigstate
	pid=$PROG_PID
	CRYO_UNSAFE_INJECT=1 dump_kill "$pid" "$IMG"
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "SIGKILL of cryo while it runs an injected syscall in the target leaves the target unharmed" {
	# the same from outside: tests/progs/killinject kills cryo when the
	# target's pc has left its blocking call
	local pid i seen=0 home
	READY_TIMEOUT=30 start_prog "$LOG" heap 64
	pid=$PROG_PID
	cryo_dump "$pid" "$IMG"
	cp "$IMG" "$T/good.cryo"
	proc_snapshot "$pid" "$T/before"
	for i in 1 2 3; do
		home=$(awk '{print $NF}' "/proc/$pid/syscall")
		cryo_bg "$T/cryo-$i.log" -p "$pid" -f "$IMG"
		run "$PROGS/killinject" "$CRYO_PID" "$pid" 5000 9 "$home"
		wait "$CRYO_PID" 2>/dev/null || true
		[ "$status" -eq 0 ] || continue		# the dump ran no injection we saw
		((seen += 1))
		echo "# $output" >&3
		wait_untraced "$pid"
		sleep 0.2
		assert_running_not_stopped "$pid" ||
			fail "target damaged by a SIGKILL of cryo mid-injection ($output)"
		assert_snapshot_unchanged "$pid" "$T/before"
		check_pass "$pid" "$LOG"
	done
	[ "$seen" -ge 1 ] || fail "killinject never saw cryo inject into pid $pid"
	cmp -s "$IMG" "$T/good.cryo" || fail "a dump killed mid-injection changed $IMG"
}

@test "SIGTERM of cryo while it runs an injected syscall: cryo rolls back, target unharmed" {
	# unlike SIGKILL, SIGTERM (and SIGINT, SIGHUP) can be caught: cryo
	# should put the target back and exit 1 (or finish the dump)
	local pid i seen=0
	READY_TIMEOUT=30 start_prog "$LOG" heap 64
	pid=$PROG_PID
	cryo_dump "$pid" "$IMG"
	proc_snapshot "$pid" "$T/before"
	for i in 1 2 3; do
		home=$(awk '{print $NF}' "/proc/$pid/syscall")
		cryo_bg "$T/cryo-$i.log" -p "$pid" -f "$IMG"
		run "$PROGS/killinject" "$CRYO_PID" "$pid" 5000 15 "$home"
		wait "$CRYO_PID" 2>/dev/null || true
		[ "$status" -eq 0 ] || continue
		((seen += 1))
		echo "# $output" >&3
		wait_untraced "$pid"
		sleep 0.2
		assert_running_not_stopped "$pid" ||
			fail "target damaged by a SIGTERM of cryo mid-injection ($output)"
		assert_snapshot_unchanged "$pid" "$T/before"
		check_pass "$pid" "$LOG"
	done
	[ "$seen" -ge 1 ] || fail "killinject never saw cryo inject into pid $pid"
}

@test "SIGKILL of cryo during a restore leaves no restored or half-restored process" {
	local pid ms hits=0 done=0
	READY_TIMEOUT=30 start_prog "$LOG" heap 256
	pid=$PROG_PID
	dump_kill "$pid" "$IMG"
	# a restore of 256 MiB takes about 200-300 ms here
	for ms in 50 100 150; do
		cryo_bg "$LOG" -r -f "$IMG"
		kill_cryo_after "$ms"
		sleep 0.2
		if [ -e "/proc/$pid" ] && [ "$(proc_state "$pid")" != Z ]; then
			# only acceptable if the restore had completed: then the
			# process is whole, detached, running and passes its check
			wait_untraced "$pid"
			assert_running_not_stopped "$pid" ||
				fail "cryo -r killed after ${ms} ms left pid $pid half-restored"
			check_pass "$pid" "$LOG" ||
				fail "cryo -r killed after ${ms} ms left pid $pid damaged"
			((done += 1))
			kill -KILL "$pid"
		else
			((hits += KILLED_MID))
		fi
		wait_gone "$pid" 5 || fail "after cryo -r was killed at ${ms} ms"
	done
	[ "$hits" -ge 1 ] || fail "every restore finished before its kill"
	echo "# $hits of 3 kills hit a restore in progress and left nothing; $done completed first" >&3
	# nothing was damaged: the image still restores
	restore_bg "$IMG" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "ENOSPC during a dump: clear error naming the file; the earlier image in that directory still restores" {
	need_root
	local pid pid2 out
	MNT=$T/small
	mkdir "$MNT"
	mount -t tmpfs -o size=8m,mode=0700 tmpfs "$MNT" || skip "cannot mount a tmpfs"
	start_prog "$LOG" dirtier 4
	pid=$PROG_PID
	cryo_dump "$pid" "$MNT/img.cryo"
	cp "$MNT/img.cryo" "$T/img.before"

	# 1. a second process too large for what is left: its swapfile fills
	start_prog "$T/prog2.log" heap 16
	pid2=$PROG_PID
	proc_snapshot "$pid2" "$T/before2"
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid2" -f "$MNT/img2.cryo"
	echo "# $output" >&3
	[ "$status" -eq 1 ] || fail "dump into a full tmpfs exited $status, want 1: $output"
	grep -qE '^cryo: ' <<<"$output" || fail "no 'cryo: ...' message: $output"
	grep -qi 'no space left' <<<"$output" || fail "message does not say ENOSPC: $output"
	grep -qF "$MNT/" <<<"$output" || fail "message names no file in $MNT: $output"
	[ ! -e "$MNT/img2.cryo" ] || fail "a failed dump left $MNT/img2.cryo"
	# and gave back the space of the pages it had appended (no snapshot
	# holds them): only the two superblocks of the fresh swapfile remain
	[ "$(stat -c %s "$MNT/cryo-$pid2.swap")" -le 8192 ] ||
		fail "the failed dump left $(stat -c %s "$MNT/cryo-$pid2.swap") bytes in its swapfile"
	assert_running_not_stopped "$pid2"
	assert_snapshot_unchanged "$pid2" "$T/before2"
	check_pass "$pid2" "$T/prog2.log"
	kill -KILL "$pid2"

	# 2. the first process again, with new pages, into a full filesystem:
	# the append to its (shared) swapfile or the image write fails
	rm -f "$MNT"/cryo-"$pid2".swap "$MNT"/.img2.cryo.tmp*
	kill -USR2 "$pid"
	wait_log "$LOG" '^DIRTIED '
	dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null || true
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$MNT/img.cryo"
	echo "# $output" >&3
	[ "$status" -eq 1 ] || fail "dump into a full tmpfs exited $status, want 1: $output"
	grep -qi 'no space left' <<<"$output" || fail "message does not say ENOSPC: $output"
	grep -qF "$MNT/" <<<"$output" || fail "message names no file in $MNT: $output"
	cmp -s "$MNT/img.cryo" "$T/img.before" || fail "the failed dump changed $MNT/img.cryo"
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
	rm -f "$MNT/filler"

	# the earlier image restores (the memory of its time, before DIRTIED)
	kill -KILL "$pid"
	wait_gone "$pid" 5
	restore_bg "$MNT/img.cryo" "$LOG" "$pid"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

# ---------------------------------------------------------------- privilege

@test "images and swapfiles are created mode 0600, whatever the umask" {
	local pid
	start_prog "$LOG" counter "$T/cnt"
	pid=$PROG_PID
	(umask 000 && cryo_dump "$pid" "$IMG")
	[ "$(stat -c %a "$IMG")" = 600 ] || fail "image mode $(stat -c %a "$IMG"), want 600"
	[ "$(stat -c %a "$T/cryo-$pid.swap")" = 600 ] ||
		fail "swapfile mode $(stat -c %a "$T/cryo-$pid.swap"), want 600"
	assert_running_not_stopped "$pid"
}

@test "symlinks planted at the swapfile, image and temp paths are not followed" {
	local pid sum
	start_prog "$LOG" counter "$T/cnt"
	pid=$PROG_PID
	printf 'victim data\n' >"$T/victim"
	sum=$(sha256sum <"$T/victim")
	proc_snapshot "$pid" "$T/before"

	# swapfile path: refused, victim untouched
	ln -s "$T/victim" "$T/cryo-$pid.swap"
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$IMG"
	[ "$status" -eq 1 ] || fail "dump with a symlinked swapfile exited $status, want 1: $output"
	grep -qi 'symbolic link' <<<"$output" || fail "message does not name the symlink: $output"
	[ "$(sha256sum <"$T/victim")" = "$sum" ] || fail "the victim changed (swapfile symlink followed)"
	[ -L "$T/cryo-$pid.swap" ] || fail "the planted symlink was replaced"
	[ ! -e "$IMG" ] || fail "a refused dump left an image"
	assert_running_not_stopped "$pid"
	assert_snapshot_unchanged "$pid" "$T/before"
	rm "$T/cryo-$pid.swap"

	# image path: the symlink itself is replaced by the new image
	ln -s "$T/victim" "$IMG"
	cryo_dump "$pid" "$IMG"
	[ "$(sha256sum <"$T/victim")" = "$sum" ] || fail "the victim changed (image symlink followed)"
	[ -f "$IMG" ] && [ ! -L "$IMG" ] || fail "$IMG is not a regular file now"

	# temp path: its name is random, so check how it is made: an unnamed
	# O_TMPFILE later linkat'ed (never follows), or O_EXCL|O_NOFOLLOW
	if command -v strace >/dev/null; then
		# (LeakSanitizer cannot run under ptrace: off for a sanitized cryo)
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
			run strace -qq -e trace=openat,linkat -o "$T/strace" "$CRYO" -p "$pid" -f "$IMG"
		[ "$status" -eq 0 ] || fail "dump under strace failed: $output"
		grep -E 'openat\(.*\.img\.cryo\.tmp' "$T/strace" | grep -vE 'O_EXCL.*O_NOFOLLOW|O_NOFOLLOW.*O_EXCL' |
			grep -q . && fail "temp image opened without O_EXCL|O_NOFOLLOW: $(grep tmp "$T/strace")"
		grep -qE "openat\(AT_FDCWD, \"$T/?\", .*O_TMPFILE|openat\(.*\.img\.cryo\.tmp.*O_CREAT" "$T/strace" ||
			fail "no temp image creation seen: $(cat "$T/strace")"
	fi
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
}

# run_nobody CMD...: CMD as uid/gid nobody, no supplementary groups
run_nobody() {
	run setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all -- "$@"
}

@test "an unprivileged user cannot dump a root process: clear message, exit 1, target untouched" {
	need_root
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	local pid
	start_prog "$LOG" counter "$T/cnt"
	pid=$PROG_PID
	NOBODY_DIR=$(mktemp -d /tmp/cryo-nobody.XXXXXX)
	chmod 1777 "$NOBODY_DIR"
	proc_snapshot "$pid" "$T/before"
	run_nobody "$CRYO" -p "$pid" -f "$NOBODY_DIR/img.cryo"
	echo "# $output" >&3
	[ "$status" -eq 1 ] || fail "cryo as nobody exited $status, want 1: $output"
	[ "$(grep -c '^cryo: ' <<<"$output")" -eq 1 ] || fail "want one 'cryo: ...' line: $output"
	[[ $output =~ (^|[^0-9])$pid([^0-9]|$) ]] || fail "message does not name pid $pid: $output"
	grep -qiE 'permi|not allowed|trace|privilege|uid|another user' <<<"$output" || fail "message does not say why: $output"
	[ -z "$(ls -A "$NOBODY_DIR")" ] || fail "left files: $(ls -la "$NOBODY_DIR")"
	assert_running_not_stopped "$pid"
	assert_snapshot_unchanged "$pid" "$T/before"
	check_pass "$pid" "$LOG"
}

@test "restoring an image of a uid-0 process as an unprivileged user is refused" {
	need_root
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	local pid
	start_prog "$LOG" counter "$T/cnt"
	pid=$PROG_PID
	NOBODY_DIR=$(mktemp -d /tmp/cryo-nobody.XXXXXX)
	chmod 0755 "$NOBODY_DIR"
	dump_kill "$pid" "$NOBODY_DIR/img.cryo"
	chown nobody "$NOBODY_DIR"/img.cryo "$NOBODY_DIR"/cryo-"$pid".swap
	run_nobody "$CRYO" -r -f "$NOBODY_DIR/img.cryo"
	echo "# $output" >&3
	[ "$status" -eq 1 ] || fail "restore as nobody exited $status, want 1: $output"
	grep -qE '^cryo: ' <<<"$output" || fail "no 'cryo: ...' message: $output"
	grep -qiE 'uid 0|credentials' <<<"$output" || fail "message does not say why: $output"
	[ ! -e "/proc/$pid" ] || fail "a process with the image's pid exists: $(describe_pid "$pid")"
}

# nobody_dir: a root-owned 0755 $NOBODY_DIR (nobody cannot plant anything in
# it) with a nobody-owned, writable $NOBODY_DIR/out
nobody_dir() {
	NOBODY_DIR=$(mktemp -d /tmp/cryo-nobody.XXXXXX)
	chmod 0755 "$NOBODY_DIR"
	mkdir "$NOBODY_DIR/out"
	chown nobody:nogroup "$NOBODY_DIR/out"
}

# nobody_wrapper NAME CMD [SETPRIV_OPTS]: $NOBODY_DIR/NAME runs CMD with its
# arguments as uid nobody, gid nogroup, no groups, in the same process (so a
# pid taken from start_prog or restore_bg is CMD's)
nobody_wrapper() {
	local caps=${3:---inh-caps=-all}
	printf '#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups %s -- %s "$@"\n' \
		"$caps" "$2" >"$NOBODY_DIR/$1"
	chmod 0755 "$NOBODY_DIR/$1"
}

# the cryo an unprivileged user would need to restore at all: with
# CAP_CHECKPOINT_RESTORE (for clone3 set_tid) and nothing else
nobody_restorer() {
	setpriv --reuid=nobody --inh-caps=-all,+checkpoint_restore \
		--ambient-caps=+checkpoint_restore -- true 2>/dev/null ||
		skip "cannot give nobody CAP_CHECKPOINT_RESTORE (kernel before 5.9, or not in the bounding set)"
	nobody_wrapper cryo-nobody "$CRYO" \
		"--inh-caps=-all,+checkpoint_restore --ambient-caps=+checkpoint_restore"
}

# start_suid_privs MODE: a setuid-root copy of tests/progs/privs run by
# nobody; sets PROG_PID
start_suid_privs() {
	cp "$PROGS/privs" "$NOBODY_DIR/privs-suid"
	chown root:root "$NOBODY_DIR/privs-suid"
	chmod 4755 "$NOBODY_DIR/privs-suid"
	nobody_wrapper run-privs "$NOBODY_DIR/privs-suid"
	PROGS=$NOBODY_DIR start_prog "$LOG" run-privs "$1"
	NOBODY_PIDS+=("$PROG_PID")
}

ids_of() {	# PID -> "Uid: r e s fs / Gid: r e s fs" from /proc/PID/status
	awk '$1 == "Uid:" || $1 == "Gid:" { printf "%s %s %s %s %s ", $1, $2, $3, $4, $5 }' \
		"/proc/$1/status" 2>/dev/null
}

@test "setuid-root program run by a user: the user cannot dump it; its image (euid 0) is refused to that user" {
	need_root
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	local pid ids
	nobody_dir
	start_suid_privs keep
	pid=$PROG_PID
	ids=$(ids_of "$pid")
	[[ $ids == "Uid: 65534 0 0 0 Gid: 65534 65534 65534 65534 " ]] ||
		skip "the setuid copy did not run with euid 0 (nosuid /tmp?): $ids"
	proc_snapshot "$pid" "$T/before"

	# its user may not trace it
	run setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all -- \
		"$CRYO" -p "$pid" -f "$NOBODY_DIR/out/img.cryo"
	echo "# $output" >&3
	[ "$status" -eq 1 ] || fail "nobody dumping its setuid process exited $status, want 1: $output"
	grep -qE "^cryo: pid $pid: .*uid 65534 0 0.*setuid" <<<"$output" || fail "message does not say why: $output"
	[ -z "$(ls -A "$NOBODY_DIR/out")" ] || fail "left files: $(ls -la "$NOBODY_DIR/out")"
	assert_running_not_stopped "$pid"
	assert_snapshot_unchanged "$pid" "$T/before"

	# root dumps it; the user may not restore it, even with the capability
	# a restore needs (CAP_CHECKPOINT_RESTORE)
	dump_kill "$pid" "$NOBODY_DIR/out/img.cryo"
	chown nobody "$NOBODY_DIR"/out/*
	nobody_restorer
	run timeout "$CRYO_TIMEOUT" "$NOBODY_DIR/cryo-nobody" -r -f "$NOBODY_DIR/out/img.cryo"
	echo "# $output" >&3
	[ "$status" -eq 1 ] || fail "nobody restoring a euid-0 image exited $status, want 1: $output"
	grep -qE "^cryo: pid $pid ran as uid 0 .*credentials you already have" <<<"$output" ||
		fail "message does not say why: $output"
	[ ! -e "/proc/$pid" ] || fail "a process with the image's pid exists: $(describe_pid "$pid") $(ids_of "$pid")"
}

@test "setuid-root program that dropped its privileges: restores for its user with the user's ids only; root gets no euid 0 either" {
	need_root
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	local pid ids want="Uid: 65534 65534 65534 65534 Gid: 65534 65534 65534 65534 "
	nobody_dir
	start_suid_privs drop
	pid=$PROG_PID
	[ "$(ids_of "$pid")" = "$want" ] || fail "privs drop runs with $(ids_of "$pid")"
	check_pass "$pid" "$LOG"
	dump_kill "$pid" "$NOBODY_DIR/out/img.cryo"
	chown nobody "$NOBODY_DIR"/out/*

	# the user restores it: the exec of the setuid file under the user's
	# ptrace does not raise the ids
	nobody_restorer
	CRYO=$NOBODY_DIR/cryo-nobody restore_bg "$NOBODY_DIR/out/img.cryo" "$LOG" "$pid"
	ids=$(ids_of "$pid")
	echo "# restored by nobody: $ids CapEff $(proc_status_field "$pid" CapEff)" >&3
	[ "$ids" = "$want" ] || fail "restored by nobody with $ids"
	[ "$(proc_status_field "$pid" CapEff)" = 0000000000000000 ] ||
		fail "restored with capabilities: $(grep ^Cap "/proc/$pid/status")"
	check_pass "$pid" "$LOG"
	stop_restored "$pid"

	# root, trusting the user's image: under root's ptrace the exec would
	# raise euid to 0; cryo refuses, or restores with the image's ids only
	run timeout "$CRYO_TIMEOUT" "$CRYO" -r -d -f "$NOBODY_DIR/out/img.cryo" --allow-other-user
	echo "# restored by root: status $status: $output $(ids_of "$pid")" >&3
	if [ "$status" -eq 0 ]; then
		NOBODY_PIDS+=("$pid")
		[ "$(ids_of "$pid")" = "$want" ] || fail "restored by root with $(ids_of "$pid")"
		check_pass "$pid" "$LOG"
	else
		[ "$status" -eq 1 ] || fail "root restoring it exited $status: $output"
		grep -qE "^cryo: .*pid $pid: the exec of .* gave it uids 65534 0 0 0.*setuid" <<<"$output" ||
			fail "message does not say why: $output"
		[ ! -e "/proc/$pid" ] || fail "a process with the image's pid exists: $(describe_pid "$pid") $(ids_of "$pid")"
	fi
}

@test "root restoring an image or swapfile another user owns (or anyone may write) is refused, unless --allow-other-user" {
	need_root
	local pid swap
	start_prog "$LOG" counter "$T/cnt"
	pid=$PROG_PID
	dump_kill "$pid" "$IMG"
	swap=$T/cryo-$pid.swap

	chown nobody "$IMG"
	run timeout "$CRYO_TIMEOUT" "$CRYO" -r -f "$IMG"
	echo "# $output" >&3
	[ "$status" -eq 1 ] || fail "restore of a nobody-owned image exited $status, want 1: $output"
	grep -qE "^cryo: image $IMG is owned by uid 65534, not root.*--allow-other-user" <<<"$output" ||
		fail "message does not say why: $output"
	[ ! -e "/proc/$pid" ] || fail "a refused restore created pid $pid: $(describe_pid "$pid")"

	chown root "$IMG"
	chown nobody "$swap"
	run timeout "$CRYO_TIMEOUT" "$CRYO" -r -f "$IMG"
	[ "$status" -eq 1 ] || fail "restore with a nobody-owned swapfile exited $status, want 1: $output"
	grep -qE "^cryo: swapfile $swap is owned by uid 65534" <<<"$output" || fail "message does not say why: $output"
	[ ! -e "/proc/$pid" ] || fail "a refused restore created pid $pid: $(describe_pid "$pid")"

	chown root "$swap"
	chmod 0666 "$IMG"
	run timeout "$CRYO_TIMEOUT" "$CRYO" -r -f "$IMG"
	[ "$status" -eq 1 ] || fail "restore of a world-writable image exited $status, want 1: $output"
	grep -qE "^cryo: image $IMG is writable by every user" <<<"$output" || fail "message does not say why: $output"
	[ ! -e "/proc/$pid" ] || fail "a refused restore created pid $pid: $(describe_pid "$pid")"

	# explicitly allowed: restores
	chmod 0600 "$IMG"
	chown nobody "$IMG" "$swap"
	restore_bg "$IMG" "$LOG" "$pid" --allow-other-user
	check_pass "$pid" "$LOG"
	stop_restored "$pid"
}

@test "an unprivileged user cannot dump its own process after PR_SET_DUMPABLE 0: the message says it is not dumpable" {
	need_root
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	local pid
	nobody_dir
	nobody_wrapper run-privs "$PROGS/privs"
	PROGS=$NOBODY_DIR start_prog "$LOG" run-privs nodump
	pid=$PROG_PID
	NOBODY_PIDS+=("$pid")
	[ "$(proc_status_field "$pid" Uid)" = 65534 ] || fail "privs does not run as nobody: $(ids_of "$pid")"
	proc_snapshot "$pid" "$T/before"
	run setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all -- \
		"$CRYO" -p "$pid" -f "$NOBODY_DIR/out/img.cryo"
	echo "# $output" >&3
	[ "$status" -eq 1 ] || fail "dump of a non-dumpable process exited $status, want 1: $output"
	[ "$(grep -c '^cryo: ' <<<"$output")" -eq 1 ] || fail "want one 'cryo: ...' line: $output"
	grep -qE "^cryo: pid $pid: .*not dumpable.*PR_SET_DUMPABLE" <<<"$output" || fail "message does not say why: $output"
	[ -z "$(ls -A "$NOBODY_DIR/out")" ] || fail "left files: $(ls -la "$NOBODY_DIR/out")"
	assert_running_not_stopped "$pid"
	assert_snapshot_unchanged "$pid" "$T/before"
	check_pass "$pid" "$LOG"
}
