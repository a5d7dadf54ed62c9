#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
# build-initramfs.sh - the guest for the binfmt_cr qemu test: an
# uncompressed newc cpio with a static busybox, the module, the guest suite
# and static test binaries; its /init mounts proc/sys/dev/tmp, loads the
# module, runs the suite and prints the verdict marker on the console:
#     CRYO-QEMU-VERDICT: N passed, M failed
# then powers off. "not ok ... # TODO ..." lines are known failures: they
# are counted apart ("K todo") and do not fail the verdict.
#
# usage: build-initramfs.sh -o OUT.cpio -k binfmt_cr.ko -s guest-tests.sh
#            [-l SUITE-FILE]... [-c CRYO] [-p PROG]... [-m KMOD.ko]... [STATIC-BIN...]
#   -l  a file the suite sources, put beside it in /
#   -c  a static cryo, installed as /usr/local/bin/cryo (binfmt_cr's
#       default restorer)
#   -p  a static scenario program (tests/progs), into /progs
#   -m  a kernel module of the guest kernel, loaded before binfmt_cr (in
#       the order given; failures are only logged to /tmp/kmods.out)
#   each STATIC-BIN lands in /bin under its own name
set -euo pipefail

usage() {
	echo "usage: $0 -o OUT.cpio -k MODULE.ko -s SUITE.sh [-l FILE]... [-c CRYO] [-p PROG]..." \
		"[-m KMOD.ko]... [STATIC-BIN...]" >&2
	exit 2
}
out='' ko='' suite='' cryo=''
libs=() progs=() kmods=()
while getopts "o:k:s:l:c:p:m:" opt; do
	case $opt in
	o) out=$OPTARG ;;
	k) ko=$OPTARG ;;
	s) suite=$OPTARG ;;
	l) libs+=("$OPTARG") ;;
	c) cryo=$OPTARG ;;
	p) progs+=("$OPTARG") ;;
	m) kmods+=("$OPTARG") ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
if [ -z "$out" ] || [ ! -f "$ko" ] || [ ! -f "$suite" ]; then
	usage
fi

is_static() {	# no program interpreter = static (static-pie included)
	! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'
}

busybox=${BUSYBOX:-}
if [ -z "$busybox" ]; then
	for b in /bin/busybox /usr/bin/busybox; do
		[ -x "$b" ] && is_static "$b" && { busybox=$b; break; }
	done
fi
if [ -z "$busybox" ] || ! is_static "$busybox"; then
	echo "build-initramfs: need a static busybox (apt-get install busybox-static)" >&2
	exit 1
fi
for b in "$@" ${cryo:+"$cryo"} ${progs[@]+"${progs[@]}"}; do
	is_static "$b" || { echo "build-initramfs: $b is not a static binary" >&2; exit 1; }
done

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"	# mktemp made it 0700: the guest user must traverse /
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,lib/modules}
cp "$busybox" "$root/bin/busybox"
cp "$ko" "$root/lib/modules/binfmt_cr.ko"
cp "$suite" "$root/guest-tests.sh"
for f in ${libs[@]+"${libs[@]}"}; do
	cp "$f" "$root/$(basename "$f")"
	chmod 0644 "$root/$(basename "$f")"
done
for b in "$@"; do
	cp "$b" "$root/bin/$(basename "$b")"
done
chmod 0755 "$root"/bin/* "$root/guest-tests.sh"
if [ -n "$cryo" ]; then
	mkdir -p "$root/usr/local/bin"
	cp "$cryo" "$root/usr/local/bin/cryo"
	chmod 0755 "$root/usr/local/bin/cryo"
fi
mkdir -p "$root/lib/modules/extra"
: > "$root/lib/modules/extra.list"
for m in ${kmods[@]+"${kmods[@]}"}; do
	cp "$m" "$root/lib/modules/extra/"
	basename "$m" >> "$root/lib/modules/extra.list"
done
if [ ${#progs[@]} -gt 0 ]; then
	mkdir -p "$root/progs"
	cp "${progs[@]}" "$root/progs/"
	chmod 0755 "$root"/progs/*
fi
echo "root:x:0:0:root:/:/bin/sh" > "$root/etc/passwd"
echo "user:x:1000:1000:user:/tmp:/bin/sh" >> "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
echo "user:x:1000:" >> "$root/etc/group"

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null || mount -t tmpfs dev /dev
mount -t tmpfs -o mode=1777 tmp /tmp
echo "CRYO-QEMU: guest up, kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s"
for m in $(cat /lib/modules/extra.list); do
	insmod "/lib/modules/extra/$m" >> /tmp/kmods.out 2>&1 || echo "insmod $m failed" >> /tmp/kmods.out
done
insmod /lib/modules/binfmt_cr.ko > /tmp/insmod.out 2>&1
echo $? > /tmp/insmod.rc
sh /guest-tests.sh 2>&1 | tee /tmp/tap.log
pass=$(grep -c '^ok ' /tmp/tap.log)
todo=$(grep '^not ok ' /tmp/tap.log | grep -c ' # TODO')
fail=$(grep '^not ok ' /tmp/tap.log | grep -vc ' # TODO')
if grep -q '^Bail out!' /tmp/tap.log; then fail=$((fail + 1)); fi
echo "CRYO-QEMU: suite done, uptime $(cut -d' ' -f1 /proc/uptime)s"
echo "CRYO-QEMU-VERDICT: $pass passed, $fail failed, $todo todo"
sync
poweroff -f
INIT
chmod 0755 "$root/init"

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet) > "$out"
