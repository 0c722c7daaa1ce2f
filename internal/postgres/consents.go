package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/obpay/payments/internal/coalesce"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// DefaultAccountReadBatches is the default of StoreConfig.AccountReadBatches.
//
// One: batching exists to save CPU (the server's and Postgres's) per read on
// hosts where they share few cores, and every further batch in flight splits
// the arrivals into one more, smaller batch (one more round trip). With one,
// a read that arrives while a batch runs waits for it and goes in the next
// batch with every other read that arrived meanwhile; a read that finds no
// batch running starts at once, so a lone read waits for nothing. Measured
// end to end (docs/performance.md), one batch in flight served more reads per
// second than two at 8 and at 32 concurrent readers, with a lower p99. It
// also keeps the batched reads on one database connection, leaving the rest
// of the pool to payments.
const DefaultAccountReadBatches = 1

// StoreConfig configures NewStore.
type StoreConfig struct {
	// AccountReadBatches is the number of batched account and balance reads
	// (ConsentAndAccount) that may run at once; zero means
	// DefaultAccountReadBatches.
	AccountReadBatches int
}

// Store is openbanking.Store on Postgres: the ledger, consents, payments and
// idempotency keys. It is safe for concurrent use.
type Store struct {
	*Ledger
	// accessReads coalesces the database reads of concurrent AISP account
	// and balance reads.
	accessReads *coalesce.Batcher[accessKey, accessRow]
}

var _ openbanking.Store = (*Store)(nil)

// NewStore returns the Open Banking store on l's database.
func NewStore(l *Ledger, cfg StoreConfig) (*Store, error) {
	if l == nil {
		return nil, errors.New("postgres: NewStore(nil ledger)")
	}
	switch {
	case cfg.AccountReadBatches == 0:
		cfg.AccountReadBatches = DefaultAccountReadBatches
	case cfg.AccountReadBatches < 0:
		return nil, fmt.Errorf("postgres: AccountReadBatches %d is negative", cfg.AccountReadBatches)
	}
	s := &Store{Ledger: l}
	s.accessReads = coalesce.New(s.fetchAccess, coalesce.Options{MaxInFlight: cfg.AccountReadBatches, MaxBatch: accountReadBatch})
	return s, nil
}

// AccountByIdentification is Ledger.AccountByIdentification outside any
// transaction.
func (s *Store) AccountByIdentification(ctx context.Context, scheme, identification string) (models.Account, error) {
	return s.Ledger.AccountByIdentification(ctx, nil, scheme, identification)
}

// SettlementAccount is Ledger.SettlementAccount in its own transaction.
func (s *Store) SettlementAccount(ctx context.Context, currency string) (models.Account, error) {
	return s.Ledger.SettlementAccount(ctx, nil, currency)
}

// consentRow is a consents row joined with its debtor account.
type consentRow struct {
	ID                   string
	Kind                 string
	APIVersion           string
	ClientID             string
	Status               string
	PSU                  *string
	CreatedAt            time.Time
	StatusUpdatedAt      time.Time
	Currency             *string
	Amount               *int64
	Initiation           *string
	Authorisation        *string
	Risk                 *string
	Reference            *string
	CreditorAccountID    *string
	CreditorInternal     *bool
	CreditorCurrency     *string // the creditor account's own currency
	DebtorAccountID      *string
	Permissions          *string
	ExpiresAt            *time.Time
	TransactionFrom      *time.Time
	TransactionTo        *time.Time
	DebtorScheme         *string
	DebtorIdentification *string
	DebtorName           *string
}

// model is the one mapping of a consents row to openbanking.Consent.
func (r consentRow) model() openbanking.Consent {
	c := openbanking.Consent{
		ID:                r.ID,
		Kind:              openbanking.ConsentKind(r.Kind),
		Version:           openbanking.APIVersion(r.APIVersion),
		ClientID:          r.ClientID,
		Status:            openbanking.ConsentStatus(r.Status),
		PSU:               deref(r.PSU),
		CreatedAt:         r.CreatedAt.UTC(),
		StatusUpdatedAt:   r.StatusUpdatedAt.UTC(),
		InitiationJSON:    []byte(deref(r.Initiation)),
		RiskJSON:          []byte(deref(r.Risk)),
		Reference:         deref(r.Reference),
		CreditorAccountID: models.AccountID(deref(r.CreditorAccountID)),
		CreditorInternal:  deref(r.CreditorInternal),
		CreditorCurrency:  deref(r.CreditorCurrency),
		DebtorAccountID:   models.AccountID(deref(r.DebtorAccountID)),
		ExpiresAt:         utc(r.ExpiresAt),
		TransactionFrom:   utc(r.TransactionFrom),
		TransactionTo:     utc(r.TransactionTo),
	}
	if r.Amount != nil && r.Currency != nil {
		c.Amount = models.Amount{Minor: *r.Amount, Currency: *r.Currency}
	}
	if r.Authorisation != nil {
		c.AuthorisationJSON = []byte(*r.Authorisation)
	}
	if r.DebtorIdentification != nil {
		c.Debtor = &openbanking.AccountRef{SchemeName: deref(r.DebtorScheme), Identification: *r.DebtorIdentification, Name: deref(r.DebtorName)}
	}
	for _, p := range strings.Fields(deref(r.Permissions)) {
		c.Permissions = append(c.Permissions, openbanking.Permission(p))
	}
	return c
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

const consentSelect = `SELECT c.id::text AS id, c.kind, c.api_version, c.client_id, c.status, c.psu, c.created_at, c.status_updated_at,
	c.currency, c.amount, c.initiation, c.authorisation, c.risk, c.reference,
	c.creditor_account_id::text AS creditor_account_id, c.creditor_internal, c.debtor_account_id::text AS debtor_account_id,
	c.permissions, c.expires_at, c.transaction_from, c.transaction_to,
	a.scheme_name AS debtor_scheme, a.identification AS debtor_identification, a.name AS debtor_name,
	cr.currency AS creditor_currency
	FROM consents c LEFT JOIN accounts a ON a.id = c.debtor_account_id
	LEFT JOIN accounts cr ON cr.id = c.creditor_account_id
	WHERE c.id = ?`

// loadConsent reads a consent, locking its row when lock is set (db must then
// be a transaction). An id that is not a UUID is unknown:
// openbanking.ErrNotFound.
func loadConsent(ctx context.Context, db *gorm.DB, id string, lock bool) (openbanking.Consent, error) {
	cid, ok := models.CanonicalID(id)
	if !ok {
		return openbanking.Consent{}, openbanking.ErrNotFound
	}
	q := consentSelect
	if lock {
		q += " FOR UPDATE OF c"
	}
	var rows []consentRow
	if err := db.WithContext(ctx).Raw(q, cid).Scan(&rows).Error; err != nil {
		return openbanking.Consent{}, dbError(ctx, err)
	}
	if len(rows) != 1 {
		return openbanking.Consent{}, openbanking.ErrNotFound
	}
	return rows[0].model(), nil
}

// Consent implements openbanking.ConsentStore.
func (s *Store) Consent(ctx context.Context, id string) (openbanking.Consent, error) {
	return loadConsent(ctx, s.db, id, false)
}

// claimKey records k inside tx with ob_claim_key (one round trip; payments
// call the same function inside ob_create_payment). It returns "" when the
// caller now owns the key and must create k.ResourceID, else the id of the
// resource recorded with the key. A key held by a concurrent, uncommitted
// transaction makes it wait for that transaction, then read the committed
// record.
func claimKey(ctx context.Context, tx *gorm.DB, k openbanking.KeyClaim) (string, error) {
	var existing sql.NullString
	err := tx.Raw(`SELECT existing::text FROM ob_claim_key(?, ?, ?, ?, ?, ?, ?)`,
		k.ClientID, k.Operation, k.Key.Key, k.Key.RequestHash[:], k.ResourceID, k.Now, k.ExpiresAt).Row().Scan(&existing)
	if err != nil {
		return "", refusalError(ctx, err)
	}
	return existing.String, nil
}

// CreatePaymentConsent implements openbanking.ConsentStore.
func (s *Store) CreatePaymentConsent(ctx context.Context, k openbanking.KeyClaim, c openbanking.Consent, refuse error) (string, error) {
	var existing string
	err := s.RunInTx(ctx, func(tx *gorm.DB) error {
		var err error
		if existing, err = claimKey(ctx, tx, k); err != nil || existing != "" {
			return err
		}
		if refuse != nil {
			return refuse
		}
		var auth *string
		if c.AuthorisationJSON != nil {
			a := string(c.AuthorisationJSON)
			auth = &a
		}
		return dbError(ctx, tx.Exec(`INSERT INTO consents (id, kind, api_version, client_id, status, created_at, status_updated_at,
				currency, amount, initiation, authorisation, risk, reference, creditor_account_id, creditor_internal)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, string(c.Kind), string(c.Version), c.ClientID, string(c.Status), c.CreatedAt, c.StatusUpdatedAt, c.Amount.Currency, c.Amount.Minor,
			string(c.InitiationJSON), auth, string(c.RiskJSON), c.Reference, string(c.CreditorAccountID), c.CreditorInternal).Error)
	})
	if err != nil {
		return "", err
	}
	return existing, nil
}

// CreateAccessConsent implements openbanking.ConsentStore.
func (s *Store) CreateAccessConsent(ctx context.Context, c openbanking.Consent) error {
	names := make([]string, len(c.Permissions))
	for i, p := range c.Permissions {
		names[i] = string(p)
	}
	if err := s.db.WithContext(ctx).Exec(`INSERT INTO consents (id, kind, api_version, client_id, status, created_at,
			status_updated_at, permissions, expires_at, transaction_from, transaction_to)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, string(c.Kind), string(c.Version), c.ClientID, string(c.Status), c.CreatedAt, c.StatusUpdatedAt, strings.Join(names, " "),
		c.ExpiresAt, c.TransactionFrom, c.TransactionTo).Error; err != nil {
		return dbError(ctx, err)
	}
	return nil
}

// UpdateConsent implements openbanking.ConsentStore.
func (s *Store) UpdateConsent(ctx context.Context, id string, decide func(openbanking.Consent) (*openbanking.ConsentChange, error)) error {
	return s.RunInTx(ctx, func(tx *gorm.DB) error {
		c, err := loadConsent(ctx, tx, id, true)
		if err != nil {
			return err
		}
		ch, err := decide(c)
		if err != nil || ch == nil {
			return err
		}
		if ch.Status == openbanking.StatusAuthorised {
			var debtor *string
			if ch.DebtorAccountID != "" {
				d := string(ch.DebtorAccountID)
				debtor = &d
			}
			return dbError(ctx, tx.Exec(`UPDATE consents SET status = ?, psu = ?, debtor_account_id = ?,
				status_updated_at = ? WHERE id = ?`, string(ch.Status), ch.PSU, debtor, ch.At, c.ID).Error)
		}
		return dbError(ctx, tx.Exec(`UPDATE consents SET status = ?, status_updated_at = ? WHERE id = ?`,
			string(ch.Status), ch.At, c.ID).Error)
	})
}

// CreatePayment implements openbanking.ConsentStore with one call of the
// database function ob_create_payment (migrations/00003_posting_functions.sql
// and its later replacements, the latest in 00006_api_version.sql), which
// claims the key, locks the consent,
// checks it as openbanking.CheckPayment does, posts through ledger_post and
// records the payment: one round trip, retried as a whole on serialization
// failures and deadlocks.
func (s *Store) CreatePayment(ctx context.Context, k openbanking.KeyClaim, p openbanking.PaymentExecution) (openbanking.PaymentOutcome, error) {
	var existing, status, scheme, identification, name sql.NullString
	err := s.RunStatement(ctx, func(db *gorm.DB) error {
		err := db.Raw(`SELECT o_existing::text, o_status, o_debtor_scheme, o_debtor_identification, o_debtor_name
			FROM ob_create_payment(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.ClientID, p.PSU, p.ConsentID,
			k.Operation, k.Key.Key, k.Key.RequestHash[:], k.ExpiresAt,
			string(p.InitiationJSON), string(p.RiskJSON), p.Now,
			p.TransferID, p.BookingTime, string(p.Version)).Row().Scan(&existing, &status, &scheme, &identification, &name)
		return refusalError(ctx, err)
	})
	if err != nil {
		return openbanking.PaymentOutcome{}, err
	}
	out := openbanking.PaymentOutcome{Existing: existing.String, Status: openbanking.PaymentStatus(status.String)}
	if identification.Valid {
		out.Debtor = &openbanking.AccountRef{SchemeName: scheme.String, Identification: identification.String, Name: name.String}
	}
	return out, nil
}

type paymentRow struct {
	ID                   string
	APIVersion           string
	ConsentID            string
	ClientID             string
	Status               string
	TransferID           *string
	CreatedAt            time.Time
	StatusUpdatedAt      time.Time
	Initiation           string
	DebtorScheme         *string
	DebtorIdentification *string
	DebtorName           *string
}

// model is the one mapping of a payments row to openbanking.Payment.
func (r paymentRow) model() openbanking.Payment {
	p := openbanking.Payment{ID: r.ID, Version: openbanking.APIVersion(r.APIVersion), ConsentID: r.ConsentID, ClientID: r.ClientID, Status: openbanking.PaymentStatus(r.Status),
		CreatedAt: r.CreatedAt.UTC(), StatusUpdatedAt: r.StatusUpdatedAt.UTC(), InitiationJSON: []byte(r.Initiation),
		TransferID: deref(r.TransferID)}
	if r.DebtorIdentification != nil {
		p.Debtor = &openbanking.AccountRef{SchemeName: deref(r.DebtorScheme), Identification: *r.DebtorIdentification, Name: deref(r.DebtorName)}
	}
	return p
}

// Payment implements openbanking.ConsentStore.
func (s *Store) Payment(ctx context.Context, id string) (openbanking.Payment, error) {
	pid, ok := models.CanonicalID(id)
	if !ok {
		return openbanking.Payment{}, openbanking.ErrNotFound
	}
	var rows []paymentRow
	if err := s.db.WithContext(ctx).Raw(`SELECT p.id::text AS id, p.consent_id::text AS consent_id, p.client_id,
			p.status, p.transfer_id::text AS transfer_id, p.created_at, p.status_updated_at, c.initiation, c.api_version,
			a.scheme_name AS debtor_scheme, a.identification AS debtor_identification, a.name AS debtor_name
		FROM payments p JOIN consents c ON c.id = p.consent_id
		LEFT JOIN accounts a ON a.id = c.debtor_account_id
		WHERE p.id = ?`, pid).Scan(&rows).Error; err != nil {
		return openbanking.Payment{}, dbError(ctx, err)
	}
	if len(rows) != 1 {
		return openbanking.Payment{}, openbanking.ErrNotFound
	}
	return rows[0].model(), nil
}

// PurgeExpiredKeys implements openbanking.ConsentStore.
func (s *Store) PurgeExpiredKeys(ctx context.Context, now time.Time, limit int) (int, error) {
	res := s.db.WithContext(ctx).Exec(`DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM idempotency_keys WHERE expires_at < ? LIMIT ? FOR UPDATE SKIP LOCKED))
		AND expires_at < ?`, now, limit, now)
	if res.Error != nil {
		return 0, dbError(ctx, res.Error)
	}
	return int(res.RowsAffected), nil
}
