package ledger

import (
	"errors"
	"fmt"

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
	// The store that talks to the database makes the judgement (one function,
	// IsUnavailable of internal/postgres); the contract is this value:
	// callers test it with errors.Is and never see the driver's error.
	ErrUnavailable = errors.New("ledger: the database cannot be reached; retry later")
	// ErrStorage: the database failed in a way the caller cannot fix (the cause
	// is in the message, for the log).
	ErrStorage = errors.New("ledger: storage error")
)
