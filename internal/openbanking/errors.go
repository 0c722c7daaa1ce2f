package openbanking

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

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
	// ErrUnavailable is ledger.ErrUnavailable, the same value under this
	// package's name: the database cannot be reached; retry later (with the
	// same idempotency key: a write that met it may have committed). The
	// judgement is ledger.IsUnavailable's, made once for both packages.
	ErrUnavailable = ledger.ErrUnavailable
	// ErrStorage: the database failed unexpectedly (the cause is in the
	// message, for the log).
	ErrStorage = errors.New("openbanking: storage error")
)

// FieldError is a refused request field. Path is the field's dotted path in
// the OB request body (for example "Data.Initiation.InstructedAmount.Amount")
// or a header name; Reason is a fixed description that never contains request
// input. Err is ErrInvalidField or ErrUnsupportedCurrency.
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

// dbError translates a database error met in this package. Serialization
// failures and deadlocks pass through unchanged so that ledger.RunInTx retries
// the transaction (and wraps them as ledger.ErrTxConflict when retries run
// out); ErrUnavailable passes through; a done ctx gives the context's error;
// a database that cannot be reached (ledger.IsUnavailable) gives
// ErrUnavailable; anything else becomes ErrStorage.
func dbError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ledger.IsRetryable(err) || errors.Is(err, ErrUnavailable) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("openbanking: %w", ctxErr)
	}
	if ledger.IsUnavailable(ctx, err) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %v", ErrStorage, err)
}

// SQLSTATEs that ob_create_payment and ob_claim_key raise (see their
// migration).
var refusals = map[string]error{
	"OB001": ErrNotFound,
	"OB002": ErrForbidden,
	"OB003": ErrInvalidConsentStatus,
	"OB004": ErrConsentMismatch,
	"OB005": ErrIdempotencyConflict,
}

// refusalError maps an error of a call of this package's database functions:
// their refusals to this package's errors, a refused posting to the ledger's
// error, anything else as dbError does (retryable conflicts pass through for
// the retry).
func refusalError(ctx context.Context, err error) error {
	var pg *pgconn.PgError
	if err == nil || !errors.As(err, &pg) {
		return dbError(ctx, err)
	}
	if e, ok := refusals[pg.Code]; ok {
		return e
	}
	if pg.Code == "OB010" {
		if e := ledger.PostingError(pg.Message); e != nil {
			return e
		}
	}
	return dbError(ctx, err)
}
