package openbanking

import (
	"context"
	"errors"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

// OpenAccountRequest opens a customer account. OpeningBalance is a decimal
// string in Currency; "" means zero.
type OpenAccountRequest struct {
	Owner          string
	Currency       string
	Nickname       string
	OpeningBalance string
}

// OpenAccount opens a customer account for a PSU, funded from the bank's
// settlement account when OpeningBalance is positive.
//
// Errors: *FieldError (Owner, Nickname, Currency with ErrUnsupportedCurrency,
// OpeningBalance), ledger.ErrOverflow (the settlement balance would
// overflow), ledger.ErrDuplicateIdentification (no free account number),
// ledger.ErrTxConflict, ErrUnavailable, ledger.ErrStorage, or a context
// error.
func (s *Service) OpenAccount(ctx context.Context, req OpenAccountRequest) (models.Account, error) {
	if _, ok := models.CurrencyExponent(req.Currency); !ok {
		return models.Account{}, &FieldError{Path: "Currency", Reason: "currency not supported", Err: ErrUnsupportedCurrency}
	}
	p := ledger.OpenAccountParams{Owner: req.Owner, Currency: req.Currency, Nickname: req.Nickname}
	if req.OpeningBalance != "" {
		a, err := models.ParseAmount(req.OpeningBalance, req.Currency)
		switch {
		case errors.Is(err, models.ErrAmountPrecision):
			return models.Account{}, invalidField("OpeningBalance", "more decimals than the currency allows")
		case err != nil:
			return models.Account{}, invalidField("OpeningBalance", "not a valid amount")
		}
		p.Opening = &a
	}
	a, err := s.store.OpenAccount(ctx, p)
	if errors.Is(err, ledger.ErrInvalidAccount) {
		return models.Account{}, invalidField("Owner", "owner or nickname is not valid text of the allowed length")
	}
	return a, err
}

// Reconcile recomputes every balance from the ledger's entries (see
// LedgerStore.Reconcile).
//
// Errors: those of LedgerStore.Reconcile.
func (s *Service) Reconcile(ctx context.Context) (ledger.Report, error) {
	return s.store.Reconcile(ctx)
}
