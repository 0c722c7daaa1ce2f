package ledger

import (
	"errors"
	"fmt"
	"unicode/utf8"

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

// Validate checks what can be checked without the accounts and returns the
// posting with both account IDs in canonical form (models.CanonicalID).
//
// Errors: ErrUnknownCurrency, ErrInvalidAmount (zero or negative),
// ErrSameAccount, ErrInvalidReference, ErrAccountNotFound (an ID that is not
// a UUID names no account).
func (p TransferParams) Validate() (models.Posting, error) {
	if err := (models.Posting{From: p.From, To: p.To, Amount: p.Amount}).Validate(); err != nil {
		switch {
		case errors.Is(err, models.ErrUnknownCurrency):
			return models.Posting{}, fmt.Errorf("%w %q", ErrUnknownCurrency, p.Amount.Currency)
		case errors.Is(err, models.ErrPostingSameAccount):
			return models.Posting{}, ErrSameAccount
		default:
			return models.Posting{}, fmt.Errorf("%w: %s", ErrInvalidAmount, p.Amount)
		}
	}
	if err := CheckText(p.Reference, MaxReferenceLen); err != nil {
		return models.Posting{}, fmt.Errorf("%w: %v", ErrInvalidReference, err)
	}
	from, ok1 := models.CanonicalID(string(p.From))
	to, ok2 := models.CanonicalID(string(p.To))
	if ok1 && ok2 && from == to {
		return models.Posting{}, ErrSameAccount
	}
	if !ok1 {
		return models.Posting{}, fmt.Errorf("%w: %q", ErrAccountNotFound, p.From)
	}
	if !ok2 {
		return models.Posting{}, fmt.Errorf("%w: %q", ErrAccountNotFound, p.To)
	}
	return models.Posting{From: models.AccountID(from), To: models.AccountID(to), Amount: p.Amount}, nil
}

// CheckText accepts text the database can store (models.CheckText) of at
// most max characters.
func CheckText(s string, max int) error {
	if err := models.CheckText(s); err != nil {
		return err
	}
	if utf8.RuneCountInString(s) > max {
		return fmt.Errorf("longer than %d characters", max)
	}
	return nil
}
