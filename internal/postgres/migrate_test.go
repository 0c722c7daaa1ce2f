package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/obpay/payments/internal/postgres"
	"github.com/obpay/payments/internal/testdb"
)

func TestEveryMigrationApplies(t *testing.T) {
	dsn := testdb.New(t) // New applies every migration
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	list, err := postgres.ListMigrations(ctx, db)
	if err != nil {
		t.Fatalf("List = %v", err)
	}
	if len(list) == 0 {
		t.Fatal("List returned no migrations")
	}
	for _, m := range list {
		if !m.Applied {
			t.Errorf("migration %d (%s) not applied", m.Version, m.Source)
		}
	}
	// Up again is a no-op on an up-to-date database.
	if err := postgres.MigrateUp(ctx, db, nil); err != nil {
		t.Fatalf("second Up = %v", err)
	}
}
