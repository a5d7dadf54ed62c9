#!/usr/bin/env bats
# A short soak (issue #9): tests/soak/soak.sh for SOAK_CYCLES (default here
# 10) dump --kill / restore cycles of tests/progs/soakload; `make soak` runs
# the full 200. Every cycle checks the workload's numbered output stream for
# gaps and repeats and looks for leaked processes, fds and files.

: "${BATS_TEST_TIMEOUT:=300}"

@test "soak: ${SOAK_CYCLES:-10} dump/restore cycles of a threaded two-process pipe workload: no gap, no repeat, no leak" {
	local root
	root=$(readlink -f "$BATS_TEST_DIRNAME/../..")
	run env CRYO="${CRYO:-$root/tools/cryo/cryo}" SOAK_CYCLES="${SOAK_CYCLES:-10}" \
		"$root/tests/soak/soak.sh" 3>&-
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qE "^soak: ${SOAK_CYCLES:-10} cycles, 0 failures " <<<"$output"
}
