package openbanking_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// accessFor creates an account access consent of client with perms, has psu
// authorise it, and returns the PSU caller.
func (f *fixture) accessFor(client, psu string, req openbanking.AccountAccessRequest) openbanking.Caller {
	f.t.Helper()
	ac, err := f.svc.CreateAccountAccessConsent(context.Background(), openbanking.Caller{ClientID: client}, req)
	if err != nil {
		f.t.Fatalf("CreateAccountAccessConsent = %v", err)
	}
	if err := f.svc.AuthoriseConsent(context.Background(), ac.ID, psu, ""); err != nil {
		f.t.Fatalf("AuthoriseConsent = %v", err)
	}
	return openbanking.Caller{ClientID: client, PSU: psu, ConsentID: ac.ID}
}

func perms(p ...openbanking.Permission) openbanking.AccountAccessRequest {
	return openbanking.AccountAccessRequest{Version: openbanking.V3_1, Permissions: p}
}

func TestAccountAccessPermissions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "50.00")
	bob := f.open("bob", "GBP", "50.00")
	all := f.accessFor(clientA, "alice", perms(openbanking.ReadAccountsDetail, openbanking.ReadBalances, openbanking.ReadTransactionsDetail))
	basic := f.accessFor(clientA, "alice", perms(openbanking.ReadAccountsBasic))
	soon := time.Date(2030, 1, 2, 11, 0, 0, 0, time.UTC)
	expiring := f.accessFor(clientA, "alice", openbanking.AccountAccessRequest{Version: openbanking.V3_1, Permissions: []openbanking.Permission{openbanking.ReadBalances}, ExpiresAt: &soon})
	revoked := f.accessFor(clientA, "alice", perms(openbanking.ReadBalances))
	if err := f.svc.RevokeAccountAccessConsent(ctx, openbanking.Caller{ClientID: clientA}, revoked.ConsentID); err != nil {
		t.Fatal(err)
	}
	waiting, _ := f.svc.CreateAccountAccessConsent(ctx, openbanking.Caller{ClientID: clientA}, perms(openbanking.ReadBalances))
	otherClient := all
	otherClient.ClientID = clientB
	otherPSU := all
	otherPSU.PSU = "bob"
	balance := func(c openbanking.Caller, id models.AccountID) error {
		_, _, err := f.svc.Balance(ctx, c, string(id))
		return err
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"balances with ReadBalances", func() error { return balance(all, alice.ID) }, nil},
		{"balances without ReadBalances", func() error { return balance(basic, alice.ID) }, openbanking.ErrForbidden},
		{"transactions without a transactions permission", func() error {
			_, err := f.svc.Transactions(ctx, basic, string(alice.ID), openbanking.TransactionsQuery{})
			return err
		}, openbanking.ErrForbidden},
		{"accounts without an accounts permission", func() error { _, _, err := f.svc.Accounts(ctx, expiring); return err }, openbanking.ErrForbidden},
		{"another PSU's account", func() error { return balance(all, bob.ID) }, openbanking.ErrForbidden},
		{"unknown account", func() error { return balance(all, "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a") }, openbanking.ErrNotFound},
		{"account id that is not a UUID", func() error { return balance(all, "not-an-account") }, openbanking.ErrNotFound},
		{"unknown account without ReadBalances", func() error { return balance(basic, "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a") }, openbanking.ErrForbidden},
		{"account with a consent id that is not a UUID", func() error {
			c := all
			c.ConsentID = "not-a-consent"
			return balance(c, alice.ID)
		}, openbanking.ErrForbidden},
		{"token of another client", func() error { return balance(otherClient, alice.ID) }, openbanking.ErrForbidden},
		{"token naming another PSU", func() error { return balance(otherPSU, alice.ID) }, openbanking.ErrForbidden},
		{"client-credentials token", func() error { return balance(openbanking.Caller{ClientID: clientA}, alice.ID) }, openbanking.ErrForbidden},
		{"revoked consent", func() error { return balance(revoked, alice.ID) }, openbanking.ErrForbidden},
		{"consent not authorised", func() error {
			return balance(openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: waiting.ID}, alice.ID)
		}, openbanking.ErrForbidden},
		{"consent before expiry", func() error { return balance(expiring, alice.ID) }, nil},
		{"expired consent", func() error { f.advance(2 * time.Hour); return balance(expiring, alice.ID) }, openbanking.ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(), tc.want)
		})
	}
	got, _, err := f.svc.Balance(ctx, all, string(alice.ID))
	if err != nil {
		t.Fatalf("Balance = %v", err)
	}
	want, err := f.l.Account(ctx, alice.ID)
	if err != nil {
		t.Fatalf("ledger Account = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Balance account differs from the ledger's (-ledger +Balance):\n%s", diff)
	}
	accts, g, err := f.svc.Accounts(ctx, all)
	if err != nil || len(accts) != 1 || accts[0].ID != alice.ID || !g.Has(openbanking.ReadAccountsDetail) {
		t.Errorf("Accounts = %+v, %+v, %v, want only alice's account with Detail", accts, g, err)
	}
	_, err = f.svc.AccountAccessConsent(ctx, openbanking.Caller{ClientID: clientB}, all.ConsentID)
	wantErr(t, "another client reads the consent", err, openbanking.ErrForbidden)
	wantErr(t, "another client revokes the consent", f.svc.RevokeAccountAccessConsent(ctx, openbanking.Caller{ClientID: clientB}, all.ConsentID), openbanking.ErrForbidden)
}

func TestCreateAccountAccessConsentRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	later := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		req  openbanking.AccountAccessRequest
	}{
		{"no permissions", openbanking.AccountAccessRequest{Version: openbanking.V3_1}},
		{"unknown permission", perms("ReadEverything")},
		{"credits without a transactions permission", perms(openbanking.ReadTransactionsCredits)},
		{"expiry in the past", openbanking.AccountAccessRequest{Version: openbanking.V3_1, Permissions: []openbanking.Permission{openbanking.ReadBalances}, ExpiresAt: &past}},
		{"window from after to", openbanking.AccountAccessRequest{Version: openbanking.V3_1, Permissions: []openbanking.Permission{openbanking.ReadBalances}, TransactionFrom: &later, TransactionTo: &past}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.CreateAccountAccessConsent(ctx, openbanking.Caller{ClientID: clientA}, tc.req)
			wantErr(t, "CreateAccountAccessConsent", err, openbanking.ErrInvalidField)
		})
	}
}

func TestTransactionsPagesSeeEveryEntryOnceWhileBooking(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *fixtureConfig) { c.ob.TransactionsPageSize = openbanking.MinTransactionsPageSize })
	alice := f.open("alice", "GBP", "1000.00")
	bob := f.open("bob", "GBP", "")
	reader := f.accessFor(clientA, "alice", perms(openbanking.ReadTransactionsDetail))
	book := func() {
		t.Helper()
		if _, err := f.l.Transfer(ctx, ledgerTransfer(alice.ID, bob.ID)); err != nil {
			t.Fatal(err)
		}
	}
	for range 60 {
		book()
		f.advance(time.Millisecond)
	}
	// Book more while paging: each page is followed by new entries.
	var (
		seen = map[models.EntryID]int{}
		q    openbanking.TransactionsQuery
		wg   sync.WaitGroup
	)
	pages := 0
	for ; ; pages++ {
		page, err := f.svc.Transactions(ctx, reader, string(alice.ID), q)
		if err != nil {
			t.Fatalf("Transactions = %v", err)
		}
		if len(page.Entries) > openbanking.MinTransactionsPageSize {
			t.Fatalf("page of %d entries", len(page.Entries))
		}
		for _, e := range page.Entries {
			seen[e.ID]++
		}
		wg.Add(1)
		go func() { defer wg.Done(); book() }()
		wg.Wait()
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
		if pages > 50 {
			t.Fatal("pagination does not end")
		}
	}
	if pages+1 < 3 {
		t.Errorf("read %d pages, want at least 3", pages+1)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("entry %s seen %d times", id, n)
		}
	}
	if len(seen) < 61 { // the opening credit and the 60 debits at least
		t.Errorf("saw %d entries, want at least 61", len(seen))
	}
	// A consent restricted to credits sees only the opening credit.
	credits := f.accessFor(clientA, "alice", perms(openbanking.ReadTransactionsBasic, openbanking.ReadTransactionsCredits))
	page, err := f.svc.Transactions(ctx, credits, string(alice.ID), openbanking.TransactionsQuery{})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Direction != models.Credit {
		t.Errorf("credits-only page = %d entries, %v, want the opening credit only", len(page.Entries), err)
	}
	_, err = f.svc.Transactions(ctx, reader, string(alice.ID), openbanking.TransactionsQuery{Cursor: "garbage"})
	wantErr(t, "Transactions with a bad cursor", err, openbanking.ErrInvalidField)
}
