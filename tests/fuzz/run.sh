#!/bin/sh
# tests/fuzz/run.sh SECONDS: replay every regression input, then run each
# libFuzzer target for SECONDS seconds from the committed seed corpus
# (tests/fuzz/corpus) plus the local working corpus (tests/fuzz/work, not
# committed). Exits 1 on the first crash, naming the reproducer: copy it
# into tests/fuzz/regressions/ once fixed. Built by `make fuzz-build`.
set -u
cd "$(dirname "$0")"
secs=${1:-30}
targets=${FUZZ_TARGETS:-"validate image"}
status=0
mkdir -p work/crashes
for t in $targets; do
	bin=bin/fuzz_$t
	[ -x "$bin" ] || { echo "fuzz: $bin not built (make fuzz-build)" >&2; exit 1; }
	# regressions: a file is replayed by every target
	regs=$(find regressions -type f ! -name '*.md' 2>/dev/null | sort)
	if [ -n "$regs" ]; then
		# shellcheck disable=SC2086
		if ! "$bin" -runs=1 $regs >work/regress-$t.log 2>&1; then
			echo "fuzz: $t: a regression input crashes again:" >&2
			tail -n 40 work/regress-$t.log >&2
			exit 1
		fi
		echo "fuzz: $t: $(echo "$regs" | wc -l) regression inputs replayed, no crash"
	fi
	mkdir -p "work/$t"
	FUZZ_NO_SHOW=${FUZZ_NO_SHOW:-} "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="work/crashes/$t-" \
		"work/$t" corpus >"work/fuzz-$t.log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "work/fuzz-$t.log" | tail -n1)
	cov=$(grep -aoE 'cov: [0-9]+' "work/fuzz-$t.log" | tail -n1)
	if [ $rc -ne 0 ]; then
		echo "fuzz: $t: CRASH (exit $rc) after ${runs:-?} runs; reproducer:" >&2
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' \
			"work/fuzz-$t.log" >&2
		tail -n 60 "work/fuzz-$t.log" >&2
		status=1
	else
		echo "fuzz: $t: ${secs}s, ${runs:-?} runs, $cov, no crash"
	fi
done
exit $status
