#!/usr/bin/env bash
# The node agent's throughput and overhead (issue 11), in one run:
#
# 1. Event storms at rising rates, mix 60% opens of a watched path
#    (/etc/hostname), 30% execs (/bin/busybox true), 10% TCP connects to a
#    loopback listener, with the 56 built-in rules loaded (detect mode, no
#    server, events to /dev/null): the agent's events/s handled, its CPU share
#    of one core and RSS (from /proc: the generator's own CPU is not counted),
#    events lost in the kernel and dropped in its queue. Then opens only, at
#    higher rates (the agent's ceiling: execs cap the mix on 2 cores). Then
#    every event an alert (opens of /etc/shadow: shadow-file-read matches each
#    one, an event is made and written), the case Falco's published figure is
#    for.
# 2. The slowdown of a reference workload (200,000 iterations of open, read,
#    close and stat, half on a watched path) and of a gcc build with the agent
#    on vs off, and vs the same syscall hooks with nothing to report (the
#    floor: runtimeharness floor), RUNS alternating runs each; the workload's
#    own CPU time (the hooks run in its system time) and wall time, mean and
#    95% bootstrap confidence interval of the ratio.
#
# Both steps run once per system call hooks mode of HOOKS (the agent's
# modules.runtime.syscallHooks: raw, tracepoint; docs/runtime-sensor.md);
# labels on-<hooks> and floor-<hooks>.
#
# Root only (eBPF). Bench only (not CI). Results: bench/README.md.
#
#   RATES="1000 2000 5000 10000" OPEN_RATES="20000 50000 100000" ALERT_RATES="5000 20000" RUNS=10 HOOKS="raw tracepoint" bench/runtime.sh
#
# An empty list skips its step (RUNS=0 skips the reference workloads).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "needs root (eBPF)" >&2; exit 1; }
RATES=${RATES-"1000 2000 5000 10000 20000 50000"}
OPEN_RATES=${OPEN_RATES-"20000 50000 100000 200000"}
ALERT_RATES=${ALERT_RATES-"2000 5000 10000 20000"}
DURATION=${DURATION:-10s}
RUNS=${RUNS:-10}
N=${N:-200000}
HOOKS=${HOOKS:-"raw tracepoint"}
B="$BENCH_DIR/runtime"
mkdir -p "$B"
PORT=${PORT:-19477}

log "building mamori and the harness"
(cd "$REPO_ROOT" && CGO_ENABLED=0 go build -o "$B/mamori" ./cmd/mamori && CGO_ENABLED=0 go build -o "$B/harness" ./bench/runtimeharness)
AGENT_PID=""
start_agent() { # hooks
	rm -rf "$B/spool"
	# the runtime module alone: the host modules and the compliance posture
	# (on by default) would add their own scans to what is measured
	cat >"$B/agent-$1.yaml" <<-EOF
		modules:
		  runtime: {syscallHooks: $1}
		  antimalware: {enabled: false}
		  integrity: {enabled: false}
		  loginspect: {enabled: false}
		  appcontrol: {enabled: false}
		  firewall: {enabled: false}
		compliance: {enabled: false}
	EOF
	"$B/mamori" agent --quiet --config "$B/agent-$1.yaml" --sensor ebpf --events-file /dev/null --spool-dir "$B/spool" \
		--stats-listen "127.0.0.1:$PORT" 2>"$B/agent.log" &
	AGENT_PID=$!
	for _ in $(seq 100); do
		if curl -sf "http://127.0.0.1:$PORT/stats" >"$B/stats.json" 2>/dev/null; then
			grep -Eq "\"syscallHooks\": ?\"$1\"" "$B/stats.json" || { echo "agent runs other hooks than $1:" >&2; cat "$B/stats.json" >&2; exit 1; }
			return
		fi
		kill -0 "$AGENT_PID" 2>/dev/null || { cat "$B/agent.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "agent did not start" >&2
	exit 1
}
stop_agent() {
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PID=""
}
trap stop_agent EXIT

for h in $HOOKS; do
	log "storms ($h hooks): mix open=60,exec=30,connect=10, rates: $RATES"
	: >"$B/storms-$h.jsonl"
	start_agent "$h"
	for r in $RATES; do
		"$B/harness" storm --stats "http://127.0.0.1:$PORT/stats" --pid "$AGENT_PID" --rate "$r" --duration "$DURATION" \
			--mix open=60,exec=30,connect=10 | tee -a "$B/storms-$h.jsonl"
	done
	log "storms ($h hooks): opens only, rates: $OPEN_RATES"
	for r in $OPEN_RATES; do
		"$B/harness" storm --stats "http://127.0.0.1:$PORT/stats" --pid "$AGENT_PID" --rate "$r" --duration "$DURATION" \
			--mix open=100,exec=0,connect=0 | tee -a "$B/storms-$h.jsonl"
	done
	log "storms ($h hooks): every open an alert (/etc/shadow), rates: $ALERT_RATES"
	for r in $ALERT_RATES; do
		"$B/harness" storm --stats "http://127.0.0.1:$PORT/stats" --pid "$AGENT_PID" --rate "$r" --duration "$DURATION" \
			--open-path /etc/shadow --mix open=100,exec=0,connect=0 | tee -a "$B/storms-$h.jsonl"
	done
	stop_agent
done
[ "$RUNS" -gt 0 ] || exit 0

# The "build": gcc -O2 of a generated C file of 300 functions, 3 times.
mkdir -p "$B/build"
if [ ! -f "$B/build/gen.c" ]; then
	for i in $(seq 300); do
		printf 'int f%d(int *a, int n) { int s = 0; for (int i = 0; i < n; i++) s += a[i] * %d ^ (s >> 3); return s; }\n' "$i" "$i"
	done >"$B/build/gen.c"
	printf '#!/bin/sh\nfor i in 1 2 3; do gcc -O2 -c %s -o %s; done\n' "$B/build/gen.c" "$B/build/gen.o" >"$B/build/build.sh"
	chmod +x "$B/build/build.sh"
fi
log "reference workloads: $RUNS alternating runs of off, on and floor per hooks ($HOOKS) (syscall loop of $N iterations; a gcc build)"
: >"$B/cpu.txt"
: >"$B/wall.txt"
: >"$B/build-cpu.txt"
: >"$B/build-wall.txt"
run_workload() { # label
	read -r wall cpu < <("$B/harness" workload --n "$N")
	echo "$1 $cpu" >>"$B/cpu.txt"
	echo "$1 $wall" >>"$B/wall.txt"
	if command -v gcc >/dev/null; then
		read -r wall cpu < <("$B/harness" run "$B/build/build.sh")
		echo "$1 $cpu" >>"$B/build-cpu.txt"
		echo "$1 $wall" >>"$B/build-wall.txt"
	fi
}
for i in $(seq "$RUNS"); do
	run_workload off
	for h in $HOOKS; do
		start_agent "$h"
		sleep 1
		run_workload "on-$h"
		stop_agent
		# emptied first: the log of the previous floor said "attached" too,
		# and the loop below could read it before the new one's redirection
		: >"$B/floor.log"
		"$B/harness" floor --hooks "$h" >"$B/floor.log" 2>&1 &
		FP=$!
		for _ in $(seq 600); do
			grep -q attached "$B/floor.log" 2>/dev/null && break
			kill -0 "$FP" 2>/dev/null || break
			sleep 0.1
		done
		grep -q "attached ($h)" "$B/floor.log" || { echo "floor did not attach $h hooks:" >&2; cat "$B/floor.log" >&2; kill "$FP" 2>/dev/null; exit 1; }
		run_workload "floor-$h"
		kill "$FP"; wait "$FP" 2>/dev/null || true
	done
	log "run $i done"
done
echo "syscall loop, CPU time (user+system, s):"
"$B/harness" ci "$B/cpu.txt"
echo "syscall loop, wall time (s):"
"$B/harness" ci "$B/wall.txt"
if [ -s "$B/build-cpu.txt" ]; then
	echo "gcc build, CPU time (user+system, s):"
	"$B/harness" ci "$B/build-cpu.txt"
	echo "gcc build, wall time (s):"
	"$B/harness" ci "$B/build-wall.txt"
fi
