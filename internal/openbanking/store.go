package openbanking

import (
	"context"
	"time"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

// Store is the storage the Service consumes, in its own words. The
// implementation (internal/postgres) runs each method as one transaction, or
// one statement, retried as a whole on serialization failures and deadlocks.
//
// Every method may also return ledger.ErrTxConflict (conflicts outlasted the
// retries), ErrUnavailable (the database cannot be reached), ErrStorage or
// ledger.ErrStorage (any other storage failure) and a context error; the
// lists below name only the errors that carry meaning. A Store never returns
// a driver's error.
type Store interface {
	LedgerStore
	ConsentStore
}

// LedgerStore is the part of the ledger the Service uses.
type LedgerStore interface {
	// OpenAccount opens a customer account, funding it from the currency's
	// settlement account when p.Opening is positive. It locks the settlement
	// account while funding. Errors: those of ledger.OpenAccountParams.Validate,
	// ledger.ErrOverflow, ledger.ErrDuplicateIdentification.
	OpenAccount(ctx context.Context, p ledger.OpenAccountParams) (models.Account, error)
	// Account returns an account. It locks nothing. Errors:
	// ledger.ErrAccountNotFound (also for an id that is not a UUID).
	Account(ctx context.Context, id models.AccountID) (models.Account, error)
	// AccountByIdentification returns the account with that scheme
	// identification. It locks nothing. Errors: ledger.ErrAccountNotFound.
	AccountByIdentification(ctx context.Context, scheme, identification string) (models.Account, error)
	// SettlementAccount returns the currency's settlement account, creating
	// it when missing. Errors: ledger.ErrUnknownCurrency.
	SettlementAccount(ctx context.Context, currency string) (models.Account, error)
	// AccountsByOwner returns owner's customer accounts, oldest first (never
	// nil). It locks nothing.
	AccountsByOwner(ctx context.Context, owner string) ([]models.Account, error)
	// Entries returns one page of an account's entries in booking order. It
	// locks nothing. Errors: ledger.ErrAccountNotFound,
	// ledger.ErrInvalidQuery, ledger.ErrInvalidCursor.
	Entries(ctx context.Context, q ledger.EntriesQuery) (ledger.EntriesPage, error)
	// Reconcile recomputes every balance from the entries in one consistent
	// snapshot. It locks nothing. Errors: ledger.ErrOverflow.
	Reconcile(ctx context.Context) (ledger.Report, error)
}

// ConsentStore keeps consents, payments and idempotency keys.
type ConsentStore interface {
	// Consent returns a consent with its debtor account's identification. It
	// locks nothing. Errors: ErrNotFound (also for an id that is not a UUID).
	Consent(ctx context.Context, id string) (Consent, error)

	// CreatePaymentConsent claims k (see KeyClaim) and, when the key is
	// new, stores c, all in one transaction. When the key was used before
	// with the same request hash it changes nothing and returns the id of
	// the consent recorded with it. When the key is new and refuse is not
	// nil, it writes nothing (the key claim is rolled back) and returns
	// refuse: a replay is answered even after the request would no longer
	// be accepted. Errors: ErrIdempotencyConflict (same key, other hash),
	// refuse.
	CreatePaymentConsent(ctx context.Context, k KeyClaim, c Consent, refuse error) (existing string, err error)

	// CreateAccessConsent stores a new account access consent.
	CreateAccessConsent(ctx context.Context, c Consent) error

	// UpdateConsent locks the consent (SELECT ... FOR UPDATE), passes it to
	// decide and, when decide returns a change, writes it, all in one
	// transaction; decide may run again when the transaction is retried, so
	// it must not keep state from a failed attempt. A nil change writes
	// nothing. Errors: ErrNotFound, decide's error, ErrStorage when the
	// schema refuses the transition (decide must not ask for one).
	UpdateConsent(ctx context.Context, id string, decide func(Consent) (*ConsentChange, error)) error

	// CreatePayment executes a payment consent, all in one transaction (one
	// round trip where the store can): it claims k, locks the consent,
	// checks it with CheckPayment, posts the consent's transfer from its
	// debtor to its creditor through the ledger, marks the consent Consumed
	// and records the payment with PaymentStatusFor's status. A debtor who
	// cannot fund it gives a Rejected payment with nothing posted, and the
	// consent is Consumed all the same. When the key was used before with
	// the same request hash it changes nothing and returns the payment id
	// recorded with it in Existing. Errors: those of CheckPayment
	// (ErrOtherVersion among them), ErrIdempotencyConflict, a ledger refusal
	// of the posting other than insufficient funds (ledger.ErrAccountNotFound,
	// ledger.ErrCurrencyMismatch, ledger.ErrOverflow, ...). Nothing is
	// written when an error is returned.
	CreatePayment(ctx context.Context, k KeyClaim, p PaymentExecution) (PaymentOutcome, error)

	// Payment returns a payment with its consent's API version, Initiation
	// and debtor. It locks nothing. Errors: ErrNotFound.
	Payment(ctx context.Context, id string) (Payment, error)

	// ConsentAndAccount reads an AISP request's consent and account together
	// (the hot path of account and balance reads, one round trip that
	// concurrent reads may share). Both ids are canonical UUIDs. It locks
	// nothing, and its answer is read by a statement that started after the
	// call. hasConsent and hasAccount say whether each exists.
	ConsentAndAccount(ctx context.Context, consentID, accountID string) (c Consent, hasConsent bool, a models.Account, hasAccount bool, err error)

	// PurgeExpiredKeys deletes at most limit idempotency keys that expired
	// before now, skipping rows other transactions hold locked, and returns
	// how many it deleted.
	PurgeExpiredKeys(ctx context.Context, now time.Time, limit int) (int, error)
}

// KeyClaim is an idempotency key to claim for a new resource: the key and
// request hash of the request, the client and operation it is scoped to, the
// id of the resource about to be created, and the claim's time and expiry. A
// key is new when it was never used for (ClientID, Operation) or its previous
// use expired before Now.
type KeyClaim struct {
	ClientID   string
	Operation  string
	Key        Idempotency
	ResourceID string
	Now        time.Time
	ExpiresAt  time.Time
}

// ConsentChange is a consent's new status with what comes with it: the PSU
// and debtor account of an authorisation ("" otherwise).
type ConsentChange struct {
	Status          ConsentStatus
	PSU             string
	DebtorAccountID models.AccountID
	At              time.Time
}

// PaymentExecution asks to execute consent ConsentID as payment ID for a
// PSU token (ClientID, PSU), with the payment request's API version,
// Initiation and Risk. TransferID is the id of the transfer to book and
// BookingTime its earliest booking time.
type PaymentExecution struct {
	ID             string
	Version        APIVersion
	ClientID       string
	PSU            string
	ConsentID      string
	InitiationJSON []byte
	RiskJSON       []byte
	Now            time.Time
	TransferID     string
	BookingTime    time.Time
}

// PaymentOutcome is what CreatePayment did: Existing is the id of the
// payment an earlier request with the same key created ("" otherwise);
// else Status is the new payment's status and Debtor its debtor account.
type PaymentOutcome struct {
	Existing string
	Status   PaymentStatus
	Debtor   *AccountRef
}
