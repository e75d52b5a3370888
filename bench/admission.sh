#!/usr/bin/env bash
# Admission webhook latency of `mamori cluster` (issue 10): 500 requests/s for
# 60 s with a 20-rule policy (bench/testdata/admission-20-rules.yaml), p50 and
# p99 measured twice,
#   - straight at the webhook (AdmissionReview POSTs, bench/admissionload),
#     once with pods of one template (the decision cache's case: the pods of
#     a ReplicaSet) and once with every pod distinct (every request evaluated);
#   - end to end through the API server (server-side dry-run pod creates),
#     and the same in a namespace the webhook never sees (the API server alone);
# with the component's CPU (cores, from /proc/PID/stat) and RSS.
#
# It starts the local cluster of scripts/cluster.sh (root) in its own run dir,
# or uses MAMORI_KUBECONFIG's. Kyverno is built from the Go module proxy when
# it builds here (KYVERNO_VERSION, default v1.15.2); what failed is printed.
#
#   RATE=500 DURATION=60s RUNS=2 bench/admission.sh
source "$(dirname "$0")/lib.sh"
RATE=${RATE:-500}
DURATION=${DURATION:-60s}
RUNS=${RUNS:-2}
KYVERNO_VERSION=${KYVERNO_VERSION:-v1.15.2}
RUN=${MAMORI_BENCH_CLUSTER_DIR:-/tmp/mamori-bench-cl}

own=0
if [ -n "${MAMORI_KUBECONFIG:-}" ]; then
	STATUS=$(dirname "$MAMORI_KUBECONFIG")/status
else
	log "local cluster in $RUN (scripts/cluster.sh up)"
	MAMORI_CLUSTER_DIR=$RUN MAMORI_CLUSTER_QUIET=1 "$REPO_ROOT/scripts/cluster.sh" up >/dev/null
	STATUS=$RUN/status
	own=1
fi
trap '[ $own = 1 ] && MAMORI_CLUSTER_DIR=$RUN MAMORI_CLUSTER_QUIET=1 "$REPO_ROOT/scripts/cluster.sh" down >/dev/null' EXIT
# shellcheck disable=SC1090
set -a && . "$STATUS" && set +a
MAMORI="$REPO_ROOT/bin/mamori"
KUBECTL="$MAMORI_CLUSTER_BIN/kubectl"
[ "$MAMORI_CLUSTER_COMPONENT" = running ] || { echo "mamori cluster is not running in $MAMORI_CLUSTER_DIR" >&2; exit 1; }
PID=$(cat "$MAMORI_CLUSTER_DIR/pids/mamori-cluster")

log "policy bench-20 (20 rules) assigned to cluster $MAMORI_CLUSTER_NAME"
"$MAMORI" --quiet policy apply -f "$REPO_ROOT/bench/testdata/admission-20-rules.yaml" --server-ca "$MAMORI_SERVER_CA" >/dev/null
"$MAMORI" --quiet policy assign bench-20 --cluster "$MAMORI_CLUSTER_NAME" --server-ca "$MAMORI_SERVER_CA" >/dev/null
"$KUBECTL" --kubeconfig "$KUBECONFIG" create namespace bench >/dev/null 2>&1 || true
for i in $(seq 60); do
	grep -q 'policy loaded.*policy=bench-20' "$MAMORI_CLUSTER_DIR/logs/mamori-cluster.log" && break
	sleep 1
done
grep -q 'policy loaded.*policy=bench-20' "$MAMORI_CLUSTER_DIR/logs/mamori-cluster.log" || { echo "the component did not load bench-20" >&2; exit 1; }

# The pods' image is one the server knows (the node's busybox, scanned and
# uploaded here): every decision reads its scan data.
IMAGE=mamori.local/busybox:1
MAMORI_TOKEN=$(cat "$MAMORI_TOKEN_FILE") "$MAMORI" --quiet image --input "$MAMORI_CLUSTER_IMAGES/busybox.tar" --scanners secret,misconfig \
	--server "$MAMORI_SERVER" --server-ca "$MAMORI_SERVER_CA" >/dev/null
log "building bench/admissionload"
(cd "$REPO_ROOT" && go build -o "$BENCH_DIR/admissionload" ./bench/admissionload)

# cpu_ticks PID: utime+stime of the process (clock ticks).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)

# measure LABEL ARGS...: one run; prints a table row.
measure() {
	local label=$1
	shift
	local c0 c1 t0 t1 out
	c0=$(cpu_ticks "$PID")
	t0=$(date +%s.%N)
	out=$("$BENCH_DIR/admissionload" -kubeconfig "$KUBECONFIG" -rate "$RATE" -duration "$DURATION" -namespace bench -image "$IMAGE" "$@")
	t1=$(date +%s.%N)
	c1=$(cpu_ticks "$PID")
	python3 - "$label" "$out" "$c0" "$c1" "$t0" "$t1" "$HZ" "$(rss_kib "$PID")" "$(hwm_kib "$PID")" <<'EOF'
import json, sys
label, out, c0, c1, t0, t1, hz, rss, hwm = sys.argv[1:]
r = json.loads(out)
cores = (float(c1) - float(c0)) / float(hz) / (float(t1) - float(t0))
dec = f"  decision p50 {r['decideP50ms']:.3f} ms p99 {r['decideP99ms']:.3f} ms" if r.get('decideP50ms') else ""
print(f"{label:<34} {r['achievedRate']:7.1f}/s  p50 {r['p50ms']:7.2f} ms  p90 {r['p90ms']:7.2f} ms  p99 {r['p99ms']:7.2f} ms{dec}  "
      f"max {r['maxMs']:8.2f} ms  ok {r['ok']} err {r['errors']} late {r['lateSends']}  component CPU {cores:4.2f} cores  "
      f"RSS {int(rss)/1024:5.1f} MiB (peak {int(hwm)/1024:5.1f})" + (f"  first error: {r['firstError'][:120]}" if r.get('firstError') else ""))
EOF
}

log "load: $RATE requests/s for $DURATION, $RUNS runs; machine load: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$RUNS"); do
	measure "run $run webhook, one template" -mode webhook
	measure "run $run webhook, every pod distinct" -mode webhook -distinct
	measure "run $run API server dry-run creates" -mode apiserver -distinct
	# The same creates in the component's own namespace, which admission
	# never sees: the API server's latency without the webhook.
	measure "run $run API server, no webhook" -mode apiserver -distinct -namespace mamori
done

# Kyverno: built from the Go module proxy if it builds here.
log "Kyverno $KYVERNO_VERSION from the Go module proxy"
if [ ! -x "$PEER_BIN/kyverno" ]; then
	if ! out=$(cd "$BENCH_DIR" && GOBIN="$PEER_BIN" GOFLAGS=-mod=mod timeout 1800 go install "github.com/kyverno/kyverno/cmd/kyverno@$KYVERNO_VERSION" 2>&1); then
		echo "Kyverno $KYVERNO_VERSION did not build: $(printf '%s\n' "$out" | tail -n 5 | tr '\n' ' ')"
		echo "Compare with Kyverno's published figures: p95 60-105 ms at 10 virtual users (kyverno.io/docs/installation/scaling)."
		exit 0
	fi
fi
echo "Kyverno built: $PEER_BIN/kyverno (running it needs its CRDs and certificates; see bench/README.md)"
