package main

import (
	"context"
	"log/slog"
	"time"
)

// Retention of the tables that grow with traffic: serve purges expired
// idempotency keys, and with PAYMENTS_DEV_AUTH=true the sandbox's expired
// tokens, codes, pushed requests, registrations and assertion ids, every
// purgeEvery, purgeBatch rows per statement.
const (
	purgeEvery = time.Minute
	purgeBatch = 1000
)

// startPurge runs purge at once and then every interval, until ctx ends or the
// returned function is called; that function waits for a running purge to
// stop, so the caller may close the database after it.
func startPurge(ctx context.Context, table string, purge func(context.Context, int) (int, error), every time.Duration, batch int, log *slog.Logger) func() error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			purgeAll(ctx, table, purge, batch, log)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() error {
		cancel()
		<-done
		return nil
	}
}

// purgeAll calls purge with batch until it deletes fewer than batch rows (all
// expired rows are gone), ctx ends or it fails, and logs the count: INFO when
// something was deleted, DEBUG otherwise, WARN on a failure (the next run
// tries again).
func purgeAll(ctx context.Context, table string, purge func(context.Context, int) (int, error), batch int, log *slog.Logger) {
	total := 0
	for ctx.Err() == nil {
		n, err := purge(ctx, batch)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				log.WarnContext(ctx, "retention purge failed", "table", table, "deleted", total, "error", err)
			}
			return
		}
		if n < batch {
			break
		}
	}
	level := slog.LevelDebug
	if total > 0 {
		level = slog.LevelInfo
	}
	log.Log(ctx, level, "retention purge", "table", table, "deleted", total)
}
