# shellcheck shell=bash
# up / down / status of scripts/cluster.sh; lib.sh is sourced first.

RUN=${MAMORI_CLUSTER_DIR:-$REPO/.cluster}
case $RUN in /*) ;; *) RUN=$(pwd)/$RUN ;; esac
PKI=$RUN/pki
LOGS=$RUN/logs
PIDS=$RUN/pids
STATUS=$RUN/status
NODE_NAME=localhost # the real node; "localhost" so the apiserver reaches its kubelet on loopback
KWOK_NODES=${MAMORI_CLUSTER_KWOK_NODES:-2}
# Machine-wide: which port bases are taken, and the sysctls to restore when
# the last cluster on the machine goes down.
SLOTS=${TMPDIR:-/tmp}/mamori-cluster-slots
# Sysctls kubelet sets at start (protectKernelDefaults: false).
KUBELET_SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"

# Ports, from the base: base+0 apiserver, +1 etcd client, +2 etcd peer,
# +3 controller-manager, +4 scheduler, +5 kubelet, +6 kubelet healthz,
# +7 containerd streaming (exec/attach), +8 kwok (kubelet API of the fake
# nodes), +9 mamori server, +10 mamori cluster webhook, up to +15 reserved.
set_ports() {
	local b=$1
	PORT_BASE=$b
	P_API=$b P_ETCD=$((b + 1)) P_ETCD_PEER=$((b + 2)) P_KCM=$((b + 3)) P_SCHED=$((b + 4))
	P_KUBELET=$((b + 5)) P_KUBELET_HEALTHZ=$((b + 6)) P_STREAM=$((b + 7)) P_KWOK=$((b + 8))
	P_MAMORI=$((b + 9)) P_WEBHOOK=$((b + 10))
}

# cgroup parent of everything the kubelet runs, unique per run dir so two
# clusters on one machine never touch each other's pods.
cgroup_root() { printf '/mamori-%s' "$(printf '%s' "$RUN" | sha256sum | cut -c1-10)"; }

# --- processes ---------------------------------------------------------------

# start NAME CMD...: start CMD in the background, log to logs/NAME.log, pid to pids/NAME.
start() {
	local name=$1
	shift
	# the component gets none of our descriptors: not the caller's stderr
	# (fd 3, which would keep a pipe reading it open) nor the lock files
	"$@" </dev/null >"$LOGS/$name.log" 2>&1 3>&- 8>&- 9>&- &
	echo $! >"$PIDS/$name"
}

alive() { [ -f "$PIDS/$1" ] && running "$(cat "$PIDS/$1")"; }

# running PID: alive and not a zombie (PID 1 of these VMs reaps late)
running() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# stop NAME...: SIGTERM to each by recorded PID, then wait for all of
# them; SIGKILL to whatever still runs after 15 s.
stop() {
	local n pid i t0 pids=() names=()
	t0=$(now)
	for n in "$@"; do
		[ -f "$PIDS/$n" ] || continue
		pid=$(cat "$PIDS/$n")
		# only our process (a recycled PID would not name the run dir)
		if running "$pid" && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$RUN/"; then
			kill "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$n")
		fi
		rm -f "$PIDS/$n"
	done
	for i in $(seq 150); do
		for pid in "${pids[@]}"; do running "$pid" && break; done
		running "${pid:-0}" || break
		sleep 0.1
	done
	for i in "${!pids[@]}"; do
		if running "${pids[$i]}"; then
			log "${names[$i]} did not stop in 15 s: SIGKILL"
			kill -9 "${pids[$i]}" 2>/dev/null || true
		fi
	done
	[ -z "${MAMORI_CLUSTER_DEBUG:-}" ] || [ ${#names[@]} = 0 ] || log "stopped ${names[*]} in $(since "$t0") s"
	return 0
}

# wait_for WHAT SECONDS CMD...: poll CMD until it succeeds; the component
# named WHAT must stay alive meanwhile.
wait_for() {
	local what=$1 secs=$2 i
	shift 2
	for i in $(seq $((secs * 5))); do
		"$@" >/dev/null 2>&1 && return 0
		if [ -f "$PIDS/$what" ] && ! alive "$what"; then
			tail -n 30 "$LOGS/$what.log" >&2 || true
			die "$what exited (log above: $LOGS/$what.log)"
		fi
		sleep 0.2
	done
	tail -n 30 "$LOGS/$what.log" >&2 || true
	die "$what not ready after ${secs}s (log: $LOGS/$what.log)"
}

kctl() { "$KBIN/kubectl" --kubeconfig "$RUN/kubeconfig" "$@"; }
ctr_() { ctr --address "$RUN/containerd/containerd.sock" "$@"; }

# --- ports -------------------------------------------------------------------

port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

range_free() {
	local p
	for p in $(seq "$1" $(($1 + 15))); do port_free "$p" || return 1; done
}

# claim_ports: MAMORI_CLUSTER_PORT, or the first base of 16400, 16500, ...
# 17300 that no other cluster on this machine has claimed and whose ports
# are free. The claim is a file in $SLOTS naming the run dir.
claim_ports() {
	mkdir -p "$SLOTS"
	exec 8>"$SLOTS/.lock"
	flock 8
	local b f owner
	for f in "$SLOTS"/[0-9]*; do # forget claims of run dirs that are gone
		[ -f "$f" ] || continue
		owner=$(cat "$f")
		[ -d "$owner" ] || rm -f "$f"
	done
	if [ -n "${MAMORI_CLUSTER_PORT:-}" ]; then
		b=$MAMORI_CLUSTER_PORT
		if [ -f "$SLOTS/$b" ] && [ "$(cat "$SLOTS/$b")" != "$RUN" ]; then
			die "port base $b is claimed by the cluster in $(cat "$SLOTS/$b")"
		fi
		range_free "$b" || die "a port in $b..$((b + 15)) is in use (MAMORI_CLUSTER_PORT)"
	else
		b=
		for f in 16400 16500 16600 16700 16800 16900 17000 17100 17200 17300; do
			[ -f "$SLOTS/$f" ] && continue
			range_free "$f" && b=$f && break
		done
		[ -n "$b" ] || die "no free port base in 16400..17315 (set MAMORI_CLUSTER_PORT)"
	fi
	printf '%s\n' "$RUN" >"$SLOTS/$b"
	echo "$b" >"$RUN/port-base"
	flock -u 8
	set_ports "$b"
}

release_ports() {
	[ -f "$RUN/port-base" ] || return 0
	local b
	b=$(cat "$RUN/port-base")
	[ -f "$SLOTS/$b" ] && [ "$(cat "$SLOTS/$b")" = "$RUN" ] && rm -f "$SLOTS/$b"
	return 0
}

# --- sysctls kubelet changes -------------------------------------------------
# The first cluster on the machine saves them; the last one down restores
# them (claims in $SLOTS count the clusters).

save_sysctls() {
	exec 8>"$SLOTS/.lock"
	flock 8
	if [ ! -f "$SLOTS/sysctl.orig" ]; then
		local k
		for k in $KUBELET_SYSCTLS; do printf '%s=%s\n' "$k" "$(sysctl -n "$k")"; done >"$SLOTS/sysctl.orig"
	fi
	flock -u 8
}

restore_sysctls() {
	[ -d "$SLOTS" ] || return 0
	exec 8>"$SLOTS/.lock"
	flock 8
	local others f
	others=0
	for f in "$SLOTS"/[0-9]*; do
		[ -f "$f" ] && [ "$(cat "$f")" != "$RUN" ] && [ -d "$(cat "$f")" ] && others=$((others + 1))
	done
	if [ "$others" = 0 ] && [ -f "$SLOTS/sysctl.orig" ]; then
		local kv
		while read -r kv; do sysctl -qw "$kv" || true; done <"$SLOTS/sysctl.orig"
		rm -f "$SLOTS/sysctl.orig"
	fi
	flock -u 8
}

# --- certificates ------------------------------------------------------------
# One CA for everything; ECDSA P-256 keys; generated per run dir, never committed.

cert() { # NAME SUBJECT SAN|"" EKU
	local n=$1 subj=$2 san=$3 eku=$4
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$PKI/$n.key" -out "$PKI/$n.csr" -subj "$subj" 2>/dev/null
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		[ -z "$san" ] || echo "subjectAltName=$san"
	} >"$PKI/$n.ext"
	openssl x509 -req -in "$PKI/$n.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 30 -sha256 \
		-extfile "$PKI/$n.ext" -out "$PKI/$n.crt" 2>/dev/null
	rm -f "$PKI/$n.csr" "$PKI/$n.ext"
}

make_certs() {
	mkdir -p "$PKI"
	chmod 700 "$PKI"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
		-days 30 -subj "/CN=mamori-local-cluster-ca" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	local lo="IP:127.0.0.1,DNS:localhost"
	cert etcd-server /CN=etcd "$lo" serverAuth,clientAuth
	cert etcd-client /CN=kube-apiserver-etcd-client "" clientAuth
	cert apiserver /CN=kube-apiserver "$lo,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" serverAuth
	cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "" clientAuth
	cert admin "/O=system:masters/CN=mamori-local-admin" "" clientAuth
	cert controller-manager /CN=system:kube-controller-manager "" clientAuth
	cert scheduler /CN=system:kube-scheduler "" clientAuth
	cert node "/O=system:nodes/CN=system:node:$NODE_NAME" "$lo" serverAuth,clientAuth
	cert kwok "/O=system:masters/CN=mamori-local-kwok" "" clientAuth
	cert mamori-server /CN=mamori-server "$lo" serverAuth
	openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null
	openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
	rm -f "$PKI/ca.srl"
	chmod 600 "$PKI"/*.key
}

kubeconfig() { # FILE USER
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mamori-local
  cluster:
    server: https://127.0.0.1:$P_API
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: mamori-local
  context: {cluster: mamori-local, user: $2, namespace: default}
current-context: mamori-local
EOF
	chmod 600 "$1"
}

# --- components --------------------------------------------------------------

start_etcd() {
	start etcd "$KBIN/etcd" --name mamori --data-dir "$RUN/etcd" --unsafe-no-fsync --log-level warn \
		--listen-client-urls "https://127.0.0.1:$P_ETCD" --advertise-client-urls "https://127.0.0.1:$P_ETCD" \
		--listen-peer-urls "https://127.0.0.1:$P_ETCD_PEER" --initial-advertise-peer-urls "https://127.0.0.1:$P_ETCD_PEER" \
		--initial-cluster "mamori=https://127.0.0.1:$P_ETCD_PEER" \
		--cert-file "$PKI/etcd-server.crt" --key-file "$PKI/etcd-server.key" --client-cert-auth --trusted-ca-file "$PKI/ca.crt" \
		--peer-cert-file "$PKI/etcd-server.crt" --peer-key-file "$PKI/etcd-server.key" --peer-client-cert-auth --peer-trusted-ca-file "$PKI/ca.crt"
}

start_apiserver() {
	start kube-apiserver "$KBIN/kube-apiserver" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$P_API" \
		--etcd-servers="https://127.0.0.1:$P_ETCD" --etcd-cafile="$PKI/ca.crt" \
		--etcd-certfile="$PKI/etcd-client.crt" --etcd-keyfile="$PKI/etcd-client.key" \
		--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
		--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --anonymous-auth=false --profiling=false \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
		--service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true --endpoint-reconciler-type=none \
		--kubelet-preferred-address-types=Hostname --kubelet-certificate-authority="$PKI/ca.crt" \
		--kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key"
}

apiserver_ready() {
	curl -sf --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:$P_API/readyz"
}

start_controllers() {
	kubeconfig "$RUN/controller-manager.kubeconfig" controller-manager
	kubeconfig "$RUN/scheduler.kubeconfig" scheduler
	start kube-controller-manager "$KBIN/kube-controller-manager" --kubeconfig="$RUN/controller-manager.kubeconfig" \
		--authentication-kubeconfig="$RUN/controller-manager.kubeconfig" --authorization-kubeconfig="$RUN/controller-manager.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port="$P_KCM" --leader-elect=false --profiling=false \
		--service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" --use-service-account-credentials=true
	start kube-scheduler "$KBIN/kube-scheduler" --kubeconfig="$RUN/scheduler.kubeconfig" \
		--authentication-kubeconfig="$RUN/scheduler.kubeconfig" --authorization-kubeconfig="$RUN/scheduler.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port="$P_SCHED" --leader-elect=false --profiling=false
}

start_containerd() {
	local c=$RUN/containerd
	mkdir -p "$c" "$RUN/cni/net.d" "$RUN/cni/ipam"
	cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "mamori.local/pause:3.10"
  stream_server_address = "127.0.0.1"
  stream_server_port = "$P_STREAM"
  disable_tcp_service = true
  enable_selinux = false
  # No CAP_SYS_RESOURCE on these machines: without this runc fails on
  # oom_score_adj -998 ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$c/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$KCNI"
    conf_dir = "$RUN/cni/net.d"
    max_conf_num = 1
EOF
	# Pod network: a tap device as eth0 inside the pod's own network namespace
	# (created there directly, owner root) with an address from a private
	# range; nothing is created in the host's network namespace. Pods reach
	# nothing but themselves; hostNetwork pods reach the apiserver on loopback.
	# (The dummy link type would do too, but these kernels lack it.)
	cat >"$RUN/cni/net.d/10-mamori.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$(cni_net_name)",
  "plugins": [{
    "type": "tap", "owner": 0, "group": 0,
    "ipam": {"type": "host-local", "dataDir": "$RUN/cni/ipam", "ranges": [[{"subnet": "10.245.0.0/16"}]]}
  }]
}
EOF
	start containerd containerd --config "$c/config.toml"
	wait_for containerd 60 ctr_ version
	# Import the node images, each also named repo@digest as a pull would
	# name it, so container statuses carry the manifest digest as imageID.
	local i line name digest
	for i in "$KIMG"/*.tar; do
		while read -r line; do
			[[ $line =~ unpacking\ ([^ ]+)\ \((sha256:[0-9a-f]{64})\) ]] || continue
			name=${BASH_REMATCH[1]} digest=${BASH_REMATCH[2]}
			ctr_ -n k8s.io images tag --force "$name" "${name%:*}@$digest" >/dev/null
		done < <(ctr_ -n k8s.io images import "$i")
	done
}

cni_net_name() { printf 'mamori-%s' "$(printf '%s' "$RUN" | sha256sum | cut -c1-10)"; }

# make_cgroup_root: kubelet wants its cgroup root to exist in every hierarchy.
make_cgroup_root() {
	local cg d
	cg=$(cgroup_root)
	for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -f "$d/cgroup.procs" ] || continue
		mkdir -p "$d${cg#/}"
		if [ -f "$d/cpuset.cpus" ] && [ -f "$d${cg#/}/cpuset.cpus" ]; then
			cat "$d/cpuset.cpus" >"$d${cg#/}/cpuset.cpus"
			cat "$d/cpuset.mems" >"$d${cg#/}/cpuset.mems"
		fi
	done
}

start_kubelet() {
	local k=$RUN/kubelet
	mkdir -p "$k/root" "$RUN/pod-logs"
	[ -d /var/log/containers ] || { mkdir -p /var/log/containers && touch "$RUN/created-var-log-containers"; }
	kubeconfig "$k/kubeconfig" node
	cat >"$k/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $P_KUBELET
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $P_KUBELET_HEALTHZ
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/node.crt
tlsPrivateKeyFile: $PKI/node.key
cgroupDriver: cgroupfs
cgroupRoot: $(cgroup_root)
# these machines run hybrid cgroup v1; kubelet refuses v1 unless told
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$RUN/containerd/containerd.sock
podLogsDir: $RUN/pod-logs
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
# the node's images are imported, never pulled: never collect them
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 60
resolvConf: /etc/resolv.conf
localStorageCapacityIsolation: true
# no KUBE-FIREWALL / KUBE-IPTABLES-HINT chains in the host's iptables
makeIPTablesUtilChains: false
EOF
	make_cgroup_root
	save_sysctls
	# The real node is tainted: pods run on it only when they ask
	# (toleration or nodeName); everything else is scheduled to kwok nodes.
	start kubelet "$KBIN/kubelet" --config="$k/config.yaml" --kubeconfig="$k/kubeconfig" --root-dir="$k/root" \
		--hostname-override="$NODE_NAME" --node-labels=mamori.local/node=real \
		--register-with-taints=mamori.local/real-node=true:NoSchedule
}

start_kwok() {
	kubeconfig "$RUN/kwok.kubeconfig" kwok
	mkdir -p "$RUN/home"
	# kwok serves the fake nodes' kubelet API (logs, exec) on loopback with the node certificate.
	HOME=$RUN/home start kwok "$KBIN/kwok" --kubeconfig="$RUN/kwok.kubeconfig" -c "$KUBE_CACHE/kwok/stages.yaml" \
		--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
		--cidr=10.246.0.0/16 --node-ip=127.0.0.1 --node-port="$P_KWOK" --server-address="127.0.0.1:$P_KWOK" \
		--tls-cert-file="$PKI/node.crt" --tls-private-key-file="$PKI/node.key" --node-lease-duration-seconds=40
	local i
	for i in $(seq 0 $((KWOK_NODES - 1))); do
		cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, mamori.local/node: kwok, kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
status:
  # kubelet API of a fake node = kwok on loopback
  addresses: [{type: InternalIP, address: 127.0.0.1}, {type: Hostname, address: localhost}]
---
EOF
	done | kctl apply -f - >/dev/null
}

node_ready() {
	[ "$(kctl get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

default_sa() { kctl -n default get serviceaccount default; }

mamori_bin() {
	if [ -n "${MAMORI_BIN:-}" ]; then
		MAMORI_BIN_PATH=$MAMORI_BIN
		return
	fi
	MAMORI_BIN_PATH=$REPO/bin/mamori
	log "go build -o bin/mamori ./cmd/mamori"
	(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o bin/mamori ./cmd/mamori)
}

start_mamori_server() {
	local d=$RUN/mamori
	mkdir -p "$d/data"
	chmod 700 "$d"
	(umask 077 && openssl rand -hex 32 >"$d/admin.token")
	# The server's vulnerability database: MAMORI_CLUSTER_DB_DIR, else one of
	# the cluster's own (empty: fill it with mamori --db-dir DIR db import|update;
	# the server picks a new database up and re-matches).
	SERVER_DB_DIR=${MAMORI_CLUSTER_DB_DIR:-$d/db}
	mkdir -p "$SERVER_DB_DIR"
	MAMORI_BOOTSTRAP_TOKEN=$(cat "$d/admin.token") start mamori-server "$MAMORI_BIN_PATH" --db-dir "$SERVER_DB_DIR" server \
		--listen "127.0.0.1:$P_MAMORI" --data-dir "$d/data" --tls-cert "$PKI/mamori-server.crt" --tls-key "$PKI/mamori-server.key"
	wait_for mamori-server 60 curl -sf --max-time 2 --cacert "$PKI/ca.crt" "https://127.0.0.1:$P_MAMORI/healthz"
}

# mamori_api METHOD PATH [JSON]: one call of the server's API with the admin token.
mamori_api() {
	local args=(-sS --fail-with-body --max-time 10 --cacert "$PKI/ca.crt" -X "$1" -H "Authorization: Bearer $(cat "$RUN/mamori/admin.token")")
	[ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' --data "$3")
	curl "${args[@]}" "https://127.0.0.1:$P_MAMORI$2"
}

# setup_mamori_cluster: the cluster "local" on the server (its token in
# mamori/cluster.token), the default policy applied and assigned to it,
# and the component's namespace.
setup_mamori_cluster() {
	local out tok
	out=$(mamori_api POST /api/v1/clusters '{"name":"local"}') || die "create cluster local on mamori server: $out"
	tok=$(printf '%s' "$out" | sed -n 's/.*"token":"\([0-9A-Za-z_.-]*\)".*/\1/p')
	[ -n "$tok" ] || die "no cluster token in the server's answer"
	(umask 077 && printf '%s\n' "$tok" >"$RUN/mamori/cluster.token")
	MAMORI_SERVER=https://127.0.0.1:$P_MAMORI MAMORI_TOKEN_FILE=$RUN/mamori/admin.token \
		"$MAMORI_BIN_PATH" --quiet policy apply -f "$REPO/docs/examples/policies/default.yaml" --server-ca "$PKI/ca.crt" >/dev/null
	MAMORI_SERVER=https://127.0.0.1:$P_MAMORI MAMORI_TOKEN_FILE=$RUN/mamori/admin.token \
		"$MAMORI_BIN_PATH" --quiet policy assign default --cluster local --server-ca "$PKI/ca.crt" >/dev/null
	kctl create namespace mamori >/dev/null 2>&1 || kctl get namespace mamori >/dev/null
}

webhook_ready() {
	kctl get validatingwebhookconfiguration mamori-cluster >/dev/null &&
		curl -sf --max-time 2 --cacert "$RUN/webhook-ca.crt" -o /dev/null "https://127.0.0.1:$P_WEBHOOK/healthz"
}

# start_mamori_cluster: the in-cluster component, when this mamori has it,
# run from the admin kubeconfig with the cluster token; the API server calls
# its webhook at https://127.0.0.1:<base+10>/validate.
# Flags are passed only when its --help lists them; MAMORI_CLUSTER_ARGS adds more.
start_mamori_cluster() {
	local help
	if ! help=$("$MAMORI_BIN_PATH" cluster --help 2>&1) || ! grep -q -- '--kubeconfig' <<<"$help"; then
		log "mamori cluster: not in this build of mamori (no 'mamori cluster --help' with --kubeconfig); not started"
		echo none >"$RUN/mamori-cluster"
		return 0
	fi
	setup_mamori_cluster
	local args=(cluster --kubeconfig "$RUN/kubeconfig")
	has() { grep -q -- "--$1[ =]" <<<"$help"; }
	has server && args+=(--server "https://127.0.0.1:$P_MAMORI")
	has server-ca && args+=(--server-ca "$PKI/ca.crt")
	has token-file && args+=(--token-file "$RUN/mamori/cluster.token")
	has listen && args+=(--listen "127.0.0.1:$P_WEBHOOK")
	has webhook-listen && args+=(--webhook-listen "127.0.0.1:$P_WEBHOOK")
	has webhook-url && args+=(--webhook-url "https://127.0.0.1:$P_WEBHOOK/validate")
	has namespace && args+=(--namespace mamori)
	has data-dir && args+=(--data-dir "$RUN/mamori/cluster")
	# shellcheck disable=SC2206
	[ -z "${MAMORI_CLUSTER_ARGS:-}" ] || args+=($MAMORI_CLUSTER_ARGS)
	start mamori-cluster "$MAMORI_BIN_PATH" "${args[@]}"
	# Ready: the webhook configuration is written and the webhook answers
	# with a certificate of the CA in it.
	local i
	for i in $(seq 150); do
		if kctl get validatingwebhookconfiguration mamori-cluster -o 'jsonpath={.webhooks[0].clientConfig.caBundle}' 2>/dev/null |
			base64 -d >"$RUN/webhook-ca.crt" 2>/dev/null && [ -s "$RUN/webhook-ca.crt" ] && webhook_ready; then
			break
		fi
		alive mamori-cluster || {
			tail -n 30 "$LOGS/mamori-cluster.log" >&2
			die "mamori cluster exited (log: $LOGS/mamori-cluster.log)"
		}
		sleep 0.2
	done
	webhook_ready || die "mamori cluster: webhook not ready after 30 s (log: $LOGS/mamori-cluster.log)"
	echo running >"$RUN/mamori-cluster"
}

write_status() {
	cat >"$STATUS.tmp" <<EOF
MAMORI_CLUSTER_DIR=$RUN
MAMORI_CLUSTER_PORT=$PORT_BASE
MAMORI_CLUSTER_NODE=$NODE_NAME
MAMORI_CLUSTER_CONTAINERD=$RUN/containerd/containerd.sock
MAMORI_CLUSTER_BIN=$KBIN
MAMORI_CLUSTER_IMAGES=$KIMG
MAMORI_CLUSTER_COMPONENT=$(cat "$RUN/mamori-cluster" 2>/dev/null || echo none)
MAMORI_SERVER=https://127.0.0.1:$P_MAMORI
MAMORI_SERVER_CA=$PKI/ca.crt
MAMORI_SERVER_DB_DIR=$SERVER_DB_DIR
MAMORI_CLUSTER_NAME=local
MAMORI_CLUSTER_TOKEN_FILE=$RUN/mamori/cluster.token
MAMORI_TOKEN_FILE=$RUN/mamori/admin.token
KUBECONFIG=$RUN/kubeconfig
EOF
	mv "$STATUS.tmp" "$STATUS"
}

# --- commands ----------------------------------------------------------------

cluster_up() {
	[ "$(id -u)" = 0 ] || die "up needs root (kubelet, containerd, mounts, cgroups)"
	local t0
	t0=$(now)
	if [ -f "$STATUS" ]; then
		set_ports "$(cat "$RUN/port-base")"
		if apiserver_ready >/dev/null 2>&1; then
			log "already up ($RUN); scripts/cluster.sh down to stop it"
			print_env
			return 0
		fi
		log "a cluster in $RUN is not answering: taking it down first"
		cluster_down
	elif [ -d "$RUN" ]; then
		log "left-overs in $RUN: taking them down first"
		cluster_down
	fi
	local c
	for c in containerd runc ctr openssl curl ss flock findmnt; do
		command -v "$c" >/dev/null || die "$c is missing (apt-get install containerd runc openssl curl iproute2 util-linux)"
	done
	[ ${#RUN} -le 60 ] || die "run dir $RUN is too long for unix sockets: set MAMORI_CLUSTER_DIR to a shorter path"
	cluster_build
	mamori_bin
	t0=$(now)
	mkdir -p "$RUN" "$LOGS" "$PIDS"
	trap 'up_exit $?' EXIT
	claim_ports
	log "run dir $RUN, ports $P_API..$((P_API + 15))"
	make_certs
	kubeconfig "$RUN/kubeconfig" admin
	start_etcd
	start_apiserver
	wait_for kube-apiserver 120 apiserver_ready
	log "kube-apiserver ready in $(since "$t0") s"
	start_controllers
	start_containerd
	start_kubelet
	start_kwok
	start_mamori_server
	log "mamori server ready in $(since "$t0") s"
	wait_for kubelet 120 node_ready "$NODE_NAME"
	for c in $(seq 0 $((KWOK_NODES - 1))); do wait_for kwok 60 node_ready "kwok-node-$c"; done
	wait_for kube-controller-manager 60 default_sa
	start_mamori_cluster
	write_status
	trap - EXIT
	log "up in $(since "$t0") s"
	print_env
}

# print_env: what up prints on stdout, KUBECONFIG last.
print_env() {
	grep -E '^(MAMORI_SERVER|MAMORI_SERVER_CA|MAMORI_TOKEN_FILE)=' "$STATUS"
	grep '^KUBECONFIG=' "$STATUS"
}

up_exit() {
	trap - EXIT
	[ "$1" != 0 ] || return 0
	if [ "${MAMORI_CLUSTER_KEEP_ON_FAILURE:-}" = 1 ]; then
		log "up failed; left as is for inspection ($RUN); scripts/cluster.sh down cleans up"
	else
		log "up failed; taking down what started (MAMORI_CLUSTER_KEEP_ON_FAILURE=1 keeps it)"
		cluster_down || true
	fi
	exit 1
}

# kill_cgroup: every process left in the cluster's cgroups (containers whose
# shim is gone), then the cgroups themselves, deepest first.
kill_cgroup() {
	local cg d
	cg=$(cgroup_root)
	for d in /sys/fs/cgroup/*/"${cg#/}" /sys/fs/cgroup/"${cg#/}"; do
		[ -d "$d" ] || continue
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | xargs -r kill -9 2>/dev/null || true
	done
	sleep 0.2
	for d in /sys/fs/cgroup/*/"${cg#/}" /sys/fs/cgroup/"${cg#/}"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done
}

# our_shims: containerd shims of our containerd (their command line names
# its socket); they outlive containerd when a task could not be removed.
our_shims() {
	local p
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "-address $RUN/containerd/containerd.sock" && echo "$p"
	done
	return 0
}

umount_all() {
	local m i
	for i in 1 2 3; do
		findmnt -rn -o TARGET | grep -F -- "$RUN/" | sort -r | while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done
		findmnt -rn -o TARGET | grep -qF -- "$RUN/" || return 0
	done
	return 1
}

cluster_down() {
	[ -d "$RUN" ] || {
		log "nothing to take down ($RUN does not exist)"
		return 0
	}
	[ "$(id -u)" = 0 ] || die "down needs root"
	local t0
	t0=$(now)
	mkdir -p "$PIDS"
	stop mamori-cluster mamori-server kwok kubelet
	if alive containerd; then
		local ns t
		# CNI keeps a result file per pod network in /var/lib/cni/results
		# until the pod's network is torn down, which a kill skips
		for t in $(ctr_ -n k8s.io containers ls -q 2>/dev/null); do
			rm -f /var/lib/cni/results/*-"$t"-* 2>/dev/null || true
		done
		for ns in $(ctr_ namespaces ls -q 2>/dev/null); do
			for t in $(ctr_ -n "$ns" tasks ls -q 2>/dev/null); do ctr_ -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
			for t in $(ctr_ -n "$ns" tasks ls -q 2>/dev/null); do ctr_ -n "$ns" tasks rm -f "$t" >/dev/null 2>&1 || true; done
			for t in $(ctr_ -n "$ns" containers ls -q 2>/dev/null); do ctr_ -n "$ns" containers rm "$t" >/dev/null 2>&1 || true; done
		done
	fi
	stop containerd kube-scheduler kube-controller-manager
	stop kube-apiserver
	stop etcd
	kill_cgroup
	local left=()
	mapfile -t left < <(our_shims)
	if [ ${#left[@]} -gt 0 ]; then
		log "killing left-over containerd shims of $RUN: ${left[*]}"
		kill -9 "${left[@]}" 2>/dev/null || true
		sleep 0.5
	fi
	kill_cgroup
	umount_all || log "WARNING: mounts under $RUN remain: $(findmnt -rn -o TARGET | grep -F -- "$RUN/" | tr '\n' ' ')"
	restore_sysctls
	rm -f /var/lib/cni/results/"$(cni_net_name)"-* 2>/dev/null || true
	local l
	for l in /var/log/containers/*.log; do
		[ -L "$l" ] && case $(readlink "$l") in "$RUN"/*) rm -f "$l" ;; esac
	done
	[ -f "$RUN/created-var-log-containers" ] && rmdir /var/log/containers 2>/dev/null
	if [ -n "${MAMORI_CLUSTER_SAVE_LOGS:-}" ] && [ -d "$LOGS" ]; then
		mkdir -p "$MAMORI_CLUSTER_SAVE_LOGS"
		cp -r "$LOGS/." "$MAMORI_CLUSTER_SAVE_LOGS/" || true
	fi
	release_ports
	if findmnt -rn -o TARGET | grep -qF -- "$RUN/"; then
		die "not removing $RUN: something is still mounted under it"
	fi
	rm -rf --one-file-system "$RUN"
	log "down in $(since "$t0") s"
}

cluster_status() {
	if [ ! -f "$STATUS" ]; then
		echo "cluster: not up ($RUN)"
		return 3
	fi
	set_ports "$(cat "$RUN/port-base")"
	local n st=0
	for n in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kwok mamori-server mamori-cluster; do
		if alive "$n"; then
			printf '%-24s running (pid %s)\n' "$n" "$(cat "$PIDS/$n")"
		elif [ "$n" = mamori-cluster ] && [ "$(cat "$RUN/mamori-cluster" 2>/dev/null)" = none ]; then
			printf '%-24s not in this mamori build\n' "$n"
		else
			printf '%-24s NOT RUNNING\n' "$n"
			st=1
		fi
	done
	apiserver_ready >/dev/null 2>&1 || {
		echo "kube-apiserver: not ready"
		st=1
	}
	kctl get nodes 2>/dev/null || true
	cat "$STATUS"
	return $st
}

cluster_env() {
	[ -f "$STATUS" ] || die "not up ($RUN)"
	cat "$STATUS"
}
