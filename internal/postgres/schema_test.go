package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/postgres"
)

// TestSchemaRefusesTampering proves the database itself keeps the invariants
// even against SQL that bypasses the package.
func TestSchemaRefusesTampering(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	a := openAccount(t, l, "alice", "GBP", "10.00")
	b := openAccount(t, l, "bob", "GBP", "")
	e := openAccount(t, l, "erin", "EUR", "")
	tr, err := l.Transfer(ctx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "1.00")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		sql        string
		args       []any
		constraint string
		want       error
	}{
		{"update an entry", `UPDATE entries SET amount = amount + 1`, nil, "ledger_append_only", ledger.ErrImmutable},
		{"delete an entry", `DELETE FROM entries`, nil, "ledger_append_only", ledger.ErrImmutable},
		{"truncate entries", `TRUNCATE entries`, nil, "ledger_append_only", ledger.ErrImmutable},
		{"update a transfer", `UPDATE transfers SET amount = 1 WHERE id = ?`, []any{string(tr.ID)}, "ledger_append_only", ledger.ErrImmutable},
		{"delete a transfer", `DELETE FROM transfers WHERE id = ?`, []any{string(tr.ID)}, "ledger_append_only", ledger.ErrImmutable},
		{"truncate transfers", `TRUNCATE transfers CASCADE`, nil, "ledger_append_only", ledger.ErrImmutable},
		{"delete an account", `DELETE FROM accounts WHERE id = ?`, []any{string(b.ID)}, "ledger_append_only", ledger.ErrImmutable},
		{"change an account's currency", `UPDATE accounts SET currency = 'EUR' WHERE id = ?`, []any{string(b.ID)}, "accounts_identity_fixed", ledger.ErrImmutable},
		{"change an account's owner", `UPDATE accounts SET owner = 'mallory' WHERE id = ?`, []any{string(b.ID)}, "accounts_identity_fixed", ledger.ErrImmutable},
		{"customer balance below zero", `UPDATE accounts SET balance = -1 WHERE id = ?`, []any{string(b.ID)}, "accounts_customer_balance_check", ledger.ErrInsufficientFunds},
		{"duplicate identification", `INSERT INTO accounts (owner, currency, kind, scheme_name, identification)
			SELECT 'x', 'GBP', 'customer', scheme_name, identification FROM accounts WHERE id = ?`, []any{string(a.ID)},
			"accounts_identification_key", ledger.ErrDuplicateIdentification},
		{"second settlement account", `INSERT INTO accounts (owner, currency, kind, scheme_name, identification)
			VALUES ('bank', 'GBP', 'settlement', 'UK.OBIE.SortCodeAccountNumber', '99999999999999')`, nil,
			"accounts_settlement_currency_key", ledger.ErrTxConflict},
		{"bad currency code", `INSERT INTO accounts (owner, currency, kind, scheme_name, identification)
			VALUES ('x', 'gbp', 'customer', 'UK.OBIE.SortCodeAccountNumber', '99999999999998')`, nil,
			"accounts_currency_check", ledger.ErrUnknownCurrency},
		{"zero transfer", `INSERT INTO transfers (debit_account_id, credit_account_id, currency, amount)
			VALUES (?, ?, 'GBP', 0)`, []any{string(a.ID), string(b.ID)}, "transfers_amount_check", ledger.ErrInvalidAmount},
		{"transfer to itself", `INSERT INTO transfers (debit_account_id, credit_account_id, currency, amount)
			VALUES (?, ?, 'GBP', 1)`, []any{string(a.ID), string(a.ID)}, "transfers_distinct_accounts_check", ledger.ErrSameAccount},
		{"transfer across currencies", `INSERT INTO transfers (debit_account_id, credit_account_id, currency, amount)
			VALUES (?, ?, 'GBP', 1)`, []any{string(a.ID), string(e.ID)}, "transfers_credit_account_fkey", ledger.ErrCurrencyMismatch},
		{"transfer without entries", `INSERT INTO transfers (debit_account_id, credit_account_id, currency, amount)
			VALUES (?, ?, 'GBP', 1)`, []any{string(a.ID), string(b.ID)}, "transfers_balanced", ledger.ErrUnbalanced},
		{"third entry on a transfer", `INSERT INTO entries (transfer_id, account_id, currency, direction, amount, balance_after, created_at)
			VALUES (?, ?, 'GBP', 'credit', 1, 0, now())`, []any{string(tr.ID), string(b.ID)},
			"entries_transfer_direction_key", ledger.ErrUnbalanced},
		{"entry with zero amount", `INSERT INTO entries (transfer_id, account_id, currency, direction, amount, balance_after, created_at)
			VALUES (?, ?, 'GBP', 'credit', 0, 0, now())`, []any{string(tr.ID), string(b.ID)},
			"entries_amount_check", ledger.ErrInvalidAmount},
		{"entry in the wrong currency", `WITH t AS (INSERT INTO transfers (debit_account_id, credit_account_id, currency, amount)
				VALUES (?, ?, 'GBP', 1) RETURNING id)
			INSERT INTO entries (transfer_id, account_id, currency, direction, amount, balance_after, created_at)
			SELECT t.id, ?, 'EUR', 'credit', 1, 0, now() FROM t`, []any{string(a.ID), string(b.ID), string(b.ID)},
			"entries_account_fkey", ledger.ErrCurrencyMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				return tx.Exec(tc.sql, tc.args...).Error
			})
			var pg *pgconn.PgError
			if !errors.As(err, &pg) || pg.ConstraintName != tc.constraint {
				t.Fatalf("%s = %v, want a violation of %s", tc.sql, err, tc.constraint)
			}
			if got := postgres.Translate(ctx, err); !errors.Is(got, tc.want) {
				t.Errorf("translate(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
	// Nothing changed: the same two transfers (opening and the one above).
	var n int64
	db.Raw(`SELECT count(*) FROM transfers`).Scan(&n)
	if n != 2 {
		t.Errorf("%d transfers, want 2", n)
	}
	checkInvariants(t, l, db)
}

func TestTranslate(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want error
	}{
		{"nil", ctx, nil, nil},
		{"ledger error unchanged", ctx, ledger.ErrSameAccount, ledger.ErrSameAccount},
		{"serialization failure", ctx, &pgconn.PgError{Code: "40001"}, ledger.ErrTxConflict},
		{"deadlock", ctx, &pgconn.PgError{Code: "40P01"}, ledger.ErrTxConflict},
		{"named check", ctx, &pgconn.PgError{Code: "23514", ConstraintName: "accounts_customer_balance_check"}, ledger.ErrInsufficientFunds},
		{"unknown constraint", ctx, &pgconn.PgError{Code: "23514", ConstraintName: "other"}, ledger.ErrStorage},
		{"record not found", ctx, gorm.ErrRecordNotFound, ledger.ErrStorage},
		{"any other error", ctx, errors.New("connection reset"), ledger.ErrStorage},
		{"cancelled context", cancelled, errors.New("conn closed"), context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := postgres.Translate(tc.ctx, tc.err)
			if !errors.Is(got, tc.want) || (tc.want == nil) != (got == nil) {
				t.Fatalf("translate(%v) = %v, want %v", tc.err, got, tc.want)
			}
			var pg *pgconn.PgError
			if errors.As(got, &pg) || (got != nil && errors.Is(got, gorm.ErrRecordNotFound)) {
				t.Errorf("translate(%v) = %v lets a driver error escape", tc.err, got)
			}
		})
	}
}
