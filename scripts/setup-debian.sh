#!/bin/sh
# Install what cryo needs to build, test and boot its kernel test guest on
# Debian 12. Idempotent; used by the README and by CI.
set -eu
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# build: compiler, libelf (build-ids, ELF cores), libxxhash (page checksums);
# their static archives and zlib's (libelf.a needs it) link the guest's
# static cryo (make static)
# test: bats; kernel suite: Debian's kernel headers, QEMU, busybox, cpio
# fuzz (make fuzz, tests/bats/reliability.bats): clang with libFuzzer and the
# sanitizer runtimes (libclang-rt-14-dev, not pulled in without recommends);
# strace for one permission check
# bench (make bench): gnuplot-nox draws bench/results/bench.png
# tools tests: gdb (cryo core), man-db and groff-base (the man page), python3
# (JSON checks); util-linux and bsdutils (setpriv, unshare, nsenter, ipcs,
# script) are essential in Debian but named so a slim image has them
# migrate.bats: iproute2 (network namespaces, veth), socat (the TCP link)
# tcp.bats: libcap2-bin (capsh, a restore without CAP_NET_ADMIN)
$SUDO apt-get install -y -qq --no-install-recommends \
	build-essential libelf-dev libxxhash-dev zlib1g-dev pkg-config \
	bats procps psmisc xz-utils \
	linux-headers-amd64 qemu-system-x86 busybox-static cpio kmod \
	clang libclang-rt-14-dev strace gnuplot-nox iproute2 socat \
	gdb man-db groff-base python3 util-linux bsdutils libcap2-bin
