package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/postgres"
	"github.com/obpay/payments/internal/security"
	"github.com/obpay/payments/internal/testdb"
)

const testBase = "https://api.example.test/ob"

// Test headers read by fakeDPoP instead of a token and a proof.
const (
	hClient  = "X-Test-Client"
	hSubject = "X-Test-Subject"
	hConsent = "X-Test-Consent"
	hScopes  = "X-Test-Scopes"
)

// fakeDPoP stands in for the DPoP middleware: it builds the principal from
// test headers, or refuses the request like an invalid token.
func fakeDPoP(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		client := r.Header.Get(hClient)
		if client == "" {
			return &security.Error{Status: http.StatusUnauthorized, Code: security.CodeInvalidToken, Description: "Invalid access token"}
		}
		p := security.Principal{ClientID: client, Subject: r.Header.Get(hSubject), ConsentID: r.Header.Get(hConsent),
			Scopes: strings.Fields(r.Header.Get(hScopes))}
		c.SetRequest(r.WithContext(security.WithPrincipal(r.Context(), p)))
		return next(c)
	}
}

type api struct {
	t   *testing.T
	e   *echo.Echo
	db  *gorm.DB
	l   *postgres.Ledger
	svc *openbanking.Service
	log *syncBuffer // the JSON log of the handler and the server
}

func newAPI(t *testing.T) *api {
	t.Helper()
	return newAPIWith(t, fakeDPoP)
}

// newAPIWith is newAPI with dpop as the routes' DPoP middleware.
func newAPIWith(t *testing.T, dpop echo.MiddlewareFunc) *api {
	t.Helper()
	db := testdb.Open(t)
	l, err := postgres.NewLedger(db)
	if err != nil {
		t.Fatal(err)
	}
	store, err := postgres.NewStore(l, postgres.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := openbanking.New(openbanking.Config{Store: store, TransactionsPageSize: openbanking.MinTransactionsPageSize})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	h, err := NewHandler(HandlerConfig{Service: svc, Logger: log, PublicURL: testBase})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Logger: log, Registry: prometheus.NewRegistry(), BodyLimit: 4096, PublicURL: testBase,
		Ping:   func(context.Context) error { return nil },
		Routes: func(e *echo.Echo) error { return RegisterRoutes(e, h, dpop) }})
	if err != nil {
		t.Fatal(err)
	}
	return &api{t: t, e: e, db: db, l: l, svc: svc, log: logs}
}

type hdr map[string]string

func tpp(client, scopes string) hdr { return hdr{hClient: client, hScopes: scopes} }

func psuToken(client, psu, consent, scopes string) hdr {
	return hdr{hClient: client, hSubject: psu, hConsent: consent, hScopes: scopes}
}

var admin = tpp("bank-admin", "ledger:admin consents:admin")

func (h hdr) with(kv ...string) hdr {
	out := hdr{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// do sends a request with a JSON content type and a DPoP header (which the
// generated wrapper requires) unless h overrides them.
func (a *api) do(method, path, body string, h hdr) *httptest.ResponseRecorder {
	a.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("DPoP", "test-proof")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	a.e.ServeHTTP(rec, req)
	return rec
}

// want decodes a successful answer into v after checking its status.
func (a *api) want(rec *httptest.ResponseRecorder, status int, v any) {
	a.t.Helper()
	if rec.Code != status {
		a.t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body.String())
	}
	if v != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			a.t.Fatalf("decode %s: %v", rec.Body.String(), err)
		}
	}
}

func (a *api) openAccount(owner, opening string) (id, ident string) {
	a.t.Helper()
	var out struct {
		AccountId string
		Account   []struct{ Identification string }
		Balance   string
	}
	body := fmt.Sprintf(`{"Owner":%q,"Currency":"GBP","Nickname":"%s current"`, owner, owner)
	if opening != "" {
		body += fmt.Sprintf(`,"OpeningBalance":%q`, opening)
	}
	a.want(a.do(http.MethodPost, "/internal/v1/accounts", body+"}", admin), http.StatusCreated, &out)
	return out.AccountId, out.Account[0].Identification
}

func (a *api) balance(id string) string {
	a.t.Helper()
	b, err := a.l.Balance(context.Background(), models.AccountID(id))
	if err != nil {
		a.t.Fatal(err)
	}
	return b.Format()
}

func (a *api) count(table string) int64 {
	var n int64
	a.db.Raw("SELECT count(*) FROM " + table).Scan(&n)
	return n
}

func consentBody(amount, creditor string) string {
	return fmt.Sprintf(`{"Data":{"Initiation":{"InstructionIdentification":"ACME412","EndToEndIdentification":"E2E-1",
		"InstructedAmount":{"Amount":%q,"Currency":"GBP"},
		"CreditorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":%q,"Name":"Bob"},
		"RemittanceInformation":{"Reference":"INV-1"}}},
		"Risk":{"PaymentContextCode":"PartyToParty"}}`, amount, creditor)
}

// paymentBody turns a consent body into the payment body for consentID.
func paymentBody(consent, consentID string) string {
	return strings.Replace(consent, `{"Data":{`, fmt.Sprintf(`{"Data":{"ConsentId":%q,`, consentID), 1)
}

type consentResp struct {
	Data struct {
		ConsentId  string
		Status     string
		Initiation map[string]any
	}
	Risk  map[string]any
	Links struct{ Self, Next string }
}

type paymentResp struct {
	Data struct {
		DomesticPaymentId string
		ConsentId         string
		Status            string
		Debtor            *struct{ Identification string }
	}
	Links struct{ Self string }
}

// paymentConsent creates a consent of client through the API.
func (a *api) paymentConsent(client, body string) string {
	a.t.Helper()
	var out consentResp
	a.want(a.do(http.MethodPost, "/open-banking/v3.1/pisp/domestic-payment-consents", body,
		tpp(client, "payments").with("x-idempotency-key", fmt.Sprintf("c-%d", time.Now().UnixNano()))), http.StatusCreated, &out)
	return out.Data.ConsentId
}

func (a *api) authorise(consentID, psu, debtor string) {
	a.t.Helper()
	body := fmt.Sprintf(`{"Psu":%q}`, psu)
	if debtor != "" {
		body = fmt.Sprintf(`{"Psu":%q,"DebtorAccount":%q}`, psu, debtor)
	}
	a.want(a.do(http.MethodPost, "/internal/v1/consents/"+consentID+"/authorise", body, admin), http.StatusOK, nil)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
