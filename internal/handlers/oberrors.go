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

// msgCustomerTokenRequired is the message of a 403 for a client-credentials
// token on a call that acts for a customer.
const msgCustomerTokenRequired = "This call needs a token the customer authorised (authorization code grant), not a client-credentials token"

// obError maps an error of the Open Banking service to the APIError the
// renderer writes. Errors it does not know pass through unchanged (the
// renderer turns them into a 500 and logs the cause): a genuine bug stays a
// 500, while a database that cannot be reached (ledger.ErrUnavailable, the
// judgement of ledger.IsUnavailable, which /readyz's failing ping also
// stands for) is a 503 with Retry-After on every route.
func obError(err error) error {
	var fe *openbanking.FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		// The code tells the cause apart where the path alone cannot: a
		// debtor account that does not exist (NotFound), is in another
		// currency (Unsupported.Currency), or is not the customer's, or
		// otherwise unusable (Field.Invalid).
		code := CodeFieldInvalid
		switch {
		case errors.Is(fe.Err, openbanking.ErrUnsupportedCurrency), errors.Is(fe.Err, openbanking.ErrAccountCurrency):
			code = CodeUnsupportedCurrency
		case errors.Is(fe.Err, openbanking.ErrUnknownAccount):
			code = CodeResourceNotFound
		case fe.Missing:
			code = CodeFieldMissing
		}
		return NewAPIError(http.StatusBadRequest, code, fe.Reason, fe.Path)
	case errors.Is(err, openbanking.ErrNotFound):
		return NewAPIError(http.StatusBadRequest, CodeResourceNotFound, "No such resource", "")
	case errors.Is(err, openbanking.ErrCustomerTokenRequired):
		// Path names the header that carried the token of the wrong kind.
		return NewAPIError(http.StatusForbidden, CodeForbidden, msgCustomerTokenRequired, "Authorization")
	case errors.Is(err, openbanking.ErrForbidden):
		return NewAPIError(http.StatusForbidden, CodeForbidden, "The token does not grant access to this resource", "")
	case errors.Is(err, openbanking.ErrInvalidConsentStatus):
		return NewAPIError(http.StatusBadRequest, CodeInvalidConsentStatus, "The consent is not in a status that allows this", "")
	case errors.Is(err, openbanking.ErrConsentMismatch):
		return NewAPIError(http.StatusBadRequest, CodeConsentMismatch, "Initiation or Risk differ from the consent's", "Data.Initiation")
	case errors.Is(err, openbanking.ErrIdempotencyConflict):
		e := NewAPIError(http.StatusBadRequest, CodeFieldInvalid, msgIdempotencyReused, HeaderIdempotencyKey)
		e.Err = openbanking.ErrIdempotencyConflict // v4.0 answers it otherwise (v4Answer)
		return e
	case errors.Is(err, ledger.ErrTxConflict):
		e := NewAPIError(http.StatusServiceUnavailable, CodeServiceUnavailable, "Conflicting requests, retry", "")
		e.Header = http.Header{echo.HeaderRetryAfter: []string{retryAfterSeconds}}
		return e
	case errors.Is(err, ledger.ErrUnavailable):
		// The request may or may not have taken effect (a commit can be cut
		// off); a retry with the same x-idempotency-key gives the outcome.
		e := NewAPIError(http.StatusServiceUnavailable, CodeUnexpectedError, "Service temporarily unavailable, retry later", "")
		e.Header = http.Header{echo.HeaderRetryAfter: []string{retryAfterSeconds}}
		return e
	}
	return err
}
