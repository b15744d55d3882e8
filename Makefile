# A thin Makefile: each target is one documented command.
STATICCHECK_VERSION := v0.8.2
GOBIN := $(shell go env GOPATH)/bin

.PHONY: run test deps lint cross bench-quick bench

# Run the hub on its in-memory default (:8080).
run:
	go run ./cmd/squall

# The whole test suite, race detector on; installs what a fresh machine lacks.
test: deps
	go test -race -count=1 ./...
	# Allocation counts and stack sizes are meaningless under the race
	# detector: these two tests run without it.
	go test -count=1 -run 'Allocations|IdleStreamStacks' ./actors/ ./httpedge/

deps:
	./scripts/deps.sh

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1)
	go vet ./...
	test -x $(GOBIN)/staticcheck || GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...

# The binary and the library build on every OS and both 64-bit
# architectures (bench/ is Linux-only: it drives processes with Pdeathsig).
cross:
	for os in linux darwin windows; do for arch in amd64 arm64; do \
		echo "cross: $$os/$$arch"; \
		GOOS=$$os GOARCH=$$arch go build -o /dev/null $$(go list ./... | grep -v /bench) || exit 1; \
	done; done

# The bench suite in quick mode (seconds): checks it works, not how fast.
bench-quick:
	go run ./bench -quick

# The full bench (minutes; see bench/README.md).
bench:
	go run ./bench
