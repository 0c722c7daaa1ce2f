package postgres_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

func TestReconcile(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()

	empty, err := l.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ledger.Report{Balanced: true, Drift: []ledger.Drift{}, Totals: []ledger.Total{}}, empty); diff != "" {
		t.Errorf("Reconcile(empty ledger) mismatch (-want +got):\n%s", diff)
	}

	a := openAccount(t, l, "alice", "GBP", "100.00")
	b := openAccount(t, l, "bob", "GBP", "")
	openAccount(t, l, "yuki", "JPY", "500")
	if _, err := l.Transfer(ctx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "40.00")}); err != nil {
		t.Fatal(err)
	}
	rep := checkInvariants(t, l, db)
	want := ledger.Report{
		Balanced: true, AccountsChecked: 5, Drift: []ledger.Drift{},
		Totals: []ledger.Total{{Currency: "GBP", Net: gbp(t, "0")}, {Currency: "JPY", Net: money(t, "0", "JPY")}},
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("Reconcile mismatch (-want +got):\n%s", diff)
	}

	// Someone edits a cached balance behind the ledger's back: Reconcile
	// reports the drift and the currency no longer nets to zero.
	if err := db.Exec(`UPDATE accounts SET balance = balance + 1 WHERE id = ?`, string(b.ID)).Error; err != nil {
		t.Fatal(err)
	}
	rep, err = l.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want.Balanced = false
	want.Drift = []ledger.Drift{{AccountID: b.ID, Expected: gbp(t, "40.00"), Actual: gbp(t, "40.01")}}
	want.Totals[0].Net = models.Amount{Minor: 1, Currency: "GBP"}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("Reconcile after tampering mismatch (-want +got):\n%s", diff)
	}
}
