package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/models"
)

// MaxReferenceLen is the longest transfer reference, in characters (Open
// Banking's unstructured remittance information is at most 140).
const MaxReferenceLen = 140

// TransferParams asks to move Amount from one account to another.
type TransferParams struct {
	From      models.AccountID
	To        models.AccountID
	Amount    models.Amount
	Reference string // optional, at most MaxReferenceLen characters
}

// Transfer moves p.Amount from p.From to p.To in its own transaction, retried
// on serialization failures and deadlocks, and returns the booked transfer.
//
// Errors: ErrInvalidAmount (zero or negative), ErrUnknownCurrency,
// ErrSameAccount, ErrInvalidReference, ErrAccountNotFound (either account),
// ErrCurrencyMismatch (an account is not in p.Amount's currency),
// ErrInsufficientFunds (a customer account would go below zero), ErrOverflow,
// ErrTxConflict (conflicts outlasted the retries), ErrStorage, or a context
// error. Nothing is written when an error is returned.
func (l *Ledger) Transfer(ctx context.Context, p TransferParams) (models.Transfer, error) {
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
// db.Transaction or RunInTx), so the caller can commit its own rows together
// with the postings. It does not retry: when it returns an error matching
// ErrTxConflict the caller should run its whole transaction again, which
// RunInTx does. After any other error the caller must roll back: the
// transaction may already hold part of the transfer. ErrInsufficientFunds is
// the exception: it is decided on the locked balance before anything is
// written, so the transaction holds nothing of the transfer (only the two row
// locks) and stays usable, e.g. to record a rejected payment without a
// savepoint. Errors are those of Transfer.
func (l *Ledger) TransferTx(ctx context.Context, tx *gorm.DB, p TransferParams) (models.Transfer, error) {
	if tx == nil {
		return models.Transfer{}, fmt.Errorf("%w: TransferTx needs a transaction", ErrStorage)
	}
	return l.transfer(ctx, tx.WithContext(ctx), p)
}

func validateTransfer(p TransferParams) (from, to string, err error) {
	if err := (models.Posting{From: p.From, To: p.To, Amount: p.Amount}).Validate(); err != nil {
		switch {
		case errors.Is(err, models.ErrUnknownCurrency):
			return "", "", fmt.Errorf("%w %q", ErrUnknownCurrency, p.Amount.Currency)
		case errors.Is(err, models.ErrPostingSameAccount):
			return "", "", ErrSameAccount
		default:
			return "", "", fmt.Errorf("%w: %s", ErrInvalidAmount, p.Amount)
		}
	}
	if err := checkText(p.Reference, MaxReferenceLen); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrInvalidReference, err)
	}
	from, ok1 := canonicalID(string(p.From))
	to, ok2 := canonicalID(string(p.To))
	if ok1 && ok2 && from == to {
		return "", "", ErrSameAccount
	}
	if !ok1 {
		return "", "", fmt.Errorf("%w: %q", ErrAccountNotFound, p.From)
	}
	if !ok2 {
		return "", "", fmt.Errorf("%w: %q", ErrAccountNotFound, p.To)
	}
	return from, to, nil
}

// transfer books p inside tx. See Transfer for the errors.
//
// The posting itself is the database function ledger_post (migration 00003),
// one round trip: it locks both accounts in id order, decides on the locked
// balances, moves them and writes the transfer and its two entries. Every
// refusal it reports is decided before it writes anything.
func (l *Ledger) transfer(ctx context.Context, tx *gorm.DB, p TransferParams) (models.Transfer, error) {
	from, to, err := validateTransfer(p)
	if err != nil {
		return models.Transfer{}, err
	}
	id := uuid.NewString()
	var (
		outcome string
		booked  sql.NullTime
	)
	if err := tx.Raw(`SELECT outcome, booked_at FROM ledger_post(?, ?, ?, ?, ?, ?, ?)`,
		id, from, to, p.Amount.Currency, p.Amount.Minor, p.Reference, l.BookingTime()).Row().Scan(&outcome, &booked); err != nil {
		err = translate(ctx, err)
		if errors.Is(err, ErrInsufficientFunds) {
			// The schema's no-overdraft check fired although the locked
			// balance allowed the debit: something changed under the lock.
			// Ask for the whole transaction again (the posting's own check
			// then answers), so that ErrInsufficientFunds always means
			// "decided before any write, transaction still usable".
			return models.Transfer{}, fmt.Errorf("%w: balance check failed under the row lock", ErrTxConflict)
		}
		return models.Transfer{}, err
	}
	if err := PostingError(outcome); err != nil {
		switch {
		case outcome == outcomeDebitNotFound:
			err = fmt.Errorf("%w: %s", err, from)
		case outcome == outcomeCreditNotFound:
			err = fmt.Errorf("%w: %s", err, to)
		case errors.Is(err, ErrCurrencyMismatch):
			err = fmt.Errorf("%w: %s", err, p.Amount)
		}
		return models.Transfer{}, err
	}
	if !booked.Valid {
		return models.Transfer{}, fmt.Errorf("%w: posting reported no booking time", ErrStorage)
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

// Outcomes of the ledger_post database function.
const (
	outcomePosted         = "posted"
	outcomeDebitNotFound  = "debit_account_not_found"
	outcomeCreditNotFound = "credit_account_not_found"
)

// PostingError maps an outcome of the ledger_post database function to the
// ledger's error: nil for "posted", ErrInsufficientFunds, ErrAccountNotFound,
// ErrCurrencyMismatch, ErrOverflow, ErrSameAccount, ErrInvalidAmount, or
// ErrStorage for an outcome this version does not know. Callers of the
// database functions that post (such as a payment's) use it to answer as
// Transfer would.
func PostingError(outcome string) error {
	switch outcome {
	case outcomePosted:
		return nil
	case "insufficient_funds":
		return ErrInsufficientFunds
	case outcomeDebitNotFound, outcomeCreditNotFound:
		return ErrAccountNotFound
	case "currency_mismatch":
		return ErrCurrencyMismatch
	case "overflow":
		return ErrOverflow
	case "same_account":
		return ErrSameAccount
	case "invalid_amount":
		return ErrInvalidAmount
	}
	return fmt.Errorf("%w: unknown posting outcome %q", ErrStorage, outcome)
}

// canonicalID returns the lower-case form of a UUID string, or false when s is
// not a UUID in its usual 36-character form.
func canonicalID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// checkText accepts text the database can store (models.CheckText) of at
// most max characters.
func checkText(s string, max int) error {
	if err := models.CheckText(s); err != nil {
		return err
	}
	if utf8.RuneCountInString(s) > max {
		return fmt.Errorf("longer than %d characters", max)
	}
	return nil
}
