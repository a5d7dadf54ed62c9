#!/bin/bash
# make bench: run the benchmark driver, then plot time vs memory size.
# Environment: CRYO, CRIU, BENCH_QUICK, BENCH_RUNS, BENCH_SIZES, BENCH_ONLY,
# BENCH_DIR (see bench/bench.c).
set -euo pipefail
cd "$(dirname "$0")/.."
results=bench/results
mkdir -p "$results"
rm -f "$results/mem.dat" "$results/bench.png"
status=0
bench/bin/bench -o "$results" || status=$?
# the startup cache (issue #11): cold vs cached start of a Python program
bench/bin/startup -o "$results" || status=$?
grep -q "^[0-9]" "$results/mem.dat" 2>/dev/null || exit "$status"	# no memory workload ran
if ! command -v gnuplot >/dev/null 2>&1; then
	echo "gnuplot is not installed: no plot (apt-get install gnuplot-nox)"
	exit "$status"
fi
criu_dump= criu_restore=
if [ -n "${CRIU:-}" ]; then
	criu_dump=", '$results/mem.dat' using 1:(\$4*1000) with linespoints lw 2 title 'CRIU'"
	criu_restore=", '$results/mem.dat' using 1:(\$7*1000) with linespoints lw 2 title 'CRIU'"
fi
gnuplot <<GP
set terminal pngcairo size 1200,500 font ",10"
set output '$results/bench.png'
set multiplot layout 1,2 title "cryo bench ($(git describe --always --dirty 2>/dev/null || echo '?'), $(date +%F)): medians"
set logscale xy
set grid
set xlabel 'memory (MiB, non-compressible)'
set ylabel 'time (ms)'
set key top left
set title 'dump (exec to exit, incl. fsync)'
plot '$results/mem.dat' using 1:(\$2*1000) with linespoints lw 2 title 'cryo', \
     '$results/mem.dat' using 1:(\$3*1000) with linespoints lw 2 title 'baseline: ptrace + process\_vm\_readv + write + fsync' $criu_dump
set title 'eager restore (exec until the process answers)'
plot '$results/mem.dat' using 1:(\$5*1000) with linespoints lw 2 title 'cryo', \
     '$results/mem.dat' using 1:(\$6*1000) with linespoints lw 2 title 'baseline: populate + read() from a file' $criu_restore
unset multiplot
GP
echo "$results/bench.png written"
exit "$status"
