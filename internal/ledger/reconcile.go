package ledger

import "github.com/obpay/payments/internal/models"

// Report is the result of a reconciliation: every balance recomputed from
// its entries.
type Report struct {
	// Balanced is true when no account drifts, every currency nets to zero
	// over the cached balances and over the entries, and no customer balance
	// is negative.
	Balanced        bool
	AccountsChecked int
	Drift           []Drift // accounts whose cached balance differs from their entries; empty, never nil
	Totals          []Total // one per currency, sorted by code
}

// Drift is an account whose cached balance (Actual) differs from the sum of
// its entries (Expected).
type Drift struct {
	AccountID models.AccountID
	Expected  models.Amount
	Actual    models.Amount
}

// Total is the sum of all cached balances of one currency; it must be zero.
type Total struct {
	Currency string
	Net      models.Amount
}
