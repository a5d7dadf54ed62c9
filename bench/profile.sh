#!/bin/bash
# Profile cryo's dump and restore of an N MiB workload (the commands quoted
# in bench/REPORT.md). Needs perf and strace; builds bench/bin/ first.
#
#   bench/profile.sh [MIB] [OUTDIR]        CRYO=path to profile another cryo
#
# Runs the benchmark driver on the one workload mem-MIB (one warm-up run,
# then one measured run; the driver verifies the restored memory) three
# times: under `perf stat` (software counters: this VM has no hardware
# ones), under `strace -c` (syscall counts: ptrace requests are the
# injection round trips; -f for the dump only, as the restored child must
# be traced by cryo itself) and under `perf record -g -e cpu-clock`.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-512}
out=$(realpath -m "${2:-bench/results/profile-${mib}M}")
mkdir -p "$out"
make -s bench/bin/bench bench/bin/workload bench/bin/basedump bench/bin/baserestore
export BENCH_ONLY=mem-${mib}M BENCH_SIZES=$mib BENCH_RUNS=1
drive() { bench/bin/bench -o "$out/driver" >"$out/driver-$1.txt" 2>&1; }

drive plain
BENCH_DUMP_PREFIX="perf stat -e task-clock,page-faults,context-switches,cpu-migrations -o $out/dump.stat --" \
BENCH_RESTORE_PREFIX="perf stat -e task-clock,page-faults,context-switches,cpu-migrations -o $out/restore.stat --" \
	drive stat
BENCH_DUMP_PREFIX="strace -f -c -o $out/dump.strace --" \
BENCH_RESTORE_PREFIX="strace -c -o $out/restore.strace --" \
	drive strace
BENCH_DUMP_PREFIX="perf record -q -g -e cpu-clock -o $out/dump.perf --" \
BENCH_RESTORE_PREFIX="perf record -q -g -e cpu-clock -o $out/restore.perf --" \
	drive record
{
	echo "== cryo ${mib} MiB: driver (1 run after 1 warm-up)"
	sed -n '/^DUMP/,/^mem/p;/^RESTORE/,/^mem/p' "$out/driver-plain.txt"
	for p in dump restore; do
		echo "== $p: perf stat"
		sed -n '/Performance counter/,$p' "$out/$p.stat" | grep -v '^$'
		echo "== $p: strace -c (top)"
		head -16 "$out/$p.strace" || true
		echo "== $p: perf record, self time by symbol (top)"
		perf report -i "$out/$p.perf" --stdio --no-children --comms cryo --sort dso,symbol 2>/dev/null |
			grep -E '^ +[0-9]' | head -25 || true
	done
} > "$out/summary.txt"
cat "$out/summary.txt"
