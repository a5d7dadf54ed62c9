#!/usr/bin/env bats
# Faults in the middle of a dump (issue #9, docs/reliability.md): a tree that
# forks and reaps children all the time, threads created and exiting all
# the time, a target that exits or is killed while cryo works on it, a
# target already traced by someone else, a FIFO where the image should be.
# Every dump is without --kill: whatever its outcome, the target runs on
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
	local d
	sig_snapshot "$1" "$2.now"
	if ! d=$(diff "$2" "$2.now"); then
		fail "pid $1 changed (fds/signal state): $d"
		return 1
	fi
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
