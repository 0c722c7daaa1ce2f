package postgres_test

import (
	"context"
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
)

// TestTransferTxInsufficientFundsLeavesTxUsable checks the promise callers
// rely on to reject a payment without a savepoint: after
// ErrInsufficientFunds the transaction holds nothing of the refused transfer
// and can go on and commit other work.
func TestTransferTxInsufficientFundsLeavesTxUsable(t *testing.T) {
	l, db := newLedger(t)
	a := openAccount(t, l, "alice", "GBP", "50.00")
	b := openAccount(t, l, "bob", "GBP", "")
	ctx := context.Background()
	err := l.RunInTx(ctx, func(tx *gorm.DB) error {
		_, err := l.TransferTx(ctx, tx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "80.00")})
		if !errors.Is(err, ledger.ErrInsufficientFunds) {
			t.Errorf("TransferTx(80.00 of 50.00) = %v, want ErrInsufficientFunds", err)
		}
		// The same transaction goes on: a smaller transfer is booked.
		_, err = l.TransferTx(ctx, tx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "20.00")})
		return err
	})
	if err != nil {
		t.Fatalf("RunInTx = %v, want the 20.00 transfer committed", err)
	}
	var transfers int64
	db.Raw(`SELECT count(*) FROM transfers`).Scan(&transfers)
	if transfers != 2 {
		t.Errorf("%d transfers, want 2 (the opening and the 20.00)", transfers)
	}
	if got := balance(t, l, a.ID); got != gbp(t, "30.00") {
		t.Errorf("Balance(alice) = %s, want 30.00", got)
	}
	if got := balance(t, l, b.ID); got != gbp(t, "20.00") {
		t.Errorf("Balance(bob) = %s, want 20.00", got)
	}
	checkInvariants(t, l, db)
}
