package openbanking

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
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
// and the canonical JSON of its Initiation and Risk, which must equal the
// consent's byte for byte.
type PaymentRequest struct {
	ConsentID      string
	InitiationJSON []byte
	RiskJSON       []byte
}

// Payment is a domestic payment.
type Payment struct {
	ID              string
	ConsentID       string
	ClientID        string
	Status          PaymentStatus
	CreatedAt       time.Time
	StatusUpdatedAt time.Time
	InitiationJSON  []byte      // the consent's Initiation
	Debtor          *AccountRef // the debtor account
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
// The whole transaction is one call of the database function
// ob_create_payment (migrations/00003_posting_functions.sql), which posts
// through the ledger's own ledger_post: one round trip per payment, retried
// as a whole on serialization failures and deadlocks.
//
// The same key and body again return the payment first created, in its
// current state, without any new effect.
//
// Errors: ErrForbidden, ErrNotFound, ErrInvalidConsentStatus,
// ErrConsentMismatch, ErrIdempotencyConflict, *FieldError (key), ledger
// errors (ledger.ErrTxConflict, a posting refusal), ErrStorage, or a context
// error. Nothing is written when an error is returned.
func (s *Service) CreatePayment(ctx context.Context, c Caller, key Idempotency, req PaymentRequest) (Payment, error) {
	if err := checkKey(key); err != nil {
		return Payment{}, err
	}
	consentID, ok := canonicalID(req.ConsentID)
	if c.ClientID == "" || c.PSU == "" || !ok || c.ConsentID != consentID {
		return Payment{}, ErrForbidden
	}
	id, transferID := uuid.NewString(), uuid.NewString()
	now := s.clock()
	var existing, status, scheme, identification, name sql.NullString
	err := s.ledger.RunStatement(ctx, func(db *gorm.DB) error {
		err := db.Raw(`SELECT o_existing::text, o_status, o_debtor_scheme, o_debtor_identification, o_debtor_name
			FROM ob_create_payment(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, c.ClientID, c.PSU, consentID,
			opCreatePayment, key.Key, key.RequestHash[:], now.Add(s.keyTTL),
			string(req.InitiationJSON), string(req.RiskJSON), now,
			transferID, s.ledger.BookingTime()).Row().Scan(&existing, &status, &scheme, &identification, &name)
		return refusalError(ctx, err)
	})
	switch {
	case err != nil:
		return Payment{}, err
	case existing.Valid:
		return s.Payment(ctx, Caller{ClientID: c.ClientID}, existing.String)
	case !status.Valid:
		return Payment{}, fmt.Errorf("%w: payment function returned no status", ErrStorage)
	}
	out := Payment{ID: id, ConsentID: consentID, ClientID: c.ClientID, Status: PaymentStatus(status.String),
		CreatedAt: now, StatusUpdatedAt: now, InitiationJSON: req.InitiationJSON}
	if identification.Valid {
		out.Debtor = &AccountRef{SchemeName: scheme.String, Identification: identification.String, Name: name.String}
	}
	return out, nil
}

type paymentRow struct {
	ID                   string
	ConsentID            string
	ClientID             string
	Status               string
	CreatedAt            time.Time
	StatusUpdatedAt      time.Time
	Initiation           string
	DebtorScheme         *string
	DebtorIdentification *string
	DebtorName           *string
}

// Payment returns a domestic payment of c's client. A PSU token may read only
// the payment of the consent it was issued for.
//
// Errors: ErrNotFound, ErrForbidden, ErrStorage, or a context error.
func (s *Service) Payment(ctx context.Context, c Caller, id string) (Payment, error) {
	pid, ok := canonicalID(id)
	if !ok {
		return Payment{}, ErrNotFound
	}
	var rows []paymentRow
	if err := s.db.WithContext(ctx).Raw(`SELECT p.id::text AS id, p.consent_id::text AS consent_id, p.client_id,
			p.status, p.created_at, p.status_updated_at, c.initiation,
			a.scheme_name AS debtor_scheme, a.identification AS debtor_identification, a.name AS debtor_name
		FROM payments p JOIN consents c ON c.id = p.consent_id
		LEFT JOIN accounts a ON a.id = c.debtor_account_id
		WHERE p.id = ?`, pid).Scan(&rows).Error; err != nil {
		return Payment{}, dbError(ctx, err)
	}
	if len(rows) != 1 {
		return Payment{}, ErrNotFound
	}
	r := rows[0]
	if c.ClientID == "" || r.ClientID != c.ClientID || (c.PSU != "" && c.ConsentID != r.ConsentID) {
		return Payment{}, ErrForbidden
	}
	p := Payment{ID: r.ID, ConsentID: r.ConsentID, ClientID: r.ClientID, Status: PaymentStatus(r.Status),
		CreatedAt: r.CreatedAt.UTC(), StatusUpdatedAt: r.StatusUpdatedAt.UTC(), InitiationJSON: []byte(r.Initiation)}
	if r.DebtorIdentification != nil {
		p.Debtor = &AccountRef{SchemeName: deref(r.DebtorScheme), Identification: *r.DebtorIdentification, Name: deref(r.DebtorName)}
	}
	return p, nil
}
