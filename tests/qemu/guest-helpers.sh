# SPDX-License-Identifier: GPL-2.0 OR MIT
# guest-helpers.sh - busybox-sh versions of tests/bats/helpers.bash for the
# guest suite (sourced by guest-tests.sh). They run the real cryo
# (/usr/local/bin/cryo, static) on the static scenario programs in /progs.
#
# Scenario programs (tests/progs, see scenario.h) print "READY" once set up
# and answer SIGUSR1 with one line "PASS <name>" or "FAIL <name>: ...".
# start_prog runs one with stdout+stderr through a pipe into `cat >> LOG`
# (a pipe from outside, as in the bats suite); after a restore cryo hands
# its own stdout/stderr (LOG, appended) to the restored process.
#
# Helpers that fail print why (and the log tail) and return 1; the suite's
# run() shows that output as "#" lines under "not ok".

CRYO=/usr/local/bin/cryo
PROGS=/progs
: "${READY_TIMEOUT:=15}"	# seconds; a whole run takes well under 1 s
: "${RESTORE_TIMEOUT:=15}"	# under TCG: keep failures from eating the
: "${CHECK_TIMEOUT:=10}"	# boot's timeout (run.sh, 180 s)
: "${CRYO_TIMEOUT:=30}"

D=		# the current test's directory (fresh_dir)
LOG=		# its program log
PROG_PID=	# set by start_prog
CRYO_PID=	# set by restore_bg
CRYO_STATUS=	# set by wait_cryo_exit
ORIG_EXE=	# set by cryo_dump
ORIG_SIGCGT=
OUR_PIDS=	# killed by cleanup_pids if still ours

fresh_dir() {	# fresh_dir NAME: D=/tmp/cr/NAME (new, empty), LOG=$D/prog.log
	D=/tmp/cr/$1
	rm -rf "$D"
	mkdir -p "$D"
	LOG=$D/prog.log
	: > "$LOG"
}

show_log() {
	[ -n "$LOG" ] && [ -f "$LOG" ] || return 0
	echo "--- tail of $LOG:"
	tail -n 20 "$LOG"
}

fail() {
	echo "FAIL: $*"
	show_log
	return 1
}

# ---- /proc ----
proc_state() {	# PID -> one letter, empty if gone
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	s=${s##*") "}
	echo "${s%% *}"
}

status_field() {	# PID FIELD -> the rest of that /proc/PID/status line
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null | head -n 1
}

alive() {
	local s
	s=$(proc_state "$1")
	[ -n "$s" ] && [ "$s" != Z ]
}

describe_pid() {
	[ -e "/proc/$1" ] || { echo "pid $1: gone"; return 0; }
	echo "pid $1: state=$(proc_state "$1") ppid=$(status_field "$1" PPid)" \
		"tracer=$(status_field "$1" TracerPid) exe=$(readlink "/proc/$1/exe")" \
		"uid=$(status_field "$1" Uid | tr '\t' ' ')" \
		"syscall=$(cut -d' ' -f1 "/proc/$1/syscall" 2>/dev/null)"
}

# pids_running EXE: pids whose /proc/PID/exe is EXE
pids_running() {
	local f p
	for f in /proc/[0-9]*/exe; do
		[ "$(readlink "$f" 2>/dev/null)" = "$1" ] || continue
		p=${f#/proc/}
		echo "${p%/exe}"
	done
}

# cleanup_pids: SIGKILL what this test started (cryo, scenario programs)
cleanup_pids() {
	local p exe
	for p in $OUR_PIDS; do
		exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		case $exe in
		"$CRYO"|"$PROGS"/*|/tmp/cr/*) kill -KILL "$p" 2>/dev/null ;;
		esac
	done
	OUR_PIDS=
}

# ---- launching ----
# start_prog LOG PROG [ARGS...]: PROG (a name in $PROGS, or a path) in the
# background, stdin from $PROG_STDIN (default /dev/null), stdout+stderr
# through a pipe into `cat >> LOG`; sets PROG_PID and waits for READY.
start_prog() {
	local log=$1 prog=$2 n=250
	shift 2
	case $prog in /*) ;; *) prog=$PROGS/$prog ;; esac
	rm -f "$D/.pid"
	# sh -c writes its own pid, then becomes the program
	sh -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$D/.pid" "$prog" "$@" \
		< "${PROG_STDIN:-/dev/null}" 2>&1 | cat >> "$log" &
	while [ ! -s "$D/.pid" ] && [ $n -gt 0 ]; do
		usleep 20000
		n=$((n - 1))
	done
	PROG_PID=$(cat "$D/.pid" 2>/dev/null)
	[ -n "$PROG_PID" ] || { fail "$prog did not start"; return 1; }
	OUR_PIDS="$OUR_PIDS $PROG_PID"
	wait_ready "$PROG_PID" "$log"
}

wait_ready() {	# wait_ready PID LOG [SECONDS]
	local n=$((${3:-$READY_TIMEOUT} * 20))
	while [ $n -gt 0 ]; do
		grep -qx READY "$2" && return 0
		if ! alive "$1"; then
			usleep 200000
			fail "pid $1 exited before printing READY"
			return 1
		fi
		usleep 50000
		n=$((n - 1))
	done
	fail "pid $1 printed no READY: $(describe_pid "$1")"
}

wait_log() {	# wait_log LOG ERE [SECONDS]
	local n=$((${3:-10} * 20))
	while [ $n -gt 0 ]; do
		grep -qE -- "$2" "$1" && return 0
		usleep 50000
		n=$((n - 1))
	done
	fail "no line matching /$2/ in $1"
}

wait_syscall() {	# wait_syscall PID ERE [SECONDS]: blocked in that syscall nr
	local n=$((${3:-10} * 20)) nr=
	while [ $n -gt 0 ]; do
		nr=$(cut -d' ' -f1 "/proc/$1/syscall" 2>/dev/null)
		echo "$nr" | grep -qxE -- "$2" && return 0
		usleep 50000
		n=$((n - 1))
	done
	fail "pid $1 not blocked in syscall /$2/ (last '$nr'): $(describe_pid "$1")"
}

wait_gone() {	# wait_gone PID [SECONDS]: gone (and reaped)
	local n=$((${2:-10} * 20))
	while [ $n -gt 0 ]; do
		[ -e "/proc/$1" ] || return 0
		# any foreground command lets the shell reap its zombies
		/bin/sh -c : 
		usleep 50000
		n=$((n - 1))
	done
	fail "pid $1 still exists: $(describe_pid "$1")"
}

# ---- cryo ----
cryo_dump() {	# cryo_dump PID IMG [ARGS...]
	local pid=$1 img=$2 rc
	shift 2
	ORIG_EXE=$(readlink "/proc/$pid/exe")
	ORIG_SIGCGT=$(status_field "$pid" SigCgt)
	timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$img" "$@" > "$D/dump.out" 2>&1
	rc=$?
	if [ $rc != 0 ]; then
		fail "cryo -p $pid -f $img $* exited $rc: $(cat "$D/dump.out")"
		return 1
	fi
	[ -s "$img" ] || { fail "cryo -p $pid exited 0 but $img is missing or empty"; return 1; }
}

# dump_kill PID IMG: dump --kill, wait until the pid is free; then chmod
# the image to $IMG_MODE if set
IMG_MODE=
dump_kill() {
	cryo_dump "$1" "$2" --kill || return 1
	if [ -n "$IMG_MODE" ]; then
		chmod "$IMG_MODE" "$2" || return 1
	fi
	wait_gone "$1" 10
}

# restore_bg IMG LOG PID [ARGS...]: cryo -r -f IMG ARGS in the background,
# stdin $RESTORE_STDIN (default /dev/null), stdout+stderr appended to LOG;
# sets CRYO_PID and waits until PID is back as cryo's child.
restore_bg() {
	local img=$1 log=$2 pid=$3
	shift 3
	"$CRYO" -r -f "$img" "$@" < "${RESTORE_STDIN:-/dev/null}" >> "$log" 2>&1 &
	CRYO_PID=$!
	OUR_PIDS="$OUR_PIDS $CRYO_PID"
	wait_restored "$pid" "$CRYO_PID"
}

# wait_restored PID PARENT [inplace]: PID exists with that parent,
# untraced, not stopped, runs the dumped exe and catches the dumped
# signals. "inplace": PID is the process the shell started (./IMAGE), so
# it must never be gone.
wait_restored() {
	local pid=$1 ppid=$2 n=$((RESTORE_TIMEOUT * 20)) s why=
	while [ $n -gt 0 ]; do
		if ! alive "$ppid"; then
			wait_cryo_exit "$ppid" 1
			fail "parent $ppid exited (status $CRYO_STATUS) before pid $pid was restored"
			return 1
		fi
		s=$(proc_state "$pid")
		if [ "$3" = inplace ] && { [ -z "$s" ] || [ "$s" = Z ]; }; then
			usleep 200000
			fail "pid $pid (./IMAGE) exited instead of becoming the restored program"
			return 1
		fi
		why=
		if [ -z "$s" ]; then
			why="pid $pid does not exist"
		elif [ "$(status_field "$pid" PPid)" != "$ppid" ]; then
			why="parent is not $ppid"
		elif [ "$(status_field "$pid" TracerPid)" != 0 ]; then
			why="still traced"
		elif [ "$s" = T ] || [ "$s" = t ] || [ "$s" = Z ]; then
			why="state $s"
		elif [ -n "$ORIG_EXE" ] && [ "$(readlink "/proc/$pid/exe")" != "$ORIG_EXE" ]; then
			why="exe is not $ORIG_EXE"
		elif [ -n "$ORIG_SIGCGT" ] && [ "$(status_field "$pid" SigCgt)" != "$ORIG_SIGCGT" ]; then
			why="SigCgt is not $ORIG_SIGCGT"
		fi
		[ -z "$why" ] && return 0
		usleep 50000
		n=$((n - 1))
	done
	fail "pid $pid not restored ($why): $(describe_pid "$pid")"
}

wait_cryo_exit() {	# wait_cryo_exit PID [SECONDS]: CRYO_STATUS
	local n=$((${2:-20} * 20))
	CRYO_STATUS=
	while [ $n -gt 0 ]; do
		if ! alive "$1"; then
			wait "$1" 2>/dev/null
			CRYO_STATUS=$?
			return 0
		fi
		usleep 50000
		n=$((n - 1))
	done
	fail "pid $1 did not exit: $(describe_pid "$1")"
}

# stop_restored PID [SIGNAL WANT]: signal it (TERM: scenario programs exit
# 0), cryo -r must exit WANT and the pid be gone
stop_restored() {
	kill -"${2:-TERM}" "$1"
	wait_cryo_exit "$CRYO_PID" 20 || return 1
	[ "$CRYO_STATUS" = "${3:-0}" ] ||
		{ fail "after SIG${2:-TERM} to pid $1, cryo -r exited $CRYO_STATUS, want ${3:-0}"; return 1; }
	wait_gone "$1" 10
}

assert_single_ready() {	# a second READY = started afresh, not restored
	local n
	n=$(grep -cx READY "$1")
	[ "$n" = 1 ] || { fail "$1 has $n READY lines, want 1"; return 1; }
}

# check_pass PID LOG: SIGUSR1, expect one new "PASS" line
check_pass() {
	local pid=$1 log=$2 n=100 mask='' before after=0 line
	while [ $n -gt 0 ]; do	# the SIGUSR1 handler must be installed
		mask=$(status_field "$pid" SigCgt)
		[ -n "$mask" ] && [ $(((0x$mask >> 9) & 1)) = 1 ] && break
		usleep 50000
		n=$((n - 1))
	done
	[ $n -gt 0 ] || { fail "pid $pid does not catch SIGUSR1: $(describe_pid "$pid")"; return 1; }
	before=$(grep -cE '^(PASS|FAIL) ' "$log")
	kill -USR1 "$pid"
	n=$((CHECK_TIMEOUT * 20))
	while [ $n -gt 0 ]; do
		after=$(grep -cE '^(PASS|FAIL) ' "$log")
		[ "$after" -gt "$before" ] && break
		usleep 50000
		n=$((n - 1))
	done
	[ "$after" -gt "$before" ] ||
		{ fail "no PASS/FAIL from pid $pid after SIGUSR1: $(describe_pid "$pid")"; return 1; }
	line=$(grep -E '^(PASS|FAIL) ' "$log" | sed -n "$((before + 1))p")
	case $line in
	"PASS "*) ;;
	*) fail "check of pid $pid: $line"; return 1 ;;
	esac
	assert_single_ready "$log"
}

# ---- files ----
count_lines() { wc -l < "$1"; }

wait_lines() {	# wait_lines FILE N [SECONDS]
	local n=$((${3:-15} * 20))
	while [ $n -gt 0 ]; do
		[ -f "$1" ] && [ "$(count_lines "$1")" -ge "$2" ] && return 0
		usleep 50000
		n=$((n - 1))
	done
	fail "$1 has $(count_lines "$1" 2>/dev/null) lines, not $2"
}

check_consecutive() {	# FILE: lines are exactly 0, 1, 2, ...
	local bad
	[ -s "$1" ] || { fail "$1 is missing or empty"; return 1; }
	bad=$(awk '{ l[NR] = $0 }
		!bad && ($0 !~ /^[0-9]+$/ || $0 + 0 != NR - 1) { bad = NR }
		END {
			if (!bad) exit
			printf "line %d is \"%s\", want %d; lines around it:", bad, l[bad], bad - 1
			for (i = bad - 3; i <= bad + 3; i++) if (i in l) printf " %s", l[i]
		}' "$1")
	[ -z "$bad" ] || { fail "$1 is not consecutive from 0: $bad"; return 1; }
}

flip_byte() {	# flip_byte FILE OFFSET
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	[ -n "$b" ] || { fail "cannot read byte $2 of $1"; return 1; }
	# shellcheck disable=SC2059
	printf "\\$(printf %03o $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}
