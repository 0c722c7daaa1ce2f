package openbanking

import (
	"errors"
	"fmt"

	"github.com/obpay/payments/internal/ledger"
)

// Errors returned by the Service. Callers branch on them with errors.Is.
var (
	// ErrNotFound: no consent, payment or account with that id.
	ErrNotFound = errors.New("openbanking: resource not found")
	// ErrForbidden: the resource belongs to another client, the token is not
	// a PSU token for the consent in question, or the consent does not grant
	// the call (not authorised, expired, revoked, missing permission, an
	// account of another PSU).
	ErrForbidden = errors.New("openbanking: forbidden")
	// ErrCustomerTokenRequired is the ErrForbidden of a client-credentials
	// token on a call that acts for a customer (a payment, a funds
	// confirmation, an account read): it needs the token the customer
	// authorised (authorization code grant). errors.Is(err, ErrForbidden)
	// holds for it.
	ErrCustomerTokenRequired = fmt.Errorf("%w: the call needs the customer's token", ErrForbidden)
	// ErrInvalidConsentStatus: the consent is not in the status the operation
	// needs (for example a payment on a consent that is not Authorised).
	ErrInvalidConsentStatus = errors.New("openbanking: invalid consent status")
	// ErrConsentMismatch: a payment's Initiation or Risk differs from its
	// consent's.
	ErrConsentMismatch = errors.New("openbanking: payment does not match its consent")
	// ErrIdempotencyConflict: the idempotency key was used by the same client
	// for the same operation with another request body.
	ErrIdempotencyConflict = errors.New("openbanking: idempotency key reused with another request")
	// ErrInvalidField: a request field has a value the service refuses; it is
	// always wrapped in a *FieldError that names the field.
	ErrInvalidField = errors.New("openbanking: invalid field")
	// ErrUnsupportedCurrency: a currency the ledger does not know; wrapped in
	// a *FieldError that names the field.
	ErrUnsupportedCurrency = errors.New("openbanking: unsupported currency")
	// ErrUnknownAccount, ErrNotPSUAccount and ErrAccountCurrency say why an
	// account named in a request (the debtor account of an authorisation)
	// cannot be used: there is no such account, it is not a customer
	// account of the PSU, or it is not in the consent's currency. Each is
	// wrapped in a *FieldError, and errors.Is(err, ErrInvalidField) holds
	// for each.
	ErrUnknownAccount  = fmt.Errorf("%w: unknown account", ErrInvalidField)
	ErrNotPSUAccount   = fmt.Errorf("%w: not an account of the PSU", ErrInvalidField)
	ErrAccountCurrency = fmt.Errorf("%w: account not in the consent's currency", ErrInvalidField)
	// ErrUnavailable is ledger.ErrUnavailable, the same value under this
	// package's name: the database cannot be reached; retry later (with the
	// same idempotency key: a write that met it may have committed). The
	// judgement is postgres.IsUnavailable's, made once for both packages.
	ErrUnavailable = ledger.ErrUnavailable
	// ErrStorage: the database failed unexpectedly (the cause is in the
	// message, for the log).
	ErrStorage = errors.New("openbanking: storage error")
)

// FieldError is a refused request field. Path is the field's dotted path in
// the OB request body (for example "Data.Initiation.InstructedAmount.Amount")
// or a header name; Reason is a fixed description that never contains request
// input. Err is ErrInvalidField, ErrUnsupportedCurrency, or one of the
// account errors that wrap ErrInvalidField (ErrUnknownAccount,
// ErrNotPSUAccount, ErrAccountCurrency).
type FieldError struct {
	Path    string
	Reason  string
	Missing bool // the field is absent but required here
	Err     error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%v: %s: %s", e.Err, e.Path, e.Reason)
}

func (e *FieldError) Unwrap() error { return e.Err }

func invalidField(path, reason string) error {
	return &FieldError{Path: path, Reason: reason, Err: ErrInvalidField}
}
