package openbanking_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/postgres"
	"github.com/obpay/payments/internal/testdb"
)

const (
	clientA = "tpp-a"
	clientB = "tpp-b"
)

// fixture is a service on a fresh database with a settable clock.
type fixture struct {
	t   *testing.T
	db  *gorm.DB
	l   *postgres.Ledger
	svc *openbanking.Service

	mu  sync.Mutex
	now time.Time
}

// fixtureConfig is what a test may change of a fixture's service and store.
type fixtureConfig struct {
	ob    openbanking.Config
	store postgres.StoreConfig
}

func newFixture(t *testing.T, opts ...func(*fixtureConfig)) *fixture {
	t.Helper()
	f := &fixture{t: t, db: testdb.Open(t), now: time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)}
	l, err := postgres.NewLedger(f.db, postgres.WithClock(f.clock))
	if err != nil {
		t.Fatalf("ledger.New = %v", err)
	}
	var cfg fixtureConfig
	for _, o := range opts {
		o(&cfg)
	}
	store, err := postgres.NewStore(l, cfg.store)
	if err != nil {
		t.Fatalf("postgres.NewStore = %v", err)
	}
	cfg.ob.Store, cfg.ob.Now = store, f.clock
	svc, err := openbanking.New(cfg.ob)
	if err != nil {
		t.Fatalf("openbanking.New = %v", err)
	}
	f.l, f.svc = l, svc
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fixture) open(owner, currency, opening string) models.Account {
	f.t.Helper()
	p := ledger.OpenAccountParams{Owner: owner, Currency: currency, Nickname: owner + " current"}
	if opening != "" {
		a, err := models.ParseAmount(opening, currency)
		if err != nil {
			f.t.Fatalf("ParseAmount(%q) = %v", opening, err)
		}
		p.Opening = &a
	}
	a, err := f.l.OpenAccount(context.Background(), p)
	if err != nil {
		f.t.Fatalf("OpenAccount(%s) = %v", owner, err)
	}
	return a
}

func (f *fixture) balance(id models.AccountID) string {
	f.t.Helper()
	b, err := f.l.Balance(context.Background(), id)
	if err != nil {
		f.t.Fatalf("Balance(%s) = %v", id, err)
	}
	return b.Format()
}

// count returns the number of rows of a table.
func (f *fixture) count(table string) int64 {
	f.t.Helper()
	var n int64
	if err := f.db.Raw("SELECT count(*) FROM " + table).Scan(&n).Error; err != nil {
		f.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// initiation is a payment's Initiation as the handlers would encode it.
type initiation struct {
	InstructionIdentification string
	EndToEndIdentification    string
	InstructedAmount          struct{ Amount, Currency string }
	DebtorAccount             *ref `json:",omitempty"`
	CreditorAccount           ref
}

type ref struct{ SchemeName, Identification string }

func consentRequest(amount, currency string, creditor ref) openbanking.PaymentConsentRequest {
	var in initiation
	in.InstructionIdentification, in.EndToEndIdentification = "instr-1", "e2e-1"
	in.InstructedAmount.Amount, in.InstructedAmount.Currency = amount, currency
	in.CreditorAccount = creditor
	return requestFor(in)
}

func requestFor(in initiation) openbanking.PaymentConsentRequest {
	b, _ := json.Marshal(in)
	return openbanking.PaymentConsentRequest{
		Version: openbanking.V3_1,
		Initiation: openbanking.Initiation{
			Amount: in.InstructedAmount.Amount, Currency: in.InstructedAmount.Currency,
			Creditor:  openbanking.AccountRef{SchemeName: in.CreditorAccount.SchemeName, Identification: in.CreditorAccount.Identification},
			Reference: in.EndToEndIdentification,
		},
		InitiationJSON: b,
		RiskJSON:       []byte(`{}`),
	}
}

func refOf(a models.Account) ref {
	return ref{SchemeName: a.SchemeName, Identification: a.Identification}
}

var external = ref{SchemeName: models.SchemeSortCodeAccountNumber, Identification: "99999912345678"}

func key(k string, body []byte) openbanking.Idempotency {
	return openbanking.Idempotency{Key: k, RequestHash: sha256.Sum256(body)}
}

var keySeq struct {
	sync.Mutex
	n int
}

func freshKey() string {
	keySeq.Lock()
	defer keySeq.Unlock()
	keySeq.n++
	return fmt.Sprintf("key-%d", keySeq.n)
}

// consent creates a payment consent of client for req.
func (f *fixture) consent(client string, req openbanking.PaymentConsentRequest) openbanking.PaymentConsent {
	f.t.Helper()
	pc, err := f.svc.CreatePaymentConsent(context.Background(), openbanking.Caller{ClientID: client},
		key(freshKey(), req.InitiationJSON), req)
	if err != nil {
		f.t.Fatalf("CreatePaymentConsent = %v", err)
	}
	return pc
}

// authorised creates a payment consent of client and has psu authorise it
// with debtor; it returns the consent and the PSU caller for it.
func (f *fixture) authorised(client, psu string, debtor models.Account, req openbanking.PaymentConsentRequest) (openbanking.PaymentConsent, openbanking.Caller) {
	f.t.Helper()
	pc := f.consent(client, req)
	if err := f.svc.AuthoriseConsent(context.Background(), pc.ID, psu, string(debtor.ID)); err != nil {
		f.t.Fatalf("AuthoriseConsent = %v", err)
	}
	return pc, openbanking.Caller{ClientID: client, PSU: psu, ConsentID: pc.ID}
}

func paymentFor(pc openbanking.PaymentConsent, req openbanking.PaymentConsentRequest) openbanking.PaymentRequest {
	return openbanking.PaymentRequest{Version: pc.Version, ConsentID: pc.ID, InitiationJSON: req.InitiationJSON, RiskJSON: req.RiskJSON}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want %v", what, err, want)
	}
}

func ledgerTransfer(from, to models.AccountID) ledger.TransferParams {
	return ledger.TransferParams{From: from, To: to, Amount: models.Amount{Minor: 100, Currency: "GBP"}, Reference: "test"}
}
