package openbanking

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
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
// The same key and body again return the payment first created, in its
// current state, without any new effect.
//
// Errors: ErrForbidden, ErrNotFound, ErrInvalidConsentStatus,
// ErrConsentMismatch, ErrIdempotencyConflict, *FieldError (key),
// ledger.ErrTxConflict, ErrStorage, or a context error. Nothing is written
// when an error is returned.
func (s *Service) CreatePayment(ctx context.Context, c Caller, key Idempotency, req PaymentRequest) (Payment, error) {
	if err := checkKey(key); err != nil {
		return Payment{}, err
	}
	consentID, ok := canonicalID(req.ConsentID)
	if c.ClientID == "" || c.PSU == "" || !ok || c.ConsentID != consentID {
		return Payment{}, ErrForbidden
	}
	id := uuid.NewString()
	var (
		out      Payment
		existing string
	)
	err := s.ledger.RunInTx(ctx, func(tx *gorm.DB) error {
		var err error
		if existing, err = s.claimKey(ctx, tx, c.ClientID, opCreatePayment, key, id); err != nil || existing != "" {
			return err
		}
		r, err := loadConsent(ctx, tx, consentID, true)
		if err != nil {
			return err
		}
		if err := checkPayable(c, r, req); err != nil {
			return err
		}
		status, transferID, err := s.settle(ctx, tx, r)
		if err != nil {
			return err
		}
		now := s.clock()
		// Consume the consent and insert the payment in one round trip.
		if err := tx.Exec(`WITH consumed AS (
				UPDATE consents SET status = 'Consumed', status_updated_at = ? WHERE id = ? RETURNING id)
			INSERT INTO payments (id, consent_id, client_id, status, transfer_id, created_at, status_updated_at)
			SELECT ?::uuid, consumed.id, ?, ?, ?::uuid, ?::timestamptz, ?::timestamptz FROM consumed`,
			now, r.ID, id, c.ClientID, string(status), transferID, now, now).Error; err != nil {
			return dbError(ctx, err)
		}
		pc := r.paymentConsent()
		out = Payment{ID: id, ConsentID: r.ID, ClientID: c.ClientID, Status: status, CreatedAt: now,
			StatusUpdatedAt: now, InitiationJSON: pc.InitiationJSON, Debtor: pc.Debtor}
		return nil
	})
	if err != nil {
		return Payment{}, err
	}
	if existing != "" {
		return s.Payment(ctx, Caller{ClientID: c.ClientID}, existing)
	}
	return out, nil
}

// checkPayable checks, under the consent's lock, that c may execute it now
// with req.
func checkPayable(c Caller, r consentRow, req PaymentRequest) error {
	switch {
	case ConsentKind(r.Kind) != KindPayment:
		return ErrNotFound
	case r.ClientID != c.ClientID || deref(r.PSU) != c.PSU:
		return ErrForbidden
	case ConsentStatus(r.Status) != StatusAuthorised:
		return ErrInvalidConsentStatus
	case !bytes.Equal(req.InitiationJSON, []byte(deref(r.Initiation))) || !bytes.Equal(req.RiskJSON, []byte(deref(r.Risk))):
		return ErrConsentMismatch
	}
	return nil
}

// settle books the consent's transfer inside tx. Insufficient funds is an
// outcome, not an error: the ledger decides it on the locked balance before
// writing anything and leaves the transaction usable (see
// ledger.TransferTx), so the payment is Rejected in the same transaction with
// nothing posted and no savepoint round trip.
func (s *Service) settle(ctx context.Context, tx *gorm.DB, r consentRow) (PaymentStatus, *string, error) {
	t, err := s.ledger.TransferTx(ctx, tx, ledger.TransferParams{
		From:      models.AccountID(deref(r.DebtorAccountID)),
		To:        models.AccountID(deref(r.CreditorAccountID)),
		Amount:    models.Amount{Minor: deref(r.Amount), Currency: deref(r.Currency)},
		Reference: deref(r.Reference),
	})
	switch {
	case errors.Is(err, ledger.ErrInsufficientFunds):
		return PaymentRejected, nil, nil
	case err != nil:
		return "", nil, err
	}
	tid := string(t.ID)
	if deref(r.CreditorInternal) {
		return PaymentAcceptedCreditSettlementCompleted, &tid, nil
	}
	return PaymentAcceptedSettlementCompleted, &tid, nil
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
