package ledger_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/obpay/payments/internal/ledger"
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
			if err := ledger.PostingError(outcome); !errors.Is(err, tc.want) {
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

	if err := ledger.PostingError("posted"); err != nil {
		t.Errorf(`PostingError("posted") = %v`, err)
	}
	if err := ledger.PostingError("something new"); !errors.Is(err, ledger.ErrStorage) {
		t.Errorf("PostingError(unknown) = %v, want ErrStorage", err)
	}
}
