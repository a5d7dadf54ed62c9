#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
# run.sh - boot Debian 12's kernel under qemu (TCG) with binfmt_cr and run
# the guest suite (tests/qemu/guest-tests.sh). Exit 0 only if the console
# shows "CRYO-QEMU-VERDICT: N passed, 0 failed" with N >= 1.
#
# Steps: fetch the kernel image package matching the installed headers into
# the cache (apt-get download; never installed) and take vmlinuz out of it,
# build the module, the static test binaries, a static cryo and static
# scenario programs (`make static`), build the initramfs, boot.
#
# Environment:
#   KVER              kernel ABI name, e.g. 6.1.0-56-amd64 (default: from the
#                     installed linux-headers-*-amd64, cross-checked with apt)
#   KDIR              module build tree (default /usr/src/linux-headers-$KVER)
#   CRYO_QEMU_CACHE   cache dir (default tests/qemu/.cache)
#   CRYO_QEMU_TIMEOUT seconds before the guest is killed (default 180; the
#                     boot and suite take about 65 s)
#   CRYO_QEMU_LOG     console log (default $CRYO_QEMU_CACHE/console.log)
#   CRYO_QEMU_QUIET=1 do not echo the console while it runs
#   CRYO_QEMU_ACCEL   qemu accelerator (default tcg)
#   CRYO_QEMU_APPEND  extra kernel command line; NAME=value words reach the
#                     suite's environment (e.g. FUZZ_ROUNDS=5000)
#   CRYO_QEMU_MEM     guest memory in MiB (default 512)
#   CRYO_QEMU_CPU     qemu CPU model (default max: XSAVE like the machines
#                     cryo runs on; qemu64 has no XSAVE, so no
#                     NT_X86_XSTATE regset, which cryo needs today)
#   CRYO_STATIC       a static cryo to test instead of building
#                     tools/cryo/cryo.static
#   CRYO_GUEST_PROGS  a directory of static scenario programs to use instead
#                     of building tests/qemu/.cache/progs (make guest-progs)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${CRYO_QEMU_CACHE:-$here/.cache}
timeout_s=${CRYO_QEMU_TIMEOUT:-180}
log=${CRYO_QEMU_LOG:-$cache/console.log}
CC=${CC:-gcc}

say() { echo "run.sh: $*" >&2; }
die() { say "$*"; exit 1; }

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
mkdir -p "$cache"

# ---- which kernel ----
if [ -z "${KVER:-}" ]; then
	# the headers package is what we can build against; prefer the ABI
	# apt's linux-headers-amd64 points at if it is installed
	KVER=$(apt-cache depends linux-headers-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-headers-\(.*-amd64\)$/\1/p' | head -n1 || true)
	if [ -z "$KVER" ] || [ ! -d "/usr/src/linux-headers-$KVER" ]; then
		# shellcheck disable=SC2012 # names are linux-headers-<abi>
		KVER=$(ls -1 /usr/src 2>/dev/null | sed -n 's/^linux-headers-\(.*-amd64\)$/\1/p' |
			grep -v cloud | sort -V | tail -n1 || true)
	fi
fi
[ -n "${KVER:-}" ] || die "no linux-headers-*-amd64 in /usr/src (apt-get install linux-headers-amd64)"
KDIR=${KDIR:-/usr/src/linux-headers-$KVER}
[ -d "$KDIR" ] || die "no kernel build tree at $KDIR"
say "kernel $KVER"

# ---- fetch the kernel image (once) ----
kimg=$cache/vmlinux-$KVER		# extracted ELF: boots ~3 s faster
kbz=$cache/vmlinuz-$KVER
# socket diagnostics are modules in Debian's kernel (loaded on demand on a
# real system): cryo queries unix sockets through sock_diag
kmods=$cache/modules-$KVER
kmod_names="unix_diag inet_diag tcp_diag udp_diag"
fetch_kernel() {
	local dl=$cache/dl
	rm -rf "$dl"
	mkdir -p "$dl"
	say "downloading linux-image-$KVER"
	(cd "$dl" && apt-get download "linux-image-$KVER" >/dev/null 2>"$dl/apt.err") ||
		(cd "$dl" && apt-get download "linux-image-$KVER-unsigned" >/dev/null 2>>"$dl/apt.err") ||
		{ cat "$dl/apt.err" >&2; die "apt-get download linux-image-$KVER failed"; }
	dpkg-deb --fsys-tarfile "$dl"/linux-image-*.deb |
		tar -xO "./boot/vmlinuz-$KVER" > "$kbz.tmp"
	[ -s "$kbz.tmp" ] || die "no boot/vmlinuz-$KVER in the package"
	rm -rf "$kmods.tmp"
	mkdir -p "$kmods.tmp"
	local pats=() m
	for m in $kmod_names; do pats+=("*/$m.ko"); done
	dpkg-deb --fsys-tarfile "$dl"/linux-image-*.deb |
		tar -x -C "$kmods.tmp" --wildcards --no-anchored "${pats[@]}" 2>/dev/null || true
	find "$kmods.tmp" -name '*.ko' -exec mv {} "$kmods.tmp/" \;
	find "$kmods.tmp" -mindepth 1 -type d -exec rm -rf {} + 2>/dev/null || true
	rm -rf "$kmods"
	mv "$kmods.tmp" "$kmods"
	mv "$kbz.tmp" "$kbz"
	rm -rf "$dl"
}
extract_vmlinux() {	# the bzImage payload is xz here; fall back quietly
	local off
	command -v xz >/dev/null || return 1
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$kbz" | head -n1 | cut -d: -f1) || return 1
	[ -n "$off" ] || return 1
	tail -c +$((off + 1)) "$kbz" | xz -dc 2>/dev/null > "$kimg.tmp" || true
	if [ "$(head -c 4 "$kimg.tmp" | od -An -c | tr -d ' ')" = '177ELF' ]; then
		mv "$kimg.tmp" "$kimg"
		return 0
	fi
	rm -f "$kimg.tmp"
	return 1
}
(
	flock 9
	if [ ! -s "$kbz" ] || [ ! -d "$kmods" ]; then
		fetch_kernel
	fi
	[ -s "$kimg" ] || extract_vmlinux || say "using the compressed bzImage (no xz or no ELF found)"
) 9>"$cache/.lock"
kernel=$kbz
[ -s "$kimg" ] && kernel=$kimg

# ---- build: module, test binaries, initramfs ----
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "building binfmt_cr.ko"
make -s -C "$top/fs/binfmt_cr" KDIR="$KDIR" W=1 modules > "$work/kbuild.log" 2>&1 ||
	{ cat "$work/kbuild.log" >&2; die "module build failed"; }
if grep -q 'warning:' "$work/kbuild.log"; then
	cat "$work/kbuild.log" >&2
	die "module build has warnings"
fi
bins=()
for p in mkimage fake-restorer target crtest; do
	$CC -static -O2 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$top/include" \
		-o "$work/$p" "$here/$p.c" -lpthread || die "building $p failed"
	bins+=("$work/$p")
done
# the real cryo and the scenario programs, static (same objects as
# tools/cryo/cryo, same sources as tests/progs)
targets=()
[ -n "${CRYO_STATIC:-}" ] || targets+=(tools/cryo/cryo.static)
[ -n "${CRYO_GUEST_PROGS:-}" ] || targets+=(guest-progs)
if [ ${#targets[@]} -gt 0 ]; then
	say "building ${targets[*]}"
	make -s -C "$top" CC="$CC" "${targets[@]}" > "$work/make.log" 2>&1 ||
		{ cat "$work/make.log" >&2; die "make ${targets[*]} failed"; }
fi
cryo_bin=${CRYO_STATIC:-$top/tools/cryo/cryo.static}
progs_dir=${CRYO_GUEST_PROGS:-$top/tests/qemu/.cache/progs}
[ -x "$cryo_bin" ] || die "no static cryo at $cryo_bin"
prog_args=()
for p in "$progs_dir"/*; do
	[ -f "$p" ] && [ -x "$p" ] && prog_args+=(-p "$p")
done
[ ${#prog_args[@]} -gt 0 ] || die "no scenario programs in $progs_dir"
mod_args=()
for m in $kmod_names; do
	[ -f "$kmods/$m.ko" ] && mod_args+=(-m "$kmods/$m.ko")
done
"$here/build-initramfs.sh" -o "$work/initramfs.cpio" -k "$top/fs/binfmt_cr/binfmt_cr.ko" \
	-s "$here/guest-tests.sh" -l "$here/guest-helpers.sh" -c "$cryo_bin" "${prog_args[@]}" \
	${mod_args[@]+"${mod_args[@]}"} "${bins[@]}"

# ---- boot ----
# TCG by default: results must not depend on the host's (nested) KVM,
# which is absent or unreliable on the CI machines
accel=${CRYO_QEMU_ACCEL:-tcg}
say "booting $(basename "$kernel") under qemu ($accel), timeout ${timeout_s}s, log $log"
start=$(date +%s.%N)
set +e
timeout -k 5 "$timeout_s" qemu-system-x86_64 \
	-machine "q35,accel=$accel" -cpu "${CRYO_QEMU_CPU:-max}" -m "${CRYO_QEMU_MEM:-512}" -smp 1 \
	-nodefaults -no-user-config -display none -no-reboot \
	-serial stdio -nic none \
	-kernel "$kernel" -initrd "$work/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 quiet loglevel=4 ${CRYO_QEMU_APPEND:-}" \
	< /dev/null 2>&1 | tr -d '\r' | if [ "${CRYO_QEMU_QUIET:-0}" = 1 ]; then cat > "$log"; else tee "$log"; fi
qrc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc 2>/dev/null || awk "BEGIN{print $end - $start}")
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	say "qemu timed out after ${timeout_s}s"
fi

verdict=$(sed -n 's/.*CRYO-QEMU-VERDICT: \([0-9]*\) passed, \([0-9]*\) failed\(, \([0-9]*\) todo\)\{0,1\}.*/\1 \2 \4/p' "$log" | tail -n1)
if [ -z "$verdict" ]; then
	say "no verdict marker on the console (qemu exit $qrc, ${secs}s); log: $log"
	exit 1
fi
read -r pass fail todo <<< "$verdict"
say "boot + suite: ${secs}s; $pass passed, $fail failed${todo:+, $todo todo (known failures)}"
grep '^not ok .* # TODO' "$log" >&2 || true
if grep -q '^ok .* # TODO' "$log"; then
	say "known failures that pass now (drop their TODO):"
	grep '^ok .* # TODO' "$log" >&2
fi
if [ "$fail" = 0 ] && [ "$pass" -ge 1 ]; then
	exit 0
fi
grep '^not ok' "$log" | grep -v ' # TODO' >&2 || true
exit 1
