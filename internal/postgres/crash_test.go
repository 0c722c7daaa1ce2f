package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/postgres"
)

// TestNothingPartialIsCommitted kills transfers in the middle of the posting
// statement, after the balances moved and the transfer row was written and
// while the entries are being inserted (a test trigger stalls that insert), by
// cancelling the context or by terminating the connection, and checks that
// no trace of them was committed.
func TestNothingPartialIsCommitted(t *testing.T) {
	tests := []struct {
		name string
		// kill runs while the posting is stalled; pid is its backend.
		kill func(t *testing.T, db *gorm.DB, pid int64, cancel context.CancelFunc)
		want error
	}{
		{
			name: "cancelled context",
			kill: func(t *testing.T, _ *gorm.DB, _ int64, cancel context.CancelFunc) { cancel() },
			want: context.Canceled,
		},
		{
			name: "closed connection",
			kill: func(t *testing.T, db *gorm.DB, pid int64, _ context.CancelFunc) {
				var ok bool
				if err := db.Raw(`SELECT pg_terminate_backend(?)`, pid).Row().Scan(&ok); err != nil || !ok {
					t.Errorf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
				}
			},
			// The terminated backend reports 57P01 (admin shutdown), as a
			// server shutting down does: the database is unavailable, and a
			// retry is safe because nothing was committed.
			want: ledger.ErrUnavailable,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, db := newLedger(t, postgres.WithRetries(1))
			a := openAccount(t, l, "alice", "GBP", "50.00")
			b := openAccount(t, l, "bob", "GBP", "")
			// From now on every entry insert stalls inside the posting.
			for _, q := range []string{
				`CREATE FUNCTION test_stall_entries() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$`,
				`CREATE TRIGGER test_stall_entries BEFORE INSERT ON entries
				FOR EACH ROW EXECUTE FUNCTION test_stall_entries()`,
			} {
				if err := db.Exec(q).Error; err != nil {
					t.Fatalf("install the stall: %v", err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := l.Transfer(ctx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "20.00")})
				done <- err
			}()
			pid := stalledBackend(t, db)
			tc.kill(t, db, pid, cancel)
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the transfer did not end after the kill")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Transfer = %v, want %v", err, tc.want)
			}
			if err := db.Exec(`DROP TRIGGER test_stall_entries ON entries`).Error; err != nil {
				t.Fatalf("remove the stall: %v", err)
			}
			assertUntouched(t, l, db, a.ID, b.ID)
		})
	}
}

// stalledBackend waits until a backend of this test's database sleeps in the
// stall trigger, with the transfer's balance update and transfer row already
// written in its open transaction, and returns its pid.
func stalledBackend(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var pids []int64
		if err := db.Raw(`SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()`).Scan(&pids).Error; err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		if len(pids) == 1 {
			return pids[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no posting reached the stall")
	return 0
}

// TestCallerTransactionRollsBackPostings: TransferTx inside a caller's
// transaction commits with it, or not at all when the caller's transaction
// fails later (its context cancelled before commit, or its connection killed).
func TestCallerTransactionRollsBackPostings(t *testing.T) {
	errLater := errors.New("payment record failed")
	tests := []struct {
		name string
		// after runs in the caller's transaction after TransferTx.
		after func(t *testing.T, db, tx *gorm.DB, cancel context.CancelFunc) error
	}{
		{"caller returns an error", func(*testing.T, *gorm.DB, *gorm.DB, context.CancelFunc) error { return errLater }},
		{"context cancelled before commit", func(_ *testing.T, _, _ *gorm.DB, cancel context.CancelFunc) error {
			cancel()
			return nil
		}},
		{"connection closed before commit", func(t *testing.T, db, tx *gorm.DB, _ context.CancelFunc) error {
			var pid int64
			if err := tx.Raw(`SELECT pg_backend_pid()`).Row().Scan(&pid); err != nil {
				t.Errorf("pg_backend_pid = %v", err)
			}
			return db.Exec(`SELECT pg_terminate_backend(?)`, pid).Error
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, db := newLedger(t)
			a := openAccount(t, l, "alice", "GBP", "50.00")
			b := openAccount(t, l, "bob", "GBP", "")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := l.RunInTx(ctx, func(tx *gorm.DB) error {
				if _, err := l.TransferTx(ctx, tx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "20.00")}); err != nil {
					t.Errorf("TransferTx = %v", err)
					return err
				}
				return tc.after(t, db, tx, cancel)
			})
			if err == nil {
				t.Fatal("RunInTx = nil, want the failure")
			}
			assertUntouched(t, l, db, a.ID, b.ID)
		})
	}
	t.Run("commits together", func(t *testing.T) {
		l, db := newLedger(t)
		a := openAccount(t, l, "alice", "GBP", "50.00")
		b := openAccount(t, l, "bob", "GBP", "")
		ctx := context.Background()
		err := l.RunInTx(ctx, func(tx *gorm.DB) error {
			for range 2 {
				if _, err := l.TransferTx(ctx, tx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "20.00")}); err != nil {
					return err
				}
			}
			// A third one fails inside the same transaction: the caller gets
			// the ledger's error and rolls everything back.
			_, err := l.TransferTx(ctx, tx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "20.00")})
			return err
		})
		if !errors.Is(err, ledger.ErrInsufficientFunds) {
			t.Fatalf("RunInTx = %v, want ErrInsufficientFunds", err)
		}
		assertUntouched(t, l, db, a.ID, b.ID)
	})
}

// assertUntouched checks that only the opening transfer exists and balances
// are as opened (a: 50.00, b: 0).
func assertUntouched(t *testing.T, l *postgres.Ledger, db *gorm.DB, a, b models.AccountID) {
	t.Helper()
	var transfers, entries int64
	var maxVersion sql.NullInt64
	db.Raw(`SELECT count(*) FROM transfers`).Scan(&transfers)
	db.Raw(`SELECT count(*) FROM entries`).Scan(&entries)
	db.Raw(`SELECT max(version) FROM accounts WHERE id IN (?, ?)`, string(a), string(b)).Scan(&maxVersion)
	if transfers != 1 || entries != 2 || maxVersion.Int64 != 1 {
		t.Errorf("after the failure: %d transfers, %d entries, max version %d; want 1, 2, 1 (the opening only)",
			transfers, entries, maxVersion.Int64)
	}
	if got := balance(t, l, a); got != gbp(t, "50.00") {
		t.Errorf("Balance(a) = %s, want 50.00", got)
	}
	if got := balance(t, l, b); got != gbp(t, "0") {
		t.Errorf("Balance(b) = %s, want 0.00", got)
	}
	checkInvariants(t, l, db)
}
