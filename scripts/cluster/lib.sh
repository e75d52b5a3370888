# shellcheck shell=bash
# Functions of scripts/cluster.sh; REPO is set by the caller.

# Versions. The kube binaries come from k8s.io/kubernetes on the Go module
# proxy with every staging module replaced by its published version.
K8S_VERSION=1.34.4
K8S_STAGING_VERSION=0.34.4
ETCD_VERSION=3.6.8
KWOK_VERSION=0.8.0
HELM_VERSION=3.19.5 # helm v3 as a tool binary, never a go.mod dependency of mamori
CNI_VERSION=1.9.1   # loopback, tap and host-local: a pod network namespace without touching the host's
KUBE_CMDS="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl"

if [ -z "${MAMORI_CACHE:-}" ]; then
	if [ "$(id -u)" = 0 ]; then MAMORI_CACHE=/var/cache/mamori; else MAMORI_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mamori; fi
fi
KUBE_CACHE=$MAMORI_CACHE/kube/v$K8S_VERSION
KBIN=$KUBE_CACHE/bin
KIMG=$KUBE_CACHE/images
KCNI=$KUBE_CACHE/cni

# Progress and errors go to fd 3, the caller's stderr, even where stderr is
# redirected to a log file.
exec 3>&2
log() { [ "${MAMORI_CLUSTER_QUIET:-}" = 1 ] || printf 'cluster: %s\n' "$*" >&3; }
die() {
	printf 'cluster: %s\n' "$*" >&3
	exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# go_env: a Go environment of its own under the cache, so a fresh clone (or a
# second suite) reuses the module downloads and the build cache.
go_env() {
	export GOPATH=$KUBE_CACHE/go GOMODCACHE=$KUBE_CACHE/go/pkg/mod GOCACHE=$KUBE_CACHE/go/cache
	export GOFLAGS="-buildvcs=false -trimpath" GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off
}

# stamp NAME VALUE: the cached thing NAME was built as VALUE.
stamp_ok() { [ -f "$KUBE_CACHE/stamps/$1" ] && [ "$(cat "$KUBE_CACHE/stamps/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$KUBE_CACHE/stamps" && printf '%s\n' "$2" >"$KUBE_CACHE/stamps/$1"; }

build_kube() {
	local want="k8s.io/kubernetes v$K8S_VERSION staging v$K8S_STAGING_VERSION: $KUBE_CMDS"
	stamp_ok kube "$want" && return 0
	log "building $KUBE_CMDS v$K8S_VERSION (several minutes the first time)"
	local t0 d=$KUBE_CACHE/src/kube
	t0=$(now)
	mkdir -p "$d" && cd "$d" || exit 1
	go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null
	# k8s.io/kubernetes replaces its staging modules with ./staging/...: a
	# wrapper module replaces each with its published version instead.
	local mods
	mods=$(sed -n '/^replace (/,/^)/p' "$GOMODCACHE/k8s.io/kubernetes@v$K8S_VERSION/go.mod" | awk '/=>/{print $1}')
	[ -n "$mods" ] || die "no replace block in k8s.io/kubernetes@v$K8S_VERSION/go.mod"
	{
		printf 'module mamori.local/kube\n\ngo 1.24.0\n\ngodebug default=go1.24\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
		for m in $mods; do printf '\t%s => %s v%s\n' "$m" "$m" "$K8S_STAGING_VERSION"; done
		echo ')'
	} >go.mod
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		for c in $KUBE_CMDS; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
		echo ')'
	} >tools.go
	go mod tidy
	local minor=${K8S_VERSION#*.}
	minor=${minor%%.*}
	local ldf="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*} -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
	local pkgs=()
	for c in $KUBE_CMDS; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
	mkdir -p "$KBIN"
	go build -ldflags "$ldf" -o "$KBIN/" "${pkgs[@]}"
	stamp_set kube "$want"
	log "built $KUBE_CMDS in $(since "$t0") s"
}

build_etcd() {
	local want="go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
	stamp_ok etcd "$want" && return 0
	log "building etcd v$ETCD_VERSION"
	local t0 d=$KUBE_CACHE/src/etcd
	t0=$(now)
	mkdir -p "$d" && cd "$d" || exit 1
	# etcd's own main module has replace directives (go install refuses it):
	# a two-line main around etcdmain instead.
	printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' >main.go
	printf 'module mamori.local/etcd\n\ngo 1.24.0\n' >go.mod
	go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
	go mod tidy
	mkdir -p "$KBIN"
	go build -ldflags "-s -w" -o "$KBIN/etcd" .
	stamp_set etcd "$want"
	log "built etcd in $(since "$t0") s"
}

build_kwok() {
	local want="sigs.k8s.io/kwok v$KWOK_VERSION"
	stamp_ok kwok "$want" && return 0
	log "building kwok v$KWOK_VERSION"
	local t0
	t0=$(now)
	cd "$KUBE_CACHE" || exit 1
	GOBIN=$KBIN go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
	# kwok's stages (what fake nodes and pods do) ship in its module.
	local s=$GOMODCACHE/sigs.k8s.io/kwok@v$KWOK_VERSION/kustomize/stage f
	mkdir -p "$KUBE_CACHE/kwok"
	{
		printf 'apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\n'
		printf 'options: {podPlayStageParallelism: 4, nodePlayStageParallelism: 4, nodeLeaseParallelism: 4, podsOnNodeSyncParallelism: 1}\n'
		for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
			echo ---
			cat "$s/$f.yaml"
		done
	} >"$KUBE_CACHE/kwok/stages.yaml"
	stamp_set kwok "$want"
	log "built kwok in $(since "$t0") s"
}

build_helm() {
	local want="helm.sh/helm/v3 v$HELM_VERSION"
	stamp_ok helm "$want" && return 0
	log "building helm v$HELM_VERSION"
	local t0
	t0=$(now)
	cd "$KUBE_CACHE" || exit 1
	GOBIN=$KBIN go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
	stamp_set helm "$want"
	log "built helm in $(since "$t0") s"
}

build_cni() {
	local want="github.com/containernetworking/plugins v$CNI_VERSION: loopback tap host-local"
	stamp_ok cni "$want" && return 0
	log "building CNI plugins v$CNI_VERSION"
	local t0 m=github.com/containernetworking/plugins/plugins
	t0=$(now)
	cd "$KUBE_CACHE" || exit 1
	mkdir -p "$KCNI"
	GOBIN=$KCNI go install -ldflags "-s -w" "$m/main/loopback@v$CNI_VERSION" "$m/main/tap@v$CNI_VERSION" "$m/ipam/host-local@v$CNI_VERSION"
	stamp_set cni "$want"
	log "built CNI plugins in $(since "$t0") s"
}

# build_images: the pause image (a static Go binary) and a test image with
# busybox-static, as OCI layout tars with reproducible digests.
build_images() {
	local bb
	bb=$(command -v busybox || true)
	[ -n "$bb" ] && file_is_static "$bb" || bb=/bin/busybox
	[ -x "$bb" ] || die "busybox-static is needed for the test image (apt-get install busybox-static)"
	local want
	want="pause $(sha256sum "$REPO/scripts/cluster/pause/main.go" | cut -c1-16) busybox $(sha256sum "$bb" | cut -c1-16) mkimage $(sha256sum "$REPO/scripts/cluster/mkimage.sh" | cut -c1-16)"
	stamp_ok images "$want" && return 0
	log "building the node images"
	local w
	w=$(mktemp -d)
	mkdir -p "$w/pause" "$w/bb/bin" "$KIMG"
	(cd "$REPO/scripts/cluster/pause" && go build -ldflags "-s -w" -o "$w/pause/pause" .)
	"$REPO/scripts/cluster/mkimage.sh" mamori.local/pause:3.10 "$w/pause" '["/pause"]' "$KIMG/pause.tar"
	cp "$bb" "$w/bb/bin/busybox"
	local a
	for a in $("$bb" --list); do [ "$a" = busybox ] || ln -s busybox "$w/bb/bin/$a"; done
	"$REPO/scripts/cluster/mkimage.sh" mamori.local/busybox:1 "$w/bb" '["/bin/sh"]' "$KIMG/busybox.tar"
	rm -rf "$w"
	stamp_set images "$want"
}

file_is_static() { ! ldd "$1" >/dev/null 2>&1; }

cluster_build() {
	command -v go >/dev/null || die "go is not on PATH"
	mkdir -p "$KUBE_CACHE"
	local t0
	t0=$(now)
	# one build at a time per cache (other clones and suites share it)
	exec 9>"$KUBE_CACHE/.build.lock"
	flock 9
	# the go tool's output goes to build.log, shown when a step fails
	local blog=$KUBE_CACHE/build.log
	if ! (
		go_env
		build_etcd
		build_kwok
		build_cni
		build_images
		build_kube
		build_helm
	) >>"$blog" 2>&1; then
		tail -n 40 "$blog" >&3
		die "build failed (whole log: $blog)"
	fi
	if [ -d "$KUBE_CACHE/go/cache" ]; then
		# the 4+ GB build cache is of no use once every binary is stamped
		(go_env && go clean -cache) || true
		rm -rf "$KUBE_CACHE/go/cache"
	fi
	flock -u 9
	exec 9>&-
	log "build ready in $(since "$t0") s: $KBIN"
}
