package postgres_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/postgres"
)

// TestPostingFunctionRefusesBeforeWriting calls the database function
// ledger_post directly (as the payment function does) with every input it
// must refuse, and checks the outcome, that PostingError maps it to the
// ledger's error, and that nothing was written.
func TestPostingFunctionRefusesBeforeWriting(t *testing.T) {
	l, db := newLedger(t)
	alice := openAccount(t, l, "alice", "GBP", "50.00")
	bob := openAccount(t, l, "bob", "GBP", "")
	euro := openAccount(t, l, "erin", "EUR", "")
	missing := uuid.NewString()
	var settlement string
	if err := db.Raw(`SELECT id::text FROM accounts WHERE kind = 'settlement' AND currency = 'GBP'`).Row().Scan(&settlement); err != nil {
		t.Fatalf("settlement account: %v", err)
	}
	// Overflow: the settlement account (which may go negative, here -50.00
	// after funding alice) cannot be debited by the largest amount.
	var before int64
	db.Raw(`SELECT count(*) FROM transfers`).Scan(&before)
	tests := []struct {
		name     string
		from, to string
		currency string
		amount   int64
		outcome  string
		want     error
	}{
		{"zero amount", string(alice.ID), string(bob.ID), "GBP", 0, "invalid_amount", ledger.ErrInvalidAmount},
		{"negative amount", string(alice.ID), string(bob.ID), "GBP", -1, "invalid_amount", ledger.ErrInvalidAmount},
		{"same account", string(alice.ID), string(alice.ID), "GBP", 1, "same_account", ledger.ErrSameAccount},
		{"unknown debit account", missing, string(bob.ID), "GBP", 1, "debit_account_not_found", ledger.ErrAccountNotFound},
		{"unknown credit account", string(alice.ID), missing, "GBP", 1, "credit_account_not_found", ledger.ErrAccountNotFound},
		{"other currency", string(alice.ID), string(euro.ID), "GBP", 1, "currency_mismatch", ledger.ErrCurrencyMismatch},
		{"amount in another currency", string(alice.ID), string(bob.ID), "EUR", 1, "currency_mismatch", ledger.ErrCurrencyMismatch},
		{"insufficient funds", string(alice.ID), string(bob.ID), "GBP", 5001, "insufficient_funds", ledger.ErrInsufficientFunds},
		{"overflow", settlement, string(bob.ID), "GBP", math.MaxInt64, "overflow", ledger.ErrOverflow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var outcome string
			var booked *time.Time
			if err := db.Raw(`SELECT outcome, booked_at FROM ledger_post(?, ?, ?, ?, ?, '', now())`,
				uuid.NewString(), tc.from, tc.to, tc.currency, tc.amount).Row().Scan(&outcome, &booked); err != nil {
				t.Fatalf("ledger_post: %v", err)
			}
			if outcome != tc.outcome || booked != nil {
				t.Errorf("outcome = %q, booked %v; want %q, none", outcome, booked, tc.outcome)
			}
			if err := postgres.PostingError(outcome); !errors.Is(err, tc.want) {
				t.Errorf("PostingError(%q) = %v, want %v", outcome, err, tc.want)
			}
			var transfers int64
			db.Raw(`SELECT count(*) FROM transfers`).Scan(&transfers)
			if transfers != before {
				t.Errorf("%d transfers after a refusal, want %d", transfers, before)
			}
		})
	}
	checkInvariants(t, l, db)

	if err := postgres.PostingError("posted"); err != nil {
		t.Errorf(`PostingError("posted") = %v`, err)
	}
	if err := postgres.PostingError("something new"); !errors.Is(err, ledger.ErrStorage) {
		t.Errorf("PostingError(unknown) = %v, want ErrStorage", err)
	}
}

// TestPostingFunctionEdges: the credit side's overflow check (the credited
// balance at the top of the int64 range) and the booking time of a posting
// whose clock is behind an account's latest entry.
func TestPostingFunctionEdges(t *testing.T) {
	l, db := newLedger(t)
	alice := openAccount(t, l, "alice", "GBP", "50.00")
	bob := openAccount(t, l, "bob", "GBP", "")
	var settlement string
	if err := db.Raw(`SELECT id::text FROM accounts WHERE kind = 'settlement' AND currency = 'GBP'`).Row().Scan(&settlement); err != nil {
		t.Fatalf("settlement account: %v", err)
	}
	post := func(from, to string, amount int64, now time.Time) (string, *time.Time) {
		t.Helper()
		var outcome string
		var booked *time.Time
		if err := db.Raw(`SELECT outcome, booked_at FROM ledger_post(?, ?, ?, 'GBP', ?, '', ?)`,
			uuid.NewString(), from, to, amount, now).Row().Scan(&outcome, &booked); err != nil {
			t.Fatalf("ledger_post: %v", err)
		}
		return outcome, booked
	}

	// The settlement account (at -50.00 after funding alice) may go down to
	// the bottom of the range: fund bob with all of it.
	const all = math.MaxInt64 - 5000 + 1
	if outcome, _ := post(settlement, string(bob.ID), all, time.Now()); outcome != "posted" {
		t.Fatalf("funding bob to the top: %q", outcome)
	}
	if outcome, _ := post(settlement, string(bob.ID), 1, time.Now()); outcome != "overflow" {
		t.Errorf("debiting past the bottom: %q, want overflow", outcome)
	}
	// bob is 4,999 below the top: crediting him 50.00 must overflow.
	if outcome, booked := post(string(alice.ID), string(bob.ID), 5000, time.Now()); outcome != "overflow" || booked != nil {
		t.Errorf("crediting past the top: %q, %v; want overflow and no booking", outcome, booked)
	}

	// Missing arguments are refused outright, not compared as NULL.
	var outcome string
	err := db.Raw(`SELECT outcome FROM ledger_post(?, ?, ?, NULL, 1, '', now())`,
		uuid.NewString(), string(alice.ID), string(bob.ID)).Row().Scan(&outcome)
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "22004" {
		t.Errorf("ledger_post with a NULL currency = %q, %v; want SQLSTATE 22004 (null_value_not_allowed)", outcome, err)
	}

	// A clock an hour behind bob's latest entry books at that entry's time.
	var latest time.Time
	if err := db.Raw(`SELECT max(created_at) FROM entries WHERE account_id = ?`, string(bob.ID)).Row().Scan(&latest); err != nil {
		t.Fatal(err)
	}
	outcome, booked := post(string(bob.ID), string(alice.ID), 1, latest.Add(-time.Hour))
	if outcome != "posted" || booked == nil || !booked.Equal(latest) {
		t.Errorf("posting with a clock behind: %q at %v, want posted at %v", outcome, booked, latest)
	}
}
