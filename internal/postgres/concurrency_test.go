package postgres_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/postgres"
)

// TestDoubleSpendRace: 40 goroutines try to move 30.00 each out of an account
// holding 100.00 at the same moment. Exactly three can succeed.
func TestDoubleSpendRace(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	src := openAccount(t, l, "spender", "GBP", "100.00")
	dst := openAccount(t, l, "merchant", "GBP", "")

	const attempts = 40
	var ok, insufficient atomic.Int32
	start := make(chan struct{})
	errs := make(chan error, attempts)
	var wg sync.WaitGroup
	for range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := l.Transfer(ctx, ledger.TransferParams{From: src.ID, To: dst.ID, Amount: gbp(t, "30.00")})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ledger.ErrInsufficientFunds):
				insufficient.Add(1)
			default:
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Transfer = %v, want success or ErrInsufficientFunds", err)
	}
	if ok.Load() != 3 || insufficient.Load() != 37 {
		t.Errorf("%d succeeded and %d got ErrInsufficientFunds, want 3 and 37", ok.Load(), insufficient.Load())
	}
	if got := balance(t, l, src.ID); got != gbp(t, "10.00") {
		t.Errorf("final balance = %s, want 10.00", got)
	}
	if got := balance(t, l, dst.ID); got != gbp(t, "90.00") {
		t.Errorf("merchant balance = %s, want 90.00", got)
	}
	checkInvariants(t, l, db)
}

// TestOppositeDirectionStorm: 200 transfers A->B and 200 B->A at once. Locking
// in id order means no deadlock can form; none may reach the caller, and no
// money is created or lost.
func TestOppositeDirectionStorm(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	a := openAccount(t, l, "a", "GBP", "1000.00")
	b := openAccount(t, l, "b", "GBP", "1000.00")

	const each = 200
	start := make(chan struct{})
	errs := make(chan error, 2*each)
	var wg sync.WaitGroup
	for i := range 2 * each {
		from, to, amt := a.ID, b.ID, "1.00"
		if i%2 == 1 {
			from, to, amt = b.ID, a.ID, "2.00"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := l.Transfer(ctx, ledger.TransferParams{From: from, To: to, Amount: gbp(t, amt)}); err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Transfer = %v, want success", err)
	}
	// A: 1000 - 200*1 + 200*2 = 1200; B: 1000 + 200*1 - 200*2 = 800.
	if got := balance(t, l, a.ID); got != gbp(t, "1200.00") {
		t.Errorf("Balance(A) = %s, want 1200.00", got)
	}
	if got := balance(t, l, b.ID); got != gbp(t, "800.00") {
		t.Errorf("Balance(B) = %s, want 800.00", got)
	}
	checkInvariants(t, l, db)
}

// TestRunInTxRetriesDeadlock makes two caller transactions lock two accounts
// in opposite orders. Postgres aborts one with 40P01; RunInTx runs it again and
// both commit.
func TestRunInTxRetriesDeadlock(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	a := openAccount(t, l, "a", "GBP", "10.00")
	b := openAccount(t, l, "b", "GBP", "10.00")

	var calls atomic.Int32
	var bothLocked sync.WaitGroup // first attempts hold their first lock
	bothLocked.Add(2)
	var once [2]sync.Once
	run := func(i int, first, second models.AccountID) error {
		return postgres.RunInTx(ctx, db, func(tx *gorm.DB) error {
			calls.Add(1)
			if err := tx.Exec(`SELECT 1 FROM accounts WHERE id = ? FOR UPDATE`, string(first)).Error; err != nil {
				return err
			}
			once[i].Do(func() {
				bothLocked.Done()
				bothLocked.Wait()
			})
			if err := tx.Exec(`SELECT 1 FROM accounts WHERE id = ? FOR UPDATE`, string(second)).Error; err != nil {
				return err
			}
			_, err := l.TransferTx(ctx, tx, ledger.TransferParams{From: first, To: second, Amount: gbp(t, "1.00")})
			return err
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = run(0, a.ID, b.ID) }()
	go func() { defer wg.Done(); errs[1] = run(1, b.ID, a.ID) }()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("RunInTx #%d = %v, want nil after a retry", i, err)
		}
	}
	if calls.Load() < 3 {
		t.Errorf("fn ran %d times, want at least 3 (one deadlock victim retried)", calls.Load())
	}
	checkInvariants(t, l, db)
}

// TestRunInTxGivesUp: a conflict that never goes away ends as ErrTxConflict,
// never as insufficient funds and never as a raw driver error; the same for
// RunStatement, which retries a single statement the same way.
func TestRunInTxGivesUp(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	tests := []struct {
		name      string
		err       error
		wantCalls int32
		want      error
	}{
		{"serialization failure", &pgconn.PgError{Code: "40001"}, postgres.DefaultAttempts, ledger.ErrTxConflict},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, postgres.DefaultAttempts, ledger.ErrTxConflict},
		{"ledger conflict", ledger.ErrTxConflict, postgres.DefaultAttempts, ledger.ErrTxConflict},
		{"caller error is not retried", ledger.ErrInsufficientFunds, 1, ledger.ErrInsufficientFunds},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			err := postgres.RunInTx(ctx, db, func(*gorm.DB) error { calls.Add(1); return tc.err })
			if !errors.Is(err, tc.want) || calls.Load() != tc.wantCalls {
				t.Fatalf("RunInTx = %v after %d calls, want %v after %d", err, calls.Load(), tc.want, tc.wantCalls)
			}
			var pg *pgconn.PgError
			if errors.As(err, &pg) {
				t.Errorf("RunInTx leaked a pgconn error: %v", err)
			}
			if tc.want == ledger.ErrTxConflict && errors.Is(err, ledger.ErrInsufficientFunds) {
				t.Errorf("conflict reported as insufficient funds: %v", err)
			}

			calls.Store(0)
			err = l.RunStatement(ctx, func(*gorm.DB) error { calls.Add(1); return tc.err })
			if !errors.Is(err, tc.want) || calls.Load() != tc.wantCalls {
				t.Fatalf("RunStatement = %v after %d calls, want %v after %d", err, calls.Load(), tc.want, tc.wantCalls)
			}
			if errors.As(err, &pg) {
				t.Errorf("RunStatement leaked a pgconn error: %v", err)
			}
		})
	}
	t.Run("RunStatement stops at the first success", func(t *testing.T) {
		var calls atomic.Int32
		err := l.RunStatement(ctx, func(db *gorm.DB) error {
			if calls.Add(1) < 3 {
				return &pgconn.PgError{Code: "40P01"}
			}
			return db.Exec(`SELECT 1`).Error
		})
		if err != nil || calls.Load() != 3 {
			t.Fatalf("RunStatement = %v after %d calls, want nil after 3", err, calls.Load())
		}
	})
	t.Run("retry count option", func(t *testing.T) {
		l, err := postgres.NewLedger(db, postgres.WithRetries(2))
		if err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int32
		err = l.RunInTx(ctx, func(*gorm.DB) error { calls.Add(1); return &pgconn.PgError{Code: "40001"} })
		if !errors.Is(err, ledger.ErrTxConflict) || calls.Load() != 2 {
			t.Fatalf("RunInTx = %v after %d calls, want ErrTxConflict after 2", err, calls.Load())
		}
	})
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"serialization failure", &pgconn.PgError{Code: "40001"}, true},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"wrapped conflict", errors.Join(errors.New("x"), ledger.ErrTxConflict), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"insufficient funds", ledger.ErrInsufficientFunds, false},
		{"nil", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := postgres.IsRetryable(tc.err); got != tc.want {
				t.Fatalf("IsRetryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
