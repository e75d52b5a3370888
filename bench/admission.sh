#!/usr/bin/env bash
# Admission webhook latency of `mamori cluster` (issue 10): RATE requests/s
# (default 500) for DURATION (60 s) with a 20-rule policy
# (bench/testdata/admission-20-rules.yaml), RUNS (2) runs, each measuring
#   - straight at the webhook (AdmissionReview POSTs, bench/admissionload),
#     once with pods of one template (the decision cache's case: the pods of
#     a ReplicaSet) and once with every pod distinct (every request evaluated);
#   - end to end through the API server (server-side dry-run pod creates) in
#     namespace bench, and the same in bench-none, which no webhook sees (the
#     API server alone); again at LOW_RATE (default 100/s, 0 skips) when the
#     API server itself cannot keep RATE on this machine;
# with the component's CPU (% of one core, from /proc/PID/stat), its RSS, and
# the API server's CPU.
#
# Kyverno (KYVERNO_VERSION, default v1.15.2) is built from the Go module proxy
# through a wrapper module (its go.mod has a replace directive, so a plain
# `go install ...@version` refuses it) into the peers cache, at most
# KYVERNO_BUILD_TIMEOUT (1500 s). If it builds, its admission controller runs
# out of cluster on the same API server (its CRDs from the module's
# config/crds, its certificates from its own renewer, its webhook at a
# loopback URL via --serverIP), with the Pod Security policies of
# bench/testdata/kyverno-pss.yaml, matching namespace bench-kyverno only; it is
# measured with the same generator at the same rates in the same runs. If it
# does not build or start, what failed is printed (KYVERNO=0 skips it).
#
# It starts the local cluster of scripts/cluster.sh (root) in its own run dir,
# or uses MAMORI_KUBECONFIG's (that cluster's mamori cluster must exclude
# bench-kyverno and bench-none: --exclude-namespace).
#
#   RATE=500 DURATION=60s RUNS=2 bench/admission.sh
source "$(dirname "$0")/lib.sh"
RATE=${RATE:-500}
LOW_RATE=${LOW_RATE:-100}
DURATION=${DURATION:-60s}
RUNS=${RUNS:-2}
KYVERNO=${KYVERNO:-1}
KYVERNO_VERSION=${KYVERNO_VERSION:-v1.15.2}
KYVERNO_BUILD_TIMEOUT=${KYVERNO_BUILD_TIMEOUT:-1500}
RUN=${MAMORI_BENCH_CLUSTER_DIR:-/tmp/mamori-bench-cl}
KYV_DIR=$BENCH_DIR/kyverno-run
KYV_PID=

own=0
if [ -n "${MAMORI_KUBECONFIG:-}" ]; then
	STATUS=$(dirname "$MAMORI_KUBECONFIG")/status
else
	log "local cluster in $RUN (scripts/cluster.sh up)"
	MAMORI_CLUSTER_DIR=$RUN MAMORI_CLUSTER_QUIET=1 \
		MAMORI_CLUSTER_ARGS="--exclude-namespace bench-kyverno,bench-none ${MAMORI_CLUSTER_ARGS:-}" \
		"$REPO_ROOT/scripts/cluster.sh" up >/dev/null
	STATUS=$RUN/status
	own=1
fi
cleanup() {
	if [ -n "$KYV_PID" ]; then
		kill "$KYV_PID" 2>/dev/null || true
		wait "$KYV_PID" 2>/dev/null || true
		"$KUBECTL" --kubeconfig "$KUBECONFIG" delete validatingwebhookconfiguration,mutatingwebhookconfiguration \
			-l webhook.kyverno.io/managed-by=kyverno --ignore-not-found >/dev/null 2>&1 || true
	fi
	if [ $own = 1 ]; then
		MAMORI_CLUSTER_DIR=$RUN MAMORI_CLUSTER_QUIET=1 "$REPO_ROOT/scripts/cluster.sh" down >/dev/null
	fi
}
trap cleanup EXIT
# shellcheck disable=SC1090
set -a && . "$STATUS" && set +a
MAMORI="$REPO_ROOT/bin/mamori"
KUBECTL="$MAMORI_CLUSTER_BIN/kubectl"
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
[ "$MAMORI_CLUSTER_COMPONENT" = running ] || { echo "mamori cluster is not running in $MAMORI_CLUSTER_DIR" >&2; exit 1; }
PID=$(cat "$MAMORI_CLUSTER_DIR/pids/mamori-cluster")
APISERVER_PID=$(cat "$MAMORI_CLUSTER_DIR/pids/kube-apiserver" 2>/dev/null || echo)

log "policy bench-20 (20 rules) assigned to cluster $MAMORI_CLUSTER_NAME"
"$MAMORI" --quiet policy apply -f "$REPO_ROOT/bench/testdata/admission-20-rules.yaml" --server-ca "$MAMORI_SERVER_CA" >/dev/null
"$MAMORI" --quiet policy assign bench-20 --cluster "$MAMORI_CLUSTER_NAME" --server-ca "$MAMORI_SERVER_CA" >/dev/null
for ns in bench bench-kyverno bench-none; do
	kc create namespace "$ns" >/dev/null 2>&1 || true
done
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

# Kyverno: built through a wrapper module with the replace of its own go.mod.
kyverno_build() {
	[ -x "$PEER_BIN/kyverno-$KYVERNO_VERSION" ] && return 0
	log "building Kyverno $KYVERNO_VERSION from the Go module proxy (first time only; long: at most ${KYVERNO_BUILD_TIMEOUT}s)"
	local w="$BENCH_DIR/peers/wrap/kyverno"
	rm -rf "$w" && mkdir -p "$w"
	(
		cd "$w"
		export GOFLAGS=-mod=mod CGO_ENABLED=0
		go mod init wrap/kyverno >/dev/null 2>&1
		# kyverno's go.mod: replace k8s.io/pod-security-admission => its fork.
		local fork
		fork=$(go mod download -json "github.com/kyverno/kyverno@$KYVERNO_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
		fork=$(awk '$1 == "replace" && $2 == "k8s.io/pod-security-admission" {print $5 "@" $6}' "$fork")
		[ -z "$fork" ] || go mod edit -replace "k8s.io/pod-security-admission=$fork"
		go get -tool "github.com/kyverno/kyverno/cmd/kyverno@$KYVERNO_VERSION"
		timeout "$KYVERNO_BUILD_TIMEOUT" go build -trimpath -o "$PEER_BIN/kyverno-$KYVERNO_VERSION" github.com/kyverno/kyverno/cmd/kyverno
	) >"$BENCH_DIR/kyverno-build.log" 2>&1
}

# kyverno_start: CRDs, namespace, config, the admission controller out of
# cluster with its webhook at https://127.0.0.1:PORT, the policies; waits
# until they are ready and the webhook is registered.
kyverno_start() {
	local mod port
	mod=$(go mod download -json "github.com/kyverno/kyverno@$KYVERNO_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mkdir -p "$KYV_DIR"
	log "Kyverno CRDs from $mod/config/crds"
	kc apply --server-side --force-conflicts -f "$mod/config/crds/kyverno" -f "$mod/config/crds/policies.kyverno.io" \
		-f "$mod/config/crds/policyreport" -f "$mod/config/crds/reports" >/dev/null || return 1
	kc create namespace kyverno >/dev/null 2>&1 || true
	# Its webhooks see namespace bench-kyverno only (mamori's see bench).
	kc -n kyverno apply -f - >/dev/null <<EOF || return 1
apiVersion: v1
kind: ConfigMap
metadata: {name: kyverno, namespace: kyverno}
data:
  webhooks: '{"namespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["bench-kyverno"]}]}}'
EOF
	KYVERNO_NAMESPACE=kyverno KYVERNO_SERVICEACCOUNT_NAME=kyverno-admission-controller KYVERNO_DEPLOYMENT=kyverno-admission-controller \
		KYVERNO_POD_NAME=kyverno-bench INIT_CONFIG=kyverno METRICS_CONFIG=kyverno-metrics "$PEER_BIN/kyverno-$KYVERNO_VERSION" \
		--kubeconfig "$KUBECONFIG" --serverIP "127.0.0.1:$port" --webhookServerPort "$port" \
		--caSecretName kyverno-svc.kyverno.svc.kyverno-tls-ca --tlsSecretName kyverno-svc.kyverno.svc.kyverno-tls-pair \
		--disableMetrics --controllerRuntimeMetricsAddress 0 --loggingFormat text --v 1 \
		>"$KYV_DIR/kyverno.log" 2>&1 &
	KYV_PID=$!
	kc wait --for=condition=Established crd/clusterpolicies.kyverno.io --timeout 60s >/dev/null || return 1
	local i
	for i in $(seq 60); do
		kc apply -f "$REPO_ROOT/bench/testdata/kyverno-pss.yaml" >/dev/null 2>&1 && break
		kill -0 "$KYV_PID" 2>/dev/null || { tail -n 20 "$KYV_DIR/kyverno.log" >&2; return 1; }
		sleep 2
	done
	kc wait --for=condition=Ready clusterpolicy --all --timeout 120s >/dev/null || { tail -n 20 "$KYV_DIR/kyverno.log" >&2; return 1; }
	cat >"$KYV_DIR/probe.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: kyverno-probe, namespace: bench-kyverno}
spec:
  containers: [{name: c, image: "$IMAGE", securityContext: {privileged: true}}]
EOF
	local out=
	for i in $(seq 90); do
		# Ready once the API server's call reaches it: a privileged pod is
		# denied by pss-baseline.
		out=$(kc create --dry-run=server -f "$KYV_DIR/probe.yaml" 2>&1) || true
		grep -q 'pss-baseline' <<<"$out" && return 0
		kill -0 "$KYV_PID" 2>/dev/null || { tail -n 20 "$KYV_DIR/kyverno.log" >&2; return 1; }
		sleep 2
	done
	echo "a privileged pod was not denied by Kyverno in 180 s: $out" >&2
	return 1
}

KYV_OK=0
if [ "$KYVERNO" = 1 ]; then
	krc=0
	kyverno_build || krc=$?
	if [ $krc = 124 ]; then
		echo "Kyverno $KYVERNO_VERSION did not build: go build timed out after ${KYVERNO_BUILD_TIMEOUT}s (log: $BENCH_DIR/kyverno-build.log; a second run resumes from the Go build cache)"
	elif [ $krc != 0 ]; then
		echo "Kyverno $KYVERNO_VERSION did not build (exit $krc): $(tail -n 5 "$BENCH_DIR/kyverno-build.log" | tr '\n' ' ')"
	fi
	if [ $krc != 0 ]; then
		echo "Compare with Kyverno's published figures (kyverno.io/docs/installation/scaling, k6 pod creates through the API server, 17 PSS policies, 32 cores): 1 replica avg 44.28 ms p90 67.64 ms at 100 virtual users, 87.88 / 156.22 ms at 200."
	elif ! kyverno_start; then
		echo "Kyverno $KYVERNO_VERSION built but did not start on the local API server (log: $KYV_DIR/kyverno.log)"
	else
		KYV_OK=1
		log "Kyverno $KYVERNO_VERSION runs (pid $KYV_PID), webhook $(kc get validatingwebhookconfiguration kyverno-resource-validating-webhook-cfg -o 'jsonpath={.webhooks[0].clientConfig.url}')"
	fi
fi

# cpu_ticks PID: utime+stime of the process (clock ticks).
cpu_ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)

# measure LABEL COMPONENT_PID ARGS...: one run; prints a table row and keeps
# the generator's JSON in $BENCH_DIR/admission-results.jsonl.
measure() {
	local label=$1 cpid=$2
	shift 2
	local c0 c1 a0 a1 t0 t1 out load
	load=$(cut -d' ' -f1 /proc/loadavg)
	c0=$(cpu_ticks "$cpid")
	a0=$(cpu_ticks "$APISERVER_PID")
	t0=$(date +%s.%N)
	out=$("$BENCH_DIR/admissionload" -kubeconfig "$KUBECONFIG" -duration "$DURATION" -image "$IMAGE" "$@")
	t1=$(date +%s.%N)
	c1=$(cpu_ticks "$cpid")
	a1=$(cpu_ticks "$APISERVER_PID")
	printf '%s\n' "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); r["label"]=sys.argv[1]; print(json.dumps(r))' "$label" >>"$BENCH_DIR/admission-results.jsonl"
	python3 - "$label" "$out" "$c0" "$c1" "$a0" "$a1" "$t0" "$t1" "$HZ" "$(rss_kib "$cpid")" "$(hwm_kib "$cpid")" "$load" <<'EOF'
import json, sys
label, out, c0, c1, a0, a1, t0, t1, hz, rss, hwm, load = sys.argv[1:]
r = json.loads(out)
el = float(t1) - float(t0)
cpu = 100 * (float(c1) - float(c0)) / float(hz) / el
api = 100 * (float(a1) - float(a0)) / float(hz) / el
dec = f"  decide p50 {r['decideP50ms']:.3f} p99 {r['decideP99ms']:.3f} ms" if r.get('decideP50ms') else ""
print(f"{label:<40} {r['rate']:4.0f}/s -> {r['achievedRate']:6.1f}/s  p50 {r['p50ms']:7.2f}  p95 {r['p95ms']:7.2f}  p99 {r['p99ms']:7.2f} ms"
      f" (from due time {r['schedP99ms']:7.2f}){dec}  max {r['maxMs']:7.1f}  allowed {r['allowed']} denied {r['denied']} err {r['errors']} late {r['lateSends']}"
      f"  CPU {cpu:4.0f}% RSS {int(rss)/1024:5.1f} MiB (peak {int(hwm)/1024:5.1f})  apiserver {api:4.0f}%  generator {100*r['loadCPUSeconds']/el:4.0f}%  load1 {load}"
      + (f"  first error: {r['firstError'][:160]}" if r.get('firstError') else ""), flush=True)
EOF
}

: >"$BENCH_DIR/admission-results.jsonl"
log "load: $RATE requests/s (and $LOW_RATE/s through the API server) for $DURATION, $RUNS runs; $(nproc) cores; machine load: $(cut -d' ' -f1-3 /proc/loadavg)"
KW=kyverno-resource-validating-webhook-cfg/validate.kyverno.svc-fail
for run in $(seq "$RUNS"); do
	measure "run $run mamori webhook, one template" "$PID" -rate "$RATE" -mode webhook -namespace bench
	measure "run $run mamori webhook, distinct pods" "$PID" -rate "$RATE" -mode webhook -namespace bench -distinct
	if [ $KYV_OK = 1 ]; then
		measure "run $run kyverno webhook, one template" "$KYV_PID" -rate "$RATE" -mode webhook -webhook "$KW" -namespace bench-kyverno
		measure "run $run kyverno webhook, distinct pods" "$KYV_PID" -rate "$RATE" -mode webhook -webhook "$KW" -namespace bench-kyverno -distinct
	fi
	for r in "$RATE" "$LOW_RATE"; do
		[ "$r" != 0 ] || continue
		measure "run $run API server + mamori" "$PID" -rate "$r" -mode apiserver -distinct -namespace bench
		[ $KYV_OK = 0 ] || measure "run $run API server + kyverno" "$KYV_PID" -rate "$r" -mode apiserver -distinct -namespace bench-kyverno
		# The same creates in a namespace no webhook sees: the API server alone.
		measure "run $run API server, no webhook" "$PID" -rate "$r" -mode apiserver -distinct -namespace bench-none
	done
done
log "machine load at the end: $(cut -d' ' -f1-3 /proc/loadavg); raw results: $BENCH_DIR/admission-results.jsonl"
