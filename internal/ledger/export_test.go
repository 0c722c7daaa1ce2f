package ledger

import (
	"context"

	"gorm.io/gorm"
)

// Translate exposes translate to the external tests.
var Translate = translate

// SetAfterDebit installs a hook that runs inside every transfer after the
// balances moved and before the transfer and entries are written, to simulate
// a failure in the middle of a transaction.
func SetAfterDebit(l *Ledger, f func(ctx context.Context, tx *gorm.DB) error) { l.afterDebit = f }
