# sipbridge build and test entry points. `make test` is THE test command:
# the README documents it and .ci/run calls it.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
PKGS      := ./...
# Real SIP peers the integration tests drive (Debian packages).
PEER_PKGS := sip-tester baresip sox espeak-ng kamailio
# prompts/generate.sh needs espeak-ng and sox too.

.PHONY: all build run test deps vet lint tidy-check unit fuzz fuzz-long hostile hostile-full bench load clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/sipbridge ./cmd/sipbridge

# Builds, then execs the binary in place of the recipe's shell, so the
# server is make's direct child and a Ctrl-C (SIGINT to the terminal's
# process group) reaches it; send SIGTERM (drain) to the sipbridge process
# itself. `go run` would not do: a signal sent to it does not reach the
# server it started. Pass flags with ARGS, e.g. make run ARGS="-config configs/local.yaml".
ARGS ?=
run: build
	exec ./bin/sipbridge $(ARGS)

# Install the SIP peers and the deployment checkers when missing (apt-get;
# root or sudo): systemd-analyze verifies deploy/systemd, promtool tests
# deploy/prometheus. promtool is taken out of Debian's prometheus package
# rather than installing it, which would also start a Prometheus server on
# :9090, the port of sipbridge's admin endpoint.
PROMTOOL_DIR ?= /usr/local/bin
deps:
	@if ! command -v sipp >/dev/null || ! command -v baresip >/dev/null || ! command -v sox >/dev/null || ! command -v espeak-ng >/dev/null || ! command -v kamailio >/dev/null || ! command -v systemd-analyze >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		echo "installing $(PEER_PKGS) systemd with apt-get"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(PEER_PKGS) systemd >/dev/null; \
	fi
	@if ! command -v promtool >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		echo "installing promtool (from Debian's prometheus package) into $(PROMTOOL_DIR)"; \
		tmp=$$(mktemp -d) && chmod 755 $$tmp && cd $$tmp && \
		{ apt-get download prometheus >/dev/null 2>&1 || { $$SUDO apt-get update -qq && apt-get download prometheus >/dev/null; }; } && \
		dpkg-deb -x prometheus_*.deb x && $$SUDO install -m 0755 x/usr/bin/promtool $(PROMTOOL_DIR)/promtool; \
		rc=$$?; cd / && rm -rf $$tmp; exit $$rc; \
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

# Coverage-guided fuzzing of every network parser, FUZZTIME per target
# (FUZZ: a regexp choosing targets by name). Not part of `make test`, which
# replays the seeds and testdata/fuzz corpora only. A crasher is written to
# testdata/fuzz/<Target>/ in its package: fix the bug and commit the file,
# it is a regression seed from then on.
FUZZTIME ?= 20s
FUZZ     ?= .
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read f; do \
		d=$$(dirname $$f); for fn in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/func //' | grep -E '$(FUZZ)'); do \
			echo "== $$d $$fn ($(FUZZTIME))"; $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) ./$$d || exit 1; \
		done; done

# The hostile-traffic run (issue 10): every fuzz target for FUZZTIME_LONG.
FUZZTIME_LONG ?= 60s
fuzz-long:
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME_LONG)

# Hostile traffic through the binary (floods, hijack, forged logins, TCP
# limits, malformed input), each with a legitimate call during the attack;
# also part of `make test`.
hostile:
	$(GO) test -race -count=1 -v -run 'TestHostile' ./integration/

# The issue's un-ACKed flood at full size: 300 INVITEs at 100/s against
# max_calls 50, the default per-source cap and ack_timeout 32 s (~60 s).
hostile-full:
	SIPBRIDGE_HOSTILE_FULL=1 $(GO) test -count=1 -v -run 'TestHostileUnACKedInviteFlood' ./integration/

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin
