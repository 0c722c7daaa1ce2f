package openbanking_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// holdFirstBatch holds the first batched account read the service sends
// after it is called: the batch's statement has run (database/sql hands back
// its rows only once the first row, or the end of the result, has arrived, so
// the statement's snapshot is taken), but the fetch does not return until
// release is called. held is closed when the batch is being held. Later
// batches run freely.
func (f *fixture) holdFirstBatch() (held <-chan struct{}, release func()) {
	f.t.Helper()
	heldCh, releaseCh := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	err := f.db.Callback().Row().After("gorm:row").Register("test:hold_first_account_read_batch", func(db *gorm.DB) {
		if !strings.Contains(db.Statement.SQL.String(), "WITH ORDINALITY") || !armed.CompareAndSwap(true, false) {
			return
		}
		close(heldCh)
		<-releaseCh
	})
	if err != nil {
		f.t.Fatalf("register callback: %v", err)
	}
	var once sync.Once
	release = func() { once.Do(func() { close(releaseCh) }) }
	f.t.Cleanup(release) // never leave a batch held when the test fails early
	return heldCh, release
}

// waitingContext is a context that reports when something first waits on its
// Done channel, as a read queued behind a running batch does. Nothing on the
// balance read's path before the batcher asks for Done.
type waitingContext struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func newWaitingContext(parent context.Context) *waitingContext {
	return &waitingContext{Context: parent, waiting: make(chan struct{})}
}

func (c *waitingContext) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

// within fails the test unless ch is closed before the deadline.
func within(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}

// TestReadAfterTransferIsNotAnsweredByBatchInFlight checks the batcher's
// freshness guarantee where it matters: a read of a key whose batch is
// already running when a transfer commits must not share that batch's
// answer, which was read before the transfer; it waits for the next batch.
// A batcher that let the read join the running batch (as a singleflight
// would) returns the balance from before the transfer and fails here.
func TestReadAfterTransferIsNotAnsweredByBatchInFlight(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, oneBatchAtATime)
	alice := f.open("alice", "GBP", "50.00")
	bob := f.open("bob", "GBP", "50.00")
	reader := f.accessFor(clientA, "alice", perms(openbanking.ReadBalances))
	const before, after = 5000, 4900
	const deadline = 2 * time.Second

	held, release := f.holdFirstBatch()
	type answer struct {
		account models.Account
		err     error
	}
	first, second := make(chan answer, 1), make(chan answer, 1)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)

	// The first read's batch runs its statement before the transfer and is
	// held, in flight, until the second read is queued.
	wg.Go(func() {
		a, _, err := f.svc.Balance(ctx, reader, string(alice.ID))
		first <- answer{a, err}
	})
	within(t, held, deadline, "the first read's batch is held")

	if _, err := f.l.Transfer(ctx, ledgerTransfer(alice.ID, bob.ID)); err != nil {
		t.Fatal(err)
	}

	// The second read arrives after the transfer committed, while the
	// first read's batch (same account, same consent) is still running.
	wctx := newWaitingContext(ctx)
	wg.Go(func() {
		a, _, err := f.svc.Balance(wctx, reader, string(alice.ID))
		second <- answer{a, err}
	})
	within(t, wctx.waiting, deadline, "the second read waits in the batcher")
	release()

	var got1, got2 answer
	for got := range 2 {
		select {
		case got1 = <-first:
		case got2 = <-second:
		case <-time.After(deadline):
			t.Fatalf("%d of 2 reads answered within %v", got, deadline)
		}
	}
	// The batch in flight may answer from before or after the transfer.
	if got1.err != nil || (got1.account.Balance.Minor != before && got1.account.Balance.Minor != after) {
		t.Errorf("Balance in the batch in flight = %d, %v, want %d or %d", got1.account.Balance.Minor, got1.err, before, after)
	}
	// The read that arrived after the transfer must see it.
	if got2.err != nil || got2.account.Balance.Minor != after {
		t.Errorf("Balance of the read arriving after the transfer = %d, %v, want %d", got2.account.Balance.Minor, got2.err, after)
	}
	t.Logf("batch in flight answered %d, the later read %d", got1.account.Balance.Minor, got2.account.Balance.Minor)
}
