package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

func TestEnsureAccount(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	opening := gbp(t, "1000.00")
	p := ledger.OpenAccountParams{Owner: "alice", Currency: "GBP", Nickname: "Alice current", Opening: &opening}

	first, opened, err := l.EnsureAccount(ctx, p)
	if err != nil || !opened {
		t.Fatalf("EnsureAccount on an empty ledger = %v, opened %v, want a new account", err, opened)
	}
	if first.Owner != "alice" || first.Kind != models.KindCustomer || first.Balance != opening {
		t.Errorf("EnsureAccount = %+v, want alice's customer account with 1000.00 GBP", first)
	}

	// The account has been used since: the next call returns it as it is
	// now and books nothing.
	bob := openAccount(t, l, "bob", "GBP", "")
	if _, err := l.Transfer(ctx, ledger.TransferParams{From: first.ID, To: bob.ID, Amount: gbp(t, "10.00"), Reference: "rent"}); err != nil {
		t.Fatalf("Transfer = %v", err)
	}
	again, opened, err := l.EnsureAccount(ctx, p)
	if err != nil || opened {
		t.Fatalf("EnsureAccount again = %v, opened %v, want the existing account", err, opened)
	}
	if again.ID != first.ID || again.Balance != gbp(t, "990.00") {
		t.Errorf("EnsureAccount again = %s %s, want %s 990.00", again.ID, again.Balance, first.ID)
	}
	var transfers int64
	db.Raw(`SELECT count(*) FROM transfers`).Scan(&transfers)
	if transfers != 2 {
		t.Errorf("%d transfers, want 2 (alice's opening balance and the rent)", transfers)
	}

	// Another currency is another account.
	eur, opened, err := l.EnsureAccount(ctx, ledger.OpenAccountParams{Owner: "alice", Currency: "EUR"})
	if err != nil || !opened || eur.ID == first.ID || eur.Currency != "EUR" {
		t.Errorf("EnsureAccount(alice, EUR) = %+v, %v, opened %v, want a new EUR account", eur, err, opened)
	}

	// Invalid parameters write nothing.
	if _, _, err := l.EnsureAccount(ctx, ledger.OpenAccountParams{Owner: "", Currency: "GBP"}); !errors.Is(err, ledger.ErrInvalidAccount) {
		t.Errorf("EnsureAccount without owner = %v, want ErrInvalidAccount", err)
	}
	checkInvariants(t, l, db)
}

// TestEnsureAccountConcurrently: callers racing for one owner (two sandbox
// nodes starting on one database) open one account between them.
func TestEnsureAccountConcurrently(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	opening := gbp(t, "1000.00")
	p := ledger.OpenAccountParams{Owner: "bob", Currency: "GBP", Opening: &opening}

	const callers = 8
	ids := make([]models.AccountID, callers)
	opened := make([]bool, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a models.Account
			a, opened[i], errs[i] = l.EnsureAccount(ctx, p)
			ids[i] = a.ID
		}()
	}
	wg.Wait()
	n := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: EnsureAccount = %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("caller %d got account %s, caller 0 %s", i, ids[i], ids[0])
		}
		if opened[i] {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d callers opened an account, want 1", n)
	}
	accounts, err := l.AccountsByOwner(ctx, "bob")
	if err != nil || len(accounts) != 1 || accounts[0].Balance != opening {
		t.Errorf("AccountsByOwner(bob) = %+v, %v, want one account with 1000.00", accounts, err)
	}
	checkInvariants(t, l, db)
}
