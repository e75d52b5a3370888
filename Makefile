# mamori — the two commands of README.md, and a few more for developers.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build demo test fuzz bench clean cluster-build cluster-up cluster-down cluster-status

# With ISA-L's headers (Debian: libisal-dev, which scripts/isal.sh installs
# when run as root), gzip layers are inflated by ISA-L, about 2.4x faster
# than pure Go (internal/inflate). The binary loads libisal.so.2 at run time
# and falls back to pure Go where it is missing. ISAL=0 forces a static
# pure-Go build, ISAL=1 the ISA-L one.
build:
	@isal="$(ISAL)"; [ -n "$$isal" ] || isal=$$(./scripts/isal.sh); \
	if [ "$$isal" = 1 ]; then set -x; CGO_ENABLED=1 $(GO) build -trimpath -tags isal -ldflags '$(LDFLAGS)' -o bin/mamori ./cmd/mamori; \
	else set -x; CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/mamori ./cmd/mamori; fi

# The main job on the embedded default: no external service needed.
demo: build
	./scripts/demo.sh

# Everything CI runs (.ci/run calls this).
test:
	./scripts/test.sh

# Each parser's fuzz target for FUZZTIME (default 20s).
FUZZTIME ?= 20s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin

# The local Kubernetes cluster (README "Local Kubernetes cluster"): kube
# binaries built once and cached outside the clone, then started on loopback
# with one real node, kwok nodes and mamori server. Root for up/down.
cluster-build:
	./scripts/cluster.sh build

cluster-up:
	./scripts/cluster.sh up

cluster-down:
	./scripts/cluster.sh down

cluster-status:
	./scripts/cluster.sh status
