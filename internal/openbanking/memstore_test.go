package openbanking_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// memStore is an in-memory openbanking.Store: one mutex stands for the
// database's row locks and transactions, so that the Service's rules run
// without Postgres.
type memStore struct {
	mu       sync.Mutex
	accounts map[models.AccountID]models.Account
	consents map[string]openbanking.Consent
	payments map[string]openbanking.Payment
	keys     map[[3]string]memKey
	seq      int
}

type memKey struct {
	hash     [32]byte
	resource string
	expires  time.Time
}

var _ openbanking.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{
		accounts: map[models.AccountID]models.Account{}, consents: map[string]openbanking.Consent{},
		payments: map[string]openbanking.Payment{}, keys: map[[3]string]memKey{},
	}
}

func (m *memStore) newAccount(owner, currency string, kind models.AccountKind, balance int64) models.Account {
	m.seq++
	a := models.Account{
		ID: models.AccountID(fmt.Sprintf("00000000-0000-4000-8000-%012d", m.seq)), Owner: owner, Currency: currency, Kind: kind,
		SchemeName: models.SchemeSortCodeAccountNumber, Identification: fmt.Sprintf("040400%08d", m.seq),
		Balance: models.Amount{Minor: balance, Currency: currency},
	}
	m.accounts[a.ID] = a
	return a
}

func (m *memStore) OpenAccount(_ context.Context, p ledger.OpenAccountParams) (models.Account, error) {
	if err := p.Validate(); err != nil {
		return models.Account{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var opening int64
	if p.Opening != nil {
		opening = p.Opening.Minor
	}
	return m.newAccount(p.Owner, p.Currency, models.KindCustomer, opening), nil
}

func (m *memStore) Account(_ context.Context, id models.AccountID) (models.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.accounts[id]
	if !ok {
		return models.Account{}, ledger.ErrAccountNotFound
	}
	return a, nil
}

func (m *memStore) AccountByIdentification(_ context.Context, scheme, identification string) (models.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.accounts {
		if a.SchemeName == scheme && a.Identification == identification {
			return a, nil
		}
	}
	return models.Account{}, ledger.ErrAccountNotFound
}

func (m *memStore) SettlementAccount(_ context.Context, currency string) (models.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.accounts {
		if a.Kind == models.KindSettlement && a.Currency == currency {
			return a, nil
		}
	}
	return m.newAccount(ledger.SettlementOwner, currency, models.KindSettlement, 0), nil
}

func (m *memStore) AccountsByOwner(_ context.Context, owner string) ([]models.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []models.Account{}
	for _, a := range m.accounts {
		if a.Owner == owner && a.Kind == models.KindCustomer {
			out = append(out, a)
		}
	}
	return out, nil
}

func (m *memStore) Entries(context.Context, ledger.EntriesQuery) (ledger.EntriesPage, error) {
	return ledger.EntriesPage{Entries: []models.Entry{}}, nil
}

func (m *memStore) Reconcile(context.Context) (ledger.Report, error) {
	return ledger.Report{Balanced: true, Drift: []ledger.Drift{}, Totals: []ledger.Total{}}, nil
}

func (m *memStore) Consent(_ context.Context, id string) (openbanking.Consent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consent(id)
}

func (m *memStore) consent(id string) (openbanking.Consent, error) {
	c, ok := m.consents[id]
	if !ok {
		return openbanking.Consent{}, openbanking.ErrNotFound
	}
	if d, ok := m.accounts[c.DebtorAccountID]; ok {
		c.Debtor = &openbanking.AccountRef{SchemeName: d.SchemeName, Identification: d.Identification, Name: d.Name}
	}
	if cr, ok := m.accounts[c.CreditorAccountID]; ok {
		c.CreditorCurrency = cr.Currency
	}
	return c, nil
}

// claim is ob_claim_key's rule; the caller records the claim only when the
// whole operation succeeds (a refusal rolls the key back).
func (m *memStore) claim(k openbanking.KeyClaim) (existing string, err error) {
	prev, ok := m.keys[[3]string{k.ClientID, k.Operation, k.Key.Key}]
	switch {
	case !ok || !prev.expires.After(k.Now):
		return "", nil
	case prev.hash != k.Key.RequestHash:
		return "", openbanking.ErrIdempotencyConflict
	}
	return prev.resource, nil
}

func (m *memStore) record(k openbanking.KeyClaim) {
	m.keys[[3]string{k.ClientID, k.Operation, k.Key.Key}] = memKey{hash: k.Key.RequestHash, resource: k.ResourceID, expires: k.ExpiresAt}
}

func (m *memStore) CreatePaymentConsent(_ context.Context, k openbanking.KeyClaim, c openbanking.Consent, refuse error) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if existing, err := m.claim(k); err != nil || existing != "" {
		return existing, err
	}
	if refuse != nil {
		return "", refuse
	}
	m.record(k)
	m.consents[c.ID] = c
	return "", nil
}

func (m *memStore) CreateAccessConsent(_ context.Context, c openbanking.Consent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.consents[c.ID] = c
	return nil
}

func (m *memStore) UpdateConsent(_ context.Context, id string, decide func(openbanking.Consent) (*openbanking.ConsentChange, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.consent(id)
	if err != nil {
		return err
	}
	ch, err := decide(c)
	if err != nil || ch == nil {
		return err
	}
	stored := m.consents[id]
	stored.Status, stored.StatusUpdatedAt = ch.Status, ch.At
	if ch.Status == openbanking.StatusAuthorised {
		stored.PSU, stored.DebtorAccountID = ch.PSU, ch.DebtorAccountID
	}
	m.consents[id] = stored
	return nil
}

func (m *memStore) CreatePayment(_ context.Context, k openbanking.KeyClaim, p openbanking.PaymentExecution) (openbanking.PaymentOutcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if existing, err := m.claim(k); err != nil || existing != "" {
		return openbanking.PaymentOutcome{Existing: existing}, err
	}
	con, err := m.consent(p.ConsentID)
	if err != nil {
		return openbanking.PaymentOutcome{}, err
	}
	if err := openbanking.CheckPayment(con, p); err != nil {
		return openbanking.PaymentOutcome{}, err
	}
	debtor, creditor := m.accounts[con.DebtorAccountID], m.accounts[con.CreditorAccountID]
	funded := debtor.Balance.Minor >= con.Amount.Minor
	if funded {
		debtor.Balance.Minor -= con.Amount.Minor
		creditor.Balance.Minor += con.Amount.Minor
		m.accounts[debtor.ID], m.accounts[creditor.ID] = debtor, creditor
	}
	status := openbanking.PaymentStatusFor(con, funded)
	stored := m.consents[con.ID]
	stored.Status, stored.StatusUpdatedAt = openbanking.StatusConsumed, p.Now
	m.consents[con.ID] = stored
	m.payments[p.ID] = openbanking.Payment{ID: p.ID, Version: con.Version, ConsentID: con.ID, ClientID: p.ClientID, Status: status,
		CreatedAt: p.Now, StatusUpdatedAt: p.Now, InitiationJSON: con.InitiationJSON, Debtor: con.Debtor}
	m.record(k)
	return openbanking.PaymentOutcome{Status: status, Debtor: con.Debtor}, nil
}

func (m *memStore) Payment(_ context.Context, id string) (openbanking.Payment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.payments[id]
	if !ok {
		return openbanking.Payment{}, openbanking.ErrNotFound
	}
	return p, nil
}

func (m *memStore) ConsentAndAccount(_ context.Context, consentID, accountID string) (openbanking.Consent, bool, models.Account, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.consent(consentID)
	a, ok := m.accounts[models.AccountID(accountID)]
	return c, err == nil, a, ok, nil
}

func (m *memStore) PurgeExpiredKeys(_ context.Context, now time.Time, limit int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, v := range m.keys {
		if n < limit && v.expires.Before(now) {
			delete(m.keys, k)
			n++
		}
	}
	return n, nil
}

// memService is a Service on a memStore with a fixed clock.
func memService(t *testing.T) (*openbanking.Service, *memStore) {
	t.Helper()
	m := newMemStore()
	now := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	svc, err := openbanking.New(openbanking.Config{Store: m, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("openbanking.New = %v", err)
	}
	return svc, m
}

// TestPaymentRulesInMemory runs the payment rules (consent state machine,
// payment/consent match, idempotency) on the in-memory store.
func TestPaymentRulesInMemory(t *testing.T) {
	ctx := context.Background()
	svc, m := memService(t)
	alice, err := m.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "alice", Currency: "GBP", Opening: &models.Amount{Minor: 10000, Currency: "GBP"}})
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := m.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "bob", Currency: "GBP"})
	req := consentRequest("10.00", "GBP", refOf(bob))
	other := consentRequest("10.01", "GBP", refOf(bob))

	consentKey := key("consent-1", req.InitiationJSON)
	pc, err := svc.CreatePaymentConsent(ctx, openbanking.Caller{ClientID: clientA}, consentKey, req)
	if err != nil {
		t.Fatalf("CreatePaymentConsent = %v", err)
	}
	t.Run("consent replay returns the same consent", func(t *testing.T) {
		again, err := svc.CreatePaymentConsent(ctx, openbanking.Caller{ClientID: clientA}, consentKey, req)
		if err != nil || again.ID != pc.ID {
			t.Fatalf("CreatePaymentConsent again = %s, %v, want %s", again.ID, err, pc.ID)
		}
	})
	t.Run("consent key with another body conflicts", func(t *testing.T) {
		_, err := svc.CreatePaymentConsent(ctx, openbanking.Caller{ClientID: clientA}, key("consent-1", other.InitiationJSON), other)
		wantErr(t, "CreatePaymentConsent(other body)", err, openbanking.ErrIdempotencyConflict)
	})

	psu := openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: pc.ID}
	payKey := key("pay-1", req.InitiationJSON)
	t.Run("payment before authorisation", func(t *testing.T) {
		_, err := svc.CreatePayment(ctx, psu, payKey, paymentFor(pc, req))
		wantErr(t, "CreatePayment(AwaitingAuthorisation)", err, openbanking.ErrForbidden)
	})
	if err := svc.AuthoriseConsent(ctx, pc.ID, "alice", string(alice.ID)); err != nil {
		t.Fatalf("AuthoriseConsent = %v", err)
	}
	t.Run("authorised consent cannot be rejected or authorised again", func(t *testing.T) {
		_, err := svc.Reject(ctx, pc.ID)
		wantErr(t, "Reject(Authorised)", err, openbanking.ErrInvalidConsentStatus)
		_, err = svc.Authorise(ctx, pc.ID, "alice", string(alice.ID))
		wantErr(t, "Authorise(Authorised)", err, openbanking.ErrInvalidConsentStatus)
	})
	t.Run("payment that differs from its consent", func(t *testing.T) {
		bad := openbanking.PaymentRequest{Version: openbanking.V3_1, ConsentID: pc.ID, InitiationJSON: other.InitiationJSON, RiskJSON: req.RiskJSON}
		_, err := svc.CreatePayment(ctx, psu, key("pay-bad", other.InitiationJSON), bad)
		wantErr(t, "CreatePayment(mismatch)", err, openbanking.ErrConsentMismatch)
		if c, _ := m.Consent(ctx, pc.ID); c.Status != openbanking.StatusAuthorised {
			t.Fatalf("consent after a refused payment is %s, want Authorised", c.Status)
		}
	})

	p, err := svc.CreatePayment(ctx, psu, payKey, paymentFor(pc, req))
	if err != nil || p.Status != openbanking.PaymentAcceptedCreditSettlementCompleted {
		t.Fatalf("CreatePayment = %+v, %v, want AcceptedCreditSettlementCompleted", p, err)
	}
	if b, _ := m.Account(ctx, bob.ID); b.Balance.Minor != 1000 {
		t.Fatalf("creditor balance = %d, want 1000", b.Balance.Minor)
	}
	t.Run("payment replay returns the same payment and moves no money", func(t *testing.T) {
		again, err := svc.CreatePayment(ctx, psu, payKey, paymentFor(pc, req))
		if err != nil || again.ID != p.ID {
			t.Fatalf("CreatePayment again = %s, %v, want %s", again.ID, err, p.ID)
		}
		if b, _ := m.Account(ctx, bob.ID); b.Balance.Minor != 1000 {
			t.Fatalf("creditor balance after replay = %d, want 1000", b.Balance.Minor)
		}
	})
	t.Run("payment key with another body conflicts", func(t *testing.T) {
		body := paymentFor(pc, other)
		_, err := svc.CreatePayment(ctx, psu, openbanking.Idempotency{Key: "pay-1", RequestHash: sha256.Sum256([]byte("other"))}, body)
		wantErr(t, "CreatePayment(same key, other body)", err, openbanking.ErrIdempotencyConflict)
	})
	t.Run("consumed consent pays once", func(t *testing.T) {
		_, err := svc.CreatePayment(ctx, psu, key("pay-2", req.InitiationJSON), paymentFor(pc, req))
		wantErr(t, "CreatePayment(Consumed)", err, openbanking.ErrInvalidConsentStatus)
	})
	t.Run("rejected consent cannot be authorised", func(t *testing.T) {
		pc2, err := svc.CreatePaymentConsent(ctx, openbanking.Caller{ClientID: clientA}, key("consent-2", other.InitiationJSON), other)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := svc.Reject(ctx, pc2.ID); err != nil || d.Status != openbanking.StatusRejected {
			t.Fatalf("Reject = %+v, %v, want Rejected", d, err)
		}
		err = svc.AuthoriseConsent(ctx, pc2.ID, "alice", string(alice.ID))
		if !errors.Is(err, openbanking.ErrInvalidConsentStatus) {
			t.Fatalf("AuthoriseConsent(Rejected) = %v, want ErrInvalidConsentStatus", err)
		}
	})
	t.Run("account access consent revocation", func(t *testing.T) {
		ac, err := svc.CreateAccountAccessConsent(ctx, openbanking.Caller{ClientID: clientA},
			openbanking.AccountAccessRequest{Version: openbanking.V3_1, Permissions: []openbanking.Permission{openbanking.ReadBalances}})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // revoking a revoked consent succeeds and changes nothing
			if err := svc.RevokeAccountAccessConsent(ctx, openbanking.Caller{ClientID: clientA}, ac.ID); err != nil {
				t.Fatalf("RevokeAccountAccessConsent = %v", err)
			}
		}
		_, err = svc.Authorise(ctx, ac.ID, "alice", "")
		wantErr(t, "Authorise(Revoked)", err, openbanking.ErrInvalidConsentStatus)
	})
}
