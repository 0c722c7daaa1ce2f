package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
)

// DefaultAttempts is how many times RunInTx runs a transaction that keeps
// failing with a serialization failure or deadlock.
const DefaultAttempts = 10

// Backoff between attempts: full jitter over an exponentially growing window.
const (
	backoffBase = 2 * time.Millisecond
	backoffMax  = 100 * time.Millisecond
)

// RunInTx runs fn in one database transaction on db and commits it, retrying
// the whole transaction (up to DefaultAttempts times, with jittered backoff)
// when fn or the commit fails with a serialization failure or deadlock
// (IsRetryable). fn must therefore be safe to run again: it must not keep
// state from a failed attempt.
//
// An error returned by fn is returned unchanged, unless it is retryable and
// attempts remain. Errors from beginning or committing the transaction are
// translated to ledger errors (for example ledger.ErrUnbalanced,
// ledger.ErrTxConflict, ledger.ErrStorage) or to ctx.Err(). When every
// attempt conflicts, the error matches ledger.ErrTxConflict.
func RunInTx(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	return runInTx(ctx, db, DefaultAttempts, fn)
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
	if errors.Is(last, ledger.ErrTxConflict) {
		return fmt.Errorf("after %d attempts: %w", attempts, last)
	}
	return fmt.Errorf("after %d attempts: %w: %v", attempts, ledger.ErrTxConflict, last)
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
