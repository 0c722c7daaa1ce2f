package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

// Transfer moves p.Amount from p.From to p.To in its own transaction, retried
// on serialization failures and deadlocks, and returns the booked transfer.
//
// Errors: ledger.ErrInvalidAmount (zero or negative), ledger.ErrUnknownCurrency,
// ledger.ErrSameAccount, ledger.ErrInvalidReference, ledger.ErrAccountNotFound (either account),
// ledger.ErrCurrencyMismatch (an account is not in p.Amount's currency),
// ledger.ErrInsufficientFunds (a customer account would go below zero), ledger.ErrOverflow,
// ledger.ErrTxConflict (conflicts outlasted the retries), ledger.ErrStorage, or a context
// error. Nothing is written when an error is returned.
func (l *Ledger) Transfer(ctx context.Context, p ledger.TransferParams) (models.Transfer, error) {
	var out models.Transfer
	err := l.RunInTx(ctx, func(tx *gorm.DB) error {
		t, err := l.transfer(ctx, tx, p)
		out = t
		return err
	})
	if err != nil {
		return models.Transfer{}, err
	}
	return out, nil
}

// TransferTx is Transfer inside the caller's transaction tx (a *gorm.DB from
// db.Transaction or Ledger.RunInTx), so the caller can commit its own rows
// together with the postings. It is the API for such callers; nothing in the
// service calls it (payments post inside ob_create_payment), and its tests
// hold it to the promises below. It does not retry: when it returns an error matching
// ledger.ErrTxConflict the caller should run its whole transaction again, which
// RunInTx does. After any other error the caller must roll back: the
// transaction may already hold part of the transfer. ledger.ErrInsufficientFunds is
// the exception: it is decided on the locked balance before anything is
// written, so the transaction holds nothing of the transfer (only the two row
// locks) and stays usable, e.g. to record a rejected payment without a
// savepoint. Errors are those of Transfer.
func (l *Ledger) TransferTx(ctx context.Context, tx *gorm.DB, p ledger.TransferParams) (models.Transfer, error) {
	if tx == nil {
		return models.Transfer{}, fmt.Errorf("%w: TransferTx needs a transaction", ledger.ErrStorage)
	}
	return l.transfer(ctx, tx.WithContext(ctx), p)
}

// transfer books p inside tx. See Transfer for the errors.
//
// The posting itself is the database function ledger_post (migration 00003),
// one round trip: it locks both accounts in id order, decides on the locked
// balances, moves them and writes the transfer and its two entries. Every
// refusal it reports is decided before it writes anything.
func (l *Ledger) transfer(ctx context.Context, tx *gorm.DB, p ledger.TransferParams) (models.Transfer, error) {
	posting, err := p.Validate()
	if err != nil {
		return models.Transfer{}, err
	}
	from, to := string(posting.From), string(posting.To)
	id := uuid.NewString()
	var (
		outcome string
		booked  sql.NullTime
	)
	if err := tx.Raw(`SELECT outcome, booked_at FROM ledger_post(?, ?, ?, ?, ?, ?, ?)`,
		id, from, to, p.Amount.Currency, p.Amount.Minor, p.Reference, l.BookingTime()).Row().Scan(&outcome, &booked); err != nil {
		err = translate(ctx, err)
		if errors.Is(err, ledger.ErrInsufficientFunds) {
			// The schema's no-overdraft check fired although the locked
			// balance allowed the debit: something changed under the lock.
			// Ask for the whole transaction again (the posting's own check
			// then answers), so that ledger.ErrInsufficientFunds always means
			// "decided before any write, transaction still usable".
			return models.Transfer{}, fmt.Errorf("%w: balance check failed under the row lock", ledger.ErrTxConflict)
		}
		return models.Transfer{}, err
	}
	if err := PostingError(outcome); err != nil {
		switch {
		case outcome == outcomeDebitNotFound:
			err = fmt.Errorf("%w: %s", err, from)
		case outcome == outcomeCreditNotFound:
			err = fmt.Errorf("%w: %s", err, to)
		case errors.Is(err, ledger.ErrCurrencyMismatch):
			err = fmt.Errorf("%w: %s", err, p.Amount)
		}
		return models.Transfer{}, err
	}
	if !booked.Valid {
		return models.Transfer{}, fmt.Errorf("%w: posting reported no booking time", ledger.ErrStorage)
	}
	return models.Transfer{
		ID:        models.TransferID(id),
		From:      models.AccountID(from),
		To:        models.AccountID(to),
		Amount:    p.Amount,
		Reference: p.Reference,
		BookedAt:  booked.Time.UTC(),
	}, nil
}
