#!/bin/bash
# tests/soak/soak.sh: dump/restore soak (issue #9; `make soak`).
#
# tests/progs/soakload (a parent with a reader and a writer thread, and a
# child feeding it a numbered stream through a pipe; the writer appends the
# stream to a file) is dumped with --kill and restored, SOAK_CYCLES times
# (default 200), each time after it ran SOAK_RUN_MS ms (default 150). After
# every cycle:
#  - the output file holds 0, 1, 2, ... with no gap and no repeat, and the
#    restored workload has moved it on;
#  - the workload answers its own check (PASS soakload: no out-of-order record
#    in either thread, child alive, 3 threads);
#  - no process leaks: exactly the 2 workload processes and the 1 restoring
#    cryo live in this session, nothing else;
#  - no fd leaks: the restoring cryo and both workload processes hold the same
#    fds (numbers and kinds) as after the first restore;
#  - no file leaks: the work directory holds the same names as after the
#    first cycle (no temporary image or swapfile left behind);
#  - the swapfile does not grow: each cycle deletes the previous snapshot
#    (cryo snapshots --delete), so its allocated size settles (its apparent
#    size grows: slots are punched out, never reused; see swap.c).
# Prints one line per failure and, at the end, "soak: N cycles, M failures
# (S s)"; exits 1 if any cycle failed or a cycle could not run at all.
#
# Environment: CRYO (default tools/cryo/cryo), SOAK_CYCLES, SOAK_RUN_MS,
# SOAK_DIR (work directory, default a new /tmp/cryo-soak.*; removed on success
# unless SOAK_KEEP=1), SOAK_VERBOSE=1 (a line per cycle).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CRYO=$(readlink -f "${CRYO:-$ROOT/tools/cryo/cryo}")
LOAD=$(readlink -f "$ROOT/tests/progs/soakload")
CYCLES=${SOAK_CYCLES:-200}
RUN_MS=${SOAK_RUN_MS:-150}
REC=11	# bytes per record of the stream

# a session of our own, so that "every process of the soak" is countable
if [ "$(ps -o sid= -p $$ | tr -d ' ')" != $$ ]; then
	exec setsid -w "$0" "$@"
fi
# the bash tool and some CI shells leak fds into children: cryo would dump them
for f in /proc/$$/fd/*; do
	fd=${f##*/}
	[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
done

[ -x "$CRYO" ] || { echo "soak: $CRYO is not built (make cryo)"; exit 1; }
[ -x "$LOAD" ] || { echo "soak: $LOAD is not built (make progs)"; exit 1; }
W=${SOAK_DIR:-$(mktemp -d /tmp/cryo-soak.XXXXXX)}
mkdir -p "$W"
OUT=$W/out.txt IMG=$W/img.cryo LLOG=$W/load.log	# LLOG: workload and cryo -r output
failures=0 cycle=0 pid='' cpid='' fatal=0
t0=$(date +%s.%N)

fail() {
	echo "soak: cycle $cycle: $*"
	((failures++))
}

die() {
	fail "$* (cannot go on)"
	fatal=1
	finish
}

cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	[ -n "$cpid" ] && kill -KILL "$cpid" 2>/dev/null
	pkill -KILL -s $$ -f "$LOAD" 2>/dev/null
	exec 3>&-	# ends the log's cat
	wait 2>/dev/null
}

finish() {
	local t1
	cleanup
	t1=$(date +%s.%N)
	if [ "$failures" -ne 0 ] || [ "$fatal" -ne 0 ] || [ -n "${SOAK_KEEP:-}" ]; then
		echo "soak: work directory kept: $W"
	else
		rm -rf "$W"
	fi
	printf 'soak: %d cycles, %d failures (%s s)\n' "$done_cycles" "$failures" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')"
	[ "$failures" -eq 0 ] && [ "$done_cycles" -eq "$CYCLES" ]
	exit
}
done_cycles=0
trap 'fatal=1; finish' INT TERM

state() {	# PID -> state letter, empty if gone
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	s=${s##*) }
	echo "${s%% *}"
}

# session processes (not zombies) whose exe is $1
count_exe() {
	local n=0 p s e
	for p in $(ps -s $$ -o pid=); do
		e=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		[ "$e" = "$1" ] || continue
		s=$(state "$p")
		[ -n "$s" ] && [ "$s" != Z ] && ((n++))
	done
	echo "$n"
}

# other (non-zombie) session processes: neither this shell, its subshells,
# the log's cat, the workload nor cryo
count_other() {
	local n=0 p s e
	for p in $(ps -s $$ -o pid=); do
		e=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		case $e in "$LOAD" | "$CRYO" | */bash | */ps | */cat) continue ;; esac
		s=$(state "$p")
		[ -n "$s" ] && [ "$s" != Z ] && { ((n++)); echo "$p $e" >&2; }
	done
	echo "$n"
}

# fds of PID: "number kind" per line, pipe/socket inode numbers dropped
fds_of() {
	local f t
	for f in /proc/"$1"/fd/*; do
		t=$(readlink "$f" 2>/dev/null) || continue
		echo "${f##*/} ${t%%:\[*}"
	done | sort -n
}

child_of() {	# PID -> its one child's pid
	local c
	c=$(cat /proc/"$1"/task/*/children 2>/dev/null)
	echo $c
}

# the stream in OUT: every record the next number; sets NREC
check_stream() {
	local size bad
	size=$(stat -c %s "$OUT")
	if ((size % REC)); then
		fail "$OUT: size $size is not a whole number of records"
	fi
	NREC=$((size / REC))
	bad=$(awk -v n=0 '{ if ($0 + 0 != n || length($0) != 10) { printf "record %d is \"%s\"", n, $0; exit } n++ }' "$OUT")
	[ -z "$bad" ] || fail "stream broken: $bad (gap or repeat)"
}

# wait until the workload printed a new PASS/FAIL line
check_prog() {
	local n i
	n=$(grep -cE '^(PASS|FAIL) ' "$LLOG" 2>/dev/null)
	kill -USR1 "$pid" 2>/dev/null || { fail "pid $pid gone before its check"; return; }
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -cE '^(PASS|FAIL) ' "$LLOG")" -gt "$n" ] && break
		sleep 0.05
	done
	local last
	last=$(grep -E '^(PASS|FAIL) ' "$LLOG" | tail -n1)
	[ "$(grep -cE '^(PASS|FAIL) ' "$LLOG")" -gt "$n" ] || { fail "no check answer from pid $pid"; return; }
	[[ $last == "PASS soakload" ]] || fail "workload check: $last"
}

# wait up to 5 s for CMD's output to equal WANT
settle() {
	local want=$1 i got
	shift
	for ((i = 0; i < 100; i++)); do
		got=$("$@" 2>/dev/null)
		[ "$got" = "$want" ] && return 0
		sleep 0.05
	done
	"$@" >/dev/null		# the stray processes, on stderr
	echo "$got"
	return 1
}

# ---- start
# the workload's stdout and stderr: one pipe into the log for the whole soak
# (restored onto cryo -r's, which gets the same pipe)
exec 3> >(exec cat >>"$LLOG")
(exec "$LOAD" "$OUT" </dev/null >&3 2>&1 3>&-) &
pid=$!
disown "$pid"	# no job message when the first dump --kill kills it
for ((i = 0; i < 100; i++)); do
	grep -qx READY "$LLOG" 2>/dev/null && break
	sleep 0.05
done
grep -qx READY "$LLOG" || die "soakload printed no READY"
base_files='' base_cryo_fds='' base_parent_fds='' base_child_fds='' last_nrec=0 swap0=''

for ((cycle = 1; cycle <= CYCLES; cycle++)); do
	sleep "$(printf '%d.%03d' $((RUN_MS / 1000)) $((RUN_MS % 1000)))"
	if ! out=$(timeout 60 "$CRYO" -p "$pid" -f "$IMG" --kill 2>&1); then
		die "cryo -p $pid --kill failed: $out"
	fi
	# the workload is gone, and with it (if restored) its cryo
	for ((i = 0; i < 100; i++)); do
		[ -e "/proc/$pid" ] && [ "$(state "$pid")" != Z ] || break
		sleep 0.05
	done
	[ -n "$cpid" ] && { wait "$cpid" 2>/dev/null; cpid=; }
	wait "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		[ -e "/proc/$pid" ] || break
		sleep 0.05
	done
	[ -e "/proc/$pid" ] && die "pid $pid still exists after the dump --kill"
	check_stream
	((NREC > last_nrec)) || fail "the stream did not move on: $NREC records, $last_nrec before"
	last_nrec=$NREC

	# keep one snapshot: the one this image uses
	swap=$(ls "$W"/cryo-*.swap 2>/dev/null | head -n1)
	if [ -n "$swap" ]; then
		snaps=$("$CRYO" snapshots "$swap" 2>&1 | awk '$1 ~ /^[0-9]+$/ { print $1 }')
		cur=$("$CRYO" show "$IMG" 2>/dev/null | sed -n 's/.*snapshot \([0-9]*\).*/\1/p' | head -n1)
		for s in $snaps; do
			[ "$s" = "$cur" ] && continue
			out=$("$CRYO" snapshots --delete "$s" "$swap" 2>&1) || fail "cryo snapshots --delete $s: $out"
		done
	fi

	# restore; the restored workload is this shell's grandchild
	(exec "$CRYO" -r -f "$IMG" </dev/null >&3 2>&1 3>&-) &
	cpid=$!
	for ((i = 0; i < 200; i++)); do
		[ "$(awk '$1 == "PPid:" { print $2 }' /proc/"$pid"/status 2>/dev/null)" = "$cpid" ] &&
			[ "$(awk '$1 == "TracerPid:" { print $2 }' /proc/"$pid"/status 2>/dev/null)" = 0 ] && break
		[ -e "/proc/$cpid" ] && [ "$(state "$cpid")" != Z ] || break
		sleep 0.05
	done
	if [ "$(awk '$1 == "PPid:" { print $2 }' /proc/"$pid"/status 2>/dev/null)" != "$cpid" ]; then
		die "pid $pid not restored: $(tail -n 3 "$LLOG")"
	fi
	check_prog
	child=$(child_of "$pid")
	[ -n "$child" ] || fail "the restored workload has no child"

	# leaks
	n=$(settle 2 count_exe "$LOAD") || fail "$n workload processes, want 2"
	n=$(settle 1 count_exe "$CRYO") || fail "$n cryo processes, want 1 (the restorer)"
	n=$(settle 0 count_other) || fail "$n other processes in the soak's session"
	files=$(ls -A "$W")
	cfds=$(fds_of "$cpid") pfds=$(fds_of "$pid") kfds=$(fds_of "$child")
	if [ "$cycle" -eq 1 ]; then
		base_files=$files base_cryo_fds=$cfds base_parent_fds=$pfds base_child_fds=$kfds
	else
		[ "$files" = "$base_files" ] ||
			fail "files in $W changed: $(diff <(echo "$base_files") <(echo "$files") | grep '^[<>]' | tr '\n' ' ')"
		[ "$cfds" = "$base_cryo_fds" ] ||
			fail "cryo -r fds changed: $(diff <(echo "$base_cryo_fds") <(echo "$cfds") | grep '^[<>]' | tr '\n' ' ')"
		[ "$pfds" = "$base_parent_fds" ] ||
			fail "workload fds changed: $(diff <(echo "$base_parent_fds") <(echo "$pfds") | grep '^[<>]' | tr '\n' ' ')"
		[ "$kfds" = "$base_child_fds" ] ||
			fail "workload child fds changed: $(diff <(echo "$base_child_fds") <(echo "$kfds") | grep '^[<>]' | tr '\n' ' ')"
	fi
	# allocated, not apparent size: the slot space only grows, freed slots
	# are punched out (swap.c)
	size=$(stat -c '%b * %B' "$swap" 2>/dev/null) size=$((size))
	[ "$cycle" -eq 10 ] && swap0=$size
	if [ -n "$swap0" ] && [ "$size" -gt $((swap0 * 2 + 1048576)) ]; then
		fail "swapfile grew from $swap0 to $size bytes allocated"
		swap0=$size
	fi
	done_cycles=$cycle
	[ -n "${SOAK_VERBOSE:-}" ] &&
		echo "soak: cycle $cycle: $NREC records, swapfile $size bytes, cryo fds $(echo "$cfds" | wc -l)"
done
echo "soak: $last_nrec records in order; swapfile $size bytes allocated ($(stat -c %s "$swap") apparent); files: $(echo $base_files)"
cycle=end
kill -TERM "$pid"
for ((i = 0; i < 100; i++)); do
	[ -e "/proc/$cpid" ] && [ "$(state "$cpid")" != Z ] || break
	sleep 0.05
done
wait "$cpid"
rc=$?
[ "$rc" -eq 0 ] || fail "cryo -r exited $rc after SIGTERM to the workload, want 0"
cpid='' pid=''
finish
