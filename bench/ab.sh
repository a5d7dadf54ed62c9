#!/bin/bash
# A/B comparison of cryo builds (for bench/proposals/): each round runs the
# benchmark driver once per variant, in rotating order, each with its own
# same-run baselines; prints per workload the median over all measured runs
# (BENCH_RUNS per round, default 2) of cryo's dump/restore/freeze times and
# of cryo/baseline within the same run.
#
#   bench/ab.sh [-n ROUNDS] NAME=/path/to/cryo NAME=/path/to/cryo ...
#
# BENCH_ONLY and BENCH_SIZES select workloads as for `make bench`
# (default here: mem-64M,mem-512M,mem-1024M). A variant that needs an
# environment variable can be a two-line wrapper script.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5
if [ "${1:-}" = -n ]; then rounds=$2; shift 2; fi
[ $# -ge 1 ] || { sed -n '2,12p' "$0"; exit 2; }
export BENCH_SIZES=${BENCH_SIZES:-64,512,1024}
export BENCH_ONLY=${BENCH_ONLY:-$(echo "$BENCH_SIZES" | sed 's/\([0-9]*\)/mem-\1M/g')}
export BENCH_RUNS=${BENCH_RUNS:-2}	# both orders of cryo and baseline
make -s bench/bin/bench bench/bin/workload bench/bin/basedump bench/bin/baserestore
out=bench/results/ab
rm -rf "$out"; mkdir -p "$out"
variants=("$@")
all="$out/all.csv"
echo "variant,round,workload,tool,metric,value" > "$all"	# round: ROUND.RUN
for ((r = 0; r < rounds; r++)); do
	for ((i = 0; i < ${#variants[@]}; i++)); do
		v=${variants[$(( (i + r) % ${#variants[@]} ))]}
		name=${v%%=*}
		CRYO=${v#*=} bench/bin/bench -o "$out/$name-$r" > "$out/$name-$r.txt" 2>&1 || true
		awk -F, -v n="$name" -v r="$r" 'NR > 1 { print n "," r "." $5 "," $1 "," $3 "," $4 "," $6 }' \
			"$out/$name-$r/runs.csv" >> "$all"
		echo -n .
	done
done
echo
# per variant, workload, round and run: cryo value and cryo/baseline; then medians over rounds
awk -F, 'NR > 1 { k = $1 "," $2 "," $3 "," $5; v[k "," $4] = $6; keys[k] = 1 }
	END { for (k in keys) { split(k, a, ",");
		c = v[k ",cryo"]; b = v[k ",baseline"];
		if (c != "") print a[1] "," a[3] "," a[4] "," c "," ((b != "" && b > 0) ? c / b : "") } }' "$all" |
	sort -t, -k1,1 -k2,2 -k3,3 > "$out/pairs.csv"
median() { sort -g | awk '{ x[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print x[(NR + 1) / 2]; else print (x[NR / 2] + x[NR / 2 + 1]) / 2 }'; }
printf '%-10s %-11s %-15s %12s %12s   (medians, %d rounds x %d runs)\n' variant workload metric "cryo ms" "cryo/base" "$rounds" "$BENCH_RUNS"
cut -d, -f1-3 "$out/pairs.csv" | sort -u | while IFS=, read -r var wl m; do
	[ "$m" = bytes ] && continue
	sel=$(awk -F, -v a="$var" -v b="$wl" -v c="$m" '$1 == a && $2 == b && $3 == c' "$out/pairs.csv")
	ms=$(echo "$sel" | cut -d, -f4 | median)
	ratio=$(echo "$sel" | cut -d, -f5 | grep . | median || echo -)
	printf '%-10s %-11s %-15s %12.1f %12s\n' "$var" "$wl" "$m" "$(echo "$ms * 1000" | bc -l)" "$ratio"
done | sort -k2,2 -k3,3 -k1,1
