package openbanking_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// oneBatchAtATime makes every AISP read that arrives while a batch runs wait
// for the next batch, so that concurrent reads share batches as much as they
// can.
func oneBatchAtATime(c *fixtureConfig) { c.store.AccountReadBatches = 1 }

// batchStats counts the batched account reads the service sends to the
// database.
type batchStats struct {
	mu               sync.Mutex
	batches, largest int
}

// countBatches counts the statements that read consents and accounts for a
// batch of AISP reads, and the reads in each (the account id array literal
// has one comma fewer than ids).
func (f *fixture) countBatches() *batchStats {
	f.t.Helper()
	st := &batchStats{}
	err := f.db.Callback().Row().Before("gorm:row").Register("test:count_account_read_batches", func(db *gorm.DB) {
		if !strings.Contains(db.Statement.SQL.String(), "WITH ORDINALITY") || len(db.Statement.Vars) == 0 {
			return
		}
		ids, _ := db.Statement.Vars[0].(string)
		n := strings.Count(ids, ",") + 1
		st.mu.Lock()
		defer st.mu.Unlock()
		st.batches++
		st.largest = max(st.largest, n)
	})
	if err != nil {
		f.t.Fatalf("register callback: %v", err)
	}
	return st
}

func (st *batchStats) get() (batches, largest int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.batches, st.largest
}

// read is the answer of an account or balance read.
type read struct {
	account models.Account
	grant   openbanking.Grant
	err     error
}

func TestConcurrentAccountReadsAnswerAsAlone(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, oneBatchAtATime)
	stats := f.countBatches()
	settlement, err := f.l.SettlementAccount(ctx, nil, "GBP")
	if err != nil {
		t.Fatal(err)
	}
	const unknownID = "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a"

	type psuSetup struct {
		account        models.Account
		full, basic    openbanking.Caller
		revoked, other openbanking.Caller // other: a consent of another client
	}
	var psus []psuSetup
	for i := range 5 {
		psu := fmt.Sprintf("psu-%d", i)
		p := psuSetup{
			account: f.open(psu, "GBP", fmt.Sprintf("%d.00", 10*(i+1))),
			full:    f.accessFor(clientA, psu, perms(openbanking.ReadAccountsDetail, openbanking.ReadBalances)),
			basic:   f.accessFor(clientA, psu, perms(openbanking.ReadAccountsBasic)),
			revoked: f.accessFor(clientA, psu, perms(openbanking.ReadAccountsDetail, openbanking.ReadBalances)),
			other:   f.accessFor(clientB, psu, perms(openbanking.ReadBalances)),
		}
		if err := f.svc.RevokeAccountAccessConsent(ctx, openbanking.Caller{ClientID: clientA}, p.revoked.ConsentID); err != nil {
			t.Fatal(err)
		}
		// Read through the ledger, so that the wanted account does not come
		// from the path under test.
		if p.account, err = f.l.Account(ctx, p.account.ID); err != nil {
			t.Fatal(err)
		}
		psus = append(psus, p)
	}

	balance := func(c openbanking.Caller, id string) func() read {
		return func() read {
			a, _, err := f.svc.Balance(ctx, c, id)
			return read{account: a, err: err}
		}
	}
	account := func(c openbanking.Caller, id string) func() read {
		return func() read {
			a, g, err := f.svc.Account(ctx, c, id)
			return read{account: a, grant: g, err: err}
		}
	}
	type readCase struct {
		name        string
		call        func() read
		want        read // want.err is matched with errors.Is
		wantGrantOf openbanking.Permission
	}
	var cases []readCase
	for i, p := range psus {
		next := psus[(i+1)%len(psus)]
		own := string(p.account.ID)
		withConsent := func(c openbanking.Caller, consentID string) openbanking.Caller {
			c.ConsentID = consentID
			return c
		}
		withClient := func(c openbanking.Caller, client string) openbanking.Caller {
			c.ClientID = client
			return c
		}
		forbidden, notFound := read{err: openbanking.ErrForbidden}, read{err: openbanking.ErrNotFound}
		cases = append(cases, []readCase{
			{"balance", balance(p.full, own), read{account: p.account}, ""},
			{"balance by upper-case id", balance(p.full, strings.ToUpper(own)), read{account: p.account}, ""},
			{"account", account(p.full, own), read{account: p.account}, openbanking.ReadAccountsDetail},
			{"account with basic", account(p.basic, own), read{account: p.account}, openbanking.ReadAccountsBasic},
			{"balance without ReadBalances", balance(p.basic, own), forbidden, ""},
			{"balance on a revoked consent", balance(p.revoked, own), forbidden, ""},
			{"account on a revoked consent", account(p.revoked, own), forbidden, ""},
			{"another PSU's account", balance(p.full, string(next.account.ID)), forbidden, ""},
			{"settlement account", balance(p.full, string(settlement.ID)), forbidden, ""},
			{"unknown account", balance(p.full, unknownID), notFound, ""},
			{"unknown account without ReadBalances", balance(p.basic, unknownID), forbidden, ""},
			{"unknown account on a revoked consent", balance(p.revoked, unknownID), forbidden, ""},
			{"account id that is not a UUID", balance(p.full, "not-an-account"), notFound, ""},
			{"unknown consent", balance(withConsent(p.full, unknownID), own), forbidden, ""},
			{"another PSU's consent", balance(withConsent(p.full, next.full.ConsentID), own), forbidden, ""},
			{"token of another client", balance(withClient(p.full, clientB), own), forbidden, ""},
			{"consent of the other client", balance(p.other, own), read{account: p.account}, ""},
		}...)
	}
	for i := range cases {
		cases[i].name = fmt.Sprintf("%s %d", cases[i].name, i)
	}
	check := func(t *testing.T, tc readCase, got read) {
		t.Helper()
		if tc.want.err != nil || got.err != nil {
			if tc.want.err == nil || !errors.Is(got.err, tc.want.err) || got.account.ID != "" {
				t.Errorf("%s = %+v, %v, want %v", tc.name, got.account, got.err, tc.want.err)
			}
			return
		}
		if diff := cmp.Diff(tc.want.account, got.account); diff != "" {
			t.Errorf("%s: account differs from the ledger's (-ledger +read):\n%s", tc.name, diff)
		}
		if tc.wantGrantOf != "" && !got.grant.Has(tc.wantGrantOf) {
			t.Errorf("%s: grant %v, want %s", tc.name, got.grant, tc.wantGrantOf)
		}
	}

	// Alone, one at a time: each read is a batch of its own.
	for _, tc := range cases {
		check(t, tc, tc.call())
	}
	if _, largest := stats.get(); largest != 1 {
		t.Fatalf("reads one at a time made a batch of %d", largest)
	}

	// All at once, a few times over: the same answers from shared batches.
	const rounds = 3
	n := rounds * len(cases)
	got, _ := run(n, func(i int) (read, error) { return cases[i%len(cases)].call(), nil })
	for i, r := range got {
		check(t, cases[i%len(cases)], r)
	}
	batches, largest := stats.get()
	if largest < 2 {
		t.Errorf("concurrent reads never shared a batch (%d batches)", batches)
	}
	t.Logf("%d batches for %d reads one at a time and %d at once; largest batch %d", batches, len(cases), n, largest)
}

// loadReads keeps readers reading the balance of account as c until the test
// ends, so that batches are in flight whenever the test's own reads arrive.
func (f *fixture) loadReads(readers int, c openbanking.Caller, account models.AccountID) {
	f.t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, _, err := f.svc.Balance(ctx, c, string(account)); err != nil && ctx.Err() == nil {
					f.t.Errorf("background Balance = %v", err)
					return
				}
			}
		})
	}
	f.t.Cleanup(func() { stop(); wg.Wait() })
}

func TestReadAfterRevocationIsRefusedUnderLoad(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, oneBatchAtATime)
	alice := f.open("alice", "GBP", "50.00")
	bob := f.open("bob", "GBP", "50.00")
	f.loadReads(4, f.accessFor(clientA, "bob", perms(openbanking.ReadBalances)), bob.ID)

	for i := range 10 {
		c := f.accessFor(clientA, "alice", perms(openbanking.ReadBalances))
		if _, _, err := f.svc.Balance(ctx, c, string(alice.ID)); err != nil {
			t.Fatalf("round %d: Balance before revocation = %v", i, err)
		}
		if err := f.svc.RevokeAccountAccessConsent(ctx, openbanking.Caller{ClientID: clientA}, c.ConsentID); err != nil {
			t.Fatal(err)
		}
		// Every read that starts after the revocation has committed is
		// refused, however the reads are batched.
		_, errs := run(8, func(int) (models.Account, error) {
			a, _, err := f.svc.Balance(ctx, c, string(alice.ID))
			return a, err
		})
		for _, err := range errs {
			wantErr(t, fmt.Sprintf("round %d: Balance after revocation", i), err, openbanking.ErrForbidden)
		}
	}
}

func TestReadSeesTransferCommittedBeforeIt(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, oneBatchAtATime)
	alice := f.open("alice", "GBP", "50.00")
	bob := f.open("bob", "GBP", "50.00")
	f.loadReads(4, f.accessFor(clientA, "bob", perms(openbanking.ReadBalances)), bob.ID)
	reader := f.accessFor(clientA, "alice", perms(openbanking.ReadBalances))

	for i := range 10 {
		if _, err := f.l.Transfer(ctx, ledgerTransfer(alice.ID, bob.ID)); err != nil {
			t.Fatal(err)
		}
		want := int64(5000 - 100*(i+1))
		accts, errs := run(8, func(int) (models.Account, error) {
			a, _, err := f.svc.Balance(ctx, reader, string(alice.ID))
			return a, err
		})
		for j, a := range accts {
			if errs[j] != nil || a.Balance.Minor != want {
				t.Errorf("round %d: Balance = %d, %v, want %d", i, a.Balance.Minor, errs[j], want)
			}
		}
	}
}
