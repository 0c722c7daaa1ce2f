package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"gorm.io/gorm"
)

// DefaultAttempts is how many times RunInTx runs a transaction that keeps
// failing with a serialization failure or deadlock.
const DefaultAttempts = 10

// Backoff between attempts: full jitter over an exponentially growing window.
const (
	backoffBase = 2 * time.Millisecond
	backoffMax  = 100 * time.Millisecond
)

// DefaultSortCode is the sort code of new accounts' identifications unless
// WithSortCode says otherwise.
const DefaultSortCode = "040400"

// Ledger is the double-entry ledger. It is safe for concurrent use; all state
// is in the database.
type Ledger struct {
	db       *gorm.DB
	now      func() time.Time
	attempts int
	sortCode string
}

// Option configures a Ledger.
type Option func(*Ledger) error

// WithClock sets the clock used for booking times. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(l *Ledger) error {
		if now == nil {
			return errors.New("ledger: WithClock(nil)")
		}
		l.now = now
		return nil
	}
}

// WithRetries sets how many times in total a transaction is attempted when it
// fails with a serialization failure or deadlock (at least 1; the default is
// DefaultAttempts).
func WithRetries(attempts int) Option {
	return func(l *Ledger) error {
		if attempts < 1 {
			return fmt.Errorf("ledger: WithRetries(%d): need at least one attempt", attempts)
		}
		l.attempts = attempts
		return nil
	}
}

// WithSortCode sets the 6-digit sort code that prefixes the identification of
// new accounts (default DefaultSortCode).
func WithSortCode(code string) Option {
	return func(l *Ledger) error {
		if len(code) != 6 || !digitsOnly(code) {
			return fmt.Errorf("ledger: WithSortCode(%q): need 6 digits", code)
		}
		l.sortCode = code
		return nil
	}
}

// New returns a Ledger on db, which must be a Postgres database migrated with
// this module's migrations. Options are applied in order.
func New(db *gorm.DB, opts ...Option) (*Ledger, error) {
	if db == nil {
		return nil, errors.New("ledger: New(nil db)")
	}
	l := &Ledger{db: db, now: time.Now, attempts: DefaultAttempts, sortCode: DefaultSortCode}
	for _, o := range opts {
		if err := o(l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// RunInTx runs fn in one database transaction on db and commits it, retrying
// the whole transaction (up to DefaultAttempts times, with jittered backoff)
// when fn or the commit fails with a serialization failure or deadlock
// (IsRetryable). fn must therefore be safe to run again: it must not keep
// state from a failed attempt.
//
// An error returned by fn is returned unchanged, unless it is retryable and
// attempts remain. Errors from beginning or committing the transaction are
// translated to ledger errors (for example ErrUnbalanced, ErrTxConflict,
// ErrStorage) or to ctx.Err(). When every attempt conflicts, the error matches
// ErrTxConflict.
func RunInTx(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	return runInTx(ctx, db, DefaultAttempts, fn)
}

// RunInTx is the package-level RunInTx on the ledger's database with its
// configured number of attempts.
func (l *Ledger) RunInTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return runInTx(ctx, l.db, l.attempts, fn)
}

func runInTx(ctx context.Context, db *gorm.DB, attempts int, fn func(tx *gorm.DB) error) error {
	return retry(ctx, attempts, func() error {
		var fnErr error
		err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			fnErr = fn(tx)
			return fnErr
		})
		if err != nil && fnErr == nil {
			err = translate(ctx, err) // begin or commit failed
		}
		return err
	})
}

// RunStatement runs fn on the ledger's database outside any explicit
// transaction, retrying it like RunInTx when it fails with a serialization
// failure or deadlock. fn should issue one statement (such as a call of a
// database function that does a whole unit of work), which Postgres runs
// and commits as its own transaction: one round trip instead of three for
// BEGIN, the statement and COMMIT. Errors are returned as fn returns them,
// except that exhausted retries match ErrTxConflict.
func (l *Ledger) RunStatement(ctx context.Context, fn func(db *gorm.DB) error) error {
	db := l.db.WithContext(ctx)
	return retry(ctx, l.attempts, func() error { return fn(db) })
}

// retry runs attempt up to attempts times with jittered backoff while it
// fails with a retryable error (IsRetryable).
func retry(ctx context.Context, attempts int, attempt func() error) error {
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if err := sleep(ctx, backoff(i)); err != nil {
				return fmt.Errorf("ledger: %w", err)
			}
		}
		err := attempt()
		if err == nil {
			return nil
		}
		if !IsRetryable(err) {
			return err
		}
		last = err
	}
	if errors.Is(last, ErrTxConflict) {
		return fmt.Errorf("after %d attempts: %w", attempts, last)
	}
	return fmt.Errorf("after %d attempts: %w: %v", attempts, ErrTxConflict, last)
}

// backoff returns a random wait in [0, min(base*2^attempt, max)).
func backoff(attempt int) time.Duration {
	window := backoffMax
	if attempt < 10 {
		window = min(backoffBase<<attempt, backoffMax)
	}
	return time.Duration(rand.Int64N(int64(window)) + 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// BookingTime returns the ledger clock's time at the database's precision:
// the earliest booking time of a transfer posted now (the posting moves it
// later only when an account already has a later entry).
func (l *Ledger) BookingTime() time.Time {
	return l.now().UTC().Truncate(time.Microsecond)
}

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
