package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/postgres"
)

// TestConsentVersionInTheSchema checks migration 00006: a consent inserted
// without a version is a v3.1 one (every consent before the migration was),
// the store reads the version back, only the versions Go names are allowed,
// and a consent's version never changes.
func TestConsentVersionInTheSchema(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	s, err := postgres.NewStore(l, postgres.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	insert := func(tx *gorm.DB, id, version string) error {
		if version == "" {
			return tx.Exec(`INSERT INTO consents (id, kind, client_id, status, created_at, status_updated_at, permissions)
				VALUES (?, 'account-access', 'tpp', 'AwaitingAuthorisation', now(), now(), 'ReadBalances')`, id).Error
		}
		return tx.Exec(`INSERT INTO consents (id, kind, api_version, client_id, status, created_at, status_updated_at, permissions)
			VALUES (?, 'account-access', ?, 'tpp', 'AwaitingAuthorisation', now(), now(), 'ReadBalances')`, id, version).Error
	}

	old := uuid.NewString()
	if err := insert(db, old, ""); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Consent(ctx, old); err != nil || c.Version != openbanking.V3_1 {
		t.Fatalf("Consent(inserted without a version) = %q, %v, want %q", c.Version, err, openbanking.V3_1)
	}
	v4 := uuid.NewString()
	if err := insert(db, v4, string(openbanking.V4_0)); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Consent(ctx, v4); err != nil || c.Version != openbanking.V4_0 {
		t.Fatalf("Consent(v4.0) = %q, %v, want %q", c.Version, err, openbanking.V4_0)
	}

	tests := []struct {
		name       string
		run        func(tx *gorm.DB) error
		constraint string
	}{
		{"unknown version", func(tx *gorm.DB) error { return insert(tx, uuid.NewString(), "3.0") }, "consents_api_version_check"},
		{"change the version", func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE consents SET api_version = '4.0' WHERE id = ?`, old).Error
		}, "consents_identity_fixed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := db.WithContext(ctx).Transaction(tc.run)
			var pg *pgconn.PgError
			if !errors.As(err, &pg) || pg.ConstraintName != tc.constraint {
				t.Fatalf("%s = %v, want a violation of %s", tc.name, err, tc.constraint)
			}
		})
	}
}
