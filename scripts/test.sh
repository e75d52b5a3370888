#!/usr/bin/env bash
# The project's whole test run, as CI runs it (.ci/run calls `make test`,
# which calls this). On a fresh Debian machine it installs what the tests
# need (real clamd, containerd, PostgreSQL, Chromium ...), then runs go vet,
# staticcheck, the unit tests, the race detector on the concurrent packages
# and the service-backed tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# Debian packages the tests use. Each service test skips with a message
# when its package is absent, so a developer without root still gets a run;
# CI is root and installs them.
APT_PACKAGES=(
	clamav clamav-daemon            # real clamd for internal/malware
	libyara-dev pkg-config yara     # libyara for the -tags yara build of internal/malware
	libisal-dev                     # ISA-L gzip inflater of the -tags isal build (internal/inflate)
	containerd runc docker.io       # real daemons for internal/image and the runtime e2e (internal/testctr)
	busybox-static                  # the runtime e2e images (internal/testctr builds them from it)
	tar zlib1g                      # in-use e2e (internal/inuse/e2e): images built from the machine's tar, its libraries and zlib's
	openssl curl iproute2           # the local Kubernetes cluster (scripts/cluster.sh): certificates, probes, ss; openssl and libssl3 for internal/scan TestPackageFiles
	postgresql                      # the store's second engine
	chromium                        # the console's browser tests
	poppler-utils                   # pdftotext and pdftoppm check the compliance report PDF (internal/compliance)
	rpm ruby php-cli php-composer-semver python3-packaging  # reference implementations the version tests compare against
	python3 perl                    # with ruby: the distribution-owned files of internal/scan's TestDistributionOwnedSecrets
	gcc binutils time               # cargo-auditable fixtures (objcopy), GNU time for RSS measurements
	nftables iproute2               # host firewall tests: network namespaces, `nft list` to check
	clang llvm libbpf-dev bpftool   # regenerate the runtime sensor's BPF objects and check them (scripts/bpf-generate.sh)
	acl libcap2-bin e2fsprogs       # host integrity tests: setfacl, getcap, mkfs.ext4 for a loop file system
	rsyslog openssh-server openssh-client sshpass sudo systemd  # log inspection e2e: real rsyslogd, sshd, sudo and journald through /dev/log
)

install_packages() {
	local missing=()
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		return
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "not root: cannot install ${missing[*]}; their tests will skip"
		return
	fi
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# clamav-freshclam would try the internet on install; the tests ship their own signatures.
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	systemctl disable --now clamav-freshclam clamav-daemon containerd postgresql >/dev/null 2>&1 || true
	# sshd and rsyslogd of packages installed just now are not left running (the e2e starts its own).
	for svc in ssh:openssh-server rsyslog:rsyslog; do
		if [[ " ${missing[*]} " == *" ${svc#*:} "* ]]; then systemctl disable --now "${svc%%:*}" >/dev/null 2>&1 || true; fi
	done
}

STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.1, builds with Go 1.26

install_staticcheck() {
	if ! command -v staticcheck >/dev/null 2>&1 && [ ! -x "$(go env GOPATH)/bin/staticcheck" ]; then
		log "go install staticcheck@$STATICCHECK_VERSION"
		go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	fi
	export PATH="$PATH:$(go env GOPATH)/bin"
}

install_packages
install_staticcheck

# Real components, really started, by the tests themselves.
export MAMORI_TEST_CLAMD=1 MAMORI_TEST_CONTAINERD=1 MAMORI_TEST_DOCKER=1 MAMORI_TEST_POSTGRES=1 MAMORI_TEST_BROWSER=1 MAMORI_TEST_SLOW=1
# The must-show latency tests at 100,000 vulnerability rows (store on both engines, console page).
export MAMORI_TEST_LOAD=1 MAMORI_TEST_PERF=1
# Ruby, Python and Perl as dpkg installed them (apt list above): a skip would hide a regression.
export MAMORI_TEST_DISTRO=1

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '/testdata/'))
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted (run gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi

log "go vet"
go vet ./...

log "staticcheck"
# -tags yara: the libyara engine is the build CI ships tests for; its helpers are unused without the tag.
staticcheck -tags yara,isal ./...
staticcheck -checks inherit,-U1000 ./internal/inflate/...  # the pure-Go build of the inflater
staticcheck -checks inherit,-U1000 ./internal/malware/...  # the untagged build: yara-only helpers are unused there

log "BPF objects match their C source"
# The committed bpf2go outputs must be what bpf/sensor.bpf.c compiles to
# (skipped, said so, without clang or with another clang major version).
./scripts/bpf-generate.sh --check

log "go test"
go test -count=1 -timeout 15m ./...

log "go test -tags yara (libyara engine)"
go test -count=1 -tags yara -timeout 10m ./internal/malware/...

log "go test -tags isal (ISA-L gzip: the inflater and the layer readers on it)"
MAMORI_TEST_ISAL=1 go test -count=1 -tags isal -timeout 10m ./internal/inflate/... ./internal/image/... ./internal/analyzer/... ./internal/hostile/...

log "go test -race (concurrent packages)"
# Latency budgets are for real builds, not the 5-10x slower race build.
MAMORI_TEST_LOAD= MAMORI_TEST_PERF= go test -count=1 -race -timeout 15m ./internal/analyzer/... ./internal/cache/... ./internal/scan/... ./internal/progress/... ./internal/image/... \
	./internal/store/... ./internal/server/... ./internal/auth/... ./internal/match/... ./internal/malware/... ./internal/host/integrity/... ./internal/policy/... \
	./internal/host/loginspect/...

kube_e2e= # the Kubernetes e2e needs root (kubelet, containerd); it skips without
if [ "$(id -u)" = 0 ]; then
	log "kube binaries for the local cluster (scripts/cluster.sh build; cached by version in /var/cache/mamori/kube)"
	t0=$(date +%s)
	./scripts/cluster.sh build
	echo "cluster build: $(($(date +%s) - t0)) s"
	kube_e2e=1
fi

log "privileged e2e (serial)"
# Tests that need root and change kernel state (network namespaces, mounts,
# nftables tables, fanotify marks) run one package at a time; each restores
# what it changes.
MAMORI_TEST_HOST=1 go test -p 1 -count=1 -timeout 10m ./internal/testnet/... ./internal/host/firewall/... ./internal/host/integrity/...
# Host anti-malware and app control: fanotify marks only on tmpfs/procfs mounts the tests create.
MAMORI_TEST_HOST=1 go test -p 1 -count=1 -timeout 5m ./internal/host/fanotify/... ./internal/host/hostfs/... ./internal/host/antimalware/... ./internal/host/appcontrol/...
# Log inspection: rsyslogd, sshd, sudo and journald started by the tests, in mount namespaces they own.
MAMORI_TEST_HOST=1 go test -p 1 -count=1 -timeout 3m -run E2E ./internal/host/loginspect/
# Host protection through the agent (issue 12): a real mamori server and agent, every host module
# (marks on the tests' mounts, firewall rules in their network namespace), the standalone defaults
# in a mount and network namespace of the test's.
MAMORI_TEST_HOST=1 go test -p 1 -count=1 -timeout 6m -run 'E2E|Standalone' ./internal/agent/modules/host/
# Runtime e2e: real containerd (+ dockerd) under temp dirs, started by internal/testctr.
MAMORI_TEST_RUNTIME=1 MAMORI_TEST_DOCKER=1 go test -p 1 -count=1 -timeout 8m ./internal/testctr/... ./internal/runtime/container/... ./internal/runtime/drift/... ./internal/runtime/respond/...
# The node agent: every built-in rule fired in real containerd containers, isolate/terminate,
# a benign workload, storms, a containerd restart and a real mamori server's outage (internal/agent).
MAMORI_TEST_RUNTIME=1 go test -p 1 -count=1 -timeout 8m ./internal/agent/...
# In use at run time (issue 15): containers' loads through the agent to a real server, findings marked (internal/inuse/e2e).
MAMORI_TEST_RUNTIME=1 go test -p 1 -count=1 -timeout 5m ./internal/inuse/e2e/
# Runtime sensor: eBPF programs and the CN_PROC + fanotify fallback against real processes (skips where BPF is refused).
MAMORI_TEST_RUNTIME=1 go test -p 1 -count=1 -timeout 3m ./internal/runtime/sensor/...
# Kubernetes e2e: each test binary starts the local cluster (scripts/cluster.sh
# up, on its own ports and run dir) and takes it down, checking nothing is left.
# internal/cluster: the cluster component's e2e (admission matrix, compliance,
# failure behaviour, certificate rotation, the Helm chart's server-side dry run).
MAMORI_TEST_KUBE=$kube_e2e go test -p 1 -count=1 -timeout 20m ./internal/testkube/... ./internal/cluster/...
# internal/compliance/e2e: the compliance report before and after ten deliberate
# violations on the local cluster with a real mamori agent on its node (each
# flipping exactly its controls; ~35 s after the cluster is up), the PDF
# read back with pdftotext and rendered with pdftoppm, the HTML in Chromium.
MAMORI_TEST_KUBE=$kube_e2e go test -p 1 -count=1 -timeout 25m ./internal/compliance/e2e/
