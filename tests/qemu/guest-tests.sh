#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR MIT
# guest-tests.sh - the binfmt_cr suite, run by /init inside the qemu guest
# (busybox sh, root). Prints TAP lines "ok N - name" / "not ok N - name",
# with the failing test's output as "#" lines (every test's with
# GUEST_VERBOSE=1 in CRYO_QEMU_APPEND); /init counts them.
#
# Binaries (static, from the host): /bin/mkimage, /bin/fake-restorer (a test
# double of the handoff interface, not cryo), /bin/target (the "original
# executable" of test images), /bin/crtest (exec/arm/runas/ptrace helpers),
# the real cryo as /usr/local/bin/cryo (the module's default restorer) and
# the scenario programs of tests/progs in /progs (helpers for them:
# guest-helpers.sh, next to this file).
# /init has already run insmod; its output and status are in /tmp/insmod.*.

PARAMS=/sys/module/binfmt_cr/parameters
STATUS=/proc/binfmt_cr/status
N=0
OUT=/tmp/t.out
KLOG=/tmp/klog.new	# kernel messages since the test started
KALL=/tmp/klog.all	# every kernel message of the run
USER_UID=1000

. "$(dirname "$0")/guest-helpers.sh"

# ---- harness ----

uptime_cs() {	# centiseconds since boot
	awk '{ printf "%d\n", $1 * 100 }' /proc/uptime
}

run() {	# run NAME FUNCTION
	local t0
	: > "$KLOG"
	dmesg -c >> "$KALL" 2>/dev/null
	t0=$(uptime_cs)
	if "$2" > "$OUT" 2>&1; then
		N=$((N + 1))
		echo "ok $N - $1"
		[ "${GUEST_VERBOSE:-0}" = 0 ] || sed 's/^/#   /' "$OUT"
	else
		N=$((N + 1))
		echo "not ok $N - $1"
		sed 's/^/#   /' "$OUT"
		klog
		sed 's/^/#   kernel: /' "$KLOG"
	fi
	cleanup_pids
	t0=$(($(uptime_cs) - t0))
	[ $t0 -lt 100 ] || echo "#   took $((t0 / 100)).$((t0 % 100 / 10))s"
}

klog() {	# new kernel messages of this test -> $KLOG
	dmesg -c > /tmp/klog.chunk 2>/dev/null
	cat /tmp/klog.chunk >> "$KLOG"
	cat /tmp/klog.chunk >> "$KALL"
}

has() {	# has FILE REGEX: grep, explaining a miss
	if grep -q -- "$2" "$1"; then
		return 0
	fi
	echo "expected /$2/ in $1:"
	sed 's/^/    | /' "$1"
	return 1
}

hasnt() {
	if grep -q -- "$2" "$1"; then
		echo "unexpected /$2/ in $1:"
		sed 's/^/    | /' "$1"
		return 1
	fi
	return 0
}

klog_has() {	# klog_has REGEX: a kernel line from binfmt_cr matching REGEX
	klog
	has "$KLOG" "binfmt_cr: .*$1"
}

stat_of() {	# stat_of FIELD: a counter from the status file
	sed -n "s/^$1: //p" "$STATUS"
}

set_restorer() {
	echo "$1" > "$PARAMS/restorer"
}

mkimg() {	# mkimg OUT [mkimage args]: an image of /bin/target
	out=$1
	shift
	mkimage -o "$out" --exe /bin/target "$@"
}

# ---- tests ----

t_load() {
	cat /tmp/insmod.out
	[ "$(cat /tmp/insmod.rc)" = 0 ] || { echo "insmod failed"; return 1; }
	grep -q '^binfmt_cr ' /proc/modules || { echo "not in /proc/modules"; return 1; }
	# run() already moved the boot messages into $KALL
	has "$KALL" 'binfmt_cr: loaded' || return 1
	hasnt "$KALL" 'WARNING:\|BUG:\|Oops\|Call Trace' || return 1
	echo "tainted=$(cat /proc/sys/kernel/tainted) (out-of-tree/unsigned is expected)"
}

t_status() {
	cat "$STATUS" || return 1
	has "$STATUS" '^enabled: 1$' &&
	has "$STATUS" '^restorer: /usr/local/bin/cryo$' &&
	has "$STATUS" '^handoffs: 0$' &&
	has "$STATUS" '^tasks_tracked: 0$' &&
	[ "$(cat $PARAMS/restorer)" = /usr/local/bin/cryo ] &&
	[ "$(stat -c %a /proc/binfmt_cr/arm)" = 666 ]
}

t_arm_file() {
	crtest armstate 3 > /tmp/o 2>&1
	cat /tmp/o
	[ "$(sed -n 1p /tmp/o)" = "state=none" ] &&
	[ "$(sed -n 2p /tmp/o)" = "state=armed 3" ] &&
	[ "$(sed -n 3p /tmp/o)" = "state=none" ] || return 1
	if echo "arm x" > /proc/binfmt_cr/arm 2>/dev/null; then
		echo "'arm x' accepted"
		return 1
	fi
	if echo "fire 1" > /proc/binfmt_cr/arm 2>/dev/null; then
		echo "'fire 1' accepted"
		return 1
	fi
	# the shell that wrote nothing valid is not armed; nobody is
	has "$STATUS" '^tasks_tracked: 0$'
}

# corrupt KIND STRERROR-REGEX: exec fails ENOEXEC, the log names the error
corrupt_case() {
	mkimg /tmp/bad.img --corrupt "$1" || return 1
	crtest exec /tmp/bad.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=ENOEXEC' || return 1
	klog_has "$2"
}
t_c_short()   { corrupt_case short 'bad header: file shorter than the 256-byte header'; }
t_c_prelude() { corrupt_case prelude 'bad header: bad prelude line'; }
t_c_version() { corrupt_case version 'bad header: unsupported major version'; }
t_c_hcrc()    { corrupt_case header-crc 'bad header: header checksum mismatch'; }
t_c_trunc()   { corrupt_case truncate 'bad header: section table outside the file'; }
t_c_exepath() { corrupt_case exe-path 'bad header: executable path outside the file'; }
t_c_tcrc()    { corrupt_case table-crc 'bad section table: section table checksum mismatch'; }
t_c_stype()   { corrupt_case section-type 'bad section table: section [0-9]*: unknown section type'; }
t_c_sbounds() { corrupt_case section-bounds 'bad section table: section [0-9]*: section outside the file'; }
t_c_salign()  { corrupt_case section-align 'bad section table: section [0-9]*: section misaligned'; }
t_c_srec()    { corrupt_case section-record 'bad section table: section [0-9]*: section length not a multiple'; }

t_c_magic() {
	# not an image at all: ENOEXEC from the kernel, and not our business
	mkimg /tmp/bad.img --corrupt magic || return 1
	crtest exec /tmp/bad.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=ENOEXEC' || return 1
	klog
	hasnt "$KLOG" 'binfmt_cr'
}

t_no_restorer() {
	# a missing restorer: ENOEXEC (so a shell falls back to the image's
	# prelude line), and a log line
	mkimg /tmp/ok.img || return 1
	set_restorer /usr/local/lib/no-such-cryo
	crtest exec /tmp/ok.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=ENOEXEC' || return 1
	klog_has 'cannot open restorer /usr/local/lib/no-such-cryo: error -2' || return 1
	# the shell fallback: the prelude says what is missing
	( cd /tmp && PATH=/bin sh -c './ok.img' ) > /tmp/o 2>&1
	rc=$?
	cat /tmp/o
	[ $rc = 126 ] && has /tmp/o 'cryo image, needs cryo'
}

t_handoff() {
	set_restorer /bin/fake-restorer
	h0=$(stat_of handoffs)
	mkimg /tmp/ok.img || return 1
	crtest exec /tmp/ok.img one "two words" > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^FAKE-RESTORER argc=6$' &&
	has /tmp/o '^argv\[0\]=/bin/fake-restorer$' &&
	has /tmp/o '^argv\[1\]=--binfmt-exec$' &&
	has /tmp/o '^argv\[2\]=/tmp/ok.img$' &&
	has /tmp/o '^argv\[3\]=/tmp/ok.img$' &&
	has /tmp/o '^argv\[4\]=one$' &&
	has /tmp/o '^argv\[5\]=two words$' &&
	has /tmp/o '^execfd=[0-9]' &&
	has /tmp/o '^head=LX_CKPT=$' &&
	has /tmp/o '^fdflags=0$' &&
	has /tmp/o '^uid=0 euid=0' || return 1
	[ "$(stat_of handoffs)" = $((h0 + 1)) ] || { echo "handoffs not counted"; return 1; }
}

t_handoff_shell() {
	# what a user does: ./out from a shell, relative path
	( cd /tmp && ./ok.img arg ) > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^argv\[1\]=--binfmt-exec$' &&
	has /tmp/o '^argv\[2\]=./ok.img$' &&
	has /tmp/o '^argv\[3\]=./ok.img$' &&
	has /tmp/o '^argv\[4\]=arg$' &&
	has /tmp/o '^head=LX_CKPT=$'
}

t_handoff_traced() {
	# being ptraced (strace ./out) changes nothing: still the restorer
	crtest traced crtest exec /tmp/ok.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^argv\[1\]=--binfmt-exec$' &&
	has /tmp/o '^head=LX_CKPT=$'
}

t_image_setuid_ignored() {
	# the image's own mode bits never count: a setuid-root image run by
	# a user hands off with the user's credentials
	cp /tmp/ok.img /tmp/suid.img && chmod 4755 /tmp/suid.img || return 1
	crtest runas $USER_UID $USER_UID crtest exec /tmp/suid.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^FAKE-RESTORER' &&
	has /tmp/o "^uid=$USER_UID euid=$USER_UID gid=$USER_UID egid=$USER_UID$"
}

t_image_unreadable() {
	cp /tmp/ok.img /tmp/xonly.img && chmod 0711 /tmp/xonly.img || return 1
	crtest runas $USER_UID $USER_UID crtest exec /tmp/xonly.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=EACCES' || return 1
	klog_has 'image not readable by the caller'
}

t_restorer_setuid() {
	cp /bin/fake-restorer /tmp/fr-suid && chmod 4755 /tmp/fr-suid || return 1
	set_restorer /tmp/fr-suid
	crtest runas $USER_UID $USER_UID crtest exec /tmp/ok.img > /tmp/o 2>&1
	rc1=$?
	crtest exec /tmp/ok.img >> /tmp/o 2>&1	# root too: never setuid
	set_restorer /bin/fake-restorer
	cat /tmp/o
	[ "$(grep -c 'exec-errno=EPERM' /tmp/o)" = 2 ] || return 1
	hasnt /tmp/o FAKE-RESTORER || return 1
	[ $rc1 = 99 ] && klog_has 'refusing setuid restorer /tmp/fr-suid'
}

t_restorer_setgid() {
	cp /bin/fake-restorer /tmp/fr-sgid && chmod 2755 /tmp/fr-sgid || return 1
	set_restorer /tmp/fr-sgid
	crtest runas $USER_UID $USER_UID crtest exec /tmp/ok.img > /tmp/o 2>&1
	set_restorer /bin/fake-restorer
	cat /tmp/o
	has /tmp/o 'exec-errno=EPERM' && klog_has 'refusing setgid restorer'
}

t_restorer_fcaps() {
	cp /bin/fake-restorer /tmp/fr-cap || return 1
	crtest setcap /tmp/fr-cap || return 1
	set_restorer /tmp/fr-cap
	crtest exec /tmp/ok.img > /tmp/o 2>&1
	set_restorer /bin/fake-restorer
	cat /tmp/o
	has /tmp/o 'exec-errno=EPERM' && klog_has 'refusing restorer /tmp/fr-cap with file capabilities'
}

t_disabled() {
	echo 0 > $PARAMS/enabled
	crtest exec /tmp/ok.img > /tmp/o 2>&1
	crtest armexec 0 /tmp/ok.img >> /tmp/o 2>&1
	has "$STATUS" '^enabled: 0$' >> /tmp/o
	rc=$?
	echo 1 > $PARAMS/enabled
	cat /tmp/o
	[ $rc = 0 ] && has /tmp/o 'exec-errno=ENOEXEC' && has /tmp/o 'arm-errno=ENODEV'
}

t_restore() {
	mkimg /tmp/r.img --argv target --argv alpha --argv "beta gamma" || return 1
	r0=$(stat_of restores_completed)
	crtest armexec 0 /tmp/r.img ignored-arg > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^TARGET argc=3$' &&
	has /tmp/o '^argv\[0\]=target$' &&
	has /tmp/o '^argv\[1\]=alpha$' &&
	has /tmp/o '^argv\[2\]=beta gamma$' &&
	has /tmp/o '^cmdline=target|alpha|beta gamma|$' &&
	has /tmp/o '^exe=/bin/target$' || return 1
	[ "$(stat_of restores_completed)" = $((r0 + 1)) ] || { echo "not counted"; return 1; }
	has "$STATUS" '^tasks_tracked: 0$'
}

t_restore_keep_argv() {
	# no ARGV section: the argv cryo passed to execve stays
	mkimg /tmp/r2.img --no-argv || return 1
	crtest armexec 0 /tmp/r2.img from-exec > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^TARGET argc=2$' &&
	has /tmp/o '^argv\[0\]=/tmp/r2.img$' &&
	has /tmp/o '^argv\[1\]=from-exec$' &&
	has /tmp/o '^exe=/bin/target$'
}

t_restore_traced() {
	# a debugger on the restore does not turn it into a handoff
	crtest traced crtest armexec 0 /tmp/r.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^TARGET argc=3$' && has /tmp/o '^exe=/bin/target$'
}

t_restore_child_task() {
	# task 1 (not the root) runs the executable its core record names
	cp /bin/target /tmp/target-copy || return 1
	mkimg /tmp/t2.img --tasks 2 --child-exe /tmp/target-copy --argv kid || return 1
	crtest armexec 1 /tmp/t2.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^exe=/tmp/target-copy$' && has /tmp/o '^argv\[0\]=kid$' || return 1
	crtest armexec 0 /tmp/t2.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^exe=/bin/target$'
}

t_restore_bad_index() {
	crtest armexec 5 /tmp/r.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=ENOEXEC' && klog_has 'section [0-9]* (tasks): no record 5'
}

t_ident_fields() {
	for f in dev ino size mtime; do
		mkimg /tmp/id.img --ident-mismatch $f || return 1
		crtest armexec 0 /tmp/id.img > /tmp/o 2>&1
		cat /tmp/o
		has /tmp/o 'exec-errno=ENOEXEC' || return 1
	done
	klog_has '/bin/target changed since the checkpoint'
}

t_ident_touched() {
	# the binary really changed after the checkpoint
	cp /bin/target /tmp/target-t || return 1
	mkimage -o /tmp/tt.img --exe /tmp/target-t || return 1
	# an explicit time: a plain touch can land in the same clock tick as cp
	touch -d "2001-02-03 04:05:06" /tmp/target-t
	crtest armexec 0 /tmp/tt.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=ENOEXEC' || return 1
	hasnt /tmp/o '^TARGET' || return 1
	klog_has '/tmp/target-t changed since the checkpoint'
}

t_ident_replaced() {
	cp /bin/target /tmp/target-r || return 1
	mkimage -o /tmp/tr.img --exe /tmp/target-r || return 1
	cp /bin/fake-restorer /tmp/target-r.new && mv /tmp/target-r.new /tmp/target-r
	crtest armexec 0 /tmp/tr.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=ENOEXEC' && hasnt /tmp/o FAKE-RESTORER &&
	klog_has '/tmp/target-r changed since the checkpoint'
}

t_exe_not_elf() {
	printf '#!/bin/sh\necho script-ran\n' > /tmp/script.sh && chmod 755 /tmp/script.sh || return 1
	mkimage -o /tmp/scr.img --exe /tmp/script.sh || return 1
	crtest armexec 0 /tmp/scr.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=ENOEXEC' && hasnt /tmp/o script-ran &&
	klog_has '/tmp/script.sh is not an ELF executable'
}

t_restore_thread() {
	# a non-leader thread arms and execs: it becomes the leader in
	# de_thread, and its record must follow it
	crtest thread-armexec 0 /tmp/r.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^TARGET argc=3$' && has /tmp/o '^exe=/bin/target$' || return 1
	has "$STATUS" '^tasks_tracked: 0$'
}

t_section_crc() {
	mkimg /tmp/sc.img --argv target --argv x --corrupt section-crc || return 1
	crtest armexec 0 /tmp/sc.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=ENOEXEC' && klog_has 'section [0-9]* (argv) at offset [0-9]*: checksum mismatch'
}

t_exe_setuid() {
	cp /bin/target /tmp/target-suid && chmod 4755 /tmp/target-suid || return 1
	mkimage -o /tmp/su.img --exe /tmp/target-suid || return 1
	crtest runas $USER_UID $USER_UID crtest armexec 0 /tmp/su.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=EPERM' && hasnt /tmp/o '^TARGET' || return 1
	klog_has 'refusing setuid executable /tmp/target-suid' || return 1
	# root owns it: running it as root raises nothing, so it runs
	crtest armexec 0 /tmp/su.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^uid=0 euid=0$'
}

t_exe_setuid_nnp() {
	# under no_new_privs the kernel ignores the bit: allowed, no elevation
	crtest runas $USER_UID $USER_UID setpriv --nnp crtest armexec 0 /tmp/su.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o "^uid=$USER_UID euid=$USER_UID$"
}

t_exe_setgid() {
	cp /bin/target /tmp/target-sgid && chmod 2755 /tmp/target-sgid || return 1
	mkimage -o /tmp/sg.img --exe /tmp/target-sgid || return 1
	crtest runas $USER_UID $USER_UID crtest armexec 0 /tmp/sg.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=EPERM' && klog_has 'refusing setgid executable /tmp/target-sgid'
}

t_exe_fcaps() {
	cp /bin/target /tmp/target-cap || return 1
	crtest setcap /tmp/target-cap || return 1
	mkimage -o /tmp/cap.img --exe /tmp/target-cap || return 1
	crtest runas $USER_UID $USER_UID crtest armexec 0 /tmp/cap.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=EPERM' || return 1
	klog_has 'refusing executable /tmp/target-cap with file capabilities' || return 1
	# root already holds every capability: nothing to gain, it runs
	crtest armexec 0 /tmp/cap.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^exe=/tmp/target-cap$'
}

t_user_restore() {
	# an ordinary user restores their own image of an ordinary binary
	crtest runas $USER_UID $USER_UID crtest armexec 0 /tmp/r.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^TARGET argc=3$' && has /tmp/o "^uid=$USER_UID euid=$USER_UID$"
}

t_mm_boundaries() {
	# Layouts repeat with ASLR off: learn where argv/env land, then ask
	# for arg_start one string further and check cmdline follows it.
	old=$(cat /proc/sys/kernel/randomize_va_space)
	echo 0 > /proc/sys/kernel/randomize_va_space
	mm_boundaries
	rc=$?
	echo "$old" > /proc/sys/kernel/randomize_va_space
	return $rc
}

mm_boundaries() {
	left0=$(stat_of mm_boundaries_left)
	set0=$(stat_of mm_boundaries_set)
	mkimg /tmp/mm.img --argv target --argv alpha --argv beta \
		--mm 4096,4100,4100,4104 || return 1
	crtest armexec 0 /tmp/mm.img > /tmp/o1 2>&1
	mm=$(sed -n 's/^mm //p' /tmp/o1)
	echo "natural: $mm"
	arg_start=$(echo "$mm" | sed -n 's/.*arg_start=\([0-9]*\).*/\1/p')
	arg_end=$(echo "$mm" | sed -n 's/.*arg_end=\([0-9]*\).*/\1/p')
	env_start=$(echo "$mm" | sed -n 's/.*env_start=\([0-9]*\).*/\1/p')
	env_end=$(echo "$mm" | sed -n 's/.*env_end=\([0-9]*\).*/\1/p')
	if [ -z "$arg_start" ] || [ -z "$env_end" ]; then echo "no mm line"; return 1; fi
	cat /tmp/o1
	# values outside the new stack are left alone
	[ "$arg_start" -gt 65536 ] || { echo "outside-stack values were applied"; return 1; }
	has /tmp/o1 '^cmdline=target|alpha|beta|$' || return 1
	[ "$(stat_of mm_boundaries_left)" = $((left0 + 1)) ] || { echo "left not counted"; return 1; }
	want="arg_start=$((arg_start + 7)) arg_end=$arg_end env_start=$env_start env_end=$env_end"
	mkimg /tmp/mm.img --argv target --argv alpha --argv beta \
		--mm "$((arg_start + 7)),$arg_end,$env_start,$env_end" || return 1
	crtest armexec 0 /tmp/mm.img > /tmp/o2 2>&1
	cat /tmp/o2
	has /tmp/o2 "^mm $want\$" &&
	has /tmp/o2 '^cmdline=alpha|beta|$' &&
	has /tmp/o2 '^argv\[0\]=target$' || return 1
	[ "$(stat_of mm_boundaries_set)" = $((set0 + 1)) ] || { echo "set not counted"; return 1; }
}

t_forknoexec_set() {
	mkimg /tmp/fne.img --argv target --argv --wait-stdin --forknoexec || return 1
	f0=$(stat_of forknoexec_set)
	crtest forkexec-setpgid /tmp/fne.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^setpgid=0$' && has /tmp/o '^child-status=0$' || return 1
	[ "$(stat_of forknoexec_set)" = $((f0 + 1)) ]
}

t_forknoexec_clear() {
	mkimg /tmp/nofne.img --argv target --argv --wait-stdin || return 1
	crtest forkexec-setpgid /tmp/nofne.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^setpgid=EACCES$' && has /tmp/o '^child-status=0$'
}

t_arm_dropped_by_exec() {
	# an arm is used up by the next exec, image or not
	crtest armexec 0 /bin/target plain > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^argv\[1\]=plain$' || return 1
	has "$STATUS" '^tasks_tracked: 0$'
}

t_arm_dropped_at_exit() {
	crtest arm-wait 0 > /tmp/aw.out 2>&1 &
	pid=$!
	i=0
	while ! grep -q armed /tmp/aw.out && [ $i -lt 50 ]; do usleep 20000; i=$((i + 1)); done
	has "$STATUS" '^tasks_tracked: 1$' || { kill $pid; return 1; }
	kill $pid
	wait $pid 2>/dev/null
	has "$STATUS" '^tasks_tracked: 0$'
}

t_rmmod() {
	# unload while a task is armed: the record must be freed cleanly
	crtest arm-wait 2 > /tmp/aw.out 2>&1 &
	pid=$!
	i=0
	while ! grep -q armed /tmp/aw.out && [ $i -lt 50 ]; do usleep 20000; i=$((i + 1)); done
	cat "$STATUS"
	rmmod binfmt_cr
	rc=$?
	kill $pid
	wait $pid 2>/dev/null
	[ $rc = 0 ] || { echo "rmmod failed: $rc"; return 1; }
	[ ! -e /proc/binfmt_cr ] || { echo "/proc/binfmt_cr still there"; return 1; }
	grep -q '^binfmt_cr ' /proc/modules && { echo "still loaded"; return 1; }
	klog_has 'unloaded' || return 1
	# no handler any more: the kernel says ENOEXEC, a shell runs the prelude
	crtest exec /tmp/ok.img > /tmp/o 2>&1
	has /tmp/o 'exec-errno=ENOEXEC'
}

t_reload() {
	insmod /lib/modules/binfmt_cr.ko restorer=/bin/fake-restorer || return 1
	has "$STATUS" '^restorer: /bin/fake-restorer$' || return 1
	crtest exec /tmp/ok.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o '^head=LX_CKPT=$' || return 1
	rmmod binfmt_cr
}

t_fuzz() {
	# damaged images (CRCs re-fixed) through both paths: any refusal is
	# fine, an oops is not; afterwards the module still works
	i=0
	refused0=$(stat_of refusals)
	while [ $i -lt "${FUZZ_ROUNDS:-200}" ]; do
		mkimg /tmp/fz.img --argv target --argv fz --forknoexec --fuzz $i || return 1
		crtest armexec 0 /tmp/fz.img > /dev/null 2>&1
		crtest exec /tmp/fz.img > /dev/null 2>&1
		i=$((i + 1))
	done
	echo "$i rounds, refusals $refused0 -> $(stat_of refusals)"
	echo "# fuzz: $i rounds, refusals $refused0 -> $(stat_of refusals)," \
		"handoffs $(stat_of handoffs), restores $(stat_of restores)" > /dev/console
	klog
	hasnt "$KLOG" 'WARNING:\|BUG:\|Oops\|Call Trace' || return 1
	crtest armexec 0 /tmp/r.img > /tmp/o 2>&1
	has /tmp/o '^TARGET argc=3$' && has "$STATUS" '^tasks_tracked: 0$'
}

# ---- the real cryo (static, /usr/local/bin/cryo) on scenario programs ----
# Helpers: guest-helpers.sh. Images are dumped and restored in this guest.

use_cryo() {	# the module's restorer: the real cryo (when it is loaded)
	[ ! -e "$PARAMS/restorer" ] || set_restorer "$CRYO"
}

counter_started() {	# counter_started [PROG [ARGS...]]: a counter writing $D/cnt
	[ $# -gt 0 ] || set -- counter
	start_prog "$LOG" "$@" "$D/cnt" || return 1
	pid=$PROG_PID
	wait_lines "$D/cnt" 5
}

t_cryo_r_module() {
	# cryo -r goes through the module: armed exec of the original binary
	# (of an image made executable, as for ./out: t_cryo_r_0600 covers
	# the image as cryo writes it)
	use_cryo
	fresh_dir modr
	start_prog "$LOG" /bin/env "CRYO_QEMU_VAR=a b  c" "$PROGS/counter" "$D/cnt" || return 1
	pid=$PROG_PID
	wait_lines "$D/cnt" 10 && check_pass "$pid" "$LOG" || return 1
	cp "/proc/$pid/cmdline" "$D/cmdline.before" && cp "/proc/$pid/environ" "$D/environ.before" || return 1
	dump_kill "$pid" "$D/out" && chmod +x "$D/out" || return 1
	n1=$(count_lines "$D/cnt")
	check_consecutive "$D/cnt" || return 1
	r0=$(stat_of restores) c0=$(stat_of restores_completed) h0=$(stat_of handoffs)
	restore_bg "$D/out" "$LOG" "$pid" || return 1
	cp "/proc/$pid/cmdline" "$D/cmdline.after" && cp "/proc/$pid/environ" "$D/environ.after" || return 1
	echo "restores $r0 -> $(stat_of restores), completed $c0 -> $(stat_of restores_completed)"
	[ "$(stat_of restores)" = $((r0 + 1)) ] && [ "$(stat_of restores_completed)" = $((c0 + 1)) ] ||
		{ fail "cryo -r did not go through binfmt_cr"; return 1; }
	[ "$(stat_of handoffs)" = "$h0" ] || { fail "cryo -r counted as a handoff"; return 1; }
	cmp "$D/cmdline.before" "$D/cmdline.after" ||
		{ fail "cmdline: $(tr '\0' ' ' < "$D/cmdline.before") -> $(tr '\0' ' ' < "$D/cmdline.after")"; return 1; }
	cmp "$D/environ.before" "$D/environ.after" ||
		{ fail "environ: $(tr '\0' ' ' < "$D/environ.before") -> $(tr '\0' ' ' < "$D/environ.after")"; return 1; }
	wait_lines "$D/cnt" $((n1 + 25)) && check_pass "$pid" "$LOG" || return 1
	stop_restored "$pid" && check_consecutive "$D/cnt" || return 1
	echo "pid $pid restored, counted $n1 -> $(count_lines "$D/cnt")"
}

t_cryo_r_0600() {
	# the image as cryo wrote it (0600, not executable): the module path
	# must still work (or cryo fall back to a plain exec)
	use_cryo
	fresh_dir mod0600
	counter_started || return 1
	dump_kill "$pid" "$D/out" || return 1
	n1=$(count_lines "$D/cnt")
	ls -l "$D/out"
	c0=$(stat_of restores_completed)
	restore_bg "$D/out" "$LOG" "$pid" || return 1
	wait_lines "$D/cnt" $((n1 + 10)) && stop_restored "$pid" && check_consecutive "$D/cnt" || return 1
	[ "$(stat_of restores_completed)" = $((c0 + 1)) ] || { fail "not restored through binfmt_cr"; return 1; }
}

t_exec_image() {
	# chmod +x out && ./out: the process the shell started becomes the
	# counter (its pid, its parent), through the handoff to cryo
	use_cryo
	fresh_dir execimg
	counter_started && check_pass "$pid" "$LOG" || return 1
	cp "/proc/$pid/cmdline" "$D/cmdline.before" || return 1
	dump_kill "$pid" "$D/out" || return 1
	n1=$(count_lines "$D/cnt")
	chmod +x "$D/out"
	h0=$(stat_of handoffs) r0=$(stat_of restores) c0=$(stat_of restores_completed)
	cd "$D" || return 1
	./out >> "$LOG" 2>&1 &
	runner=$!
	cd /
	OUR_PIDS="$OUR_PIDS $runner"
	wait_restored "$runner" "$$" inplace || return 1
	wait_lines "$D/cnt" $((n1 + 25)) && check_consecutive "$D/cnt" || return 1
	echo "handoffs $h0 -> $(stat_of handoffs), restores $r0 -> $(stat_of restores)," \
		"completed $c0 -> $(stat_of restores_completed)"
	[ "$(stat_of handoffs)" = $((h0 + 1)) ] || { fail "handoff not counted"; return 1; }
	[ "$(stat_of restores_completed)" = $((c0 + 1)) ] || { fail "armed exec not counted"; return 1; }
	cmp "$D/cmdline.before" "/proc/$runner/cmdline" ||
		{ fail "cmdline $(tr '\0' ' ' < "/proc/$runner/cmdline")"; return 1; }
	check_pass "$runner" "$LOG" || return 1
	kill "$runner"
	wait "$runner"
	rc=$?
	[ $rc = 0 ] || { fail "./out exited $rc after SIGTERM, want 0"; return 1; }
	check_consecutive "$D/cnt" || return 1
	echo "./out ran as pid $runner (dumped pid $pid), counted $n1 -> $(count_lines "$D/cnt")"
}

# refused_run OUT WHAT CMD...: CMD fails (status in $rc), OUT names WHAT
refused_run() {
	local out=$1 what=$2
	shift 2
	"$@" < /dev/null > "$out" 2>&1
	rc=$?
	sed 's/^/    | /' "$out"
	[ $rc != 0 ] || { fail "$* succeeded"; return 1; }
	grep -q -- "$what" "$out" || { fail "message does not name /$what/"; return 1; }
	hasnt "$out" '^READY$'
}

nothing_runs() {	# nothing_runs EXE: no process runs EXE, cnt did not grow
	usleep 300000
	[ -z "$(pids_running "$1")" ] || { fail "$1 runs: $(pids_running "$1")"; return 1; }
	[ "$(count_lines "$D/cnt")" = "$n1" ] || { fail "$D/cnt grew"; return 1; }
	[ ! -e "/proc/$pid" ] || { fail "pid $pid exists: $(describe_pid "$pid")"; return 1; }
}

t_exe_replaced() {
	use_cryo
	fresh_dir exerepl
	cp "$PROGS/counter" "$D/counter-copy" && counter_started "$D/counter-copy" || return 1
	dump_kill "$pid" "$D/out" && chmod +x "$D/out" || return 1
	n1=$(count_lines "$D/cnt")
	# same path, another file: a restore would run foreign code
	cp "$PROGS/sleeper" "$D/counter-copy.new" && mv "$D/counter-copy.new" "$D/counter-copy"
	echo "cryo -r:"
	refused_run "$D/r.out" counter-copy timeout 30 "$CRYO" -r -f "$D/out" || return 1
	[ $rc = 1 ] || { fail "cryo -r exited $rc, want 1"; return 1; }
	echo "./out:"
	refused_run "$D/x.out" counter-copy sh -c "cd $D && exec timeout 30 ./out" || return 1
	nothing_runs "$D/counter-copy"
}

t_exe_modified() {
	# the same inode rewritten: cryo's own check names it; past that check
	# (--allow-changed-files) the module's identity check refuses the exec
	use_cryo
	fresh_dir exemod
	cp "$PROGS/counter" "$D/counter-copy" && counter_started "$D/counter-copy" || return 1
	dump_kill "$pid" "$D/out" && chmod +x "$D/out" || return 1
	n1=$(count_lines "$D/cnt")
	cat "$PROGS/sleeper" > "$D/counter-copy" || return 1
	echo "cryo -r:"
	refused_run "$D/r.out" counter-copy timeout 30 "$CRYO" -r -f "$D/out" || return 1
	echo "./out:"
	refused_run "$D/x.out" counter-copy sh -c "cd $D && exec timeout 30 ./out" || return 1
	nothing_runs "$D/counter-copy" || return 1
	# --allow-changed-files is for data files: code that changed can
	# never be restored (refused by cryo, or else by the module)
	echo "cryo -r --allow-changed-files:"
	ref0=$(stat_of refusals)
	refused_run "$D/a.out" 'cryo: ' timeout 30 "$CRYO" -r --allow-changed-files -f "$D/out" || return 1
	nothing_runs "$D/counter-copy" || return 1
	if [ "$(stat_of refusals)" != "$ref0" ]; then
		klog_has "$D/counter-copy changed since the checkpoint" || return 1
	fi
	# the message names the binary (cryo's own check), or at least points
	# at the kernel log: never only "Exec format error"
	grep -q 'counter-copy\|kernel log' "$D/a.out" || { fail "unclear message"; return 1; }
}

t_exe_modified_plain() {
	# without the module nothing but cryo checks the executable
	fresh_dir exemod-plain
	cp "$PROGS/counter" "$D/counter-copy" && counter_started "$D/counter-copy" || return 1
	dump_kill "$pid" "$D/out" || return 1
	n1=$(count_lines "$D/cnt")
	cat "$PROGS/sleeper" > "$D/counter-copy" || return 1
	refused_run "$D/a.out" 'counter-copy' timeout 10 "$CRYO" -r --allow-changed-files -f "$D/out" || return 1
	nothing_runs "$D/counter-copy"
}

t_bad_header() {
	use_cryo
	fresh_dir badhdr
	counter_started || return 1
	dump_kill "$pid" "$D/out" || return 1
	n1=$(count_lines "$D/cnt")
	cp "$D/out" "$D/bad" && flip_byte "$D/bad" 130 && chmod +x "$D/bad" || return 1
	cmp -s "$D/out" "$D/bad" && { fail "flip_byte changed nothing"; return 1; }
	ref0=$(stat_of refusals)
	crtest exec "$D/bad" > "$D/e.out" 2>&1
	cat "$D/e.out"
	has "$D/e.out" 'exec-errno=ENOEXEC' || return 1
	klog_has "$D/bad: bad header: header checksum mismatch" || return 1
	[ "$(stat_of refusals)" = $((ref0 + 1)) ] || { fail "refusal not counted"; return 1; }
	# from a shell: ENOEXEC, so it runs the prelude line; without cryo in
	# PATH that says what is missing, with it cryo refuses the header
	refused_run "$D/s1.out" 'needs cryo' sh -c "cd $D && PATH=/bin exec ./bad" || return 1
	[ $rc = 126 ] || { fail "prelude exit $rc, want 126"; return 1; }
	refused_run "$D/s2.out" 'header' sh -c "cd $D && PATH=/bin:/usr/local/bin exec ./bad" || return 1
	[ $rc = 1 ] || { fail "cryo via the prelude exited $rc, want 1"; return 1; }
	nothing_runs "$PROGS/counter" || return 1
	klog
	hasnt "$KLOG" 'WARNING:\|BUG:\|Oops\|Call Trace'
}

suid_copy() {	# a setuid-root copy of the counter in $D (which users may write)
	chmod 0777 "$D"
	cp "$PROGS/counter" "$D/suid-counter" && chown 0:0 "$D/suid-counter" &&
		chmod 4755 "$D/suid-counter"
}

uid_line() { status_field "$1" Uid | tr '\t' ' '; }

has_root_uid() {	# has_root_uid PID: a 0 among its real/effective/saved/fs uids
	case " $(uid_line "$1") " in
	*" 0 "*) return 0 ;;
	esac
	return 1
}

no_root_uid() {	# no_root_uid PID: no 0 in its Uid line
	echo "pid $1 Uid: $(uid_line "$1")"
	if has_root_uid "$1"; then
		fail "pid $1 runs with uid 0: $(uid_line "$1")"
		return 1
	fi
}

# refused_or_unelevated BG PID OUT: something was started in the background
# (pid BG, output in OUT) to restore the image of PID (BG = PID for ./out).
# Either BG exits non-zero with a "cryo: " message and nothing runs, or PID
# becomes the dumped program, running untraced, and never with a uid 0.
# (While cryo still traces it, a refused exec may show uid 0 for a moment:
# stopped, it runs none of its own code.)
refused_or_unelevated() {
	local bg=$1 p=$2 out=$3 n=$((RESTORE_TIMEOUT * 20)) s
	while [ $n -gt 0 ]; do
		s=$(proc_state "$p")
		if [ -n "$s" ] && [ "$s" != Z ] && [ "$(readlink "/proc/$p/exe")" = "$ORIG_EXE" ] &&
			[ "$(status_field "$p" TracerPid)" = 0 ]; then
			if has_root_uid "$p"; then
				fail "pid $p runs $ORIG_EXE with uid 0: $(uid_line "$p") ($(describe_pid "$p"))"
				return 1
			fi
			if [ "$s" != t ] && [ "$s" != T ]; then
				echo "restored without root: pid $p Uid $(uid_line "$p")"
				kill -KILL "$p"
				wait_gone "$p" 10
				return
			fi
		elif ! alive "$bg"; then
			wait "$bg"
			rc=$?
			sed 's/^/    | /' "$out"
			[ $rc != 0 ] || { fail "exited 0 without restoring"; return 1; }
			grep -q 'cryo: ' "$out" || { fail "refused without a 'cryo: ...' message"; return 1; }
			echo "refused (status $rc)"
			nothing_runs "$ORIG_EXE"
			return
		fi
		usleep 20000
		n=$((n - 1))
	done
	fail "neither refused nor restored: $(describe_pid "$p")"
}

user_runs_image() {	# user_runs_image OUT [nnp]: ./out as the user, in the background
	if [ "$2" = nnp ]; then
		crtest runas $USER_UID $USER_UID setpriv --nnp sh -c "cd $D && exec ./out" > "$1" 2>&1 &
	else
		crtest runas $USER_UID $USER_UID sh -c "cd $D && exec ./out" > "$1" 2>&1 &
	fi
	runner=$!
	OUR_PIDS="$OUR_PIDS $runner"
}

user_restores() {	# user_restores OUT: cryo -r as the user, in the background
	crtest runas $USER_UID $USER_UID "$CRYO" -r -f "$D/out" < /dev/null > "$1" 2>&1 &
	CRYO_PID=$!
	OUR_PIDS="$OUR_PIDS $CRYO_PID"
}

# setuid_image: $D/out, the image of a setuid-root counter run by a user
# (so it ran with euid 0), dumped by root; its pid in $pid
setuid_image() {
	suid_copy || return 1
	counter_started /bin/crtest runas $USER_UID $USER_UID "$D/suid-counter" || return 1
	echo "running: Uid $(uid_line "$pid")"
	[ "$(uid_line "$pid")" = "$USER_UID 0 0 0" ] || { fail "the setuid bit did not take effect"; return 1; }
	dump_kill "$pid" "$D/out" || return 1
	chmod 0755 "$D/out" && chmod 0644 "$D/cryo-$pid.swap" || return 1
	n1=$(count_lines "$D/cnt")
}

# setuid_nnp_image: the same program run by the user under no_new_privs,
# so it never had root: the image holds only the user's ids
setuid_nnp_image() {
	suid_copy || return 1
	chmod 0666 "$LOG"
	counter_started /bin/crtest runas $USER_UID $USER_UID setpriv --nnp "$D/suid-counter" || return 1
	no_root_uid "$pid" && check_pass "$pid" "$LOG" || return 1
	dump_kill "$pid" "$D/out" || return 1
	chmod 0755 "$D/out" && chmod 0644 "$D/cryo-$pid.swap" || return 1
	n1=$(count_lines "$D/cnt")
}

# made_setuid_image: a plain copy of the counter run by the user, made
# setuid-root after the dump (a mode change: same dev/ino/size/mtime)
made_setuid_image() {
	chmod 0777 "$D"
	chmod 0666 "$LOG"
	cp "$PROGS/counter" "$D/suid-counter" && chmod 0755 "$D/suid-counter" || return 1
	counter_started /bin/crtest runas $USER_UID $USER_UID "$D/suid-counter" || return 1
	no_root_uid "$pid" || return 1
	dump_kill "$pid" "$D/out" || return 1
	chmod 0755 "$D/out" && chmod 0644 "$D/cryo-$pid.swap" || return 1
	chmod 4755 "$D/suid-counter" || return 1
	n1=$(count_lines "$D/cnt")
}

# suid_case IMAGE-KIND WHO [TAG]: one restore attempt on a fresh image;
# WHO: user-exec (./out), user-restore (cryo -r), root-restore (cryo -r)
suid_case() {
	use_cryo
	fresh_dir "suid-$1-$2${3:+-$3}"
	"$1_image" || return 1
	case $2 in
	user-exec)
		user_runs_image "$D/u.out"
		refused_or_unelevated "$runner" "$runner" "$D/u.out" ;;
	user-restore)
		user_restores "$D/u.out"
		refused_or_unelevated "$CRYO_PID" "$pid" "$D/u.out" ;;
	root-restore)
		"$CRYO" -r -f "$D/out" < /dev/null > "$D/r.out" 2>&1 &
		CRYO_PID=$!
		OUR_PIDS="$OUR_PIDS $CRYO_PID"
		refused_or_unelevated "$CRYO_PID" "$pid" "$D/r.out" ;;
	esac
}
t_suid_user_exec() { suid_case setuid user-exec; }
t_suid_user_restore() { suid_case setuid user-restore; }
t_suid_nnp_user_exec() { suid_case setuid_nnp user-exec; }
t_suid_nnp_user_restore() { suid_case setuid_nnp user-restore; }
t_suid_nnp_root_restore() { suid_case setuid_nnp root-restore; }
t_suid_nnp_root_restore_plain() { suid_case setuid_nnp root-restore plain; }
t_suid_made_user_exec() { suid_case made_setuid user-exec; }
t_suid_made_root_restore() { suid_case made_setuid root-restore; }
t_suid_made_root_restore_plain() { suid_case made_setuid root-restore plain; }

t_suid_nnp_nnp_exec() {
	# the user, under no_new_privs, runs ./out: nothing to gain, it restores
	use_cryo
	fresh_dir suid-nnp-nnp-exec
	setuid_nnp_image || return 1
	crtest runas $USER_UID $USER_UID setpriv --nnp sh -c "cd $D && exec ./out >> $LOG 2>&1" &
	runner=$!
	OUR_PIDS="$OUR_PIDS $runner"
	wait_restored "$runner" "$$" inplace || return 1
	no_root_uid "$runner" || return 1
	[ "$(status_field "$runner" NoNewPrivs)" = 1 ] || { fail "NoNewPrivs lost"; return 1; }
	wait_lines "$D/cnt" $((n1 + 10)) && check_consecutive "$D/cnt" && check_pass "$runner" "$LOG" || return 1
	kill "$runner"
	wait "$runner"
}

t_cryo_r_disabled() {
	# module loaded but enabled=0: cryo -r should still restore (plainly)
	use_cryo
	fresh_dir disabled
	counter_started || return 1
	dump_kill "$pid" "$D/out" && chmod +x "$D/out" || return 1
	n1=$(count_lines "$D/cnt")
	echo 0 > $PARAMS/enabled
	restore_bg "$D/out" "$LOG" "$pid"
	rc=$?
	echo 1 > $PARAMS/enabled
	[ $rc = 0 ] || return 1
	wait_lines "$D/cnt" $((n1 + 10)) && stop_restored "$pid" && check_consecutive "$D/cnt"
}

# ---- cryo's single-process scenarios (tests/bats/basic.bats) ----
# run with the module loaded (cryo -r takes the armed-exec path) and again
# after rmmod (plain execve)

s_counter() {
	start_prog "$LOG" counter "$D/cnt" || return 1
	pid=$PROG_PID
	wait_lines "$D/cnt" 10 && check_pass "$pid" "$LOG" || return 1
	dump_kill "$pid" "$D/out" || return 1
	n1=$(count_lines "$D/cnt")
	check_consecutive "$D/cnt" || return 1
	restore_bg "$D/out" "$LOG" "$pid" || return 1
	kids=$(cat /proc/"$CRYO_PID"/task/*/children | tr -s ' \n' ' ')
	[ "${kids% }" = "$pid" ] || { fail "cryo's children '$kids', want $pid"; return 1; }
	wait_lines "$D/cnt" $((n1 + 25)) && check_pass "$pid" "$LOG" || return 1
	stop_restored "$pid" && check_consecutive "$D/cnt"
}

s_heap() {
	READY_TIMEOUT=60 start_prog "$LOG" heap 64 || return 1
	pid=$PROG_PID
	check_pass "$pid" "$LOG" && dump_kill "$pid" "$D/out" || return 1
	[ -f "$D/cryo-$pid.swap" ] || { fail "no swapfile $D/cryo-$pid.swap: $(ls -l "$D")"; return 1; }
	restore_bg "$D/out" "$LOG" "$pid" && check_pass "$pid" "$LOG" && stop_restored "$pid"
}

s_simple() {	# s_simple PROG: start, check, dump, restore, check
	start_prog "$LOG" "$1" || return 1
	pid=$PROG_PID
	check_pass "$pid" "$LOG" && dump_kill "$pid" "$D/out" || return 1
	restore_bg "$D/out" "$LOG" "$pid" && check_pass "$pid" "$LOG" && stop_restored "$pid"
}
s_guards() { s_simple guards; }

s_privmap() {
	start_prog "$LOG" privmap "$D/priv.dat" || return 1
	pid=$PROG_PID
	sum0=$(sha256sum < "$D/priv.dat")
	check_pass "$pid" "$LOG" && dump_kill "$pid" "$D/out" || return 1
	restore_bg "$D/out" "$LOG" "$pid" && check_pass "$pid" "$LOG" || return 1
	[ "$(sha256sum < "$D/priv.dat")" = "$sum0" ] || { fail "priv.dat changed on disk"; return 1; }
	grep -q " rw-p 00000000 .* $D/priv.dat\$" "/proc/$pid/maps" ||
		{ fail "no rw-p mapping of priv.dat: $(cat "/proc/$pid/maps")"; return 1; }
	stop_restored "$pid"
}

s_files() {
	start_prog "$LOG" files "$D/append.dat" "$D/ro.dat" || return 1
	pid=$PROG_PID
	sum0=$(sha256sum < "$D/ro.dat")
	check_pass "$pid" "$LOG" && dump_kill "$pid" "$D/out" || return 1
	restore_bg "$D/out" "$LOG" "$pid" || return 1
	[ "$(readlink "/proc/$pid/fd/3")" = "$D/append.dat" ] || { fail "fd 3 -> $(readlink "/proc/$pid/fd/3")"; return 1; }
	[ "$(readlink "/proc/$pid/fd/4")" = "$D/ro.dat" ] || { fail "fd 4 -> $(readlink "/proc/$pid/fd/4")"; return 1; }
	grep -q '^pos:[[:space:]]*1234$' "/proc/$pid/fdinfo/4" || { fail "fdinfo 4: $(cat "/proc/$pid/fdinfo/4")"; return 1; }
	check_pass "$pid" "$LOG" && stop_restored "$pid" || return 1
	size=$(stat -c %s "$D/append.dat")
	[ "$size" = 132 ] || { fail "append.dat is $size bytes, want 132"; return 1; }
	[ "$(sha256sum < "$D/ro.dat")" = "$sum0" ] || { fail "ro.dat changed"; return 1; }
}

s_procstate() {
	dir="$D/work dir"
	mkdir "$dir" && start_prog "$LOG" procstate "$dir" || return 1
	pid=$PROG_PID
	check_pass "$pid" "$LOG" && dump_kill "$pid" "$D/out" || return 1
	restore_bg "$D/out" "$LOG" "$pid" && check_pass "$pid" "$LOG" || return 1
	[ "$(readlink "/proc/$pid/cwd")" = "$dir" ] || { fail "cwd $(readlink "/proc/$pid/cwd")"; return 1; }
	[ "$(status_field "$pid" Umask)" = 0027 ] || { fail "Umask $(status_field "$pid" Umask)"; return 1; }
	grep -qE '^Max open files +200 ' "/proc/$pid/limits" ||
		{ fail "limits: $(grep 'open files' "/proc/$pid/limits")"; return 1; }
	stop_restored "$pid"
}

s_piperead() {
	mkfifo "$D/in" || return 1
	exec 5<> "$D/in"	# the test keeps the pipe open (and writable)
	PROG_STDIN=$D/in start_prog "$LOG" piperead || return 1
	pid=$PROG_PID
	echo "before dump" >&5
	wait_log "$LOG" '^GOT before dump$' && wait_syscall "$pid" 0 || return 1
	dump_kill "$pid" "$D/out" || return 1
	RESTORE_STDIN=$D/in restore_bg "$D/out" "$LOG" "$pid" || return 1
	echo "after restore" >&5
	wait_log "$LOG" '^GOT after restore$' || return 1
	echo "second line" >&5
	wait_log "$LOG" '^GOT second line$' || return 1
	exec 5>&-
	grep -E '^(FAIL|EOF)' "$LOG" && { fail "piperead reported a failure or EOF"; return 1; }
	[ "$(grep -c '^GOT ' "$LOG")" = 3 ] || { fail "want exactly 3 GOT lines"; return 1; }
	assert_single_ready "$LOG" && stop_restored "$pid"
}

s_sleeper() {
	start_prog "$LOG" sleeper || return 1
	pid=$PROG_PID
	wait_syscall "$pid" '35|230' || return 1
	usleep 500000
	dump_kill "$pid" "$D/out" || return 1
	grep -q '^SLEPT' "$LOG" && { fail "SLEPT before the dump (dump too late)"; return 1; }
	restore_bg "$D/out" "$LOG" "$pid" && wait_log "$LOG" '^SLEPT 2$' 15 || return 1
	grep '^FAIL' "$LOG" && { fail "sleeper reported a failure"; return 1; }
	got=$(grep '^SLEPT' "$LOG" | head -n 2 | tr '\n' ' ')
	[ "$got" = "SLEPT 1 SLEPT 2 " ] || { fail "SLEPT lines: '$got'"; return 1; }
	assert_single_ready "$LOG" && stop_restored "$pid"
}

s_cmdline() {
	start_prog "$LOG" /bin/env 'CRYO_TEST_ENV=value with  spaces = "quoted"' "$PROGS/cmdline" \
		"first arg" "" "  lead and trail  " "--opt=a b" 'ünï $HOME' || return 1
	pid=$PROG_PID
	cp "/proc/$pid/cmdline" "$D/cmdline.before" && cp "/proc/$pid/environ" "$D/environ.before" || return 1
	tr '\0' '\n' < "$D/environ.before" | grep -qx 'CRYO_TEST_ENV=value with  spaces = "quoted"' ||
		{ fail "setup: CRYO_TEST_ENV not in the environment"; return 1; }
	check_pass "$pid" "$LOG" && dump_kill "$pid" "$D/out" || return 1
	restore_bg "$D/out" "$LOG" "$pid" || return 1
	cmp "$D/cmdline.before" "/proc/$pid/cmdline" ||
		{ fail "cmdline: $(tr '\0' '|' < "/proc/$pid/cmdline")"; return 1; }
	cmp "$D/environ.before" "/proc/$pid/environ" ||
		{ fail "environ: $(tr '\0' '|' < "/proc/$pid/environ")"; return 1; }
	check_pass "$pid" "$LOG" && stop_restored "$pid"
}

s_twice() {	# the same image restored twice
	start_prog "$LOG" heap 8 || return 1
	pid=$PROG_PID
	check_pass "$pid" "$LOG" && dump_kill "$pid" "$D/out" || return 1
	restore_bg "$D/out" "$LOG" "$pid" && check_pass "$pid" "$LOG" && stop_restored "$pid" || return 1
	restore_bg "$D/out" "$LOG" "$pid" && check_pass "$pid" "$LOG" && stop_restored "$pid" KILL 137
}

tree_sig() {	# ROOT -> "pid:ppid:pgid:sid:state:forknoexec" of the root and its children
	local root=$1 p
	for p in $root $(cat /proc/"$root"/task/*/children 2>/dev/null); do
		awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " ");
		       printf "%s:%s:%s:%s:%s:%d\n", $1, f[2], f[3], f[4], f[1], int(f[7] / 64) % 2 }' \
			/proc/"$p"/stat
	done | sort -n
}

s_tree() {
	# a session leader, a child that never exec'd (A), a group leader (B),
	# a zombie: restored with their pids, groups and sessions. With the
	# module, PF_FORKNOEXEC too: A can still be setpgid()'d by its parent
	# (the program checks it: argument "setpgid"), while the root, which
	# did exec, keeps the flag clear
	local fne=
	[ -r "$STATUS" ] && fne=setpgid
	start_prog "$LOG" tree "$D/shared.txt" $fne || return 1
	pid=$PROG_PID
	check_pass "$pid" "$LOG" || return 1
	before=$(tree_sig "$pid")
	echo "before:" $before
	[ "$(echo "$before" | wc -l)" = 4 ] || { fail "expected 4 processes: $before"; return 1; }
	kids=$(echo "$before" | tail -n +2 | cut -d: -f1)
	OUR_PIDS="$OUR_PIDS $kids"
	dump_kill "$pid" "$D/out" || return 1
	for k in $kids; do wait_gone "$k" 10 || return 1; done
	restore_bg "$D/out" "$LOG" "$pid" || return 1
	after=$(tree_sig "$pid")
	echo "after: " $after
	# the root's parent is cryo now; without the module, exec clears
	# PF_FORKNOEXEC (the last field) of the children
	[ "${after%%:*}" = "$pid" ] || { fail "root pid changed: $after"; return 1; }
	if [ -n "$fne" ]; then
		[ "$(echo "$before" | tail -n +2)" = "$(echo "$after" | tail -n +2)" ] &&
			[ "${before##*:}" = "${after##*:}" ] ||
			{ fail "tree differs: before '$before' after '$after'"; return 1; }
	else
		[ "$(echo "$before" | tail -n +2 | cut -d: -f1-5)" = "$(echo "$after" | tail -n +2 | cut -d: -f1-5)" ] ||
			{ fail "tree differs: before '$before' after '$after'"; return 1; }
	fi
	check_pass "$pid" "$LOG" && stop_restored "$pid"
}

# restored_or_refused PROG ERE: either a full dump + restore, or (for
# state cryo does not support yet) cryo -p exits 1 with one message naming
# the pid and the object, and the process runs on untouched
restored_or_refused() {
	start_prog "$LOG" "$1" || return 1
	pid=$PROG_PID
	ORIG_EXE=$(readlink "/proc/$pid/exe")
	ORIG_SIGCGT=$(status_field "$pid" SigCgt)
	timeout "$CRYO_TIMEOUT" "$CRYO" -p "$pid" -f "$D/out" --kill > "$D/d.out" 2>&1
	rc=$?
	cat "$D/d.out"
	if [ $rc = 0 ]; then
		echo "dumped (supported now): restoring"
		[ -z "$IMG_MODE" ] || chmod "$IMG_MODE" "$D/out" || return 1
		wait_gone "$pid" 10 && restore_bg "$D/out" "$LOG" "$pid" &&
			check_pass "$pid" "$LOG" && stop_restored "$pid"
		return
	fi
	SCN_NO_RESTORE=1
	[ $rc = 1 ] || { fail "cryo -p exited $rc, want 1"; return 1; }
	grep -qiE -- "$2" "$D/d.out" || { fail "message does not name /$2/"; return 1; }
	grep -q "$pid" "$D/d.out" || { fail "message does not name pid $pid"; return 1; }
	usleep 200000
	alive "$pid" && [ "$(status_field "$pid" TracerPid)" = 0 ] ||
		{ fail "not running untraced after the refusal: $(describe_pid "$pid")"; return 1; }
	check_pass "$pid" "$LOG"
}
s_threads() { restored_or_refused threads2 thread; }
s_eventfd() { restored_or_refused evfd 'eventfd|anon_inode|fd 3'; }

s_corrupt() {	# one byte flipped mid-image, then truncated: refused, nothing runs
	start_prog "$LOG" heap 8 || return 1
	pid=$PROG_PID
	dump_kill "$pid" "$D/out" || return 1
	size=$(stat -c %s "$D/out")
	cp "$D/out" "$D/bad" && flip_byte "$D/bad" $(((size / 2) & ~7)) || return 1
	cp "$D/out" "$D/short" && truncate -s $((size / 2)) "$D/short" || return 1
	for img in bad short; do
		timeout 30 "$CRYO" -r -f "$D/$img" < /dev/null > "$D/r.out" 2>&1
		rc=$?
		cat "$D/r.out"
		[ $rc = 1 ] || { fail "cryo -r -f $img exited $rc, want 1"; return 1; }
		grep -qiE 'section|header|truncat' "$D/r.out" || { fail "message names no section/header"; return 1; }
		[ ! -e "/proc/$pid" ] || { fail "pid $pid exists: $(describe_pid "$pid")"; return 1; }
	done
	restore_bg "$D/out" "$LOG" "$pid" && check_pass "$pid" "$LOG" && stop_restored "$pid"
}

# scn_wrap: the scenario $SCN_FN in its own directory; with the module
# loaded, its restores must have gone through it. Images are made
# executable then, as for ./out (t_cryo_r_0600 covers cryo -r of a 0600
# image through the module).
SCN_MODE=
SCN_FN=
SCN_NO_RESTORE=
scn_wrap() {
	local r0='' rc
	fresh_dir "${SCN_FN#s_}-$(echo "$SCN_MODE" | tr " " _)"
	IMG_MODE=
	if [ -r "$STATUS" ]; then
		use_cryo
		r0=$(stat_of restores_completed)
		IMG_MODE=0700
	fi
	SCN_NO_RESTORE=
	"$SCN_FN"
	rc=$?
	IMG_MODE=
	cleanup_pids
	[ $rc = 0 ] || return $rc
	if [ -n "$r0" ] && [ -z "$SCN_NO_RESTORE" ] && [ "$(stat_of restores_completed)" -le "$r0" ]; then
		fail "the restore did not go through binfmt_cr (restores_completed $r0)"
		return 1
	fi
	return 0
}

# roundtrip PROG [ARGS...]: check, dump --kill, restore, check twice
s_roundtrip() {
	start_prog "$LOG" "$@" || return 1
	pid=$PROG_PID
	check_pass "$pid" "$LOG" && dump_kill "$pid" "$D/out" || return 1
	restore_bg "$D/out" "$LOG" "$pid" && check_pass "$pid" "$LOG" &&
		check_pass "$pid" "$LOG" && stop_restored "$pid"
}
# 6.1 does not show an eventfd's semaphore mode in fdinfo: cryo refuses
# eventfds there, by name
s_eventfds() { restored_or_refused eventfds 'eventfd'; }
s_pipes() { mkfifo "$D/fifo" && s_roundtrip pipes "$D/fifo"; }
s_unixsk() { s_roundtrip unixsk "$D/listen.sock"; }
s_epollset() { restored_or_refused epollset 'eventfd'; }	# it holds an eventfd
s_timerfds() { s_roundtrip timerfds 5000; }
s_sigfd() { s_roundtrip sigfd; }
s_unlinked() { s_roundtrip unlinked "$D/gone.dat"; }
s_memfds() { s_roundtrip memfds; }
s_inot() { mkdir "$D/w1" "$D/w2" && s_roundtrip inot "$D/w1" "$D/w2"; }
s_tcplisten() { ip link set lo up; s_roundtrip tcplisten; }
s_locks() { s_roundtrip locks "$D/l1" "$D/l2" "$D/l3"; }
s_sigstate() { s_roundtrip sigstate; }
s_timers() { s_roundtrip timers; }
s_threads8() { s_roundtrip threads8; }
s_manythreads() { s_roundtrip manythreads 200; }

# the scenario programs of the other kinds of state (tests/bats/fds.bats,
# signals_threads.bats): after rmmod, and with the module too when
# GUEST_EXTRA=1 is in CRYO_QEMU_APPEND
extra_scenarios() {
	local todo
	SCN_MODE=$1
	for s in eventfds pipes unixsk epollset timerfds sigfd unlinked memfds inot tcplisten \
		locks sigstate timers threads8 manythreads; do
		[ -x "$PROGS/$s" ] || continue
		todo=
		SCN_FN=s_$s
		run "$SCN_MODE: $s: dump --kill, restore, checks$todo" scn_wrap
	done
}

scenarios() {	# scenarios MODE
	SCN_MODE=$1
	for s in "counter: dump --kill + restore, same pid, no gap or repeat:s_counter" \
		"heap: 64 MiB of patterned memory intact:s_heap" \
		"guards: read-only and PROT_NONE guards keep perms and bounds:s_guards" \
		"privmap: MAP_PRIVATE file mapping keeps modified pages:s_privmap" \
		"files: fd numbers, offsets, O_APPEND, access flags:s_files" \
		"procstate: cwd, umask, RLIMIT_NOFILE:s_procstate" \
		"piperead: read() blocked on a pipe continues:s_piperead" \
		"sleeper: nanosleep continues without EINTR:s_sleeper" \
		"cmdline: /proc/PID/cmdline and environ equal:s_cmdline" \
		"the same image restored twice:s_twice" \
		"corrupted and truncated images refused:s_corrupt" \
		"tree: pids, groups, session, zombie; PF_FORKNOEXEC with the module:s_tree" \
		"threads2: restored, or refused by name and runs on:s_threads" \
		"evfd (eventfd): restored, or refused by name and runs on:s_eventfd"; do
		SCN_FN=${s##*:}
		run "$SCN_MODE: ${s%:*}" scn_wrap
	done
}

t_klog_clean() {
	klog
	cat "$KALL" > /tmp/all
	if grep -n 'WARNING:\|BUG:\|Oops\|general protection\|Call Trace\|RIP:\|refcount_t\|list_del corruption\|UBSAN\|KASAN' /tmp/all; then
		return 1
	fi
	echo "$(wc -l < /tmp/all) kernel lines checked"
}

echo "# binfmt_cr guest suite on $(uname -r)"
run "module loads without warnings" t_load
if ! grep -q '^binfmt_cr ' /proc/modules; then
	echo "Bail out! module did not load"
	exit 0
fi
run "/proc/binfmt_cr/status shows defaults" t_status
run "arm file: arm/disarm/read back, bad input refused" t_arm_file
run "corrupt image (short file) refused" t_c_short
run "corrupt image (prelude) refused" t_c_prelude
run "corrupt image (major version) refused" t_c_version
run "corrupt image (header crc) refused" t_c_hcrc
run "corrupt image (truncated) refused" t_c_trunc
run "corrupt image (exe path) refused" t_c_exepath
run "corrupt image (table crc) refused" t_c_tcrc
run "corrupt image (section type) refused" t_c_stype
run "corrupt image (section bounds) refused" t_c_sbounds
run "corrupt image (section alignment) refused" t_c_salign
run "corrupt image (record size) refused" t_c_srec
run "not an image: left to others" t_c_magic
run "missing restorer: ENOEXEC, shell falls back to prelude" t_no_restorer
run "unarmed exec hands off to restorer with AT_EXECFD" t_handoff
run "unarmed ./image from a shell" t_handoff_shell
run "unarmed exec under ptrace still hands off" t_handoff_traced
run "image mode bits never count (setuid image)" t_image_setuid_ignored
run "image not readable by caller refused" t_image_unreadable
run "setuid restorer refused" t_restorer_setuid
run "setgid restorer refused" t_restorer_setgid
run "restorer with file capabilities refused" t_restorer_fcaps
run "enabled=0 handles nothing" t_disabled
run "armed exec runs the original binary with the image argv" t_restore
run "armed exec without ARGV section keeps exec argv" t_restore_keep_argv
run "armed exec under ptrace still restores" t_restore_traced
run "armed exec of a non-root task uses its core record" t_restore_child_task
run "armed exec with task index out of range refused" t_restore_bad_index
run "exe identity mismatch (dev/ino/size/mtime) refused" t_ident_fields
run "exe touched after checkpoint refused" t_ident_touched
run "exe replaced after checkpoint refused" t_ident_replaced
run "damaged argv section (crc) refused" t_section_crc
run "exe that is not ELF refused" t_exe_not_elf
run "armed exec from a non-leader thread" t_restore_thread
run "setuid exe refused for another user, allowed for its owner" t_exe_setuid
run "setuid exe under no_new_privs runs without elevation" t_exe_setuid_nnp
run "setgid exe refused for another group" t_exe_setgid
run "exe with file capabilities refused unless caps already held" t_exe_fcaps
run "ordinary user restores own image" t_user_restore
run "arg/env boundaries set inside the stack, left outside" t_mm_boundaries
run "PF_FORKNOEXEC set after exec when image says so" t_forknoexec_set
run "PF_FORKNOEXEC clear after exec otherwise" t_forknoexec_clear
run "arm dropped by a non-image exec" t_arm_dropped_by_exec
run "cryo -r restores through the module: pid, counter, cmdline, environ" t_cryo_r_module
run "cryo -r of a 0600 image through the module" t_cryo_r_0600
run "./out of a dumped counter restores it in the shell's process" t_exec_image
run "binary replaced since the dump: cryo -r and ./out refuse, nothing runs" t_exe_replaced
run "binary rewritten in place: refused by cryo, and by the module past it" t_exe_modified
run "corrupted header: ENOEXEC with a kernel log line, no oops" t_bad_header
run "setuid-root program's image, user runs ./out: refused or never uid 0" t_suid_user_exec
run "setuid-root program's image, user runs cryo -r: refused or never uid 0" t_suid_user_restore
run "setuid binary run unelevated (nnp), user runs ./out: refused or never uid 0" t_suid_nnp_user_exec
run "setuid binary run unelevated (nnp), user runs cryo -r: refused or never uid 0" t_suid_nnp_user_restore
run "setuid binary run unelevated (nnp), user+nnp runs ./out: restored, not root" t_suid_nnp_nnp_exec
run "setuid binary run unelevated (nnp), root runs cryo -r: never uid 0" t_suid_nnp_root_restore
run "binary made setuid-root after the dump, user runs ./out: refused or never uid 0" t_suid_made_user_exec
run "binary made setuid-root after the dump, root runs cryo -r: never uid 0" t_suid_made_root_restore
run "cryo -r with the module loaded but disabled" t_cryo_r_disabled
scenarios "with binfmt_cr"
[ "${GUEST_EXTRA:-0}" = 0 ] || extra_scenarios "with binfmt_cr"
run "fuzzed images: no oops, module still works" t_fuzz
run "arm dropped at task exit" t_arm_dropped_at_exit
run "rmmod with an armed task" t_rmmod
run "insmod restorer= parameter, reload, rmmod" t_reload
run "without binfmt_cr: binary rewritten in place, --allow-changed-files: refused" t_exe_modified_plain
run "without binfmt_cr: setuid binary run unelevated (nnp), root runs cryo -r: never uid 0" t_suid_nnp_root_restore_plain
run "without binfmt_cr: binary made setuid-root after the dump, root runs cryo -r: never uid 0" t_suid_made_root_restore_plain
scenarios "without binfmt_cr"
extra_scenarios "without binfmt_cr"
run "kernel log has no WARNING/BUG/Oops" t_klog_clean
echo "1..$N"
[ -r "$STATUS" ] && sed 's/^/# status: /' "$STATUS"
