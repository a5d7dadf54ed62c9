#!/usr/bin/env bats
# The README's main job (make demo) keeps working: the counter is dumped,
# killed, restored with its pid, and counts on without a gap or a repeat.

@test "demo: a live counter is dumped, killed, restored and continues" {
	cd "$BATS_TEST_DIRNAME/../.."
	run timeout 60 ./demo/demo.sh </dev/null 3>&-
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"restored pid: ticker"* ]]
	run awk '/^tick / { n++; if ($2 != n) { print "tick", $2, "at", n; exit 1 } }
		 END { if (n < 8) { print n, "ticks"; exit 1 } }' <<<"$output"
	echo "$output"
	[ "$status" -eq 0 ]
}
