//go:build unix

package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/obpay/payments/internal/embedpg"
)

// startEmbedded runs the embedded PostgreSQL for serve (DATABASE_URL
// unset) and returns the URL of the service's database on it and the
// function that stops it.
func startEmbedded(ctx context.Context, c config, log *slog.Logger) (string, func(), error) {
	cache, err := embedpg.DefaultCacheDir()
	if err != nil {
		return "", nil, fmt.Errorf("embedded PostgreSQL: no cache directory for a download: %w (set PAYMENTS_POSTGRES_BIN or DATABASE_URL)", err)
	}
	bin, err := embedpg.Resolve(ctx, c.PostgresBin, cache, nil, log)
	if err != nil {
		if c.PostgresBin != "" {
			return "", nil, fmt.Errorf("PAYMENTS_POSTGRES_BIN=%q: %w", c.PostgresBin, err)
		}
		return "", nil, fmt.Errorf("embedded PostgreSQL (DATABASE_URL is unset): %w", err)
	}
	srv, err := embedpg.Start(embedpg.Config{DataDir: c.DataDir, BinDir: bin, Log: log})
	if err != nil {
		return "", nil, fmt.Errorf("embedded PostgreSQL (DATABASE_URL is unset; PAYMENTS_DATA_DIR=%s): %w", c.DataDir, err)
	}
	log.InfoContext(ctx, "using the embedded PostgreSQL: for development and single-node evaluation; production sets DATABASE_URL",
		"data_dir", srv.DataDir(),
		"psql", fmt.Sprintf("psql 'host=%s user=postgres dbname=payments'", srv.SocketDir()),
		"external_server", "set DATABASE_URL=postgres://user:password@host:5432/payments")
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := srv.Stop(sctx); err != nil {
			log.Warn("embedded PostgreSQL", "err", err)
		}
	}
	return srv.URL("payments"), stop, nil
}
