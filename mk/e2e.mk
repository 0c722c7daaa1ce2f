# End-to-end performance targets, included by the top-level Makefile.
# docs/performance.md explains the figures and the targets.

# The Postgres server the run uses (any database on it; the scratch databases
# e2e_bench_payments and e2e_bench_pgbench are created and dropped).
E2E_BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
# Length of each measured window, pgbench -T, and where profiles go.
E2E_DURATION         ?= 10s
E2E_PGBENCH_DURATION ?= 20s
E2E_PROFILE_DIR      ?= bin/profiles
E2E_FLAGS            ?=

.PHONY: bench-e2e profile-e2e

## bench-e2e: DPoP reads vs the ES256 signature floor and the read floor (8, 32) and payments vs pgbench tpcb-like (8), with ratios, p99, status counts, drift check
bench-e2e: build
	$(GO) build -o bin/loadgen ./cmd/loadgen
	bin/loadgen -server '$(E2E_BENCH_DATABASE_URL)' -payments $(BIN) -pgbench /usr/bin/pgbench \
		-duration $(E2E_DURATION) -pgbench-duration $(E2E_PGBENCH_DURATION) $(E2E_FLAGS)
	@echo
	@echo "DPoP check vs raw signature verification (internal/security BenchmarkVerify):"
	@$(GO) test -run '^$$' -bench '^BenchmarkVerify$$' -benchtime 2000x -count 3 ./internal/security > bench-security-e2e.out
	@awk -f mk/median.awk -f mk/bench-ratio.awk bench-security-e2e.out

## profile-e2e: bench-e2e's loads once more with CPU and allocation profiles of the server in $(E2E_PROFILE_DIR)/ (go tool pprof -top bin/payments bin/profiles/payments.cpu.pprof)
profile-e2e: build
	$(GO) build -o bin/loadgen ./cmd/loadgen
	bin/loadgen -server '$(E2E_BENCH_DATABASE_URL)' -payments $(BIN) -pgbench '' -concurrency 8 \
		-duration 5s -profile-dir $(E2E_PROFILE_DIR) $(E2E_FLAGS)
