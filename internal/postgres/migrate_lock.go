package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// migrationLockKey is the key of the session-level advisory lock that
// MigrateUp and ListMigrations hold. Advisory locks are per database, so the
// key only has to be fixed for this service's schema: it is "obpaymig" read
// as a big-endian 64-bit number.
const migrationLockKey int64 = 0x6f_62_70_61_79_6d_69_67

// migrationLockWait bounds how long a caller waits for another session (a
// node starting at the same time) to finish its migrations.
const migrationLockWait = 10 * time.Minute

// withMigrationLock runs fn while holding the migration lock: it takes one
// dedicated connection of db, waits there in pg_advisory_lock (at most
// migrationLockWait, or until ctx ends), runs fn and releases the lock. fn
// uses db's other connections, so while fn runs the pool may open one more
// connection than its limit of one (goose needs one besides the lock's).
//
// Everything goose does, creating its version table included, happens under
// the lock: of several nodes starting at once, one applies the migrations
// and the others find nothing left to do.
func withMigrationLock(ctx context.Context, db *sql.DB, logger *slog.Logger, fn func() error) (err error) {
	if db.Stats().MaxOpenConnections == 1 {
		db.SetMaxOpenConns(2)
		defer db.SetMaxOpenConns(1)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", migrationLockKey).Scan(&got); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	if !got {
		if logger != nil {
			logger.InfoContext(ctx, "waiting for another session to finish migrating the database",
				"lock_key", migrationLockKey, "max_wait", migrationLockWait.String())
		}
		wctx, cancel := context.WithTimeout(ctx, migrationLockWait)
		_, err := conn.ExecContext(wctx, "SELECT pg_advisory_lock($1)", migrationLockKey)
		timedOut := wctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err != nil {
			if timedOut {
				return fmt.Errorf("migration lock: still held by another session after %s (pg_locks with locktype 'advisory' shows its pid): %w", migrationLockWait, err)
			}
			return fmt.Errorf("migration lock: %w", err)
		}
	}
	defer func() {
		if uerr := releaseMigrationLock(conn); uerr != nil && err == nil {
			err = uerr
		}
	}()
	return fn()
}

// releaseMigrationLock releases the lock on conn. When that fails the
// connection is discarded instead of going back to the pool: its session
// ends, and with it the lock.
func releaseMigrationLock(conn *sql.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var released bool
	err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", migrationLockKey).Scan(&released)
	if err == nil && released {
		return nil
	}
	if err == nil {
		err = errors.New("the session did not hold it")
	}
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	return fmt.Errorf("release migration lock (connection discarded): %w", err)
}
