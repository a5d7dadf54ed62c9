#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR MIT
# guest-tests.sh - the binfmt_cr suite, run by /init inside the qemu guest
# (busybox sh, root). Prints TAP lines "ok N - name" / "not ok N - name",
# with the failing test's output as "#" lines; /init counts them.
#
# Binaries (static, from the host): /bin/mkimage, /bin/fake-restorer (a test
# double of the handoff interface, not cryo), /bin/target (the "original
# executable" of test images), /bin/crtest (exec/arm/runas/ptrace helpers).
# /init has already run insmod; its output and status are in /tmp/insmod.*.

PARAMS=/sys/module/binfmt_cr/parameters
STATUS=/proc/binfmt_cr/status
N=0
OUT=/tmp/t.out
KLOG=/tmp/klog.new	# kernel messages since the test started
KALL=/tmp/klog.all	# every kernel message of the run
USER_UID=1000

# ---- harness ----

run() {	# run NAME FUNCTION
	: > "$KLOG"
	dmesg -c >> "$KALL" 2>/dev/null
	if "$2" > "$OUT" 2>&1; then
		N=$((N + 1))
		echo "ok $N - $1"
	else
		N=$((N + 1))
		echo "not ok $N - $1"
		sed 's/^/#   /' "$OUT"
		klog
		sed 's/^/#   kernel: /' "$KLOG"
	fi
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
	# default restorer /usr/local/bin/cryo is absent: ENOEXEC (so a shell
	# falls back to the image's prelude line), and a log line
	mkimg /tmp/ok.img || return 1
	crtest exec /tmp/ok.img > /tmp/o 2>&1
	cat /tmp/o
	has /tmp/o 'exec-errno=ENOEXEC' || return 1
	klog_has 'cannot open restorer /usr/local/bin/cryo: error -2' || return 1
	# the shell fallback: the prelude says what is missing
	( cd /tmp && sh -c './ok.img' ) > /tmp/o 2>&1
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
	touch /tmp/target-t
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
run "fuzzed images: no oops, module still works" t_fuzz
run "arm dropped at task exit" t_arm_dropped_at_exit
run "rmmod with an armed task" t_rmmod
run "insmod restorer= parameter, reload, rmmod" t_reload
run "kernel log has no WARNING/BUG/Oops" t_klog_clean
echo "1..$N"
[ -r "$STATUS" ] && sed 's/^/# status: /' "$STATUS"
