# The service's developer commands. `make run` and `make test` are the two
# commands of the quick start; everything they need comes from the Go module
# proxy.

GO        ?= go
PKGS      ?= ./...
BIN       ?= bin/payments
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X main.version=$(VERSION)

# Tests run under cmd/testenv: it uses TEST_DATABASE_URL and TEST_REDIS_URL
# when they are set (each test creates its own database on that server) and
# otherwise starts a PostgreSQL and a Redis for the run.
TESTENV   := $(GO) run ./cmd/testenv --

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
FUZZTIME    ?= 20s

.PHONY: run build test fuzz bench bench-security bench-jwt bench-validate generate lint clean

## run: the sandbox: API + ledger + sandbox authorization server on :8080, on the embedded PostgreSQL unless DATABASE_URL is set
run:
	@echo "building $(BIN) ..."
	@$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/payments
	@echo "running $(BIN) serve (the sandbox; Ctrl-C stops it)"
	@PAYMENTS_DEV_AUTH=$${PAYMENTS_DEV_AUTH:-true} PAYMENTS_LOG_FORMAT=$${PAYMENTS_LOG_FORMAT:-text} exec ./$(BIN) serve

## build: the payments binary in bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/payments

## test: every test with the race detector, integration included, against real PostgreSQL and Redis (started for the run unless TEST_DATABASE_URL / TEST_REDIS_URL name them)
test:
	$(TESTENV) $(GO) test -race -count=1 -timeout 20m $(PKGS)

## fuzz: a short run of each fuzz target over untrusted input
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./internal/security
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyProof$$' -fuzztime $(FUZZTIME) ./internal/security
	$(GO) test -run '^$$' -fuzz '^FuzzIntrospectionJSON$$' -fuzztime $(FUZZTIME) ./internal/security
	$(GO) test -run '^$$' -fuzz '^FuzzClaimsDecoders$$' -fuzztime $(FUZZTIME) ./internal/security
	$(GO) test -run '^$$' -fuzz '^FuzzParseAmount$$' -fuzztime $(FUZZTIME) ./internal/models
	$(GO) test -run '^$$' -fuzz '^FuzzValidateBody$$' -fuzztime $(FUZZTIME) ./internal/handlers
	$(GO) test -run '^$$' -fuzz '^FuzzValidateBodyV4$$' -fuzztime $(FUZZTIME) ./internal/handlers

## bench: every benchmark (DPoP verification, JWT access tokens, request validation, ledger) with allocations
bench: bench-security bench-jwt bench-validate bench-ledger

## bench-security: DPoP verification, full check against the raw signature, compared with benchstat
bench-security:
	$(GO) test -run '^$$' -bench '^BenchmarkVerify$$' -benchmem -benchtime 2000x -count 6 ./internal/security | tee bench-security.out
	$(GO) run $(BENCHSTAT) bench-security.out
	@awk -f mk/median.awk -f mk/bench-ratio.awk bench-security.out

## bench-jwt: a DPoP request carrying a JWT access token (seen first, and again) against the raw ES256 verification
bench-jwt:
	$(GO) test -run '^$$' -bench '^BenchmarkVerifyJWT$$' -benchmem -benchtime 3000x -count 6 ./internal/security | tee bench-jwt.out
	$(GO) run $(BENCHSTAT) bench-jwt.out
	@awk -f mk/median.awk -f mk/bench-jwt-ratio.awk bench-jwt.out

## bench-validate: one request body validation with 10, 1,000 and 10,000 unknown members (the cost grows linearly)
bench-validate:
	$(GO) test -run '^$$' -bench '^BenchmarkValidateBody$$' -benchmem -count 6 ./internal/handlers | tee bench-validate.out
	$(GO) run $(BENCHSTAT) bench-validate.out

## generate: regenerate the OpenAPI server interface and client (committed; a test checks they are current)
generate:
	$(GO) generate ./internal/obapi ./client/obapi ./internal/obapi4 ./client/obapi4

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

clean:
	rm -rf bin *.out *.prof

-include mk/*.mk
