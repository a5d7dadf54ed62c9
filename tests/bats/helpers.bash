# Helpers for cryo's bats tests; load with `load helpers`.
#
# Scenario programs (tests/progs, see scenario.h) print "READY" on stdout when
# their state is set up, and answer SIGUSR1 with one line "PASS <name>" or
# "FAIL <name>: <details>". A program's stdout/stderr is a pipe into a `cat`
# that appends to its log, so after a restore (where cryo hands its own
# stdio to the restored process) `restore_bg` appends cryo's stdout/stderr to
# the same log. Every background process gets only fds 0-2.
#
# Helpers that fail print the reason and the tails of all logs, and return 1.
# shellcheck disable=SC2154	# $status and $output are set by bats' run

CRYO=${CRYO:-$BATS_TEST_DIRNAME/../../tools/cryo/cryo}
PROGS=${PROGS:-$BATS_TEST_DIRNAME/../progs}
: "${CRYO_TIMEOUT:=20}"		# seconds for one cryo dump / refused restore
: "${READY_TIMEOUT:=10}"	# seconds for a program to print READY
: "${RESTORE_TIMEOUT:=10}"	# seconds for cryo -r to bring the process back
: "${CHECK_TIMEOUT:=10}"	# seconds for a PASS/FAIL line after SIGUSR1

CRYO_TEST_PIDS=()	# killed (if still ours) in teardown
PROG_PID=		# set by start_prog
CRYO_PID=		# set by restore_bg
CRYO_STATUS=		# set by wait_cryo_exit
declare -gA ORIG_EXE=() ORIG_SIGCGT=()	# recorded by cryo_dump, per pid

_REAL_PROGS=$(readlink -f "$PROGS")
_REAL_CRYO=$(readlink -f "$CRYO")

# ---- reporting ----
show_logs() {
	local f
	for f in "$BATS_TEST_TMPDIR"/*.log; do
		[ -f "$f" ] || continue
		echo "--- tail of $f:"
		tail -n 40 "$f"
	done
}

fail() {
	echo "FAIL: $*"
	show_logs
	return 1
}

# ---- /proc inspection ----
proc_state() {	# PID -> one letter (R S D T t Z ...), empty if gone
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	s=${s##*) }
	echo "${s%% *}"
}

proc_status_field() {	# PID FIELD -> value from /proc/PID/status
	awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status" 2>/dev/null || true
}

alive() {	# PID: exists and is not a zombie
	local s
	s=$(proc_state "$1")
	[ -n "$s" ] && [ "$s" != Z ]
}

describe_pid() {	# PID -> one line for failure messages
	local pid=$1
	if [ ! -e "/proc/$pid" ]; then
		echo "pid $pid: gone"
		return 0
	fi
	echo "pid $pid: state=$(proc_state "$pid") ppid=$(proc_status_field "$pid" PPid)" \
		"tracer=$(proc_status_field "$pid" TracerPid) exe=$(readlink "/proc/$pid/exe" 2>/dev/null)" \
		"sigcgt=$(proc_status_field "$pid" SigCgt) syscall=$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null)"
}

# PID: alive, not stopped, not traced.
assert_running_not_stopped() {
	local pid=$1 s
	s=$(proc_state "$pid")
	if [ -z "$s" ] || [ "$s" = Z ] || [ "$s" = T ] || [ "$s" = t ]; then
		fail "expected pid $pid running and not stopped: $(describe_pid "$pid")"
		return 1
	fi
	if [ "$(proc_status_field "$pid" TracerPid)" != 0 ]; then
		fail "pid $pid is still traced: $(describe_pid "$pid")"
		return 1
	fi
}

# proc_snapshot PID FILE: what a dump must not change in a process that
# keeps running: its mappings, fd targets and signal masks.
proc_snapshot() {
	local pid=$1 f
	{
		cat "/proc/$pid/maps"
		for f in /proc/"$pid"/fd/*; do
			echo "fd ${f##*/} -> $(readlink "$f")"
		done
		grep -E '^(SigBlk|SigIgn|SigCgt|Threads):' "/proc/$pid/status"
	} >"$2" 2>&1
}

# assert_snapshot_unchanged PID FILE [SNAPSHOT_FN]: FILE was written by
# SNAPSHOT_FN (default proc_snapshot) PID FILE; nothing changed since
assert_snapshot_unchanged() {
	local d
	"${3:-proc_snapshot}" "$1" "$2.now"
	if ! d=$(diff "$2" "$2.now"); then
		fail "pid $1 changed (${3:-proc_snapshot}): $d"
		return 1
	fi
}

# ---- launching ----
# Close every fd above 2 in the current (sub)shell.
_only_stdio() {
	local me=$BASHPID f fd
	for f in /proc/"$me"/fd/*; do
		fd=${f##*/}
		if [ "$fd" -gt 2 ]; then
			eval "exec $fd>&-" 2>/dev/null || true
		fi
	done
}

# start_prog LOG PROG [ARGS...]: run tests/progs/PROG in the background with
# stdin from $PROG_STDIN (default /dev/null) and stdout+stderr through a pipe
# appended to LOG; sets PROG_PID and waits for READY.
start_prog() {
	local log=$1 prog=$2 out
	shift 2
	if [ ! -x "$PROGS/$prog" ]; then
		fail "$PROGS/$prog is not built (make progs)"
		return 1
	fi
	: >>"$log"
	exec {out}> >(_only_stdio; exec cat >>"$log")
	(
		exec <"${PROG_STDIN:-/dev/null}" >&"$out" 2>&1
		_only_stdio
		exec "$PROGS/$prog" "$@"
	) &
	PROG_PID=$!
	exec {out}>&-
	disown "$PROG_PID"	# no job messages when cryo --kill kills it
	CRYO_TEST_PIDS+=("$PROG_PID")
	wait_ready "$PROG_PID" "$log"
}

# wait_ready PID LOG [TIMEOUT]
wait_ready() {
	local pid=$1 log=$2 t=${3:-$READY_TIMEOUT} i
	for ((i = 0; i < t * 20; i++)); do
		if grep -qx READY "$log"; then
			return 0
		fi
		if ! alive "$pid"; then
			sleep 0.1	# let the pipe drain into the log
			fail "pid $pid exited before printing READY"
			return 1
		fi
		sleep 0.05
	done
	fail "pid $pid printed no READY within ${t}s: $(describe_pid "$pid")"
	return 1
}

# wait_log LOG REGEX [TIMEOUT]: wait for a line matching the ERE.
wait_log() {
	local log=$1 re=$2 t=${3:-5} i
	for ((i = 0; i < t * 20; i++)); do
		if grep -qE -- "$re" "$log"; then
			return 0
		fi
		sleep 0.05
	done
	fail "no line matching /$re/ in $log within ${t}s"
	return 1
}

# wait_syscall PID ERE [TIMEOUT]: wait until PID is blocked in a syscall
# whose number (first field of /proc/PID/syscall) matches ^(ERE)$.
wait_syscall() {
	local pid=$1 re=$2 t=${3:-3} i nr=
	for ((i = 0; i < t * 20; i++)); do
		nr=$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null || true)
		if [[ $nr =~ ^($re)$ ]]; then
			return 0
		fi
		sleep 0.05
	done
	fail "pid $pid not blocked in syscall /$re/ within ${t}s (last: '$nr'): $(describe_pid "$pid")"
	return 1
}

# wait_gone PID [TIMEOUT]: wait until PID no longer exists (reaping it if it
# is a zombie child of this shell).
wait_gone() {
	local pid=$1 t=${2:-10} i
	for ((i = 0; i < t * 20; i++)); do
		if [ ! -e "/proc/$pid" ]; then
			return 0
		fi
		if [ "$(proc_state "$pid")" = Z ]; then
			wait "$pid" 2>/dev/null || true
		fi
		sleep 0.05
	done
	fail "pid $pid still exists after ${t}s: $(describe_pid "$pid")"
	return 1
}

# ---- cryo ----
# cryo_dump PID IMG [ARGS...]: cryo -p PID -f IMG ARGS, must exit 0 and
# leave a non-empty image. Records the exe and caught signals of PID.
cryo_dump() {
	local pid=$1 img=$2
	shift 2
	ORIG_EXE[$pid]=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	ORIG_SIGCGT[$pid]=$(proc_status_field "$pid" SigCgt)
	run timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$img" "$@"
	if [ "$status" -ne 0 ]; then
		fail "cryo -p $pid -f $img $* exited $status: $output"
		return 1
	fi
	if [ ! -s "$img" ]; then
		fail "cryo -p $pid exited 0 but $img is missing or empty: $output"
		return 1
	fi
	# every image a test writes is also one `cryo show` reads cleanly:
	# a record kind show does not know is a reader falling behind.
	# $output stays the dump's, which tests check after.
	local shown
	if ! shown=$("$CRYO" show "$img" 2>&1); then
		fail "cryo show $img failed: $(tail -5 <<<"$shown")"
		return 1
	fi
}

# dump_kill PID IMG: dump with --kill, then wait until PID is gone and
# reaped so that the pid is free for the restore.
dump_kill() {
	cryo_dump "$1" "$2" --kill || return 1
	wait_gone "$1" 5 || return 1
}

# restore_bg IMG LOG PID [ARGS...]: cryo -r -f IMG ARGS in the background,
# stdin from $RESTORE_STDIN (default /dev/null), stdout+stderr appended to
# LOG; sets CRYO_PID and waits until PID is back as cryo's child.
restore_bg() {
	local img=$1 log=$2 pid=$3
	shift 3
	(
		exec <"${RESTORE_STDIN:-/dev/null}" >>"$log" 2>&1
		_only_stdio
		exec "$CRYO" -r -f "$img" "$@"
	) &
	CRYO_PID=$!
	CRYO_TEST_PIDS+=("$CRYO_PID")
	wait_restored "$pid" "$CRYO_PID" "$log"
}

# wait_restored PID CRYO_PID LOG: PID exists with PPid CRYO_PID, is not
# traced nor stopped, runs the original exe and catches the same signals
# as when it was dumped.
wait_restored() {
	local pid=$1 cpid=$2 log=$3 i s why=
	for ((i = 0; i < RESTORE_TIMEOUT * 20; i++)); do
		if ! alive "$cpid"; then
			wait_cryo_exit "$cpid" 1 || true
			fail "cryo -r (pid $cpid) exited with status $CRYO_STATUS before pid $pid was restored"
			return 1
		fi
		why=
		s=$(proc_state "$pid")
		if [ -z "$s" ]; then
			why="pid $pid does not exist"
		elif [ "$(proc_status_field "$pid" PPid)" != "$cpid" ]; then
			why="parent is not cryo $cpid"
		elif [ "$(proc_status_field "$pid" TracerPid)" != 0 ]; then
			why="still traced"
		elif [ "$s" = T ] || [ "$s" = t ] || [ "$s" = Z ]; then
			why="state $s"
		elif [ -n "${ORIG_EXE[$pid]:-}" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" != "${ORIG_EXE[$pid]}" ]; then
			why="exe is not ${ORIG_EXE[$pid]}"
		elif [ -n "${ORIG_SIGCGT[$pid]:-}" ] && [ "$(proc_status_field "$pid" SigCgt)" != "${ORIG_SIGCGT[$pid]}" ]; then
			why="SigCgt is not ${ORIG_SIGCGT[$pid]}"
		fi
		if [ -z "$why" ]; then
			return 0
		fi
		sleep 0.05
	done
	fail "pid $pid not restored within ${RESTORE_TIMEOUT}s ($why): $(describe_pid "$pid")"
	return 1
}

# wait_cryo_exit CRYO_PID [TIMEOUT]: wait for a background cryo to exit and
# set CRYO_STATUS to its exit status.
wait_cryo_exit() {
	local cpid=$1 t=${2:-10} i
	CRYO_STATUS=
	for ((i = 0; i < t * 20; i++)); do
		if ! alive "$cpid"; then
			CRYO_STATUS=0
			wait "$cpid" 2>/dev/null || CRYO_STATUS=$?
			return 0
		fi
		sleep 0.05
	done
	fail "cryo (pid $cpid) did not exit within ${t}s: $(describe_pid "$cpid")"
	return 1
}

# stop_restored PID [SIGNAL EXPECTED_STATUS]: signal the restored process
# (default TERM, which scenario programs answer with exit 0) and check that
# cryo exits with the expected status and the pid is gone.
stop_restored() {
	local pid=$1 sig=${2:-TERM} want=${3:-0}
	kill -s "$sig" "$pid"
	wait_cryo_exit "$CRYO_PID" 10 || return 1
	if [ "$CRYO_STATUS" != "$want" ]; then
		fail "after SIG$sig to restored pid $pid, cryo -r exited $CRYO_STATUS, want $want"
		return 1
	fi
	wait_gone "$pid" 5 || return 1
}

# assert_single_ready LOG: a log belongs to one run of one program, so a
# second READY means the program was started afresh instead of restored.
assert_single_ready() {
	local n
	n=$(grep -cx READY "$1" || true)
	if [ "$n" -ne 1 ]; then
		fail "$1 has $n READY lines, want 1 (was the program re-run instead of restored?)"
		return 1
	fi
}

# check_pass PID LOG [TIMEOUT]: SIGUSR1 to PID, expect a new "PASS" line
# (and still a single READY in LOG).
check_pass() {
	local pid=$1 log=$2 t=${3:-$CHECK_TIMEOUT} i before after=0 line mask
	# the SIGUSR1 handler must be installed, else SIGUSR1 would kill it
	for ((i = 0; i < 100; i++)); do
		mask=$(proc_status_field "$pid" SigCgt)
		if [ -n "$mask" ] && (((0x$mask >> 9) & 1)); then
			break
		fi
		sleep 0.05
	done
	if [ -z "$mask" ] || ! (((0x$mask >> 9) & 1)); then
		fail "pid $pid does not catch SIGUSR1: $(describe_pid "$pid")"
		return 1
	fi
	before=$(grep -cE '^(PASS|FAIL) ' "$log" || true)
	kill -USR1 "$pid"
	for ((i = 0; i < t * 20; i++)); do
		after=$(grep -cE '^(PASS|FAIL) ' "$log" || true)
		if ((after > before)); then
			break
		fi
		sleep 0.05
	done
	if ((after <= before)); then
		fail "no PASS/FAIL line from pid $pid within ${t}s of SIGUSR1: $(describe_pid "$pid")"
		return 1
	fi
	line=$(grep -E '^(PASS|FAIL) ' "$log" | sed -n "$((before + 1))p")
	if [[ $line != "PASS "* ]]; then
		fail "check of pid $pid: $line"
		return 1
	fi
	assert_single_ready "$log"
}

# ---- files ----
count_lines() {
	wc -l <"$1"
}

# wait_lines FILE N [TIMEOUT]
wait_lines() {
	local f=$1 n=$2 t=${3:-5} i
	for ((i = 0; i < t * 20; i++)); do
		if [ -f "$f" ] && [ "$(count_lines "$f")" -ge "$n" ]; then
			return 0
		fi
		sleep 0.05
	done
	fail "$f has $(count_lines "$f" 2>/dev/null) lines, not $n, after ${t}s"
	return 1
}

# check_consecutive FILE: lines are exactly 0, 1, 2, ... (no gap, no repeat)
check_consecutive() {
	local f=$1 bad
	if [ ! -s "$f" ]; then
		fail "$f is missing or empty"
		return 1
	fi
	bad=$(awk '{ l[NR] = $0 }
		!bad && ($0 !~ /^[0-9]+$/ || $0 + 0 != NR - 1) { bad = NR }
		END {
			if (!bad) exit
			printf "line %d is \"%s\", want %d; lines %d..%d:", bad, l[bad], bad - 1, bad - 3, bad + 3
			for (i = bad - 3; i <= bad + 3; i++) if (i in l) printf " %s", l[i]
			printf "\n"
		}' "$f")
	if [ -n "$bad" ]; then
		fail "$f is not consecutive from 0: $bad"
		return 1
	fi
}

# flip_byte FILE OFFSET: invert the byte at OFFSET in place.
flip_byte() {
	local f=$1 off=$2 b
	b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	if [ -z "$b" ]; then
		fail "cannot read byte $off of $f"
		return 1
	fi
	# shellcheck disable=SC2059
	printf "\\x$(printf %02x $((b ^ 0xff)))" |
		dd of="$f" bs=1 seek="$off" count=1 conv=notrunc status=none
}

# ---- teardown ----
# Is PID one of ours (a scenario program or cryo)?
_is_ours() {
	local exe
	exe=$(readlink -f "/proc/$1/exe" 2>/dev/null) || return 1
	[ "$exe" = "$_REAL_CRYO" ] || [[ $exe == "$_REAL_PROGS"/* ]]
}

cryo_teardown() {
	local p
	for p in "${CRYO_TEST_PIDS[@]}"; do
		if [ -n "$p" ] && _is_ours "$p"; then
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
}

teardown() {
	cryo_teardown
}

# pidns_host_pid PID PGREP_ARGS...: the host pid of the restored process
# (found with pgrep PGREP_ARGS) that is PID one pid namespace down
# (cryo -r --pidns), once it is no longer traced; empty after 10 s
pidns_host_pid() {
	local pid=$1 i h
	shift
	for ((i = 0; i < 200; i++)); do
		for h in $(pgrep "$@"); do
			if [ "$(awk '/^NSpid:/ { print NF - 1 ":" $NF }' /proc/"$h"/status 2>/dev/null)" = "2:$pid" ] &&
			   [ "$(proc_status_field "$h" TracerPid)" = 0 ]; then
				echo "$h"
				return 0
			fi
		done
		sleep 0.05
	done
}
