#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0 OR MIT
# The kernel half: boot Debian's 6.1 kernel under qemu with binfmt_cr and run
# tests/qemu/guest-tests.sh there (see tests/qemu/run.sh). Skips only when
# qemu is not installed; CI installs it, so normally this runs (~60-70 s with
# the real cryo's scenarios in the guest; a cold cache also downloads the
# kernel image package once). Known failures ("# TODO") do not fail it.

setup() {
	TOP="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
	LOG="${BATS_TEST_TMPDIR:-${BATS_TMPDIR:-/tmp}}/qemu-console.log"
}

@test "binfmt_cr under qemu: guest suite passes" {
	if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
		skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
	fi
	run env CRYO_QEMU_QUIET=1 CRYO_QEMU_LOG="$LOG" "$TOP/tests/qemu/run.sh"
	if [ "$status" -ne 0 ]; then
		echo "# run.sh exited $status; its output:"
		printf '%s\n' "$output" | sed 's/^/#   /'
		if [ -f "$LOG" ]; then
			echo "# console log tail ($LOG):"
			tail -n 60 "$LOG" | sed 's/^/#   /'
		fi
	fi
	[ "$status" -eq 0 ]
	[[ "$output" == *"0 failed"* ]]
}
