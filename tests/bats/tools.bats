#!/usr/bin/env bats
# The user-facing tools around dump and restore: cryo show, cryo check,
# cryo core (with gdb), the progress line, --help and the man page.
# Needs `make cryo progs`; the gdb test needs gdb, the man test man.

load helpers

: "${BATS_TEST_TIMEOUT:=120}"

ROOT=$(readlink -f "$BATS_TEST_DIRNAME/../..")

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	PROGS_REAL=$(readlink -f "$PROGS")
	IMG=$T/img.cryo
	LOG=$T/prog.log
}

# dump_prog PROG [ARGS...]: start tests/progs/PROG, dump it with --kill
# into $IMG; sets PID.
dump_prog() {
	start_prog "$LOG" "$@" || return 1
	PID=$PROG_PID
	dump_kill "$PID" "$IMG" || return 1
}

# json_get FILE PYEXPR: evaluate PYEXPR with d = the parsed JSON of FILE.
json_get() {
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# retag_section IMG NAME NEWTYPE: give the first section called NAME the
# type NEWTYPE, fixing the table and header checksums, as a newer cryo
# writing a section type this one does not know would.
retag_section() {
	python3 - "$1" "$2" "$3" "$4" <<'EOF'
import json, struct, sys
img, name, newtype, js = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def crc32c(b, crc=0):
    crc ^= 0xffffffff
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 & -(crc & 1))
    return crc ^ 0xffffffff
d = bytearray(open(img, 'rb').read())
idx = [s['index'] for s in json.load(open(js))['sections'] if s['name'] == name][0]
count, esz = struct.unpack_from('<II', d, 136)
toff = struct.unpack_from('<Q', d, 144)[0]
struct.pack_into('<I', d, toff + idx * esz, newtype)
struct.pack_into('<I', d, 240, crc32c(d[toff:toff + count * esz]))
struct.pack_into('<I', d, 244, 0)
struct.pack_into('<I', d, 244, crc32c(d[0:256]))
open(img, 'wb').write(d)
EOF
}

# ---- cryo show ----

@test "show: a real image prints the exe, the VMAs with page counts, and the fds" {
	dump_prog counter "$T/counter.txt"
	run "$CRYO" show "$IMG"
	[ "$status" -eq 0 ] || fail "cryo show exited $status: $output"
	echo "$output" | grep -q "^  exe      $PROGS_REAL/counter\$" ||
		fail "no exe line for $PROGS_REAL/counter: $output"
	echo "$output" | grep -q "task 0: pid $PID," || fail "no pid $PID: $output"
	echo "$output" | grep -Eq " r-xp file_private +[0-9]+ +[0-9]+  $PROGS_REAL/counter @" ||
		fail "no text VMA of counter: $output"
	echo "$output" | grep -Eq " rw-p anon +[1-9][0-9]* +[0-9]+  growsdown,stack" ||
		fail "no stack VMA with stored pages: $output"
	echo "$output" | grep -Eq "^ +3 file +$T/counter.txt O_WRONLY\|O_APPEND pos [0-9]+" ||
		fail "no fd 3 -> counter.txt O_APPEND: $output"
	echo "$output" | grep -q "present and consistent" || fail "swapfile not reported consistent: $output"
	echo "$output" | grep -q "handled SIGUSR1" || fail "SIGUSR1 handler not shown: $output"
}

@test "show --json: parses, and has the pid, the exe, VMAs and fds" {
	dump_prog counter "$T/counter.txt"
	run "$CRYO" show --json "$IMG"
	[ "$status" -eq 0 ] || fail "cryo show --json exited $status: $output"
	echo "$output" >"$T/show.json"
	python3 -c 'import json, sys; json.load(sys.stdin)' <"$T/show.json" ||
		fail "not JSON: $output"
	[ "$(json_get "$T/show.json" 'd["schema_version"]')" = 1 ] || fail "schema_version"
	[ "$(json_get "$T/show.json" 'd["tasks"][0]["pid"]')" = "$PID" ] || fail "pid is not $PID"
	[ "$(json_get "$T/show.json" 'd["tasks"][0]["exe"]["path"]')" = "$PROGS_REAL/counter" ] ||
		fail "exe is not $PROGS_REAL/counter"
	[ "$(json_get "$T/show.json" '[f["path"] for f in d["tasks"][0]["fds"] if f["fd"] == 3][0]')" = "$T/counter.txt" ] ||
		fail "fd 3 is not $T/counter.txt"
	[ "$(json_get "$T/show.json" 'sum(v["pages_stored"] for v in d["tasks"][0]["vmas"]) == d["tasks"][0]["pages"]["stored"] > 0')" = True ] ||
		fail "per-VMA stored pages do not add up"
	[ "$(json_get "$T/show.json" 'd["swapfile"]["present"] and d["swapfile"]["consistent"]')" = True ] ||
		fail "swapfile not present and consistent"
}

@test "show: a corrupted image fails with a message naming the section" {
	local off
	dump_prog counter "$T/counter.txt"
	"$CRYO" show --json "$IMG" >"$T/show.json"
	off=$(json_get "$T/show.json" '[s["offset"] for s in d["sections"] if s["name"] == "vmas"][0]')
	flip_byte "$IMG" $((off + 9))
	run "$CRYO" show "$IMG"
	[ "$status" -eq 1 ] || fail "cryo show of a corrupted image exited $status: $output"
	[[ $output == *"section "*" (vmas) at offset $off: checksum mismatch"* ]] ||
		fail "message does not name the vmas section: $output"
}

@test "show: a missing swapfile is reported, and the exit status says so" {
	dump_prog counter "$T/counter.txt"
	mv "$T/cryo-$PID.swap" "$T/elsewhere.swap"
	run "$CRYO" show "$IMG"
	[ "$status" -eq 1 ] || fail "exited $status with the swapfile gone: $output"
	echo "$output" | grep -q "MISSING: swapfile .*cryo-$PID.swap: open: No such file" ||
		fail "missing swapfile not reported: $output"
	run "$CRYO" show --swapfile "$T/elsewhere.swap" --verify "$IMG"
	[ "$status" -eq 0 ] || fail "with --swapfile: exited $status: $output"
	echo "$output" | grep -Eq "[1-9][0-9]* pages read back, 0 fail their checksum" ||
		fail "--verify did not check pages: $output"
}

@test "show: a section type from a newer cryo is listed as unknown, not an error" {
	dump_prog counter "$T/counter.txt"
	"$CRYO" show --json "$IMG" >"$T/show.json"
	retag_section "$IMG" itimers 200 "$T/show.json"
	run "$CRYO" show "$IMG"
	[ "$status" -eq 0 ] || fail "exited $status: $output"
	echo "$output" | grep -q "unknown .*(type 200, from a newer cryo: skipped)" ||
		fail "unknown section not listed: $output"
	run "$CRYO" show --json "$IMG"
	[ "$status" -eq 0 ] || fail "--json exited $status: $output"
	echo "$output" >"$T/show2.json"
	[ "$(json_get "$T/show2.json" '[s["known"] for s in d["sections"] if s["type"] == 200][0]')" = False ] ||
		fail "section of type 200 not marked unknown"
}

# ---- cryo check ----

@test "check: exits 0 and finds ptrace and clone3 set_tid on this host" {
	run "$CRYO" check
	[ "$status" -eq 0 ] || fail "cryo check exited $status: $output"
	echo "$output" | grep -Eq "^  ptrace seize \+ interrupt +yes " || fail "ptrace not available: $output"
	echo "$output" | grep -Eq "^  clone3 set_tid +yes " || fail "clone3 set_tid not available: $output"
	echo "$output" | grep -Eq "^  restore +available " || fail "restore not available: $output"
	run "$CRYO" check --json
	[ "$status" -eq 0 ] || fail "cryo check --json exited $status: $output"
	echo "$output" >"$T/check.json"
	[ "$(json_get "$T/check.json" 'd["probes"]["ptrace"]["ok"] and d["probes"]["clone3_set_tid"]["ok"]')" = True ] ||
		fail "JSON does not report ptrace and clone3_set_tid: $output"
	[ "$(json_get "$T/check.json" 'd["features"]["dump"]["available"]')" = True ] || fail "dump"
}

# ---- cryo core ----

@test "core: gdb shows the backtrace and a global variable of the checkpointed process" {
	command -v gdb >/dev/null || skip "gdb is not installed"
	dump_prog gdbcore
	run "$CRYO" core "$IMG" -o "$T/core"
	[ "$status" -eq 0 ] || fail "cryo core exited $status: $output"
	run timeout 120 gdb -batch -nx -iex 'set debuginfod enabled off' \
		-ex bt -ex 'print gdbcore_global' -ex 'info threads' "$PROGS/gdbcore" "$T/core"
	[ "$status" -eq 0 ] || fail "gdb exited $status: $output"
	echo "$output" >"$T/gdb.out"
	# the frames, innermost first, in this order
	awk '/^#[0-9]+ / { for (i = 1; i <= NF; i++) if ($i ~ /^(gdbcore_(inner|middle|outer)|main)$/) print $i }' \
		"$T/gdb.out" | tr '\n' ' ' >"$T/frames"
	[ "$(cat "$T/frames")" = "gdbcore_inner gdbcore_middle gdbcore_outer main " ] ||
		fail "backtrace frames '$(cat "$T/frames")': $output"
	grep -q '^\$1 = 1272726$' "$T/gdb.out" || fail "gdbcore_global is not 1272726: $output"
	grep -q "LWP $PID" "$T/gdb.out" || fail "no thread LWP $PID: $output"
	[ "$(stat -c %a "$T/core")" = 600 ] || fail "core is not mode 0600"
}

@test "core: a page that fails its checksum fails the core and leaves no file" {
	local slot_off
	dump_prog gdbcore
	# damage the first stored slot
	slot_off=$((8192 + 10))
	flip_byte "$T/cryo-$PID.swap" "$slot_off"
	run "$CRYO" core "$IMG" -o "$T/core"
	[ "$status" -eq 1 ] || fail "cryo core exited $status with a bad page: $output"
	[[ $output == *"fails its checksum"* ]] || fail "message: $output"
	[ ! -e "$T/core" ] || fail "a core was left behind"
	[ -z "$(ls "$T" | grep '^core\.tmp')" ] || fail "a temporary file was left: $(ls "$T")"
}

# ---- progress ----

@test "progress: a line on a terminal, none with --quiet or when stderr is not a tty" {
	command -v script >/dev/null || skip "script (util-linux) is not installed"
	READY_TIMEOUT=20 dump_prog heap 64
	# CRYO_PROGRESS_DELAY_MS=0: show it at once instead of after a second
	CRYO_PROGRESS_DELAY_MS=0 script -qec "'$CRYO' core '$IMG' -o '$T/core'" /dev/null >"$T/tty.out"
	grep -aq "cryo: core: .* of .*/s" "$T/tty.out" || fail "no progress line on a tty: $(cat -v "$T/tty.out")"
	CRYO_PROGRESS_DELAY_MS=0 script -qec "'$CRYO' core -q '$IMG' -o '$T/core'" /dev/null >"$T/quiet.out"
	! grep -aq "cryo: core:" "$T/quiet.out" || fail "progress despite --quiet: $(cat -v "$T/quiet.out")"
	CRYO_PROGRESS_DELAY_MS=0 "$CRYO" core "$IMG" -o "$T/core" 2>"$T/notty.err"
	[ ! -s "$T/notty.err" ] || fail "output on a non-tty stderr: $(cat -v "$T/notty.err")"
}

@test "progress: dump on a terminal shows it (once mm.c reports progress)" {
	command -v script >/dev/null || skip "script (util-linux) is not installed"
	grep -q progress_add "$ROOT/tools/cryo/mm.c" || skip "mm.c does not call progress_add yet"
	start_prog "$LOG" heap 64
	PID=$PROG_PID
	CRYO_PROGRESS_DELAY_MS=0 script -qec "'$CRYO' -p $PID -f '$IMG' --kill" /dev/null >"$T/tty.out"
	grep -aq "cryo: dump: " "$T/tty.out" || fail "no progress line: $(cat -v "$T/tty.out")"
}

# ---- documentation ----

@test "--help lists every verb of the verb table in main.c" {
	local verbs v
	verbs=$(sed -n '/^} verbs\[\] = {/,/^};/p' "$ROOT/tools/cryo/main.c" |
		sed -n 's/^[[:space:]]*{ "\([a-z-]*\)",.*/\1/p')
	[ -n "$verbs" ] || fail "no verbs found in main.c"
	run "$CRYO" --help
	[ "$status" -eq 0 ] || fail "cryo --help exited $status"
	for v in $verbs; do
		echo "$output" | grep -Eq "^ +cryo ([a-z]+ \| )*$v( |\$)" ||
			fail "verb '$v' is not in cryo --help: $output"
	done
}

@test "man page: renders without warnings and covers every verb and long option" {
	local v o verbs
	command -v groff >/dev/null || skip "groff is not installed"
	run groff -man -ww -z "$ROOT/man/cryo.1"
	[ "$status" -eq 0 ] && [ -z "$output" ] || fail "groff warnings: $output"
	if command -v man >/dev/null; then
		# the rendered page goes away; what is left are the warnings
		run bash -c 'MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null' _ "$ROOT/man/cryo.1"
		[ "$status" -eq 0 ] && [ -z "$output" ] || fail "man --warnings: $output"
	fi
	# wide lines: no option is broken across two
	groff -man -Tascii -P-cbou -rLL=300n "$ROOT/man/cryo.1" >"$T/man.txt"
	verbs=$(sed -n '/^} verbs\[\] = {/,/^};/p' "$ROOT/tools/cryo/main.c" |
		sed -n 's/^[[:space:]]*{ "\([a-z-]*\)",.*/\1/p')
	for v in $verbs; do
		grep -q "cryo $v" "$T/man.txt" || fail "verb $v is not in man/cryo.1"
	done
	for o in $("$CRYO" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		grep -qF -- "$o" "$T/man.txt" || fail "option $o of cryo --help is not in man/cryo.1"
	done
}

# The README's table of what works is kept true against the code: the flags
# and verbs it names exist, every flag cryo has is documented there, and no
# row says "not yet" about a feature `cryo check` finds working here.
@test "README: the support table names only flags and verbs cryo has, and no working feature as 'not yet'" {
	local readme="$ROOT/README.md" help table opts o v key words row
	help=$("$CRYO" --help)
	opts=$(grep -oE -- '--[a-z][a-z-]+' <<<"$help" | sort -u)
	table=$(sed -n '/^## What works today/,/^## A session/p' "$readme" | grep '^|')
	[ "$(wc -l <<<"$table")" -ge 10 ] || fail "no support table found in README.md"
	# the long-only options are the features (the rest are -r, -f, -q...)
	for o in $(grep -oE -- '^ {6}--[a-z][a-z-]+' <<<"$help" | tr -d ' ' | sort -u); do
		grep -qF -- "$o" "$readme" || fail "cryo --help has $o, README.md never mentions it"
	done
	for o in $(grep -oE -- '--[a-z][a-z-]+' <<<"$table" | sort -u); do
		grep -qxF -- "$o" <<<"$opts" || fail "the README table names $o; cryo --help has no such option"
	done
	for v in $(grep -oE '`cryo [a-z]+' <<<"$table" | awk '{print $2}' | sort -u); do
		grep -Eq "^ +cryo ([a-z]+ \| )*$v( |\$)" <<<"$help" ||
			fail "the README table names 'cryo $v'; cryo --help has no such verb"
	done
	run "$CRYO" check --json
	[ -n "$output" ] || fail "cryo check --json printed nothing"
	# feature key of cryo check -> words a README row would use for it
	while IFS='|' read -r key words; do
		python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["features"][sys.argv[1]]["available"] else 1)' \
			"$key" <<<"$output" || continue
		row=$(grep -i 'not yet' <<<"$table" | grep -iE "$words" || true)
		[ -z "$row" ] || fail "cryo check says $key works here, the README says not yet: $row"
	done <<-'MAP'
	lazy_restore|lazy
	incremental|pre-dump|dirty tracking|incremental
	sysv_ipc_ids|SysV
	threads|thread
	executable_images|\./out
	MAP
}

# refusal WANT_STATUS REGEX CMD...: CMD exits WANT_STATUS and its first
# stderr line is the one error line: "cryo: " and matching REGEX (the pid
# or file, and the fix flag where there is one).
refusal() {
	local want=$1 re=$2 st=0 line
	shift 2
	timeout "$CRYO_TIMEOUT" "$@" </dev/null >/dev/null 2>"$T/err" || st=$?
	line=$(head -n 1 "$T/err")
	[ "$st" -eq "$want" ] || fail "$* exited $st, want $want: $(cat "$T/err")"
	[[ $line == "cryo: "* ]] || fail "$*: first line does not start with 'cryo: ': $line"
	grep -qE -- "$re" <<<"$line" || fail "$*: message does not match /$re/: $line"
}

@test "errors: one 'cryo: ' line naming the pid or file and the fix; exit 1, or 2 for usage" {
	local cpid spid upid off
	# a changed file at restore (counter appends to it)
	dump_prog counter "$T/counter.txt"
	cpid=$PID
	echo more >>"$T/counter.txt"
	refusal 1 "pid $cpid: fd 3: $T/counter.txt changed since the dump.*--allow-changed-files" \
		"$CRYO" -r -f "$IMG"
	# a corrupted image
	"$CRYO" show --json "$IMG" >"$T/show.json"
	off=$(json_get "$T/show.json" '[s["offset"] for s in d["sections"] if s["name"] == "vmas"][0]')
	flip_byte "$IMG" $((off + 9))
	refusal 1 "image $IMG: section [0-9]+ \(vmas\) at offset $off: checksum mismatch" \
		"$CRYO" -r -f "$IMG"
	# a taken pid: the dumped process still runs
	start_prog "$LOG" sleeper
	spid=$PROG_PID
	cryo_dump "$spid" "$T/s.cryo"
	refusal 1 "pid $spid is in use.*--pidns" "$CRYO" -r -f "$T/s.cryo"
	# an io_uring fd, refused at dump by pid and fd
	start_prog "$T/u.log" oddfds iouring
	upid=$PROG_PID
	refusal 1 "pid $upid fd 3: .*io_uring" "$CRYO" -p "$upid" -f "$T/u.cryo"
	alive "$upid" || fail "pid $upid did not survive the refused dump"
	kill "$spid" "$upid"
	# usage errors name the option
	refusal 2 "--bogus: unknown option" "$CRYO" --bogus
	refusal 2 "--lazy is for -r" "$CRYO" -p "$spid" -f "$IMG" --lazy
	refusal 2 "give either -p PID \(dump\) or -r" "$CRYO" -f "$IMG"
	refusal 2 "^cryo: show: unrecognized option" "$CRYO" show --bogus "$IMG"
}
