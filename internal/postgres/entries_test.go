package postgres_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/postgres"
)

func TestEntries(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	var clock atomic.Int64 // minutes after t0
	l, _ := newLedger(t, postgres.WithClock(func() time.Time { return t0.Add(time.Duration(clock.Load()) * time.Minute) }))
	ctx := context.Background()
	a := openAccount(t, l, "alice", "GBP", "100.00") // entry at t0
	b := openAccount(t, l, "bob", "GBP", "")
	clock.Store(1)
	tr1, err := l.Transfer(ctx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "10.00"), Reference: "one"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Store(2)
	tr2, err := l.Transfer(ctx, ledger.TransferParams{From: b.ID, To: a.ID, Amount: gbp(t, "2.50"), Reference: "two"})
	if err != nil {
		t.Fatal(err)
	}

	page, err := l.Entries(ctx, ledger.EntriesQuery{Account: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := l.SettlementAccount(ctx, nil, "GBP")
	want := []models.Entry{
		{AccountID: a.ID, Direction: models.Credit, Amount: gbp(t, "100.00"), BalanceAfter: gbp(t, "100.00"),
			BookedAt: t0, Counterparty: st.ID, Reference: ledger.OpeningReference},
		{TransferID: tr1.ID, AccountID: a.ID, Direction: models.Debit, Amount: gbp(t, "10.00"), BalanceAfter: gbp(t, "90.00"),
			BookedAt: t0.Add(time.Minute), Counterparty: b.ID, Reference: "one"},
		{TransferID: tr2.ID, AccountID: a.ID, Direction: models.Credit, Amount: gbp(t, "2.50"), BalanceAfter: gbp(t, "92.50"),
			BookedAt: t0.Add(2 * time.Minute), Counterparty: b.ID, Reference: "two"},
	}
	if len(page.Entries) == 3 {
		want[0].TransferID = page.Entries[0].TransferID
		for i := range want {
			want[i].ID = page.Entries[i].ID
		}
	}
	if diff := cmp.Diff(want, page.Entries); diff != "" || page.Next != nil {
		t.Errorf("Entries mismatch (-want +got):\n%s\nnext: %v", diff, page.Next)
	}

	at := func(m int) *time.Time { x := t0.Add(time.Duration(m) * time.Minute); return &x }
	filters := []struct {
		name     string
		from, to *time.Time
		wantRefs []string
	}{
		{"from inclusive", at(1), nil, []string{"one", "two"}},
		{"to inclusive", nil, at(1), []string{ledger.OpeningReference, "one"}},
		{"single instant", at(1), at(1), []string{"one"}},
		{"empty window", at(3), at(4), []string{}},
	}
	for _, tc := range filters {
		t.Run(tc.name, func(t *testing.T) {
			page, err := l.Entries(ctx, ledger.EntriesQuery{Account: a.ID, From: tc.from, To: tc.to})
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, e := range page.Entries {
				got = append(got, e.Reference)
			}
			if diff := cmp.Diff(tc.wantRefs, got); diff != "" {
				t.Errorf("references mismatch (-want +got):\n%s", diff)
			}
		})
	}

	errs := []struct {
		name string
		q    ledger.EntriesQuery
		want error
	}{
		{"unknown account", ledger.EntriesQuery{Account: "0b9a4c1e-7d0e-4f5a-9a35-3c1d2b8e9f00"}, ledger.ErrAccountNotFound},
		{"malformed account", ledger.EntriesQuery{Account: "nope"}, ledger.ErrAccountNotFound},
		{"negative limit", ledger.EntriesQuery{Account: a.ID, Limit: -1}, ledger.ErrInvalidQuery},
		{"limit too large", ledger.EntriesQuery{Account: a.ID, Limit: ledger.MaxEntriesLimit + 1}, ledger.ErrInvalidQuery},
		{"from after to", ledger.EntriesQuery{Account: a.ID, From: at(2), To: at(1)}, ledger.ErrInvalidQuery},
		{"cursor with bad id", ledger.EntriesQuery{Account: a.ID, After: &ledger.Cursor{EntryID: "x"}}, ledger.ErrInvalidCursor},
		{"cursor with id zero", ledger.EntriesQuery{Account: a.ID, After: &ledger.Cursor{BookedAt: *at(1), EntryID: "0"}}, ledger.ErrInvalidCursor},
		{"cursor with id out of int64", ledger.EntriesQuery{Account: a.ID, After: &ledger.Cursor{BookedAt: *at(1), EntryID: "9223372036854775808"}}, ledger.ErrInvalidCursor},
		{"cursor at the smallest time", ledger.EntriesQuery{Account: a.ID, After: &ledger.Cursor{BookedAt: time.UnixMicro(math.MinInt64), EntryID: "1"}}, ledger.ErrInvalidCursor},
		{"cursor after year 9999", ledger.EntriesQuery{Account: a.ID, After: &ledger.Cursor{BookedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), EntryID: "1"}}, ledger.ErrInvalidCursor},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Entries(ctx, tc.q); !errors.Is(err, tc.want) {
				t.Fatalf("Entries(%+v) = %v, want %v", tc.q, err, tc.want)
			}
		})
	}
}

// TestEntriesPagingIsStable pages through an account while other goroutines
// keep booking transfers on it, with a clock that stands still and one that
// steps backwards. Every entry committed before the paging started is seen
// exactly once, in order, and pages never go backwards.
func TestEntriesPagingIsStable(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	clocks := []struct {
		name string
		now  func() time.Time
	}{
		{"clock stands still", func() time.Time { return t0 }},
		{"clock steps backwards", func() func() time.Time {
			var n atomic.Int64
			return func() time.Time { return t0.Add(-time.Duration(n.Add(1)) * time.Second) }
		}()},
	}
	for _, c := range clocks {
		t.Run(c.name, func(t *testing.T) {
			l, _ := newLedger(t, postgres.WithClock(c.now))
			ctx := context.Background()
			a := openAccount(t, l, "alice", "GBP", "1000.00")
			b := openAccount(t, l, "bob", "GBP", "1000.00")
			for range 20 {
				if _, err := l.Transfer(ctx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "1.00")}); err != nil {
					t.Fatal(err)
				}
			}
			before, err := l.Entries(ctx, ledger.EntriesQuery{Account: a.ID, Limit: ledger.MaxEntriesLimit})
			if err != nil {
				t.Fatal(err)
			}

			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := l.Transfer(ctx, ledger.TransferParams{From: b.ID, To: a.ID, Amount: gbp(t, "0.01")}); err != nil {
							t.Errorf("Transfer = %v", err)
							return
						}
					}
				}()
			}
			seen := map[models.EntryID]bool{}
			var all []models.Entry
			var after *ledger.Cursor
			for pages := 0; pages < 200; pages++ {
				if after != nil { // round-trip the cursor through its string form
					c, err := ledger.ParseCursor(after.String())
					if err != nil || c != *after {
						t.Fatalf("ParseCursor(String(%+v)) = %+v, %v", *after, c, err)
					}
					after = &c
				}
				page, err := l.Entries(ctx, ledger.EntriesQuery{Account: a.ID, After: after, Limit: 3})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Entries {
					if seen[e.ID] {
						t.Fatalf("entry %s returned twice", e.ID)
					}
					seen[e.ID] = true
					if n := len(all); n > 0 && e.BookedAt.Before(all[n-1].BookedAt) {
						t.Fatalf("entry %s booked at %v comes after one booked at %v", e.ID, e.BookedAt, all[n-1].BookedAt)
					}
					all = append(all, e)
				}
				if page.Next == nil || len(all) > len(before.Entries)+30 {
					break
				}
				after = page.Next
			}
			close(stop)
			wg.Wait()
			for _, e := range before.Entries {
				if !seen[e.ID] {
					t.Errorf("entry %s committed before paging was never returned", e.ID)
				}
			}
			// Entries come in booking order: the balance chain is unbroken.
			for i := 1; i < len(all); i++ {
				prev, e := all[i-1].BalanceAfter.Minor, all[i]
				delta := e.Amount.Minor
				if e.Direction == models.Debit {
					delta = -delta
				}
				if prev+delta != e.BalanceAfter.Minor {
					t.Fatalf("entry %d: %d %s %d gives %d, want %d", i, prev, e.Direction, e.Amount.Minor, e.BalanceAfter.Minor, prev+delta)
				}
			}
		})
	}
}
