# mamori — the two commands of README.md, and a few more for developers.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build demo test fuzz bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/mamori ./cmd/mamori

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
