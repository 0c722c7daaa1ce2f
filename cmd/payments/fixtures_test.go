package main

import (
	"context"
	"testing"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/postgres"
)

// sandboxCustomers returns the account id each "sandbox customer" log line
// names, by PSU, and whether it says the account was opened.
func sandboxCustomers(t *testing.T, lines []map[string]any) (ids map[string]string, opened map[string]bool) {
	t.Helper()
	ids, opened = map[string]string{}, map[string]bool{}
	for _, l := range lines {
		if l["msg"] != "sandbox customer" {
			continue
		}
		psu, _ := l["psu"].(string)
		if _, dup := ids[psu]; dup {
			t.Errorf("customer %q logged twice", psu)
		}
		ids[psu], _ = l["account_id"].(string)
		opened[psu], _ = l["opened"].(bool)
		if l["level"] != "INFO" || l["currency"] != "GBP" || l["balance"] == nil {
			t.Errorf("customer line %v, want INFO with currency GBP and the balance", l)
		}
	}
	return ids, opened
}

// ledgerAt opens the ledger of the database at dsn.
func ledgerAt(t *testing.T, dsn string) *postgres.Ledger {
	t.Helper()
	db, sqlDB, err := openDB(config{DatabaseURL: dsn, DBMaxOpenConns: 2, DBMaxIdleConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	l, err := postgres.NewLedger(db)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// ownedAccounts returns psu's customer accounts.
func ownedAccounts(t *testing.T, l *postgres.Ledger, psu string) []models.Account {
	t.Helper()
	a, err := l.AccountsByOwner(context.Background(), psu)
	if err != nil {
		t.Fatalf("AccountsByOwner(%s) = %v", psu, err)
	}
	return a
}

func TestSandboxSeedsAliceAndBobOnce(t *testing.T) {
	dsn := scratchDatabase(t)
	vars := map[string]string{"DATABASE_URL": dsn, "PAYMENTS_ADDR": "127.0.0.1:0", "PAYMENTS_DEV_AUTH": "true"}

	// An empty database: both customers get a funded account, owned by
	// their PSU id and logged.
	ids, opened := sandboxCustomers(t, serveOnce(t, vars))
	l := ledgerAt(t, dsn)
	for _, psu := range []string{"alice", "bob"} {
		accounts := ownedAccounts(t, l, psu)
		if len(accounts) != 1 {
			t.Fatalf("%s owns %d accounts, want 1", psu, len(accounts))
		}
		a := accounts[0]
		if string(a.ID) != ids[psu] || !opened[psu] {
			t.Errorf("log names %s's account %q (opened %v), want %s opened", psu, ids[psu], opened[psu], a.ID)
		}
		if a.Balance != (models.Amount{Minor: 100000, Currency: "GBP"}) || a.Kind != models.KindCustomer {
			t.Errorf("%s's account = %+v, want a customer account with 1000.00 GBP", psu, a)
		}
	}
	if len(ids) != 2 {
		t.Errorf("logged customers %v, want alice and bob", ids)
	}
	rep, err := l.Reconcile(context.Background())
	if err != nil || !rep.Balanced || len(rep.Drift) != 0 {
		t.Errorf("Reconcile = %+v, %v, want balanced", rep, err)
	}

	// A restart on the same database opens nothing and logs the same
	// accounts.
	again, openedAgain := sandboxCustomers(t, serveOnce(t, vars))
	for _, psu := range []string{"alice", "bob"} {
		if again[psu] != ids[psu] || openedAgain[psu] {
			t.Errorf("after a restart the log names %s's account %q (opened %v), want %s, not opened", psu, again[psu], openedAgain[psu], ids[psu])
		}
		if n := len(ownedAccounts(t, l, psu)); n != 1 {
			t.Errorf("after a restart %s owns %d accounts, want 1", psu, n)
		}
	}
	settlement, err := l.SettlementAccount(context.Background(), nil, "GBP")
	if err != nil || settlement.Balance.Minor != -200000 {
		t.Errorf("GBP settlement = %s, %v, want -2000.00: two opening balances, booked once", settlement.Balance, err)
	}
}

func TestNoSandboxCustomersWithoutDevAuth(t *testing.T) {
	dsn := scratchDatabase(t)
	lines := serveOnce(t, map[string]string{
		"DATABASE_URL": dsn, "PAYMENTS_ADDR": "127.0.0.1:0", "PAYMENTS_DEV_AUTH": "false",
		"PAYMENTS_INTROSPECTION_URL":       "http://127.0.0.1:9/introspect",
		"PAYMENTS_INTROSPECTION_CLIENT_ID": "payments", "PAYMENTS_INTROSPECTION_CLIENT_SECRET": "secret",
	})
	if ids, _ := sandboxCustomers(t, lines); len(ids) != 0 {
		t.Errorf("logged sandbox customers %v with PAYMENTS_DEV_AUTH=false", ids)
	}
	l := ledgerAt(t, dsn)
	for _, psu := range []string{"alice", "bob"} {
		if n := len(ownedAccounts(t, l, psu)); n != 0 {
			t.Errorf("%s owns %d accounts with PAYMENTS_DEV_AUTH=false, want none", psu, n)
		}
	}
}
