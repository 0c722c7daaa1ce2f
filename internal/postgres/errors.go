package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// known lists the sentinels that translate passes through unchanged.
var known = []error{
	ledger.ErrInsufficientFunds, ledger.ErrCurrencyMismatch, ledger.ErrSameAccount, ledger.ErrInvalidAmount,
	ledger.ErrUnknownCurrency, ledger.ErrAccountNotFound, ledger.ErrInvalidAccount, ledger.ErrInvalidReference,
	ledger.ErrOverflow, ledger.ErrDuplicateIdentification, ledger.ErrImmutable, ledger.ErrUnbalanced,
	ledger.ErrTxConflict, ledger.ErrInvalidQuery, ledger.ErrInvalidCursor, ledger.ErrUnavailable, ledger.ErrStorage,
}

// constraintErrors maps schema constraint names (migrations/00001_ledger.sql)
// to the error a caller can act on.
var constraintErrors = map[string]error{
	"accounts_customer_balance_check":   ledger.ErrInsufficientFunds,
	"transfers_amount_check":            ledger.ErrInvalidAmount,
	"entries_amount_check":              ledger.ErrInvalidAmount,
	"transfers_distinct_accounts_check": ledger.ErrSameAccount,
	"transfers_debit_account_fkey":      ledger.ErrCurrencyMismatch,
	"transfers_credit_account_fkey":     ledger.ErrCurrencyMismatch,
	"entries_account_fkey":              ledger.ErrCurrencyMismatch,
	"accounts_currency_check":           ledger.ErrUnknownCurrency,
	"accounts_owner_check":              ledger.ErrInvalidAccount,
	"accounts_identification_key":       ledger.ErrDuplicateIdentification,
	"accounts_sort_code_check":          ledger.ErrDuplicateIdentification,
	"accounts_settlement_currency_key":  ledger.ErrTxConflict, // a concurrent creation won; a retry finds it
	"ledger_append_only":                ledger.ErrImmutable,
	"accounts_identity_fixed":           ledger.ErrImmutable,
	"transfers_balanced":                ledger.ErrUnbalanced,
	"entries_transfer_direction_key":    ledger.ErrUnbalanced,
}

// SQLSTATE codes after which the whole transaction may simply be run again.
const (
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// IsRetryable reports whether err is a transient conflict (serialization
// failure or deadlock, as a Postgres error or as ledger.ErrTxConflict) after which
// the whole transaction can be run again.
func IsRetryable(err error) bool {
	if errors.Is(err, ledger.ErrTxConflict) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == codeSerializationFailure || pg.Code == codeDeadlockDetected
	}
	return false
}

// translate turns any error met while talking to the database into one of
// the domain's errors, so that no gorm or pgx error escapes. Errors that
// already are ledger or models errors pass through unchanged, and a cancelled
// or expired ctx is reported as ctx.Err().
func translate(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	for _, k := range known {
		if errors.Is(err, k) {
			return err
		}
	}
	if isModelsError(err) {
		return err
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		if pg.Code == codeSerializationFailure || pg.Code == codeDeadlockDetected {
			return fmt.Errorf("%w (SQLSTATE %s)", ledger.ErrTxConflict, pg.Code)
		}
		if e, ok := constraintErrors[pg.ConstraintName]; ok {
			return fmt.Errorf("%w (constraint %s)", e, pg.ConstraintName)
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("ledger: %w", ctxErr)
	}
	if IsUnavailable(ctx, err) {
		return fmt.Errorf("%w: %v", ledger.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %v", ledger.ErrStorage, err)
}

// IsUnavailable reports whether err, met while talking to the database on
// behalf of ctx, means that the database cannot be reached now rather than
// that something is wrong with the request or the code: ledger.ErrUnavailable
// itself; SQLSTATE class 08 (connection exception), 57P01 (admin shutdown),
// 57P02 (crash shutdown) or 57P03 (cannot connect now); a failed connection
// attempt (*pgconn.ConnectError) other than one refused with another
// SQLSTATE (bad credentials are a configuration bug); a network error,
// connection refused, reset or aborted, a broken pipe, EOF in mid-protocol,
// a connection the driver found bad, or a timeout (pgconn.Timeout).
//
// It is false whenever ctx is done: a request whose own context was
// cancelled or expired failed because of that, not because of an outage,
// even though the driver reports it as a network error.
func IsUnavailable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if errors.Is(err, ledger.ErrUnavailable) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return strings.HasPrefix(pg.Code, "08") || pg.Code == "57P01" || pg.Code == "57P02" || pg.Code == "57P03"
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connect), errors.As(err, &netErr):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, driver.ErrBadConn):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return true
	}
	return pgconn.Timeout(err)
}

func isModelsError(err error) bool {
	for _, k := range []error{
		models.ErrAmountEmpty, models.ErrAmountWhitespace, models.ErrAmountNegative, models.ErrAmountPlusSign,
		models.ErrAmountExponent, models.ErrAmountSyntax, models.ErrAmountPrecision, models.ErrAmountOverflow,
		models.ErrUnknownCurrency, models.ErrCurrencyMismatch,
	} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// dbError translates a database error met by the Open Banking store.
// Serialization failures and deadlocks pass through unchanged so that
// RunInTx retries the transaction (and wraps them as ledger.ErrTxConflict
// when retries run out); ErrUnavailable passes through; a done ctx gives the
// context's error; a database that cannot be reached (IsUnavailable) gives
// openbanking.ErrUnavailable; anything else becomes openbanking.ErrStorage.
func dbError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if IsRetryable(err) || errors.Is(err, openbanking.ErrUnavailable) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("openbanking: %w", ctxErr)
	}
	if IsUnavailable(ctx, err) {
		return fmt.Errorf("%w: %v", openbanking.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %v", openbanking.ErrStorage, err)
}

// The SQL boundary: every code a database function of the migrations hands
// back, and the domain error it means. Nothing else decides what a database
// answer means, and no message text is ever read.

// Outcomes of the ledger_post database function (its outcome result column).
const (
	outcomePosted         = "posted"
	outcomeDebitNotFound  = "debit_account_not_found"
	outcomeCreditNotFound = "credit_account_not_found"
)

// postingOutcomes maps each refusing outcome of ledger_post to the ledger's
// error, and the SQLSTATE under which ob_create_payment raises it
// (migrations/00004_typed_outcomes.sql).
var postingOutcomes = map[string]struct {
	err      error
	sqlstate string
}{
	"insufficient_funds":  {ledger.ErrInsufficientFunds, ""}, // a payment records it as Rejected
	outcomeDebitNotFound:  {ledger.ErrAccountNotFound, "OB011"},
	outcomeCreditNotFound: {ledger.ErrAccountNotFound, "OB012"},
	"currency_mismatch":   {ledger.ErrCurrencyMismatch, "OB013"},
	"overflow":            {ledger.ErrOverflow, "OB014"},
	"same_account":        {ledger.ErrSameAccount, "OB015"},
	"invalid_amount":      {ledger.ErrInvalidAmount, "OB016"},
}

// refusals maps the SQLSTATEs that ob_create_payment and ob_claim_key raise
// (see their migrations) to the domain's errors: the Open Banking refusals
// and, from postingOutcomes, the refused postings.
var refusals = func() map[string]error {
	m := map[string]error{
		"OB001": openbanking.ErrNotFound,
		"OB002": openbanking.ErrForbidden,
		"OB003": openbanking.ErrInvalidConsentStatus,
		"OB004": openbanking.ErrConsentMismatch,
		"OB005": openbanking.ErrIdempotencyConflict,
		"OB006": openbanking.ErrOtherVersion,
		"OB010": fmt.Errorf("%w: unknown posting outcome", ledger.ErrStorage),
	}
	for _, o := range postingOutcomes {
		if o.sqlstate != "" {
			m[o.sqlstate] = o.err
		}
	}
	return m
}()

// PostingError maps an outcome of the ledger_post database function to the
// ledger's error: nil for "posted", ledger.ErrInsufficientFunds,
// ledger.ErrAccountNotFound, ledger.ErrCurrencyMismatch, ledger.ErrOverflow,
// ledger.ErrSameAccount, ledger.ErrInvalidAmount, or ledger.ErrStorage for
// an outcome this version does not know.
func PostingError(outcome string) error {
	if outcome == outcomePosted {
		return nil
	}
	if o, ok := postingOutcomes[outcome]; ok {
		return o.err
	}
	return fmt.Errorf("%w: unknown posting outcome %q", ledger.ErrStorage, outcome)
}

// refusalError maps an error of a call of the Open Banking database
// functions by its SQLSTATE (refusals), anything else as dbError does
// (retryable conflicts pass through for the retry).
func refusalError(ctx context.Context, err error) error {
	var pg *pgconn.PgError
	if err == nil || !errors.As(err, &pg) {
		return dbError(ctx, err)
	}
	if e, ok := refusals[pg.Code]; ok {
		return e
	}
	return dbError(ctx, err)
}
