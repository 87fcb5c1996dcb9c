# sipbridge build and test entry points. `make test` is THE test command:
# the README documents it and .ci/run calls it.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
PKGS      := ./...
# Real SIP peers the integration tests drive (Debian packages).
PEER_PKGS := sip-tester baresip sox espeak-ng kamailio

.PHONY: all build run test deps vet lint tidy-check unit fuzz bench load clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/sipbridge ./cmd/sipbridge

run:
	$(GO) run ./cmd/sipbridge

# Install the SIP peers when missing (apt-get; root or sudo).
deps:
	@if ! command -v sipp >/dev/null || ! command -v baresip >/dev/null || ! command -v sox >/dev/null || ! command -v espeak-ng >/dev/null || ! command -v kamailio >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		echo "installing $(PEER_PKGS) with apt-get"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(PEER_PKGS) >/dev/null; \
	fi

vet:
	$(GO) vet $(PKGS)

# staticcheck at a pinned version, fetched through the module proxy (no
# install step; cached after the first run).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) run $(STATICCHECK) $(PKGS)

# go.mod and go.sum must be exactly what `go mod tidy` writes.
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }


# The whole suite: unit, fuzz seed corpora, integration through the real
# binary with real SIP peers (which must be present: they are not skipped).
test: deps vet tidy-check lint
	SIPBRIDGE_REQUIRE_PEERS=1 $(GO) test -race -count=1 -timeout 20m $(PKGS)

unit:
	$(GO) test -race -count=1 -short $(PKGS)

# Short coverage-guided fuzzing of every network parser.
FUZZTIME ?= 20s
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' . | while read f; do \
		d=$$(dirname $$f); for fn in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/func //'); do \
			echo "== $$d $$fn"; $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$d || exit 1; \
		done; done

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin
