package devauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/postgres"
	"github.com/obpay/payments/internal/security"
	"github.com/obpay/payments/internal/testdb"
)

// TestAuthorizeWithOpenBanking runs the sandbox approval against the real
// Open Banking service on Postgres: the consent is authorised through
// AuthoriseConsent exactly as the back office route does it.
func TestAuthorizeWithOpenBanking(t *testing.T) {
	ctx := context.Background()
	db := testdb.Open(t)
	l, err := postgres.NewLedger(db)
	if err != nil {
		t.Fatal(err)
	}
	store, err := postgres.NewStore(l, postgres.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := openbanking.New(openbanking.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	open := func(owner, opening string) models.Account {
		t.Helper()
		p := ledger.OpenAccountParams{Owner: owner, Currency: "GBP", Nickname: owner + " current"}
		if opening != "" {
			a, err := models.ParseAmount(opening, "GBP")
			if err != nil {
				t.Fatal(err)
			}
			p.Opening = &a
		}
		a, err := l.OpenAccount(ctx, p)
		if err != nil {
			t.Fatalf("OpenAccount(%s) = %v", owner, err)
		}
		return a
	}
	alice, bob, carol := open("alice", "100.00"), open("bob", ""), open("carol", "50.00")
	aliceEUR, err := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "alice", Currency: "EUR", Nickname: "alice euro"})
	if err != nil {
		t.Fatal(err)
	}
	initiation, _ := json.Marshal(map[string]any{
		"InstructionIdentification": "i-1", "EndToEndIdentification": "e-1",
		"InstructedAmount": map[string]string{"Amount": "10.00", "Currency": "GBP"},
		"CreditorAccount":  map[string]string{"SchemeName": bob.SchemeName, "Identification": bob.Identification},
	})
	consent := func(clientID, key string) string {
		t.Helper()
		pc, err := svc.CreatePaymentConsent(ctx, openbanking.Caller{ClientID: clientID},
			openbanking.Idempotency{Key: key, RequestHash: sha256.Sum256(initiation)},
			openbanking.PaymentConsentRequest{
				Version: openbanking.V3_1,
				Initiation: openbanking.Initiation{Amount: "10.00", Currency: "GBP",
					Creditor: openbanking.AccountRef{SchemeName: bob.SchemeName, Identification: bob.Identification}},
				InitiationJSON: initiation, RiskJSON: []byte(`{}`),
			})
		if err != nil {
			t.Fatalf("CreatePaymentConsent = %v", err)
		}
		return pc.ID
	}

	f := newFixture(t, func(_ *security.Config, c *Config) { c.Consents = svc })
	f.now = time.Now()
	mine, theirs := consent("sandbox-tpp", "k-1"), consent("sandbox-tpp-2", "k-2")

	cases := []struct {
		name    string
		consent string
		psu     string
		debtor  string
		code    string // "" means success
		desc    string // the error_description, when the case names it
	}{
		// The sandbox stands in for the signed-in customer, who is told
		// why the account cannot pay.
		{name: "another PSU's debtor account", consent: mine, psu: "alice", debtor: string(carol.ID), code: "invalid_request",
			desc: "debtor_account is not an account of this psu"},
		{name: "unknown debtor account", consent: mine, psu: "alice", debtor: "no-such-account", code: "invalid_request",
			desc: "Unknown debtor_account: no account has this AccountId"},
		{name: "debtor account in another currency", consent: mine, psu: "alice", debtor: string(aliceEUR.ID), code: "invalid_request",
			desc: "debtor_account is not in the currency of the consent"},
		{name: "another client's consent", consent: theirs, psu: "alice", debtor: string(alice.ID), code: "invalid_request"},
		{name: "unknown consent", consent: "00000000-0000-0000-0000-000000000000", psu: "alice", debtor: string(alice.ID), code: "invalid_request"},
		{name: "approved", consent: mine, psu: "alice", debtor: string(alice.ID)},
		{name: "approved twice", consent: mine, psu: "alice", debtor: string(alice.ID), code: "access_denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := authorizeQuery()
			q.Set("consent_id", tc.consent)
			q.Set("psu", tc.psu)
			q.Set("debtor_account", tc.debtor)
			w := f.authorize(q, true)
			b := decode(t, w)
			if tc.code != "" {
				if w.Code != http.StatusBadRequest || b.Error != tc.code {
					t.Fatalf("authorize = %d %s (%s), want 400 %s", w.Code, b.Error, b.ErrorDescription, tc.code)
				}
				if tc.desc != "" && b.ErrorDescription != tc.desc {
					t.Errorf("error_description = %q, want %q", b.ErrorDescription, tc.desc)
				}
				return
			}
			if w.Code != http.StatusOK {
				t.Fatalf("authorize = %d %s (%s), want 200", w.Code, b.Error, b.ErrorDescription)
			}
			pc, err := svc.PaymentConsent(ctx, openbanking.Caller{ClientID: "sandbox-tpp"}, tc.consent)
			if err != nil || pc.Status != openbanking.StatusAuthorised || pc.PSU != "alice" || pc.DebtorAccountID != alice.ID {
				t.Fatalf("consent after approval = %+v, %v", pc, err)
			}
			tok := f.mustToken(exchangeForm(b.Code))
			info := f.introspect(tok.AccessToken)
			if info.Subject != "alice" || info.ConsentID != tc.consent || info.CnfJKT != f.key.Thumbprint() {
				t.Errorf("PSU token = %+v", info)
			}
		})
	}
}
