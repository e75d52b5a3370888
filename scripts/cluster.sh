#!/usr/bin/env bash
# A local Kubernetes cluster for development and the e2e tests (issue 10):
# etcd, kube-apiserver, kube-controller-manager and kube-scheduler on
# loopback, one real node (kubelet + containerd + runc, every path isolated
# under the run dir), kwok fake nodes for scale, then `mamori server` and,
# when the binary has it, `mamori cluster` wired to both.
#
#   scripts/cluster.sh build    build the kube binaries, etcd, kwok, helm, the
#                               CNI plugins and the node images once, cached by
#                               version outside the clone (a second run is a no-op)
#   scripts/cluster.sh up       start everything (builds first when needed); prints
#                               MAMORI_SERVER=, MAMORI_TOKEN_FILE= and, last, KUBECONFIG=
#   scripts/cluster.sh down     stop everything and leave nothing behind
#   scripts/cluster.sh status   what runs, and the same variables as up
#   scripts/cluster.sh env      only the variables (for eval)
#
# Environment (all optional):
#   MAMORI_CACHE          cache root (default /var/cache/mamori, or ~/.cache/mamori when not root)
#   MAMORI_CLUSTER_DIR    run dir: certs, state, sockets, logs (default <repo>/.cluster)
#   MAMORI_CLUSTER_PORT   port base; the cluster uses base..base+15 on 127.0.0.1
#                         (default: the first free of 16400, 16500, ... 17300)
#   MAMORI_CLUSTER_KWOK_NODES   number of kwok nodes (default 2)
#   MAMORI_BIN            the mamori binary (default <repo>/bin/mamori, go build at every up)
#   MAMORI_CLUSTER_QUIET=1      no progress lines on stderr
#   MAMORI_CLUSTER_DB_DIR       --db-dir of mamori server (default: mamori's default)
#   MAMORI_CLUSTER_KEEP_ON_FAILURE=1  leave a failed up as it is, for inspection
#   MAMORI_CLUSTER_SAVE_LOGS=DIR      down copies the component logs there first
#
# mamori cluster is started when `mamori cluster --help` lists --kubeconfig;
# of these flags it gets those its help lists: --kubeconfig (admin),
# --server, --server-ca, --token-file (the admin token; also in
# MAMORI_TOKEN), --listen or --webhook-listen (127.0.0.1:<base+10>),
# --data-dir; MAMORI_CLUSTER_ARGS adds more. Its log: <run dir>/logs.
#
# Go e2e tests use the cluster through internal/testkube (MAMORI_TEST_KUBE=1).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=cluster/lib.sh
. "$REPO/scripts/cluster/lib.sh"
# shellcheck source=cluster/run.sh
. "$REPO/scripts/cluster/run.sh"

case "${1:-}" in
build) cluster_build ;;
up) cluster_up ;;
down) cluster_down ;;
status) cluster_status ;;
env) cluster_env ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac
