#!/usr/bin/env bats
# Unit tests of the image and swapfile plumbing. `make` builds the binary;
# this file only runs it.

UNIT="$BATS_TEST_DIRNAME/../unit/image_swap_test"

@test "image and swapfile unit tests" {
	[ -x "$UNIT" ] || {
		echo "$UNIT is missing: run make first"
		return 1
	}
	run "$UNIT"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *"not ok"* ]]
}
