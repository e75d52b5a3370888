#!/usr/bin/env bash
# Differential check of mamori's Pod Security Standards controls against
# the reference implementation, Kubernetes' pod-security-admission library,
# check by check, on internal/policy/testdata/pss and on random pods.
# The library is not a dependency of mamori: the harness (bench/pssdiff) is
# built in a module outside the tree that points at this checkout.
#   N=200000 SEED=1 PSA_VERSION=v0.37.2 bench/pss-diff.sh
source "$(dirname "$0")/lib.sh"
PSA_VERSION="${PSA_VERSION:-v0.37.2}"
w="$BENCH_DIR/pssdiff"
rm -rf "$w" && mkdir -p "$w"
sed '/^\/\/go:build ignore$/d' "$REPO_ROOT/bench/pssdiff/main.go" > "$w/main.go"
(
	cd "$w"
	go mod init mamori/pssdiffharness >/dev/null 2>&1
	go mod edit -require "mamori@v0.0.0" -replace "mamori=$REPO_ROOT"
	log "k8s.io/pod-security-admission $PSA_VERSION"
	go get "k8s.io/pod-security-admission@$PSA_VERSION" >/dev/null 2>&1
	go mod tidy >/dev/null 2>&1
	go build -o pssdiff . || exit 1
)
log "k8s.io/api in the harness: $(cd "$w" && go list -m -f '{{.Version}}' k8s.io/api)"
"$w/pssdiff" -n "${N:-200000}" -seed "${SEED:-1}" "$REPO_ROOT"/internal/policy/testdata/pss/*.yaml
