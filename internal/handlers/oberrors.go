package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/openbanking"
)

// More OB error codes used by the API handlers.
const (
	CodeUnsupportedCurrency = "UK.OBIE.Unsupported.Currency"
)

// obError maps an error of the Open Banking service to the APIError the
// renderer writes. Errors it does not know pass through unchanged (the
// renderer turns them into a 500 and logs the cause).
func obError(err error) error {
	var fe *openbanking.FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		code := CodeFieldInvalid
		switch {
		case errors.Is(fe.Err, openbanking.ErrUnsupportedCurrency):
			code = CodeUnsupportedCurrency
		case fe.Missing:
			code = CodeFieldMissing
		}
		return NewAPIError(http.StatusBadRequest, code, fe.Reason, fe.Path)
	case errors.Is(err, openbanking.ErrNotFound):
		return NewAPIError(http.StatusBadRequest, CodeResourceNotFound, "No such resource", "")
	case errors.Is(err, openbanking.ErrForbidden):
		return NewAPIError(http.StatusForbidden, CodeForbidden, "The token does not grant access to this resource", "")
	case errors.Is(err, openbanking.ErrInvalidConsentStatus):
		return NewAPIError(http.StatusBadRequest, CodeInvalidConsentStatus, "The consent is not in a status that allows this", "")
	case errors.Is(err, openbanking.ErrConsentMismatch):
		return NewAPIError(http.StatusBadRequest, CodeConsentMismatch, "Initiation or Risk differ from the consent's", "Data.Initiation")
	case errors.Is(err, openbanking.ErrIdempotencyConflict):
		return NewAPIError(http.StatusBadRequest, CodeFieldInvalid, "Idempotency key already used with another request body", HeaderIdempotencyKey)
	case errors.Is(err, ledger.ErrTxConflict):
		e := NewAPIError(http.StatusServiceUnavailable, CodeServiceUnavailable, "Conflicting requests, retry", "")
		e.Header = http.Header{echo.HeaderRetryAfter: []string{"1"}}
		return e
	}
	return err
}
