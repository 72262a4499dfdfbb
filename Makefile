# shipshape: `make test` is the one command that checks everything (CI runs
# it through .ci/run); `make run` starts the example server.
#
# The repository is a Go workspace (go.work): the library at the root and
# the modules its consumers must not inherit (ratelimit/redisstore,
# examples, bench). Every target below covers all of them.
GO      ?= go
# Every package of every module of the workspace.
PKGS     = $(shell $(GO) list -m -f '{{.Dir}}/...')
MODDIRS  = $(shell $(GO) list -m -f '{{.Dir}}')
# Binaries the tests start for real, and the Debian packages that hold them.
# The deploy tests run the Dockerfile, compose.yaml and shipshape.service
# on podman (runc, catatonit for init: true, the dnsname plugin for the
# services' names) with images built from a debootstrap base.
# The metrics test scrapes the example server with a real Prometheus.
TEST_DEBS := redis-server:redis-server redis-cli:redis-tools nginx:nginx haproxy:haproxy openssl:openssl strace:strace systemd-analyze:systemd \
	podman:podman runc:runc catatonit:catatonit /usr/lib/cni/dnsname:golang-github-containernetworking-plugin-dnsname debootstrap:debootstrap \
	prometheus:prometheus
BENCH_DEBS := wrk:wrk

.PHONY: all run test deps bench-deps lint fmt vet staticcheck tidy unit bench

all: test

run:
	$(GO) run ./examples/server

## test: install missing test binaries, then gofmt, vet, staticcheck and the race-enabled suite
test: deps lint unit

unit:
	$(GO) test -race -shuffle=on -count=1 -timeout 20m $(PKGS)

lint: fmt tidy vet staticcheck

fmt:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# staticcheck is a tool of the bench module, so that consumers of the
# library never get it in their module graph; the workspace makes it
# available here.
staticcheck:
	$(GO) tool staticcheck $(PKGS)

# tidy fails when a go.mod or go.sum is not what `go mod tidy` would write.
tidy:
	@for d in $(MODDIRS); do (cd $$d && $(GO) mod tidy -diff) || { echo "go mod tidy needed in $$d"; exit 1; }; done
## deps: apt-get install what the tests need when it is missing (needs root or sudo)
deps:
	@$(call install_debs,$(TEST_DEBS))

## bench-deps: wrk, and bench/node's packages (npm ci) for the Node peers when node is installed
bench-deps:
	@$(call install_debs,$(BENCH_DEBS))
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  echo "bench-deps: node or npm not found: the report will leave the Node peers (bench/node) out; install Node.js 18 or later and npm for them"; \
	elif [ ! -d bench/node/node_modules ]; then \
	  echo "installing bench/node's packages (npm ci)"; npm ci --prefix bench/node --no-audit --no-fund; \
	fi

## bench: micro-benchmarks and the loopback load report, Go and Node servers (README "Performance")
bench: deps bench-deps
	$(GO) run ./bench/cmd/benchreport

# install_debs takes bin:package pairs and installs the packages whose binary
# is not found (bin may be an absolute path). Service auto-start is disabled during the install (policy-rc.d)
# so that installing nginx or redis-server does not occupy ports 80 or 6379.
define install_debs
missing=""; \
for pair in $(1); do \
  bin=$${pair%%:*}; pkg=$${pair##*:}; \
  if ! command -v $$bin >/dev/null 2>&1 && [ ! -x /usr/sbin/$$bin ] && [ ! -x /sbin/$$bin ]; then missing="$$missing $$pkg"; fi; \
done; \
if [ -n "$$missing" ]; then \
  echo "installing:$$missing"; \
  SUDO=""; if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' | $$SUDO tee /usr/sbin/policy-rc.d >/dev/null && $$SUDO chmod +x /usr/sbin/policy-rc.d && cleanup=1; fi; \
  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; rc=$$?; \
  if [ -n "$$cleanup" ]; then $$SUDO rm -f /usr/sbin/policy-rc.d; fi; \
  exit $$rc; \
fi
endef
