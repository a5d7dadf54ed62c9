#!/usr/bin/env bats
# cryo run --cache: the application startup cache (issue #11).
# tests/progs/cachewarm spends 300 ms in "initialisation", reaches its cache
# point (raise(SIGSTOP), or with "stdin" its first read of stdin), then
# prints its pid, echoes stdin and exits with the status argv[1].
# Needs `make cryo progs`.

load helpers
bats_require_minimum_version 1.5.0

: "${BATS_TEST_TIMEOUT:=120}"

setup() {
	T=$(readlink -f "$BATS_TEST_TMPDIR")
	D=$T/cache
	# a private copy: tests touch it
	cp "$PROGS/cachewarm" "$T/warm"
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# crun NAME INPUT [cryo run options...] -- CMD...: run with INPUT on stdin;
# sets ST (exit status), MS (wall time); NAME.out / NAME.err in $T
crun() {
	local name=$1 input=$2 t0
	shift 2
	t0=$(now_ms)
	set +e
	printf '%s\n' "$input" | "$CRYO" run --cache --cache-dir "$D" "$@" >"$T/$name.out" 2>"$T/$name.err"
	ST=$?
	set -e
	MS=$(($(now_ms) - t0))
}

initialised() {	# NAME: that run did its initialisation (not from the cache)
	grep -q "cachewarm: initialised" "$T/$1.err"
}

entries() {
	find "$D" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | wc -l
}

@test "a second run starts from the cache, echoes its own stdin, passes the exit status" {
	crun first one -- "$T/warm" 3
	[ "$ST" -eq 3 ] || fail "first run exited $ST: $(cat "$T/first.err")"
	initialised first || fail "first run: no initialisation: $(cat "$T/first.err")"
	grep -qx one "$T/first.out" || fail "first run did not echo: $(cat "$T/first.out")"
	first_ms=$MS
	crun second two -- "$T/warm" 3
	[ "$ST" -eq 3 ] || fail "cached run exited $ST: $(cat "$T/second.err")"
	! initialised second || fail "second run initialised again: not from the cache"
	grep -qx two "$T/second.out" || fail "cached run did not echo its stdin: $(cat "$T/second.out")"
	! grep -qx one "$T/second.out" || fail "cached run echoed the first run's input"
	grep -q "state lost" "$T/second.err" && fail "cached run lost its memory: $(cat "$T/second.err")"
	grep -q "stale thread id" "$T/second.err" && fail "glibc's thread id: $(cat "$T/second.err")"
	p1=$(awk '/^pid/ { print $2 }' "$T/first.out")
	p2=$(awk '/^pid/ { print $2 }' "$T/second.out")
	[ -n "$p2" ] && [ "$p1" != "$p2" ] || fail "cached run had pid '$p2', the first '$p1'"
	echo "first run $first_ms ms, cached run $MS ms"
	[ "$MS" -lt $((first_ms - 200)) ] ||
		fail "cached run took $MS ms, the first $first_ms ms: not from the cache?"
	[ "$(entries)" -eq 1 ] || fail "$(entries) cache entries, expected 1"
	# stdin a file: another kind of stdin, another entry; its cached run
	# reads its own file, not the one the first run had
	echo three >"$T/in3.txt"
	echo four >"$T/in4.txt"
	for i in 3 4; do
		ST=0
		"$CRYO" run --cache --cache-dir "$D" -- "$T/warm" 3 <"$T/in$i.txt" >"$T/f$i.out" 2>"$T/f$i.err" || ST=$?
		[ "$ST" -eq 3 ] || fail "run with a file as stdin exited $ST: $(cat "$T/f$i.err")"
	done
	grep -qx three "$T/f3.out" || fail "stdin from a file: $(cat "$T/f3.out")"
	grep -qx four "$T/f4.out" && ! grep -qx three "$T/f4.out" || fail "cached run read: $(cat "$T/f4.out")"
	! initialised f4 || fail "run with stdin from a file was not cached"
	[ "$(entries)" -eq 2 ] || fail "$(entries) cache entries, expected 2 (stdin a pipe, a file)"
}

@test "the cache is private: directory 0700, files 0600, under XDG_STATE_HOME by default" {
	export XDG_STATE_HOME=$T/state
	printf 'x\n' | "$CRYO" run --cache -- "$T/warm" >/dev/null 2>&1
	dir=$T/state/cryo/cache
	[ "$(stat -c %a "$dir")" = 700 ] || fail "$dir has mode $(stat -c %a "$dir")"
	n=0
	for f in "$dir"/*/*; do
		n=$((n + 1))
		[ "$(stat -c %a "$f")" = 600 ] || fail "$f has mode $(stat -c %a "$f")"
	done
	[ "$n" -ge 3 ] || fail "entry has $n files: $(ls -la "$dir"/*)"
	# a directory others can read is refused (not changed), the program still runs
	mkdir -m 755 "$T/open"
	printf 'y\n' | "$CRYO" run --cache --cache-dir "$T/open" -- "$T/warm" >"$T/o.out" 2>"$T/o.err" || true
	grep -qx y "$T/o.out" || fail "program did not run: $(cat "$T/o.out" "$T/o.err")"
	grep -q "not cached: cache: $T/open is open to other users (mode 755)" "$T/o.err" ||
		fail "no refusal: $(cat "$T/o.err")"
	[ "$(stat -c %a "$T/open")" = 755 ] && [ -z "$(ls "$T/open")" ] || fail "$T/open was changed"
}

@test "touching the binary invalidates the entry: the next run starts afresh and replaces it" {
	crun a 1 -- "$T/warm"
	crun b 2 -- "$T/warm"
	! initialised b || fail "second run was not from the cache"
	key=$(basename "$(find "$D" -mindepth 1 -maxdepth 1 -type d ! -name '.*')")
	run "$CRYO" cache ls --cache-dir "$D"
	[[ "$output" == *"$key"*ok* ]] || fail "cache ls: $output"
	touch "$T/warm"
	run "$CRYO" cache ls --cache-dir "$D"
	[[ "$output" == *"$key"*stale* ]] || fail "cache ls after touch: $output"
	crun c 3 -- "$T/warm"
	[ "$ST" -eq 0 ] || fail "run after touch exited $ST: $(cat "$T/c.err")"
	initialised c || fail "run after touching the binary came from the stale entry"
	grep -qx 3 "$T/c.out" || fail "run after touch: $(cat "$T/c.out")"
	crun d 4 -- "$T/warm"
	! initialised d || fail "the entry was not replaced by the fresh run"
	grep -qx 4 "$T/d.out" || fail "cached run after replacement: $(cat "$T/d.out")"
	[ "$(entries)" -eq 1 ] || fail "$(entries) entries: the stale one was not replaced"
}

@test "another argv, cwd or environment is another entry; bash's \$_ is ignored" {
	crun a 1 -- "$T/warm" 5
	crun b 1 -- "$T/warm" 6
	initialised b || fail "other argv came from the cache"
	[ "$ST" -eq 6 ] || fail "exit status $ST"
	mkdir "$T/sub"
	(cd "$T/sub" && crun c 1 -- "$T/warm" 5 && initialised c) || fail "other cwd came from the cache"
	(export CACHE_TEST_VAR=x && crun d 1 -- "$T/warm" 5 && initialised d) ||
		fail "other environment came from the cache"
	(export _=/some/thing && crun e 1 -- "$T/warm" 5 && ! initialised e) ||
		fail "a different \$_ missed the cache"
}

@test "two concurrent runs from one entry both work, each with its own pid and stdin" {
	crun fill 0 -- "$T/warm" 7
	[ "$ST" -eq 7 ] || fail "first run exited $ST"
	# both wait for their input at the same time
	(sleep 0.5; echo AAA) | "$CRYO" run --cache --cache-dir "$D" -- "$T/warm" 7 >"$T/a.out" 2>"$T/a.err" &
	pa=$!
	(sleep 0.5; echo BBB) | "$CRYO" run --cache --cache-dir "$D" -- "$T/warm" 7 >"$T/b.out" 2>"$T/b.err" &
	pb=$!
	sa=0 sb=0
	wait "$pa" || sa=$?
	wait "$pb" || sb=$?
	[ "$sa" -eq 7 ] && [ "$sb" -eq 7 ] || fail "exit statuses $sa $sb: $(cat "$T/a.err" "$T/b.err")"
	grep -qx AAA "$T/a.out" && grep -qx BBB "$T/b.out" ||
		fail "outputs: $(cat "$T/a.out") / $(cat "$T/b.out")"
	! initialised a && ! initialised b || fail "a concurrent run did not come from the cache"
	p1=$(awk '/^pid/ { print $2 }' "$T/a.out")
	p2=$(awk '/^pid/ { print $2 }' "$T/b.out")
	[ -n "$p1" ] && [ -n "$p2" ] && [ "$p1" != "$p2" ] || fail "pids '$p1' '$p2'"
}

@test "concurrent first runs leave one good entry" {
	for i in 1 2 3; do
		printf '%s\n' "first$i" | "$CRYO" run --cache --cache-dir "$D" -- "$T/warm" 2 \
			>"$T/f$i.out" 2>"$T/f$i.err" &
		pids[i]=$!
	done
	for i in 1 2 3; do
		s=0
		wait "${pids[i]}" || s=$?
		[ "$s" -eq 2 ] || fail "first run $i exited $s: $(cat "$T/f$i.err")"
		grep -qx "first$i" "$T/f$i.out" || fail "first run $i: $(cat "$T/f$i.out")"
	done
	[ "$(entries)" -eq 1 ] || fail "$(entries) entries"
	[ -z "$(find "$D" -mindepth 1 -maxdepth 1 -name '.*')" ] ||
		fail "leftovers: $(ls -a "$D")"
	crun after x -- "$T/warm" 2
	[ "$ST" -eq 2 ] && grep -qx x "$T/after.out" && ! initialised after ||
		fail "run after concurrent first runs: $ST $(cat "$T/after.out" "$T/after.err")"
}

@test "the stdin cache point works on an unmodified program" {
	crun a one --cache-point stdin -- "$T/warm" 4 stdin
	[ "$ST" -eq 4 ] || fail "first run exited $ST: $(cat "$T/a.err")"
	initialised a && grep -qx one "$T/a.out" || fail "first run: $(cat "$T/a.out" "$T/a.err")"
	crun b two --cache-point stdin -- "$T/warm" 4 stdin
	[ "$ST" -eq 4 ] || fail "cached run exited $ST: $(cat "$T/b.err")"
	! initialised b || fail "cached run initialised again"
	grep -qx two "$T/b.out" || fail "cached run did not echo: $(cat "$T/b.out")"
	# its pid line was printed before the first read: by the first run only
	! grep -q '^pid' "$T/b.out" || fail "cached run re-ran code before its cache point"
}

@test "the stdin cache point works on python3 -c" {
	py=$(command -v python3.11 || command -v python3) || skip "python3 is not installed"
	py=$(readlink -f "$py")
	prog='import sys, json; sys.stdout.write(json.dumps(sys.stdin.read().split()))'
	crun a "x y" --cache-point stdin -- "$py" -c "$prog"
	[ "$ST" -eq 0 ] && grep -qF '["x", "y"]' "$T/a.out" || fail "first: $ST $(cat "$T/a.out" "$T/a.err")"
	crun b "p q r" --cache-point stdin -- "$py" -c "$prog"
	[ "$ST" -eq 0 ] && grep -qF '["p", "q", "r"]' "$T/b.out" ||
		fail "cached: $ST $(cat "$T/b.out" "$T/b.err")"
	run "$CRYO" cache ls --cache-dir "$D"
	[[ "$output" == *ok*"-c import sys"* ]] || fail "cache ls: $output"
}

@test "a program that exits before its cache point is not cached and keeps its status" {
	crun a "" -- /bin/sh -c 'echo plain; exit 9'
	[ "$ST" -eq 9 ] && grep -qx plain "$T/a.out" || fail "$ST $(cat "$T/a.out" "$T/a.err")"
	[ "$(entries)" -eq 0 ] || fail "an entry was made"
	run -127 "$CRYO" run --cache --cache-dir "$D" -- /no/such/program
	[ "$status" -eq 127 ] || fail "missing command: status $status: $output"
}

@test "cryo cache rm and gc" {
	crun a 1 -- "$T/warm"
	crun b 1 -- "$T/warm" 1
	[ "$(entries)" -eq 2 ] || fail "$(entries) entries"
	key=$(basename "$(find "$D" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | head -1)")
	run "$CRYO" cache rm --cache-dir "$D" "$key"
	[ "$status" -eq 0 ] && [ "$(entries)" -eq 1 ] || fail "rm: $status $output"
	run "$CRYO" cache rm --cache-dir "$D" "$key"
	[ "$status" -eq 1 ] || fail "rm of a missing entry: $status"
	crun c 1 -- "$T/warm"
	touch "$T/warm"	# both entries are stale now
	run "$CRYO" cache gc --cache-dir "$D"
	[ "$status" -eq 0 ] && [ "$(entries)" -eq 0 ] || fail "gc left $(entries): $output"
	crun d 1 -- "$T/warm"
	run "$CRYO" cache gc --cache-dir "$D"
	[ "$(entries)" -eq 1 ] || fail "gc removed a good entry: $output"
	run "$CRYO" cache gc --cache-dir "$D" --max-size 0
	[ "$(entries)" -eq 0 ] || fail "gc --max-size 0 kept an entry: $output"
}

@test "a damaged entry is not restored: a warning, a fresh run, and the entry is replaced" {
	crun a 1 -- "$T/warm"
	key=$(basename "$(find "$D" -mindepth 1 -maxdepth 1 -type d ! -name '.*')")
	printf 'garbage' | dd of="$D/$key/image" bs=1 seek=5000 conv=notrunc 2>/dev/null
	crun b 2 -- "$T/warm"
	[ "$ST" -eq 0 ] && grep -qx 2 "$T/b.out" || fail "run with a damaged entry: $ST $(cat "$T/b.out" "$T/b.err")"
	grep -q "warning.*cache entry $key.*checksum mismatch; running it afresh" "$T/b.err" ||
		fail "no warning: $(cat "$T/b.err")"
	initialised b || fail "the damaged entry was used"
	crun c 3 -- "$T/warm"
	! initialised c && grep -qx 3 "$T/c.out" || fail "entry not replaced: $(cat "$T/c.out" "$T/c.err")"
}

@test "what a new pid would break is not cached: a warning, and the program runs on" {
	py=$(command -v python3) || skip "python3 is not installed"
	crun a in -- "$py" -c 'import os, signal, sys
f = open("/proc/self/status")
os.kill(os.getpid(), signal.SIGSTOP)
print("ran", sys.stdin.read().strip())'
	[ "$ST" -eq 0 ] && grep -qx "ran in" "$T/a.out" || fail "$ST $(cat "$T/a.out" "$T/a.err")"
	grep -q "not cached: fd 3 is /proc/[0-9]*/status, a file of the process itself" "$T/a.err" ||
		fail "no warning: $(cat "$T/a.err")"
	crun b in -- "$py" -c 'import os, signal, sys, threading, time
threading.Thread(target=time.sleep, args=(0.3,)).start()
os.kill(os.getpid(), signal.SIGSTOP)
print("ran", sys.stdin.read().strip())'
	[ "$ST" -eq 0 ] && grep -qx "ran in" "$T/b.out" || fail "$ST $(cat "$T/b.out" "$T/b.err")"
	grep -q "not cached: 2 threads at the cache point" "$T/b.err" || fail "no warning: $(cat "$T/b.err")"
	[ "$(entries)" -eq 0 ] || fail "an entry was made"
}

@test "the stdin cache point: poll/select and epoll on fd 0, and a SIGSTOP before any read" {
	py=$(command -v python3) || skip "python3 is not installed"
	sel='import select, sys; select.select([sys.stdin], [], []); print("got", sys.stdin.readline().strip())'
	ep='import select, sys; e = select.epoll(); e.register(0, select.EPOLLIN); e.poll(); print("got", sys.stdin.readline().strip())'
	for prog in "$sel" "$ep"; do
		crun a one -v --cache-point stdin -- "$py" -c "$prog"
		[ "$ST" -eq 0 ] && grep -qx "got one" "$T/a.out" || fail "first: $ST $(cat "$T/a.out" "$T/a.err")"
		grep -q "cached as" "$T/a.err" || fail "first run not cached: $(cat "$T/a.err")"
		crun b two -v --cache-point stdin -- "$py" -c "$prog"
		[ "$ST" -eq 0 ] && grep -qx "got two" "$T/b.out" || fail "cached: $ST $(cat "$T/b.out" "$T/b.err")"
		grep -q "restored from cache entry" "$T/b.err" || fail "not from the cache: $(cat "$T/b.err")"
	done
	# a program that stops itself before reading: that is its cache point
	crun c three --cache-point stdin -- "$T/warm" 1
	crun d four --cache-point stdin -- "$T/warm" 1
	[ "$ST" -eq 1 ] && grep -qx four "$T/d.out" && ! initialised d ||
		fail "SIGSTOP under --cache-point stdin: $ST $(cat "$T/d.out" "$T/d.err")"
}

@test "a changed input the program read before its cache point (a Python module) makes the entry stale" {
	py=$(command -v python3) || skip "python3 is not installed"
	mkdir "$T/app"
	cd "$T/app"
	printf 'import os, signal, sys, mod\nos.kill(os.getpid(), signal.SIGSTOP)\nprint(mod.V, sys.stdin.read().strip())\n' >app.py
	echo 'V = "v1"' >mod.py
	crun a in1 -v -- "$py" app.py
	crun b in2 -v -- "$py" app.py
	grep -qx "v1 in2" "$T/b.out" && grep -q "restored from cache entry" "$T/b.err" ||
		fail "second run: $(cat "$T/b.out" "$T/b.err")"
	echo 'V = "v2"' >mod.py
	crun c in3 -v -- "$py" app.py
	grep -qx "v2 in3" "$T/c.out" || fail "changed module: $(cat "$T/c.out" "$T/c.err")"
	grep -q "mod.py changed" "$T/c.err" || fail "no staleness reason: $(cat "$T/c.err")"
	crun d in4 -v -- "$py" app.py
	grep -qx "v2 in4" "$T/d.out" && grep -q "restored from cache entry" "$T/d.err" ||
		fail "after replacement: $(cat "$T/d.out" "$T/d.err")"
}
