#!/bin/bash
# Per-task costs of two cryo builds (issue #8, trees and threads): ptrace
# round trips and other syscalls of one dump and one restore (strace -c of
# cryo itself), then medians of N interleaved dumps of one live workload
# into /dev/shm (no disk noise).
#
#   tests/tools/reaper bench/taskcost.sh OLD_CRYO NEW_CRYO [N] [WORKLOAD...]
#
# Default workloads: "idle" "threads 50" "tree 20" (bench/bin/workload);
# N defaults to 30. Run it under tests/tools/reaper (killed trees must be
# reaped before their pids can be restored) and with fd 251 closed.
set -o pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,11p' "$0"; exit 2; }
old=$(readlink -f "$1") new=$(readlink -f "$2") n=${3:-30}
shift 2; [ $# -ge 1 ] && shift
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=("idle" "threads 50" "tree 20")
make -s bench/bin/workload || exit 1
tmp=$(mktemp -d /dev/shm/taskcost.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

descendants() { local c; for c in $(cat /proc/$1/task/*/children 2>/dev/null); do echo "$c"; descendants "$c"; done; }
start() { coproc W { exec bench/bin/workload $1 2>/dev/null; }; wpid=$W_PID; wfd=${W[1]}; read -r -u "${W[0]}" l; pid=${l#R }; }
stop() { kill -9 $pid $(descendants $pid) 2>/dev/null; eval "exec $wfd>&-" 2>/dev/null; wait "$wpid" 2>/dev/null; sleep 0.3; }
counts() { awk '$NF ~ /^(ptrace|wait4|kcmp|openat|process_vm_readv|process_vm_writev)$/ { printf " %s %s", $NF, $4 }' "$1"; }

for w in "${workloads[@]}"; do
	for bin in "$old" "$new"; do
		start "$w"
		strace -f -c -o "$tmp/d" "$bin" -p "$pid" -f "$tmp/img" >/dev/null 2>&1 || echo "dump failed: $bin $w"
		stop
		coproc R { exec strace -c -o "$tmp/r" "$bin" -r -f "$tmp/img" 2>/dev/null; }
		echo P >&"${R[1]}"; read -r -t 10 -u "${R[0]}" a || echo "no answer from the restored $w"
		eval "exec ${R[1]}>&-"; wait "$R_PID" 2>/dev/null
		echo "$w | $bin | dump:$(counts "$tmp/d") | restore:$(counts "$tmp/r")"
		rm -f "$tmp"/img "$tmp"/cryo-*.swap
	done
	start "$w"
	: > "$tmp/times"
	for ((i = 0; i < n; i++)); do
		for bin in "$old" "$new"; do
			s=$(date +%s%N); "$bin" -p "$pid" -f "$tmp/img" >/dev/null 2>&1 || echo "dump failed: $bin"
			echo "$bin $(( ($(date +%s%N) - s) / 1000 ))" >> "$tmp/times"
			rm -f "$tmp"/img "$tmp"/cryo-*.swap
		done
	done
	stop
	for bin in "$old" "$new"; do
		grep "^$bin " "$tmp/times" | awk '{ print $2 }' | sort -n | awk -v w="$w" -v b="$bin" \
			'{ a[NR] = $1 } END { printf "%s | %s | dump median %.2f ms [p25 %.2f, p75 %.2f] of %d\n", w, b, a[int((NR + 1) / 2)] / 1000, a[int(NR / 4) + 1] / 1000, a[int(3 * NR / 4)] / 1000, NR }'
	done
done
