#!/bin/bash
# The main job, end to end: start a live counter, checkpoint it with cryo,
# kill it, restore it from the checkpoint and watch it continue.
set -euo pipefail
cd "$(dirname "$0")/.."
CRYO=${CRYO:-./tools/cryo/cryo}
dir=$(mktemp -d /tmp/cryo-demo.XXXXXX)
# (--shell-job: run from a terminal, the counter's session and terminal are
# the caller's; without one it changes nothing)
# the counter's stdout is a pipe to a `cat`, as in a shell pipeline; that
# pipe leads outside the checkpointed process, so after the restore the
# counter continues on cryo's stdout (as a shell job takes its terminal)
say() { printf '\033[1m== %s\033[0m\n' "$*"; }

say "starting a counter"
exec {out}> >(cat)
./demo/ticker </dev/null >&"$out" 2>&1 {out}>&- &
pid=$!
trap 'rc=$?; kill $pid 2>/dev/null || true; rm -rf "$dir"; exit $rc' EXIT
exec {out}>&-
sleep 1.6

say "cryo -p $pid -f $dir/ticker.img --kill --shell-job"
$CRYO -p "$pid" -f "$dir/ticker.img" --kill --shell-job
wait "$pid" 2>/dev/null || true
say "the counter (pid $pid) is gone; the checkpoint:"
ls -l "$dir"
sleep 1

say "cryo -r -f $dir/ticker.img   (same pid, continues where it was)"
$CRYO -r -f "$dir/ticker.img" &
cryo=$!
sleep 1.6
say "restored pid: $(cat /proc/$pid/status | sed -n 's/^Name:\t//p') $pid, parent $(ps -o ppid= -p $pid | tr -d ' ') (cryo is $cryo)"
kill "$pid"
wait "$cryo" || true
rm -rf "$dir"
say "done"
