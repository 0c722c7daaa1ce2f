package openbanking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

// ConsentStatus is a consent's OB lifecycle status.
type ConsentStatus string

// Consent statuses (OB names).
const (
	StatusAwaitingAuthorisation ConsentStatus = "AwaitingAuthorisation"
	StatusAuthorised            ConsentStatus = "Authorised"
	StatusRejected              ConsentStatus = "Rejected"
	StatusConsumed              ConsentStatus = "Consumed"
	StatusRevoked               ConsentStatus = "Revoked"
)

// ConsentKind says what a consent is for.
type ConsentKind string

// Consent kinds, as ConsentClient reports them.
const (
	KindPayment       ConsentKind = "payment"
	KindAccountAccess ConsentKind = "account-access"
)

// MaxPSULen is the longest PSU subject, in characters.
const MaxPSULen = 128

// AccountRef is a scheme identification of an account (OBCashAccount). Name
// is "" when absent.
type AccountRef struct {
	SchemeName     string
	Identification string
	Name           string
}

// Initiation holds what the service needs from a payment's Initiation: the
// instructed amount as sent (a decimal string and an ISO 4217 code), the
// creditor, and the reference booked with the transfer.
type Initiation struct {
	Amount    string
	Currency  string
	Creditor  AccountRef
	Reference string // at most ledger.MaxReferenceLen characters; may be ""
}

// PaymentConsentRequest is a new domestic payment consent. The JSON fields are
// the canonical encodings of the OB objects: they are stored, echoed, and
// compared byte for byte with a payment's. AuthorisationJSON is nil when
// absent. Version is the API version the request came on (required: the
// zero value is refused).
type PaymentConsentRequest struct {
	Version           APIVersion
	Initiation        Initiation
	InitiationJSON    []byte
	AuthorisationJSON []byte
	RiskJSON          []byte
}

// PaymentConsent is a domestic payment consent.
type PaymentConsent struct {
	ID                string
	Version           APIVersion // the version it was created on
	ClientID          string
	Status            ConsentStatus
	CreatedAt         time.Time
	StatusUpdatedAt   time.Time
	Amount            models.Amount
	InitiationJSON    []byte
	AuthorisationJSON []byte // nil when absent
	RiskJSON          []byte
	PSU               string           // "" until authorised
	DebtorAccountID   models.AccountID // "" until authorised
	Debtor            *AccountRef      // nil until authorised
}

// Decision is a consent after the customer's decision.
type Decision struct {
	ConsentID       string
	Status          ConsentStatus
	StatusUpdatedAt time.Time
}

// FundsConfirmation answers whether a consent's debtor account can fund its
// amount now.
type FundsConfirmation struct {
	Available bool
	At        time.Time
	Version   APIVersion // the consent's
}

// Consent is a consent as the Store keeps it: the fields of both kinds, and
// for a payment consent its debtor account's identification once
// authorised.
type Consent struct {
	ID              string
	Kind            ConsentKind
	Version         APIVersion // the version it was created on
	ClientID        string
	Status          ConsentStatus
	PSU             string // "" until authorised
	CreatedAt       time.Time
	StatusUpdatedAt time.Time

	// Payment consents.
	Amount            models.Amount
	InitiationJSON    []byte
	AuthorisationJSON []byte // nil when absent
	RiskJSON          []byte
	Reference         string
	CreditorAccountID models.AccountID
	CreditorInternal  bool   // the creditor is a customer account of this bank
	CreditorCurrency  string // the creditor account's own currency
	DebtorAccountID   models.AccountID
	Debtor            *AccountRef // nil until authorised

	// Account access consents.
	Permissions     []Permission
	ExpiresAt       *time.Time
	TransactionFrom *time.Time
	TransactionTo   *time.Time
}

func (r Consent) paymentConsent() PaymentConsent {
	return PaymentConsent{
		ID:                r.ID,
		Version:           r.Version,
		ClientID:          r.ClientID,
		Status:            r.Status,
		CreatedAt:         r.CreatedAt,
		StatusUpdatedAt:   r.StatusUpdatedAt,
		Amount:            r.Amount,
		InitiationJSON:    r.InitiationJSON,
		AuthorisationJSON: r.AuthorisationJSON,
		RiskJSON:          r.RiskJSON,
		PSU:               r.PSU,
		DebtorAccountID:   r.DebtorAccountID,
		Debtor:            r.Debtor,
	}
}

// checkOwner enforces that the consent belongs to the caller's client and,
// for a PSU token, that the token was issued for this consent.
func checkOwner(c Caller, r Consent) error {
	if c.ClientID == "" || c.ClientID != r.ClientID {
		return ErrForbidden
	}
	if c.PSU != "" && c.ConsentID != r.ID {
		return ErrForbidden
	}
	return nil
}

// CreatePaymentConsent creates a domestic payment consent for c's client in
// status AwaitingAuthorisation, or returns the consent an earlier request
// with the same idempotency key and body created (in its current state).
// An internal creditor (an account of this bank found by its sort code and
// account number) is credited directly; any other creditor is paid through
// the bank's settlement account. An internal creditor in another currency
// gets the same answer as an unknown one here (nothing reveals that the
// account exists); Authorise refuses it.
//
// Data.Authorisation.CompletionDateTime, when present, must be later than
// now (the service clock): it is the deadline of the authorisation, which
// Authorise enforces.
//
// The consent is created on req.Version, and only a payment on the same
// version executes it (see CreatePayment).
//
// Errors: ErrUnsupportedVersion (req.Version is not V3_1 or V4_0),
// *FieldError (ErrInvalidField: amount, creditor, key, CompletionDateTime;
// ErrUnsupportedCurrency), ErrIdempotencyConflict, ErrForbidden (no
// client), ledger.ErrTxConflict, ErrUnavailable, ErrStorage, or a context
// error.
func (s *Service) CreatePaymentConsent(ctx context.Context, c Caller, key Idempotency, req PaymentConsentRequest) (PaymentConsent, error) {
	if err := checkVersion(req.Version); err != nil {
		return PaymentConsent{}, err
	}
	if c.ClientID == "" {
		return PaymentConsent{}, ErrForbidden
	}
	if err := checkKey(key); err != nil {
		return PaymentConsent{}, err
	}
	amount, err := parseInstructedAmount(req.Initiation.Amount, req.Initiation.Currency)
	if err != nil {
		return PaymentConsent{}, err
	}
	if ledger.CheckText(req.Initiation.Reference, ledger.MaxReferenceLen) != nil {
		return PaymentConsent{}, invalidField("Data.Initiation.RemittanceInformation", "reference too long")
	}
	creditorID, internal, err := s.resolveCreditor(ctx, req.Initiation.Creditor, amount.Currency)
	if err != nil {
		return PaymentConsent{}, err
	}

	id := uuid.NewString()
	now := s.clock()
	c2 := Consent{
		ID: id, Kind: KindPayment, Version: req.Version, ClientID: c.ClientID, Status: StatusAwaitingAuthorisation,
		CreatedAt: now, StatusUpdatedAt: now, Amount: amount, InitiationJSON: req.InitiationJSON,
		AuthorisationJSON: req.AuthorisationJSON, RiskJSON: req.RiskJSON, Reference: req.Initiation.Reference,
		CreditorAccountID: creditorID, CreditorInternal: internal,
	}
	// Checked after the key: a replay returns the consent first created even
	// once its CompletionDateTime has passed. A refusal rolls the key back.
	refuse := checkCompletion(req.AuthorisationJSON, now)
	existing, err := s.store.CreatePaymentConsent(ctx, s.claim(c.ClientID, operation(opCreatePaymentConsent, req.Version), key, id, now), c2, refuse)
	if err != nil {
		return PaymentConsent{}, err
	}
	if existing != "" {
		s.observe.IdempotentReplay("payment-consent")
		return s.PaymentConsent(ctx, Caller{ClientID: c.ClientID}, existing)
	}
	s.observe.ConsentChanged(KindPayment, ConsentCreated)
	return c2.paymentConsent(), nil
}

// completionPath is the OB path of a payment consent's authorisation
// deadline.
const completionPath = "Data.Authorisation.CompletionDateTime"

// completionDateTime returns Data.Authorisation.CompletionDateTime of a
// consent's canonical Authorisation JSON (nil when absent), and false when
// the JSON cannot be read.
func completionDateTime(authorisation []byte) (*time.Time, bool) {
	if authorisation == nil {
		return nil, true
	}
	var a struct{ CompletionDateTime *time.Time }
	if err := json.Unmarshal(authorisation, &a); err != nil {
		return nil, false
	}
	return a.CompletionDateTime, true
}

// checkCompletion refuses a new consent whose authorisation deadline is not
// in the future: such a consent could never be authorised.
func checkCompletion(authorisation []byte, now time.Time) error {
	at, ok := completionDateTime(authorisation)
	switch {
	case !ok:
		return invalidField(completionPath, "not a date-time")
	case at != nil && !at.After(now):
		return invalidField(completionPath, "must be in the future")
	}
	return nil
}

// parseInstructedAmount parses a positive instructed amount exactly.
func parseInstructedAmount(amount, currency string) (models.Amount, error) {
	const path = "Data.Initiation.InstructedAmount"
	if _, ok := models.CurrencyExponent(currency); !ok {
		return models.Amount{}, &FieldError{Path: path + ".Currency", Reason: "currency not supported", Err: ErrUnsupportedCurrency}
	}
	a, err := models.ParseAmount(amount, currency)
	switch {
	case errors.Is(err, models.ErrAmountPrecision):
		return models.Amount{}, invalidField(path+".Amount", "more decimals than the currency allows")
	case err != nil:
		return models.Amount{}, invalidField(path+".Amount", "not a valid amount")
	case !a.IsPositive():
		return models.Amount{}, invalidField(path+".Amount", "amount must be greater than zero")
	}
	return a, nil
}

// resolveCreditor finds the ledger account a payment to cr credits: the
// customer account with that identification (internal), or else the
// currency's settlement account (an external creditor).
//
// A customer account in another currency than the payment's is still
// returned, without an error: an unknown creditor is accepted (and paid out
// through the settlement account), so refusing this one at consent creation
// would tell an aggregator, before any customer is involved, that the
// account number exists at this bank. The consent is created as for any
// other creditor, and Authorise refuses it (checkCreditor) once the
// customer is authenticated.
func (s *Service) resolveCreditor(ctx context.Context, cr AccountRef, currency string) (models.AccountID, bool, error) {
	a, err := s.store.AccountByIdentification(ctx, cr.SchemeName, cr.Identification)
	switch {
	case err == nil && a.Kind == models.KindCustomer:
		return a.ID, true, nil
	case err != nil && !errors.Is(err, ledger.ErrAccountNotFound):
		return "", false, err
	}
	settlement, err := s.store.SettlementAccount(ctx, currency)
	if err != nil {
		return "", false, err
	}
	return settlement.ID, false, nil
}

// PaymentConsent returns a domestic payment consent of c's client. A PSU
// token may read only the consent it was issued for.
//
// Errors: ErrNotFound (unknown id, or not a payment consent), ErrForbidden,
// ErrStorage, or a context error.
func (s *Service) PaymentConsent(ctx context.Context, c Caller, id string) (PaymentConsent, error) {
	r, err := s.store.Consent(ctx, id)
	if err != nil {
		return PaymentConsent{}, err
	}
	if r.Kind != KindPayment {
		return PaymentConsent{}, ErrNotFound
	}
	if err := checkOwner(c, r); err != nil {
		return PaymentConsent{}, err
	}
	return r.paymentConsent(), nil
}

// FundsConfirmation reports whether the debtor account of an Authorised
// payment consent holds at least its amount now. c must be a PSU token issued
// for this consent.
//
// Errors: ErrNotFound, ErrCustomerTokenRequired (a client-credentials token
// of the consent's client), ErrForbidden, ErrInvalidConsentStatus (not
// Authorised), ErrStorage, or a context error.
func (s *Service) FundsConfirmation(ctx context.Context, c Caller, id string) (FundsConfirmation, error) {
	r, err := s.store.Consent(ctx, id)
	if err != nil {
		return FundsConfirmation{}, err
	}
	if r.Kind != KindPayment {
		return FundsConfirmation{}, ErrNotFound
	}
	if err := checkOwner(c, r); err != nil {
		return FundsConfirmation{}, err
	}
	if c.PSU == "" {
		return FundsConfirmation{}, ErrCustomerTokenRequired
	}
	if c.PSU != r.PSU {
		return FundsConfirmation{}, ErrForbidden
	}
	if r.Status != StatusAuthorised {
		return FundsConfirmation{}, ErrInvalidConsentStatus
	}
	debtor, err := s.store.Account(ctx, r.DebtorAccountID)
	if err != nil {
		return FundsConfirmation{}, err
	}
	return FundsConfirmation{Available: debtor.Balance.Minor >= r.Amount.Minor, At: s.clock(), Version: r.Version}, nil
}

// AuthoriseConsent records that psu approved the consent. For a payment
// consent debtorAccount is the AccountId the PSU pays from: a customer
// account of psu, in the consent's currency, other than the creditor, and
// the account of the Initiation's DebtorAccount when the aggregator named
// one. For an account access consent debtorAccount must be "". The sandbox
// authorization server calls it in-process.
//
// Errors: those of Authorise.
func (s *Service) AuthoriseConsent(ctx context.Context, consentID, psu, debtorAccount string) error {
	_, err := s.Authorise(ctx, consentID, psu, debtorAccount)
	return err
}

// RejectConsent records that the PSU refused the consent.
//
// Errors: those of Reject.
func (s *Service) RejectConsent(ctx context.Context, consentID string) error {
	_, err := s.Reject(ctx, consentID)
	return err
}

// ConsentClient returns the client that created a consent, its kind
// (string(KindPayment) or string(KindAccountAccess)) and its status, so that an authorization
// server issues a PSU token for a consent only to its client and accepts a request only for a
// consent awaiting authorisation.
//
// Errors: ErrNotFound, ErrStorage, or a context error.
func (s *Service) ConsentClient(ctx context.Context, consentID string) (clientID, kind, status string, err error) {
	r, err := s.store.Consent(ctx, consentID)
	if err != nil {
		return "", "", "", err
	}
	return r.ClientID, string(r.Kind), string(r.Status), nil
}

// Authorise is AuthoriseConsent returning the decision.
//
// Errors: ErrNotFound, ErrInvalidConsentStatus (not AwaitingAuthorisation,
// an expired account access consent, or a payment consent past its
// Data.Authorisation.CompletionDateTime), *FieldError (Psu, DebtorAccount,
// Data.Initiation.CreditorAccount), ledger.ErrTxConflict, ErrUnavailable,
// ErrStorage, or a context error.
func (s *Service) Authorise(ctx context.Context, consentID, psu, debtorAccount string) (Decision, error) {
	if psu == "" || ledger.CheckText(psu, MaxPSULen) != nil {
		return Decision{}, invalidField("Psu", "must be 1 to 128 characters")
	}
	var debtor *models.Account
	if debtorAccount != "" {
		a, err := s.store.Account(ctx, models.AccountID(debtorAccount))
		switch {
		case errors.Is(err, ledger.ErrAccountNotFound):
			return Decision{}, &FieldError{Path: "DebtorAccount", Reason: "unknown account", Err: ErrUnknownAccount}
		case err != nil:
			return Decision{}, err
		case a.Kind != models.KindCustomer || a.Owner != psu:
			return Decision{}, &FieldError{Path: "DebtorAccount", Reason: "not an account of this PSU", Err: ErrNotPSUAccount}
		}
		debtor = &a
	}
	var d Decision
	var kind ConsentKind
	err := s.store.UpdateConsent(ctx, consentID, func(r Consent) (*ConsentChange, error) {
		if r.Status != StatusAwaitingAuthorisation {
			return nil, ErrInvalidConsentStatus
		}
		now := s.clock()
		var debtorID models.AccountID
		switch r.Kind {
		case KindAccountAccess:
			if debtor != nil {
				return nil, &FieldError{Path: "DebtorAccount", Reason: "not allowed for account access consents", Err: ErrInvalidField}
			}
			if r.ExpiresAt != nil && !now.Before(*r.ExpiresAt) {
				return nil, ErrInvalidConsentStatus
			}
		case KindPayment:
			// The authorisation must be complete before the consent's
			// Data.Authorisation.CompletionDateTime. Past it the answer is
			// InvalidConsentStatus and nothing is written: the consent stays
			// AwaitingAuthorisation (it can still be rejected), as an expired
			// account access consent does, rather than being turned Rejected
			// by a call that failed.
			at, ok := completionDateTime(r.AuthorisationJSON)
			if !ok {
				return nil, fmt.Errorf("%w: consent %s: stored authorisation unreadable", ErrStorage, r.ID)
			}
			if at != nil && !now.Before(*at) {
				return nil, ErrInvalidConsentStatus
			}
			if err := checkCreditor(r); err != nil {
				return nil, err
			}
			if err := checkDebtor(r, debtor); err != nil {
				return nil, err
			}
			debtorID = debtor.ID
		}
		d = Decision{ConsentID: r.ID, Status: StatusAuthorised, StatusUpdatedAt: now}
		kind = r.Kind
		return &ConsentChange{Status: StatusAuthorised, PSU: psu, DebtorAccountID: debtorID, At: now}, nil
	})
	if err != nil {
		return Decision{}, err
	}
	s.observe.ConsentChanged(kind, ConsentAuthorised)
	return d, nil
}

// checkCreditor refuses to authorise a payment consent whose creditor is an
// account of this bank in another currency (see resolveCreditor: consent
// creation accepted it like any unknown creditor, so that the aggregator
// learns nothing about the account). Here the customer is authenticated, and
// the bank's own consent app hears why.
func checkCreditor(r Consent) error {
	if r.CreditorInternal && r.CreditorCurrency != r.Amount.Currency {
		return invalidField("Data.Initiation.CreditorAccount", "the creditor account cannot receive the consent's currency")
	}
	return nil
}

// checkDebtor checks the debtor account chosen for a payment consent.
func checkDebtor(r Consent, debtor *models.Account) error {
	if debtor == nil {
		return &FieldError{Path: "DebtorAccount", Reason: "required for payment consents", Missing: true, Err: ErrInvalidField}
	}
	if debtor.Currency != r.Amount.Currency {
		return &FieldError{Path: "DebtorAccount", Reason: "account is not in the consent's currency", Err: ErrAccountCurrency}
	}
	if debtor.ID == r.CreditorAccountID {
		return invalidField("DebtorAccount", "account is the creditor account")
	}
	var init struct {
		DebtorAccount *struct {
			SchemeName     string
			Identification string
		}
	}
	if err := json.Unmarshal(r.InitiationJSON, &init); err != nil {
		return invalidField("DebtorAccount", "stored initiation unreadable")
	}
	if d := init.DebtorAccount; d != nil && (d.SchemeName != debtor.SchemeName || d.Identification != debtor.Identification) {
		return invalidField("DebtorAccount", "account differs from the consent's DebtorAccount")
	}
	return nil
}

// Reject records that the PSU refused the consent: AwaitingAuthorisation ->
// Rejected.
//
// Errors: ErrNotFound, ErrInvalidConsentStatus, ledger.ErrTxConflict,
// ErrStorage, or a context error.
func (s *Service) Reject(ctx context.Context, consentID string) (Decision, error) {
	var d Decision
	var kind ConsentKind
	err := s.store.UpdateConsent(ctx, consentID, func(r Consent) (*ConsentChange, error) {
		if r.Status != StatusAwaitingAuthorisation {
			return nil, ErrInvalidConsentStatus
		}
		now := s.clock()
		d = Decision{ConsentID: r.ID, Status: StatusRejected, StatusUpdatedAt: now}
		kind = r.Kind
		return &ConsentChange{Status: StatusRejected, At: now}, nil
	})
	if err != nil {
		return Decision{}, err
	}
	s.observe.ConsentChanged(kind, ConsentRejected)
	return d, nil
}
