package main

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/obpay/payments/internal/testdb"
)

// TestEnsureDatabaseConcurrently starts several nodes' ensureDatabase at once
// on a database that does not exist: one creates it, and the others, whose
// CREATE DATABASE loses the race (duplicate_database, or unique_violation
// while both are in flight), succeed too.
func TestEnsureDatabaseConcurrently(t *testing.T) {
	base := testdb.ServerURL(t)
	name := "t_ensure_" + time.Now().Format("150405") + "_" + randomSuffix()
	dsn := testdb.WithDatabase(t, base, name)
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			t.Error(err)
			return
		}
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const nodes = 8
	start := make(chan struct{})
	errs := make(chan error, nodes)
	var wg sync.WaitGroup
	for i := 0; i < nodes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- ensureDatabase(ctx, dsn, log)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("ensureDatabase = %v", err)
		}
	}
}
