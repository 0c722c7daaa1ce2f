package postgres_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/postgres"
	"github.com/obpay/payments/internal/testdb"
)

// newLedger returns a ledger on a fresh, migrated database and the database.
func newLedger(t testing.TB, opts ...postgres.Option) (*postgres.Ledger, *gorm.DB) {
	t.Helper()
	db := testdb.Open(t)
	l, err := postgres.NewLedger(db, opts...)
	if err != nil {
		t.Fatalf("ledger.New = %v", err)
	}
	return l, db
}

// money parses a decimal amount or fails the test.
func money(t testing.TB, s, currency string) models.Amount {
	t.Helper()
	a, err := models.ParseAmount(s, currency)
	if err != nil {
		t.Fatalf("ParseAmount(%q, %q) = %v", s, currency, err)
	}
	return a
}

func gbp(t testing.TB, s string) models.Amount { return money(t, s, "GBP") }

// openAccount opens a customer account with an opening balance (none when
// opening is "").
func openAccount(t testing.TB, l *postgres.Ledger, owner, currency, opening string) models.Account {
	t.Helper()
	p := ledger.OpenAccountParams{Owner: owner, Currency: currency, Nickname: owner + " " + currency}
	if opening != "" {
		a := money(t, opening, currency)
		p.Opening = &a
	}
	acc, err := l.OpenAccount(context.Background(), p)
	if err != nil {
		t.Fatalf("OpenAccount(%+v) = %v", p, err)
	}
	return acc
}

func balance(t testing.TB, l *postgres.Ledger, id models.AccountID) models.Amount {
	t.Helper()
	b, err := l.Balance(context.Background(), id)
	if err != nil {
		t.Fatalf("Balance(%s) = %v", id, err)
	}
	return b
}

// checkInvariants runs every whole-ledger check of DESIGN section 7 that can
// be observed from outside: Reconcile balanced with no drift, per-currency
// totals zero, no negative customer balance, every transfer with exactly its
// two matching entries, and entry balance_after chains consistent with the
// cached balances.
func checkInvariants(t testing.TB, l *postgres.Ledger, db *gorm.DB) ledger.Report {
	t.Helper()
	ctx := context.Background()
	rep, err := l.Reconcile(ctx)
	if err != nil {
		t.Fatalf("Reconcile = %v", err)
	}
	if !rep.Balanced || len(rep.Drift) != 0 {
		t.Errorf("Reconcile = %+v, want balanced without drift", rep)
	}
	for _, tot := range rep.Totals {
		if tot.Net.Minor != 0 {
			t.Errorf("total %s = %s, want 0", tot.Currency, tot.Net)
		}
	}
	var n int64
	if err := db.Raw(`SELECT count(*) FROM accounts WHERE kind = 'customer' AND balance < 0`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d customer accounts below zero", n)
	}
	if err := db.Raw(`SELECT count(*) FROM transfers t WHERE
		(SELECT count(*) FROM entries e WHERE e.transfer_id = t.id) <> 2
		OR NOT EXISTS (SELECT 1 FROM entries e WHERE e.transfer_id = t.id AND e.direction = 'debit'
			AND e.account_id = t.debit_account_id AND e.amount = t.amount AND e.currency = t.currency)
		OR NOT EXISTS (SELECT 1 FROM entries e WHERE e.transfer_id = t.id AND e.direction = 'credit'
			AND e.account_id = t.credit_account_id AND e.amount = t.amount AND e.currency = t.currency)`).
		Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d transfers without their two matching entries", n)
	}
	// Each entry's balance_after is the previous one plus or minus its amount,
	// and the last one is the cached balance.
	if err := db.Raw(`WITH chain AS (
			SELECT account_id, balance_after,
				balance_after - CASE WHEN direction = 'credit' THEN amount ELSE -amount END AS before,
				lag(balance_after, 1, 0::bigint) OVER (PARTITION BY account_id ORDER BY created_at, id) AS prev,
				row_number() OVER (PARTITION BY account_id ORDER BY created_at DESC, id DESC) AS from_end
			FROM entries)
		SELECT count(*) FROM chain c JOIN accounts a ON a.id = c.account_id
		WHERE c.before <> c.prev OR (c.from_end = 1 AND c.balance_after <> a.balance)`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d entries whose balance_after breaks the account's chain", n)
	}
	return rep
}

// fixedClock returns a clock that always says start.
func fixedClock(start time.Time) func() time.Time {
	return func() time.Time { return start }
}
