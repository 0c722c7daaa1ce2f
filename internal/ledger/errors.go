package ledger

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

	"github.com/obpay/payments/internal/models"
)

// Errors returned by the ledger. Callers branch on them with errors.Is.
var (
	// ErrInsufficientFunds: the debited customer account would go below zero.
	ErrInsufficientFunds = errors.New("ledger: insufficient funds")
	// ErrCurrencyMismatch: the amount and the accounts are not all in one
	// currency.
	ErrCurrencyMismatch = errors.New("ledger: currency mismatch")
	// ErrSameAccount: a transfer from an account to itself.
	ErrSameAccount = errors.New("ledger: debit and credit account are the same")
	// ErrInvalidAmount: an amount that is zero or negative where a positive one
	// is required.
	ErrInvalidAmount = errors.New("ledger: amount must be positive")
	// ErrUnknownCurrency: not an ISO 4217 code the ledger knows. It also
	// matches models.ErrUnknownCurrency.
	ErrUnknownCurrency = fmt.Errorf("ledger: %w", models.ErrUnknownCurrency)
	// ErrAccountNotFound: no account with that ID or identification (a
	// malformed ID is simply not found).
	ErrAccountNotFound = errors.New("ledger: account not found")
	// ErrInvalidAccount: an OpenAccount parameter other than the currency or
	// amount is invalid (empty or oversized owner, oversized nickname, text that
	// is not valid UTF-8 or contains NUL).
	ErrInvalidAccount = errors.New("ledger: invalid account parameters")
	// ErrInvalidReference: a transfer reference longer than MaxReferenceLen
	// characters, not valid UTF-8, or containing NUL.
	ErrInvalidReference = errors.New("ledger: invalid reference")
	// ErrOverflow: a balance would leave the int64 range.
	ErrOverflow = errors.New("ledger: balance overflow")
	// ErrDuplicateIdentification: the account identification is already used.
	ErrDuplicateIdentification = errors.New("ledger: duplicate account identification")
	// ErrImmutable: an attempt to change or delete a transfer, an entry, or an
	// account's identity.
	ErrImmutable = errors.New("ledger: ledger rows are append-only")
	// ErrUnbalanced: a transfer without exactly its matching debit and credit
	// entries (the schema refuses to commit it).
	ErrUnbalanced = errors.New("ledger: transfer does not balance")
	// ErrTxConflict: a serialization failure or deadlock that persisted after
	// every retry. Retrying later may succeed; it is never a funds problem.
	ErrTxConflict = errors.New("ledger: transaction conflict, retry")
	// ErrInvalidQuery: an Entries query with a bad limit or time range.
	ErrInvalidQuery = errors.New("ledger: invalid query")
	// ErrInvalidCursor: a pagination cursor this package did not produce.
	ErrInvalidCursor = errors.New("ledger: invalid cursor")
	// ErrUnavailable: the database cannot be reached (connection refused or
	// reset, server shutting down or starting up, connect timeout). The request
	// was not wrong: retrying later may succeed. A write that met it may or may
	// not have committed, so it must be retried with the same idempotency key.
	// IsUnavailable is the one judgement that produces it.
	ErrUnavailable = errors.New("ledger: the database cannot be reached; retry later")
	// ErrStorage: the database failed in a way the caller cannot fix (the cause
	// is in the message, for the log).
	ErrStorage = errors.New("ledger: storage error")
)

// known lists the sentinels that translate passes through unchanged.
var known = []error{
	ErrInsufficientFunds, ErrCurrencyMismatch, ErrSameAccount, ErrInvalidAmount, ErrUnknownCurrency,
	ErrAccountNotFound, ErrInvalidAccount, ErrInvalidReference, ErrOverflow, ErrDuplicateIdentification,
	ErrImmutable, ErrUnbalanced, ErrTxConflict, ErrInvalidQuery, ErrInvalidCursor, ErrUnavailable, ErrStorage,
}

// constraintErrors maps schema constraint names (migrations/00001_ledger.sql)
// to the error a caller can act on.
var constraintErrors = map[string]error{
	"accounts_customer_balance_check":   ErrInsufficientFunds,
	"transfers_amount_check":            ErrInvalidAmount,
	"entries_amount_check":              ErrInvalidAmount,
	"transfers_distinct_accounts_check": ErrSameAccount,
	"transfers_debit_account_fkey":      ErrCurrencyMismatch,
	"transfers_credit_account_fkey":     ErrCurrencyMismatch,
	"entries_account_fkey":              ErrCurrencyMismatch,
	"accounts_currency_check":           ErrUnknownCurrency,
	"accounts_owner_check":              ErrInvalidAccount,
	"accounts_identification_key":       ErrDuplicateIdentification,
	"accounts_sort_code_check":          ErrDuplicateIdentification,
	"accounts_settlement_currency_key":  ErrTxConflict, // a concurrent creation won; a retry finds it
	"ledger_append_only":                ErrImmutable,
	"accounts_identity_fixed":           ErrImmutable,
	"transfers_balanced":                ErrUnbalanced,
	"entries_transfer_direction_key":    ErrUnbalanced,
}

// SQLSTATE codes after which the whole transaction may simply be run again.
const (
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// IsRetryable reports whether err is a transient conflict (serialization
// failure or deadlock, as a Postgres error or as ErrTxConflict) after which
// the whole transaction can be run again.
func IsRetryable(err error) bool {
	if errors.Is(err, ErrTxConflict) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == codeSerializationFailure || pg.Code == codeDeadlockDetected
	}
	return false
}

// translate turns any error met while talking to the database into one of
// this package's errors, so that no gorm or pgx error escapes. Errors that
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
			return fmt.Errorf("%w (SQLSTATE %s)", ErrTxConflict, pg.Code)
		}
		if e, ok := constraintErrors[pg.ConstraintName]; ok {
			return fmt.Errorf("%w (constraint %s)", e, pg.ConstraintName)
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("ledger: %w", ctxErr)
	}
	if IsUnavailable(ctx, err) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %v", ErrStorage, err)
}

// IsUnavailable reports whether err, met while talking to the database on
// behalf of ctx, means that the database cannot be reached now rather than
// that something is wrong with the request or the code: ErrUnavailable
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
	if errors.Is(err, ErrUnavailable) {
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
