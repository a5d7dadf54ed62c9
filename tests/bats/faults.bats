#!/usr/bin/env bats
# Faults in the middle of a dump and hostile paths (issue #9,
# docs/reliability.md): a tree that forks and reaps children all the time,
# threads created and exiting all the time, a target that exits or is
# killed while cryo dumps it, a target already traced by a debugger,
# strace or another cryo, FIFOs where cryo reads or writes a file. Every
# dump is without --kill: whatever its outcome, the target runs on
# untraced, unstopped, with its signal state, and passes its own check.

load helpers

: "${BATS_TEST_TIMEOUT:=120}"
: "${FAULT_DUMPS:=15}"		# dumps per churning target

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	LOG=$T/prog.log
	TRACER_PID=
}

teardown() {
	if [ -n "$TRACER_PID" ] && _is_ours "$TRACER_PID"; then
		kill -KILL "$TRACER_PID" 2>/dev/null || true
	fi
	cryo_teardown
}

# all_threads_untraced PID: no thread of PID is traced or stopped
all_threads_untraced() {
	local pid=$1 t tr s
	for t in /proc/"$pid"/task/*; do
		tr=$(awk '$1 == "TracerPid:" { print $2 }' "$t/status" 2>/dev/null) || continue
		s=$(awk '$1 == "State:" { print $2 }' "$t/status" 2>/dev/null) || continue
		[ -z "$tr" ] && continue	# the thread exited meanwhile
		if [ "$tr" != 0 ] || [ "$s" = T ] || [ "$s" = t ]; then
			fail "pid $pid thread ${t##*/}: TracerPid $tr, state $s"
			return 1
		fi
	done
}

# sig_snapshot PID FILE: signal state of the process (its leader's mask)
# and its fds, for a target whose threads and mappings come and go
sig_snapshot() {
	local f
	{
		for f in /proc/"$1"/fd/*; do
			echo "fd ${f##*/} -> $(readlink "$f")"
		done
		grep -E '^(SigBlk|SigIgn|SigCgt):' "/proc/$1/status"
	} >"$2" 2>&1
}

assert_sig_unchanged() {
	assert_snapshot_unchanged "$1" "$2" sig_snapshot
}

# no_leftovers DIR IMG: a failed dump left no image and no temporary file
no_leftovers() {
	local f
	[ ! -e "$2" ] || { fail "a failed dump left $2"; return 1; }
	for f in "$1"/.*.tmp* "$1"/*.tmp*; do
		[ -e "$f" ] || continue
		fail "a failed dump left ${f##*/}"
		return 1
	done
}

# dump_outcome PID IMG: one dump without --kill. Succeeds (an image cryo
# show reads; DUMP_OK=1) or is refused: exit 1, one line "cryo: ..."
# naming a pid, nothing left behind (DUMP_OK=0). DUMP_MSG: cryo's output.
dump_outcome() {
	local pid=$1 img=$2 shown
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$img"
	DUMP_MSG=$output
	if [ "$status" -eq 0 ]; then
		DUMP_OK=1
		[ -s "$img" ] || { fail "cryo -p $pid exited 0 without an image: $output"; return 1; }
		shown=$("$CRYO" show "$img" 2>&1) || { fail "cryo show $img: $(tail -5 <<<"$shown")"; return 1; }
		echo "$shown" >"$img.show"
		return 0
	fi
	DUMP_OK=0
	[ "$status" -eq 1 ] || { fail "cryo -p $pid exited $status, want 0 or 1: $output"; return 1; }
	[ "$(grep -c . <<<"$output")" -eq 1 ] && [[ $output == "cryo: "* ]] ||
		{ fail "want one line 'cryo: ...': $output"; return 1; }
	[[ $output =~ pid\ [0-9]+ ]] || { fail "message names no pid: $output"; return 1; }
	no_leftovers "$(dirname "$img")" "$img"
}

# churn_dumps PID SNAPSHOT_FN: FAULT_DUMPS dumps of a busy target, each
# followed by the checks. Sets DUMPS_OK and RESTORE_IMGS: the last image
# written, and the last one that holds a child of the root as a zombie
# and as a live process, if any.
churn_dumps() {
	local pid=$1 snap=$2 i fails= img zombie= child= nz=0 nc=0
	DUMPS_OK=0
	RESTORE_IMGS=()
	"$snap" "$pid" "$T/before"
	for ((i = 1; i <= FAULT_DUMPS; i++)); do
		img=$T/img-$i.cryo
		dump_outcome "$pid" "$img" || return 1
		if ((DUMP_OK)); then
			((DUMPS_OK += 1))
			if grep -q '^task 1: .*zombie' "$img.show"; then
				zombie=$img
				((nz += 1))
			elif grep -q '^task 1: ' "$img.show"; then
				child=$img
				((nc += 1))
			fi
		else
			fails+="${DUMP_MSG}; "
		fi
		assert_running_not_stopped "$pid" || fail "after dump $i: $DUMP_MSG" || return 1
		all_threads_untraced "$pid" || return 1
		if [ "$snap" = proc_snapshot ]; then
			assert_snapshot_unchanged "$pid" "$T/before" || return 1
		else
			assert_sig_unchanged "$pid" "$T/before" || return 1
		fi
		check_pass "$pid" "$LOG" || fail "after dump $i: $DUMP_MSG" || return 1
	done
	echo "# $DUMPS_OK of $FAULT_DUMPS dumps succeeded ($nz caught a zombie child, $nc a live one)${fails:+; refusals: $fails}" >&3
	# the root never exits: a child or thread that exits while cryo
	# freezes it is a zombie in the image or not in it, no reason to refuse
	[ "$DUMPS_OK" -eq "$FAULT_DUMPS" ] ||
		{ fail "$((FAULT_DUMPS - DUMPS_OK)) dumps refused: $fails"; return 1; }
	if ((DUMPS_OK)); then
		RESTORE_IMGS=(${zombie:+"$zombie"} ${child:+"$child"})
		[ "$img" = "$zombie" ] || [ "$img" = "$child" ] || [ ! -s "$img.show" ] ||
			RESTORE_IMGS+=("$img")
		[ "${#RESTORE_IMGS[@]}" -gt 0 ] || RESTORE_IMGS=("$(ls -t "$T"/img-*.cryo | head -1)")
	fi
}

# restore_each PID: the running target is killed, then each image of
# RESTORE_IMGS restores and passes its check
restore_each() {
	local pid=$1 img
	[ "${#RESTORE_IMGS[@]}" -gt 0 ] || { fail "no dump of pid $pid succeeded"; return 1; }
	kill -KILL "$pid"
	wait_gone "$pid" 5 || return 1
	for img in "${RESTORE_IMGS[@]}"; do
		restore_bg "$img" "$LOG" "$pid" || fail "restoring ${img##*/}" || return 1
		all_threads_untraced "$pid" || return 1
		check_pass "$pid" "$LOG" || fail "restored from ${img##*/}" || return 1
		stop_restored "$pid" || return 1
	done
}

@test "a root forking and reaping short-lived children in a tight loop: every dump succeeds, the target runs on unharmed, the images restore" {
	start_prog "$LOG" forkloop
	churn_dumps "$PROG_PID" proc_snapshot
	restore_each "$PROG_PID"
}

@test "a root forking short-lived children with SIGCHLD ignored (the kernel reaps them): the same" {
	start_prog "$LOG" forkloop ignore
	churn_dumps "$PROG_PID" proc_snapshot
	restore_each "$PROG_PID"
}

@test "threads created and exiting all the time (by other threads): every dump succeeds, the target runs on unharmed, the images restore" {
	start_prog "$LOG" threadchurn 3
	churn_dumps "$PROG_PID" sig_snapshot
	restore_each "$PROG_PID"
}

# dump_dying PID IMG: dump_outcome for a target that dies during the dump;
# a refusal must name PID and keep no pages in the swapfile it created.
# Counts the outcomes in NOK and NREFUSED.
dump_dying() {
	local pid=$1 img=$2 swap
	dump_outcome "$pid" "$img" || return 1
	if ((DUMP_OK)); then
		((NOK += 1))
		LAST_IMG=$img
		LAST_PID=$pid
		return 0
	fi
	((NREFUSED += 1))
	REFUSALS+="$DUMP_MSG"$'\n'
	[[ $DUMP_MSG =~ pid\ $pid([^0-9]|$) ]] || { fail "message does not name pid $pid: $DUMP_MSG"; return 1; }
	# and says what happened, not what failed next (an I/O error reading
	# the pagemap of a process that is gone)
	grep -qE 'exited|killed|no such process' <<<"$DUMP_MSG" ||
		{ fail "message does not say that pid $pid exited: $DUMP_MSG"; return 1; }
	swap=$(dirname "$img")/cryo-$pid.swap
	[ ! -e "$swap" ] || [ "$(stat -c %s "$swap")" -le 8192 ] ||
		{ fail "the failed dump left $(stat -c %s "$swap") bytes in $swap"; return 1; }
}

@test "a target that exits on its own while cryo dumps it: the dump fails cleanly naming it, or succeeds" {
	local i pid
	NOK=0 NREFUSED=0 REFUSALS= LAST_IMG= LAST_PID=
	for ((i = 1; i <= FAULT_DUMPS; i++)); do
		mkdir "$T/$i"
		start_prog "$T/$i/prog.log" exitsoon 16 $((RANDOM % 20))
		pid=$PROG_PID
		kill -USR2 "$pid"	# the countdown to its exit starts
		dump_dying "$pid" "$T/$i/img.cryo" || return 1
		wait_gone "$pid" 5 || fail "pid $pid did not exit on its own after the dump" || return 1
	done
	echo "# $NOK dumps succeeded, $NREFUSED failed:" >&3
	printf %s "$REFUSALS" | sed -E 's/pid [0-9]+/pid N/g' | sort | uniq -c | sed 's/^/#   /' >&3
	if [ -n "$LAST_IMG" ]; then
		# restored, it runs on to its exit, which checks its memory
		run timeout "$CRYO_TIMEOUT" "$CRYO" -r -f "$LAST_IMG"
		[ "$status" -eq 0 ] || fail "the restored pid $LAST_PID exited $status, want 0: $output"
	fi
}

@test "a target killed while cryo dumps it: the dump fails cleanly naming it, or succeeds (and that image restores)" {
	local i pid killer
	NOK=0 NREFUSED=0 REFUSALS= LAST_IMG= LAST_PID=
	for ((i = 1; i <= FAULT_DUMPS; i++)); do
		mkdir "$T/$i"
		LOG=$T/$i/prog.log
		start_prog "$LOG" heap 64
		pid=$PROG_PID
		# a 64 MiB dump takes about 40 ms here, the kill comes after 0-40 ms
		(sleep "$(printf '0.%03d' $((RANDOM % 40)))" && kill -KILL "$pid") &
		killer=$!
		dump_dying "$pid" "$T/$i/img.cryo" || return 1
		wait "$killer" || true
		wait_gone "$pid" 5 || return 1
	done
	echo "# $NOK dumps succeeded, $NREFUSED failed:" >&3
	printf %s "$REFUSALS" | sed -E 's/pid [0-9]+/pid N/g' | sort | uniq -c | sed 's/^/#   /' >&3
	[ "$NREFUSED" -ge 1 ] || fail "every dump finished before its kill: no kill hit a dump in progress"
	if [ -n "$LAST_IMG" ]; then
		LOG=$(dirname "$LAST_IMG")/prog.log
		restore_bg "$LAST_IMG" "$LOG" "$LAST_PID"
		check_pass "$LAST_PID" "$LOG"
		stop_restored "$LAST_PID"
	fi
}

# ---------------------------------------------------------------- traced

# start_tracer PID [MODE]: tests/progs/tracer on PID; sets TRACER_PID
start_tracer() {
	start_prog "$T/tracer.log" tracer "$@" || return 1
	TRACER_PID=$PROG_PID
}

# refused_traced PID TRACER: cryo -p PID is refused, naming TRACER; no
# image; PID runs on, still traced by TRACER only, and passes its check
refused_traced() {
	local pid=$1 tracer=$2 t tr
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$T/img.cryo"
	echo "# $output" >&3
	[ "$status" -eq 1 ] || { fail "dump of a traced pid $pid exited $status, want 1: $output"; return 1; }
	[ "$(grep -c . <<<"$output")" -eq 1 ] && [[ $output == "cryo: "*"pid $pid"* ]] ||
		{ fail "want one line 'cryo: ...' naming pid $pid: $output"; return 1; }
	[[ $output == *"already traced by pid $tracer "* ]] ||
		{ fail "message does not name the tracer, pid $tracer: $output"; return 1; }
	no_leftovers "$T" "$T/img.cryo" || return 1
	for t in /proc/"$pid"/task/*; do
		tr=$(awk '$1 == "TracerPid:" { print $2 }' "$t/status")
		[ "$tr" = 0 ] || [ "$tr" = "$tracer" ] ||
			{ fail "thread ${t##*/} of pid $pid is traced by pid $tr"; return 1; }
	done
	case $(proc_state "$pid") in
	T | t | Z | "") fail "pid $pid is not running: $(describe_pid "$pid")"; return 1 ;;
	esac
	check_pass "$pid" "$LOG"
}

@test "a process already traced by a debugger (PTRACE_SEIZE) is refused naming the tracer; it runs on" {
	local pid
	start_prog "$LOG" counter "$T/cnt"
	pid=$PROG_PID
	start_tracer "$pid"
	[ "$(proc_status_field "$pid" TracerPid)" = "$TRACER_PID" ] || fail "tracer did not attach"
	refused_traced "$pid" "$TRACER_PID"
	# the debugger goes: the process is as before, and dumps
	kill -TERM "$TRACER_PID"
	wait_gone "$TRACER_PID" 5
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
	cryo_dump "$pid" "$T/img.cryo"
	assert_running_not_stopped "$pid"
}

@test "a process one of whose threads is traced by someone else is refused naming the tracer; no thread stays traced by cryo" {
	local pid
	start_prog "$LOG" threads8
	pid=$PROG_PID
	start_tracer "$pid" thread
	refused_traced "$pid" "$TRACER_PID"
	[[ $output == *"thread "* ]] || fail "message does not say a thread is traced: $output"
}

@test "a process traced by strace is refused naming strace" {
	command -v strace >/dev/null || skip "strace is not installed"
	local pid spid i
	start_prog "$LOG" counter "$T/cnt"
	pid=$PROG_PID
	strace -qq -e trace=none -o /dev/null -p "$pid" </dev/null >/dev/null 2>&1 3>&- 4>&- &
	spid=$!
	CRYO_TEST_PIDS+=("$spid")
	for ((i = 0; i < 100; i++)); do
		[ "$(proc_status_field "$pid" TracerPid)" = "$spid" ] && break
		sleep 0.05
	done
	[ "$(proc_status_field "$pid" TracerPid)" = "$spid" ] || fail "strace did not attach"
	refused_traced "$pid" "$spid"
	kill -TERM "$spid"
	wait "$spid" || true
	wait_untraced_all "$pid"
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
}

# wait_untraced_all PID: a tracer that is going detaches soon
wait_untraced_all() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(proc_status_field "$1" TracerPid)" = 0 ] && return 0
		sleep 0.05
	done
}

@test "a process another cryo is dumping: the second cryo is refused naming the first; the first succeeds" {
	local pid i c1 hit=0
	READY_TIMEOUT=30 start_prog "$LOG" heap 256
	pid=$PROG_PID
	for i in 1 2 3; do
		mkdir "$T/$i"
		(exec </dev/null >"$T/$i/cryo1.log" 2>&1; _only_stdio; exec "$CRYO" -p "$pid" -f "$T/$i/img.cryo") &
		c1=$!
		CRYO_TEST_PIDS+=("$c1")
		while alive "$c1" && [ "$(proc_status_field "$pid" TracerPid)" != "$c1" ]; do
			sleep 0.005
		done
		run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$T/img2.cryo"
		if [ "$status" -eq 0 ] && ! alive "$c1"; then
			wait "$c1" || fail "first cryo: $(cat "$T/$i/cryo1.log")"
			rm -f "$T/img2.cryo"
			continue	# the first was done before the second looked
		fi
		echo "# $output" >&3
		[ "$status" -eq 1 ] || fail "second cryo exited $status, want 1: $output"
		[[ $output == "cryo: pid $pid: "*"already traced by pid $c1 "* ]] ||
			fail "message does not name the first cryo, pid $c1: $output"
		[ ! -e "$T/img2.cryo" ] || fail "the refused cryo left an image"
		wait "$c1" || fail "the first cryo failed: $(cat "$T/$i/cryo1.log")"
		[ -s "$T/$i/img.cryo" ] || fail "the first cryo wrote no image"
		hit=1
		break
	done
	[ "$hit" = 1 ] || fail "the first cryo was always done before the second started"
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
}

# ---------------------------------------------------------------- FIFOs

# refused_fast WHAT ARGS...: cryo ARGS ends within 5 s (no open or read
# blocking on a FIFO), exit 1, one line naming WHAT as "not a regular file"
refused_fast() {
	local what=$1
	shift
	run timeout 5 "$CRYO" "$@"
	[ "$status" -ne 124 ] || { fail "cryo $* hangs on a FIFO"; return 1; }
	[ "$status" -eq 1 ] || { fail "cryo $* exited $status, want 1: $output"; return 1; }
	[ "$(grep -c . <<<"$output")" -eq 1 ] && [[ $output == "cryo: "*"$what"*"not a regular file"* ]] ||
		{ fail "cryo $*: want one line 'cryo: ... $what ...: not a regular file': $output"; return 1; }
}

@test "a FIFO where an image or swapfile is read fails at once; one where a file is written is replaced" {
	local pid
	start_prog "$LOG" counter "$T/cnt"
	pid=$PROG_PID
	mkfifo "$T/fifo.cryo" "$T/fifo.swap"
	# read: refused without waiting for a writer
	refused_fast "image $T/fifo.cryo" -r -f "$T/fifo.cryo"
	refused_fast "image $T/fifo.cryo" show "$T/fifo.cryo"
	refused_fast "image $T/fifo.cryo" core "$T/fifo.cryo" -o "$T/core"
	refused_fast "image $T/fifo.cryo" pack "$T/fifo.cryo" -o "$T/packed"
	refused_fast "swapfile $T/fifo.swap" snapshots "$T/fifo.swap"
	refused_fast "swapfile $T/fifo.swap" -p "$pid" -f "$T/img.cryo" --swapfile "$T/fifo.swap"
	[ ! -e "$T/img.cryo" ] || fail "a refused dump left an image"
	assert_running_not_stopped "$pid"
	cryo_dump "$pid" "$T/img.cryo"
	# show lists the image and names the swapfile among its problems
	run timeout 5 "$CRYO" show "$T/img.cryo" --swapfile "$T/fifo.swap"
	[ "$status" -ne 124 ] || fail "cryo show hangs on a FIFO swapfile"
	[ "$status" -eq 1 ] || fail "cryo show with a FIFO swapfile exited $status, want 1"
	grep -qF "swapfile $T/fifo.swap: not a regular file" <<<"$output" ||
		fail "cryo show does not name the FIFO swapfile: $(tail -3 <<<"$output")"
	refused_fast "swapfile $T/fifo.swap" core "$T/img.cryo" -o "$T/core" --swapfile "$T/fifo.swap"
	# written: a new file takes the FIFO's name (nothing is written into
	# the FIFO, which would block without a reader)
	mkfifo "$T/out.cryo" "$T/out.core" "$T/out.packed"
	run timeout 10 "$CRYO" -p "$pid" -f "$T/out.cryo"
	[ "$status" -eq 0 ] || fail "dump onto a FIFO's path exited $status: $output"
	run timeout 10 "$CRYO" core "$T/img.cryo" -o "$T/out.core"
	[ "$status" -eq 0 ] || fail "core onto a FIFO's path exited $status: $output"
	run timeout 10 "$CRYO" pack "$T/img.cryo" -o "$T/out.packed"
	[ "$status" -eq 0 ] || fail "pack onto a FIFO's path exited $status: $output"
	for f in out.cryo out.core out.packed; do
		[ -f "$T/$f" ] && [ -s "$T/$f" ] || fail "$f is not a non-empty regular file: $(ls -l "$T/$f")"
	done
	"$CRYO" show "$T/out.cryo" >/dev/null || fail "the image written over a FIFO does not read"
	"$CRYO" show "$T/out.packed" >/dev/null || fail "the packed image written over a FIFO does not read"
	assert_running_not_stopped "$pid"
	check_pass "$pid" "$LOG"
	# a restore reading its pages from a FIFO: refused before any process exists
	dump_kill "$pid" "$T/img.cryo"
	refused_fast "swapfile $T/fifo.swap" -r -f "$T/img.cryo" --swapfile "$T/fifo.swap"
	[ ! -e "/proc/$pid" ] || fail "a refused restore created pid $pid: $(describe_pid "$pid")"
}
