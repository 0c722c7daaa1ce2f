package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/obpay/payments/internal/postgres"
	"github.com/obpay/payments/internal/testdb"
)

// TestConcurrentMigrateUp starts several MigrateUp calls at once on one fresh
// database, each through its own pool as separate nodes would: all succeed,
// every migration is recorded once, and no advisory lock is left behind.
// Half the pools allow a single connection, which MigrateUp must cope with
// (the lock takes one) and leave as it was.
func TestConcurrentMigrateUp(t *testing.T) {
	dsn := testdb.NewEmpty(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const nodes = 6
	start := make(chan struct{})
	errs := make(chan error, nodes)
	var wg sync.WaitGroup
	for i := 0; i < nodes; i++ {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		single := i%2 == 0
		if single {
			db.SetMaxOpenConns(1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := postgres.MigrateUp(ctx, db, nil)
			if single && err == nil && db.Stats().MaxOpenConnections != 1 {
				err = fmt.Errorf("pool limit left at %d, want 1", db.Stats().MaxOpenConnections)
			}
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("MigrateUp = %v", err)
		}
	}

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	list, err := postgres.ListMigrations(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM goose_db_version WHERE version_id = $1 AND is_applied", m.Version).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 || !m.Applied {
			t.Errorf("migration %d (%s): recorded %d times, applied %v; want once", m.Version, m.Source, n, m.Applied)
		}
	}
	var held int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Errorf("%d advisory locks still held after the migrations", held)
	}
}

// TestMigrateUpWaitsForTheLock holds the migration lock on another session:
// MigrateUp applies nothing until it is released, then completes.
func TestMigrateUpWaitsForTheLock(t *testing.T) {
	dsn := testdb.NewEmpty(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	other, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	holder, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_lock($1)", postgres.MigrationLockKey); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	done := make(chan error, 1)
	go func() { done <- postgres.MigrateUp(ctx, db, nil) }()
	select {
	case err := <-done:
		t.Fatalf("MigrateUp returned %v while another session held the lock", err)
	case <-time.After(500 * time.Millisecond):
	}
	var tables int
	if err := other.QueryRowContext(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d tables created while another session held the lock", tables)
	}
	if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", postgres.MigrationLockKey); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("MigrateUp after the lock was released = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("MigrateUp still waiting 30s after the lock was released")
	}
}
