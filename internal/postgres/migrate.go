package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
)

// migrationFiles holds the goose SQL migrations of the service, embedded in
// the binary so that `payments migrate up` and `payments serve` need no files
// on disk. Migrations are numbered and forward-only: a change to a database
// function is a new migration, never an edit of an applied one.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationStatus is one migration and whether it has been applied.
type MigrationStatus struct {
	Version int64
	Source  string
	Applied bool
}

func provider(db *sql.DB, logger *slog.Logger) (*goose.Provider, error) {
	// No goose locker: the callers hold the migration lock (withMigrationLock)
	// around everything goose does, its version table's creation included.
	var opts []goose.ProviderOption
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, opts...)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// MigrateUp applies every pending migration in order. It is safe to call on an
// up-to-date database and from several processes at once (nodes starting
// together): it holds a session-level advisory lock (pg_advisory_lock on a
// fixed key, on a dedicated connection) from before goose looks at the
// database until the last migration is committed, so one caller applies them
// and the others wait, then find nothing to do.
func MigrateUp(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	p, err := provider(db, logger)
	if err != nil {
		return err
	}
	return withMigrationLock(ctx, db, logger, func() error {
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("apply migrations: %w", err)
		}
		return nil
	})
}

// ListMigrations reports every embedded migration and whether it is applied.
// It takes the migration lock too, so it waits for a MigrateUp in progress
// and reports what that left.
func ListMigrations(ctx context.Context, db *sql.DB) ([]MigrationStatus, error) {
	p, err := provider(db, nil)
	if err != nil {
		return nil, err
	}
	var st []*goose.MigrationStatus
	err = withMigrationLock(ctx, db, nil, func() (err error) {
		st, err = p.Status(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationStatus{Version: s.Source.Version, Source: s.Source.Path, Applied: s.State == goose.StateApplied})
	}
	return out, nil
}
