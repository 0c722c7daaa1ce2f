# Ledger targets, included by the top-level Makefile.

# The Postgres server both benchmarks run on (any database on it; scratch
# databases are created and dropped).
LEDGER_BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
# pgbench seconds per client count, and go test -benchtime per ledger case.
LEDGER_BENCH_DURATION  ?= 10s
LEDGER_BENCH_BENCHTIME ?= 3s

.PHONY: bench-ledger

## bench-ledger: ledger transfers/s at 1, 8, 32 workers (spread and hot account) next to pgbench tpcb-like, with the ratio
bench-ledger:
	$(GO) run ./cmd/benchledger -server '$(LEDGER_BENCH_DATABASE_URL)' -clients 1,8,32 \
		-duration $(LEDGER_BENCH_DURATION) -benchtime $(LEDGER_BENCH_BENCHTIME)
