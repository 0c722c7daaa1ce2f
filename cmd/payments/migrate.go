package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/obpay/payments/internal/postgres"
)

func migrateCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if wantsHelp(args) {
		fmt.Fprintln(stdout, "usage: payments migrate up|status   (database from DATABASE_URL)")
		return errHelp
	}
	if len(args) != 1 || (args[0] != "up" && args[0] != "status") {
		return fmt.Errorf("%w: payments migrate up|status", errUsage)
	}
	c, err := loadMigrateConfig(getenv)
	if err != nil {
		return err
	}
	if c.DatabaseURL == "" {
		return errors.New("DATABASE_URL is unset: migrate works on an external PostgreSQL (serve migrates its embedded one itself when it starts)")
	}
	log := newLogger(c, stderr)
	if args[0] == "up" {
		if err := ensureDatabase(ctx, c.DatabaseURL, log); err != nil {
			return err
		}
	}
	db, err := sql.Open("pgx", c.DatabaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	if args[0] == "up" {
		if err := postgres.MigrateUp(ctx, db, log); err != nil {
			return err
		}
	}
	list, err := postgres.ListMigrations(ctx, db)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tMIGRATION")
	for _, m := range list {
		state := "pending"
		if m.Applied {
			state = "applied"
		}
		fmt.Fprintf(tw, "%05d\t%s\t%s\n", m.Version, state, m.Source)
	}
	return tw.Flush()
}

// loadMigrateConfig validates the settings migrate needs; the introspection
// settings that serve requires do not matter here.
func loadMigrateConfig(getenv func(string) string) (config, error) {
	return loadConfig(func(k string) string {
		if k == "PAYMENTS_DEV_AUTH" && getenv("PAYMENTS_INTROSPECTION_URL") == "" {
			return "true"
		}
		return getenv(k)
	})
}
