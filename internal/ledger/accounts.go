package ledger

import (
	"fmt"

	"github.com/obpay/payments/internal/models"
)

// Limits of OpenAccount's text parameters, in characters.
const (
	MaxOwnerLen    = 255
	MaxNicknameLen = 70 // Open Banking's Nickname is Max70Text
)

// SettlementOwner is the Owner of every settlement account.
const SettlementOwner = "bank"

// OpeningReference is the reference of the transfer that funds an opening
// balance.
const OpeningReference = "Opening balance"

// OpenAccountParams describes a new customer account.
type OpenAccountParams struct {
	Owner    string // the PSU subject; required
	Currency string // ISO 4217; required
	Nickname string // optional, at most MaxNicknameLen characters
	// Opening, when set and positive, is transferred from the currency's
	// settlement account to the new account in the same transaction.
	Opening *models.Amount
}

// Validate checks the parameters of a new account.
//
// Errors: ErrInvalidAccount (owner or nickname), ErrUnknownCurrency,
// ErrInvalidAmount (negative opening), ErrCurrencyMismatch (opening in
// another currency).
func (p OpenAccountParams) Validate() error {
	if err := CheckText(p.Owner, MaxOwnerLen); err != nil || p.Owner == "" {
		return fmt.Errorf("%w: owner must be 1 to %d characters of text", ErrInvalidAccount, MaxOwnerLen)
	}
	if err := CheckText(p.Nickname, MaxNicknameLen); err != nil {
		return fmt.Errorf("%w: nickname: %v", ErrInvalidAccount, err)
	}
	if _, ok := models.CurrencyExponent(p.Currency); !ok {
		return fmt.Errorf("%w %q", ErrUnknownCurrency, p.Currency)
	}
	if p.Opening != nil {
		switch {
		case p.Opening.Currency != p.Currency:
			return fmt.Errorf("%w: opening balance in %q for a %s account",
				ErrCurrencyMismatch, p.Opening.Currency, p.Currency)
		case p.Opening.Minor < 0:
			return fmt.Errorf("%w: opening balance %s", ErrInvalidAmount, p.Opening)
		}
	}
	return nil
}
