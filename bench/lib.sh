# Shared helpers of the bench scripts: where things go, and how peers are
# built (per ../shared/docs/PEERS.md: from the Go module proxy, into a cache
# dir outside the tree, never committed).
set -euo pipefail
BENCH_DIR="${MAMORI_BENCH_DIR:-/tmp/mamori-bench}"
PEER_BIN="$BENCH_DIR/peers/bin"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$BENCH_DIR" "$PEER_BIN"

log() { printf '== %s\n' "$*" >&2; }

# build_mamori builds the binary under test the way `make build` does: with
# the ISA-L gzip inflater (scripts/isal.sh installs Debian's libisal-dev when
# root and missing), unless MAMORI_BENCH_ISAL=0 asks for the pure-Go build.
build_mamori() {
	(cd "$REPO_ROOT" && make -s build ${MAMORI_BENCH_ISAL:+ISAL=$MAMORI_BENCH_ISAL} >/dev/null 2>&1 && cp bin/mamori "$BENCH_DIR/mamori")
	log "mamori gzip inflater: $("$BENCH_DIR/mamori" --version | sed -n 's/.*gzip: \([a-z]*\).*/\1/p')"
	echo "$BENCH_DIR/mamori"
}

# wrapper_build NAME PKG VERSION [env...]: builds a peer through a wrapper
# module, for tools whose own `go install` trips over versions the proxy refuses.
wrapper_build() {
	local name=$1 pkg=$2 ver=$3; shift 3
	[ -x "$PEER_BIN/$name" ] && return
	log "building $name $ver (first time only; minutes)"
	local w="$BENCH_DIR/peers/wrap/$name"
	rm -rf "$w" && mkdir -p "$w"
	(
		cd "$w"
		export GOFLAGS=-mod=mod "$@"
		go mod init "wrap/$name" >/dev/null 2>&1
		if [ "$name" = syft ] || [ "$name" = grype ]; then
			go mod edit -replace github.com/google/pprof=github.com/google/pprof@v0.0.0-20250403155104-27863c87afa6
			go mod edit -replace github.com/docker/cli=github.com/docker/cli@v29.9.3+incompatible
			go mod edit -replace github.com/github/go-spdx/v2=github.com/github/go-spdx/v2@v2.7.0
		fi
		CGO_ENABLED=${CGO_ENABLED:-0} go get -tool "$pkg@$ver" >/dev/null
		CGO_ENABLED=${CGO_ENABLED:-0} go build -trimpath -o "$PEER_BIN/$name" "$pkg"
	)
}

peer_syft() { wrapper_build syft github.com/anchore/syft/cmd/syft v1.57.0; echo "$PEER_BIN/syft"; }
peer_grype() { wrapper_build grype github.com/anchore/grype/cmd/grype v0.121.2; echo "$PEER_BIN/grype"; }
peer_trivy() { wrapper_build trivy github.com/aquasecurity/trivy/cmd/trivy v0.74.0 GOEXPERIMENT=jsonv2; echo "$PEER_BIN/trivy"; }
peer_dockle() { wrapper_build dockle github.com/goodwithtech/dockle/cmd/dockle v0.4.15; echo "$PEER_BIN/dockle"; }
peer_gitleaks() {
	if [ ! -x "$PEER_BIN/gitleaks" ]; then
		log "building gitleaks v8.30.1"
		GOBIN="$PEER_BIN" go install github.com/zricethezav/gitleaks/v8@v8.30.1
	fi
	echo "$PEER_BIN/gitleaks"
}
peer_osv_scanner() {
	if [ ! -x "$PEER_BIN/osv-scanner" ]; then
		log "building osv-scanner v2.5.0"
		GOBIN="$PEER_BIN" go install github.com/google/osv-scanner/v2/cmd/osv-scanner@v2.5.0
	fi
	echo "$PEER_BIN/osv-scanner"
}

# measure LABEL CMD...: runs CMD once, prints "LABEL wall_seconds max_rss_kb"
# (GNU time), with the command's output to $BENCH_DIR/LABEL.out.
measure() {
	local label=$1; shift
	local tf="$BENCH_DIR/$label.time"
	/usr/bin/time -f '%e %M' -o "$tf" "$@" >"$BENCH_DIR/$label.out" 2>"$BENCH_DIR/$label.err" || {
		log "$label failed: $(tail -3 "$BENCH_DIR/$label.err")"
	}
	echo "$label $(cat "$tf" | tail -1)"
}

ensure_time() {
	[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
}
