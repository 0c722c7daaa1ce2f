package openbanking

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"

	"github.com/obpay/payments/internal/models"
)

// PaymentStatus is a domestic payment's OB status.
type PaymentStatus string

// Payment statuses this service produces.
const (
	PaymentAcceptedSettlementCompleted       PaymentStatus = "AcceptedSettlementCompleted"
	PaymentAcceptedCreditSettlementCompleted PaymentStatus = "AcceptedCreditSettlementCompleted"
	PaymentRejected                          PaymentStatus = "Rejected"
)

// PaymentRequest is a domestic payment submission: the consent it executes
// and the JSON of its Initiation and Risk, which must be the same JSON values
// as the consent's (member order and white space aside; see CheckPayment).
// Version is the API version the request came on (required: the zero value
// is refused); it must be the consent's.
type PaymentRequest struct {
	Version        APIVersion
	ConsentID      string
	InitiationJSON []byte
	RiskJSON       []byte
}

// Payment is a domestic payment.
type Payment struct {
	ID              string
	Version         APIVersion // its consent's
	ConsentID       string
	ClientID        string
	Status          PaymentStatus
	CreatedAt       time.Time
	StatusUpdatedAt time.Time
	InitiationJSON  []byte      // the consent's Initiation
	Debtor          *AccountRef // the debtor account
	// TransferID is the ledger transfer that booked the payment; empty
	// when it was Rejected and nothing was booked.
	TransferID string
	// Replayed says CreatePayment answered with the payment an earlier
	// request with the same idempotency key and body created.
	Replayed bool
}

// CreatePayment executes an Authorised payment consent, in one transaction:
// it records the idempotency key, locks the consent, checks its client, PSU,
// status and Initiation/Risk, books the transfer from the debtor account to
// the creditor (AcceptedCreditSettlementCompleted for an internal creditor,
// AcceptedSettlementCompleted through the settlement account otherwise),
// marks the consent Consumed and inserts the payment. When the debtor cannot
// fund it the payment is Rejected, nothing is posted, and the consent is
// Consumed all the same. c must be a PSU token issued for req.ConsentID.
//
// The whole transaction is one call of the Store's CreatePayment (in
// Postgres one call of a database function: one round trip per payment,
// retried as a whole on serialization failures and deadlocks), which checks
// the consent with CheckPayment under its row lock.
//
// The same key and body again return the payment first created, in its
// current state, without any new effect.
//
// A consent executes only on the API version it was created on: a payment
// on another version is refused with ErrOtherVersion (an
// ErrInvalidConsentStatus), and the consent stays as it was, still payable
// on its own version.
//
// Errors: ErrUnsupportedVersion (req.Version is not V3_1 or V4_0),
// ErrCustomerTokenRequired (a client-credentials token), ErrForbidden,
// ErrNotFound, ErrInvalidConsentStatus (ErrOtherVersion among them),
// ErrConsentMismatch, ErrIdempotencyConflict, *FieldError (key), ledger
// errors (ledger.ErrTxConflict, a posting refusal), ErrStorage, or a context
// error. Nothing is written when an error is returned.
func (s *Service) CreatePayment(ctx context.Context, c Caller, key Idempotency, req PaymentRequest) (Payment, error) {
	if err := checkVersion(req.Version); err != nil {
		return Payment{}, err
	}
	if err := checkKey(key); err != nil {
		return Payment{}, err
	}
	consentID, ok := models.CanonicalID(req.ConsentID)
	if c.ClientID != "" && c.PSU == "" {
		return Payment{}, ErrCustomerTokenRequired
	}
	if c.ClientID == "" || !ok || c.ConsentID != consentID {
		return Payment{}, ErrForbidden
	}
	now := s.clock()
	p := PaymentExecution{
		ID: uuid.NewString(), Version: req.Version, ClientID: c.ClientID, PSU: c.PSU, ConsentID: consentID,
		InitiationJSON: req.InitiationJSON, RiskJSON: req.RiskJSON, Now: now,
		TransferID: uuid.NewString(), BookingTime: now,
	}
	res, err := s.store.CreatePayment(ctx, s.claim(c.ClientID, operation(opCreatePayment, req.Version), key, p.ID, now), p)
	switch {
	case errors.Is(err, ErrOtherVersion):
		return Payment{}, fmt.Errorf("payment on v%s: %w", req.Version, err)
	case err != nil:
		return Payment{}, err
	case res.Existing != "":
		s.observe.IdempotentReplay("payment")
		existing, err := s.Payment(ctx, Caller{ClientID: c.ClientID}, res.Existing)
		existing.Replayed = err == nil
		return existing, err
	case res.Status == "":
		return Payment{}, fmt.Errorf("%w: payment store returned no status", ErrStorage)
	}
	s.observe.ConsentChanged(KindPayment, ConsentConsumed)
	s.observe.PaymentBooked(res.Status)
	return Payment{ID: p.ID, Version: req.Version, ConsentID: consentID, ClientID: c.ClientID, Status: res.Status,
		CreatedAt: now, StatusUpdatedAt: now, InitiationJSON: req.InitiationJSON, Debtor: res.Debtor}, nil
}

// CheckPayment is the rule a payment's consent must pass, checked by the
// Store under the consent's row lock (see ConsentStore.CreatePayment): a
// payment consent (else ErrNotFound) of the payment's client and PSU (else
// ErrForbidden), created on the payment's API version (else ErrOtherVersion),
// Authorised (else ErrInvalidConsentStatus), whose Initiation and Risk the
// payment repeats (else ErrConsentMismatch). The checks run in this order,
// and the first failing one answers.
func CheckPayment(con Consent, p PaymentExecution) error {
	switch {
	case con.Kind != KindPayment:
		return ErrNotFound
	case con.ClientID != p.ClientID || con.PSU != p.PSU:
		return ErrForbidden
	case con.Version != p.Version:
		return ErrOtherVersion
	case con.Status != StatusAuthorised:
		return ErrInvalidConsentStatus
	case !sameJSON(con.InitiationJSON, p.InitiationJSON) || !sameJSON(con.RiskJSON, p.RiskJSON):
		return ErrConsentMismatch
	}
	return nil
}

// sameJSON reports whether a and b encode the same JSON value: the same
// members with the same values, whatever their order or the white space (the
// rule the database applies with jsonb equality, migration 00005). A new
// encoding of the same terms, such as a regenerated type that orders its
// fields differently, still matches its consent. Text that is not JSON
// matches nothing.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// PaymentStatusFor is the status of a payment on con: Rejected when the
// debtor could not fund it (funded false), else
// AcceptedCreditSettlementCompleted for an internal creditor and
// AcceptedSettlementCompleted for one paid through the settlement account.
func PaymentStatusFor(con Consent, funded bool) PaymentStatus {
	switch {
	case !funded:
		return PaymentRejected
	case con.CreditorInternal:
		return PaymentAcceptedCreditSettlementCompleted
	}
	return PaymentAcceptedSettlementCompleted
}

// Payment returns a domestic payment of c's client. A PSU token may read only
// the payment of the consent it was issued for.
//
// Errors: ErrNotFound, ErrForbidden, ErrStorage, or a context error.
func (s *Service) Payment(ctx context.Context, c Caller, id string) (Payment, error) {
	p, err := s.store.Payment(ctx, id)
	if err != nil {
		return Payment{}, err
	}
	if c.ClientID == "" || p.ClientID != c.ClientID || (c.PSU != "" && c.ConsentID != p.ConsentID) {
		return Payment{}, ErrForbidden
	}
	return p, nil
}
