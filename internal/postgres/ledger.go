package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// DefaultSortCode is the sort code of new accounts' identifications unless
// WithSortCode says otherwise.
const DefaultSortCode = "040400"

// Ledger is the double-entry ledger on Postgres. It is safe for concurrent
// use; all state is in the database.
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

// NewLedger returns a Ledger on db, which must be a Postgres database migrated
// with this package's migrations (MigrateUp). Options are applied in order.
func NewLedger(db *gorm.DB, opts ...Option) (*Ledger, error) {
	if db == nil {
		return nil, errors.New("ledger: NewLedger(nil db)")
	}
	l := &Ledger{db: db, now: time.Now, attempts: DefaultAttempts, sortCode: DefaultSortCode}
	for _, o := range opts {
		if err := o(l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// RunInTx is the package-level RunInTx on the ledger's database with its
// configured number of attempts.
func (l *Ledger) RunInTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return runInTx(ctx, l.db, l.attempts, fn)
}

// RunStatement runs fn on the ledger's database outside any explicit
// transaction, retrying it like RunInTx when it fails with a serialization
// failure or deadlock. fn should issue one statement (such as a call of a
// database function that does a whole unit of work), which Postgres runs
// and commits as its own transaction: one round trip instead of three for
// BEGIN, the statement and COMMIT. Errors are returned as fn returns them,
// except that exhausted retries match ledger.ErrTxConflict.
func (l *Ledger) RunStatement(ctx context.Context, fn func(db *gorm.DB) error) error {
	db := l.db.WithContext(ctx)
	return retry(ctx, l.attempts, func() error { return fn(db) })
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
