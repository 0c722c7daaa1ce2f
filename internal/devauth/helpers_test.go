package devauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	sdk "github.com/obpay/payments/client"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/security"
)

const (
	testPublicURL = "https://api.bank.example"
	testTokenURL  = testPublicURL + "/oauth2/token"
	testRedirect  = "http://127.0.0.1:8765/callback"
	// A PKCE pair: the challenge is base64url(SHA-256(verifier)).
	testVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

var testChallenge = func() string {
	sum := sha256.Sum256([]byte(testVerifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}()

// fakeConsent is one consent of the fake Open Banking layer.
type fakeConsent struct {
	client string
	kind   openbanking.ConsentKind
	status openbanking.ConsentStatus
}

// authoriseCall records the arguments of one AuthoriseConsent call.
type authoriseCall struct{ consentID, psu, debtorAccount string }

// fakeConsents implements ConsentAuthoriser with the rules of the real one
// that the sandbox relies on.
type fakeConsents struct {
	mu       sync.Mutex
	consents map[string]*fakeConsent
	calls    []authoriseCall
	fail     error // returned by every call when set
}

func newFakeConsents() *fakeConsents {
	return &fakeConsents{consents: map[string]*fakeConsent{
		"pay-1":  {client: "sandbox-tpp", kind: openbanking.KindPayment, status: openbanking.StatusAwaitingAuthorisation},
		"pay-2":  {client: "sandbox-tpp-2", kind: openbanking.KindPayment, status: openbanking.StatusAwaitingAuthorisation},
		"acc-1":  {client: "sandbox-tpp", kind: openbanking.KindAccountAccess, status: openbanking.StatusAwaitingAuthorisation},
		"done-1": {client: "sandbox-tpp", kind: openbanking.KindPayment, status: openbanking.StatusAuthorised},
	}}
}

func (f *fakeConsents) ConsentClient(_ context.Context, id string) (string, string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", "", "", f.fail
	}
	c, ok := f.consents[id]
	if !ok {
		return "", "", "", openbanking.ErrNotFound
	}
	return c.client, string(c.kind), string(c.status), nil
}

func (f *fakeConsents) AuthoriseConsent(_ context.Context, id, psu, debtor string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, authoriseCall{id, psu, debtor})
	c, ok := f.consents[id]
	switch {
	case !ok:
		return openbanking.ErrNotFound
	case c.status != openbanking.StatusAwaitingAuthorisation:
		return openbanking.ErrInvalidConsentStatus
	case len(psu) > openbanking.MaxPSULen:
		return &openbanking.FieldError{Path: "Psu", Reason: "too long", Err: openbanking.ErrInvalidField}
	case c.kind == openbanking.KindPayment && debtor == "":
		return &openbanking.FieldError{Path: "DebtorAccount", Reason: "required", Missing: true, Err: openbanking.ErrInvalidField}
	case c.kind == openbanking.KindAccountAccess && debtor != "":
		return &openbanking.FieldError{Path: "DebtorAccount", Reason: "not allowed", Err: openbanking.ErrInvalidField}
	}
	c.status = openbanking.StatusAuthorised
	return nil
}

func (f *fakeConsents) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// fixture is one sandbox server on a fixed, movable clock, with one DPoP key.
type fixture struct {
	t        *testing.T
	now      time.Time
	tokens   *Tokens
	verifier *security.Verifier
	srv      *Server
	e        *echo.Echo
	consents *fakeConsents
	key      *sdk.Key
}

type fixtureOption func(*security.Config, *Config)

func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	f := &fixture{t: t, now: time.Unix(1_800_000_000, 0), consents: newFakeConsents()}
	clock := func() time.Time { return f.now }
	f.tokens = NewTokens(clock)
	store, err := security.NewMemoryReplayStore(security.WithReplayClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	scfg := security.Config{
		PublicURL:    testPublicURL,
		NonceSecret:  []byte("0123456789abcdef0123456789abcdef-devauth"),
		ReplayStore:  store,
		Introspector: f.tokens,
		Now:          clock,
	}
	dcfg := Config{Consents: f.consents, Tokens: f.tokens, Now: clock}
	for _, o := range opts {
		o(&scfg, &dcfg)
	}
	if f.verifier, err = security.NewVerifier(scfg); err != nil {
		t.Fatal(err)
	}
	dcfg.Verifier = f.verifier
	if f.srv, err = New(dcfg); err != nil {
		t.Fatal(err)
	}
	f.e = echo.New()
	f.srv.Register(f.e)
	f.key = testKey(t, sdk.ES256)
	return f
}

var (
	keysMu sync.Mutex
	keys   = map[sdk.Algorithm]*sdk.Key{}
	others = map[sdk.Algorithm]*sdk.Key{}
)

// testKey returns one shared key per algorithm (RSA generation is slow).
func testKey(t *testing.T, alg sdk.Algorithm) *sdk.Key {
	return sharedKey(t, keys, alg)
}

// otherKey returns a second shared key per algorithm.
func otherKey(t *testing.T, alg sdk.Algorithm) *sdk.Key {
	return sharedKey(t, others, alg)
}

func sharedKey(t *testing.T, m map[sdk.Algorithm]*sdk.Key, alg sdk.Algorithm) *sdk.Key {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := m[alg]; ok {
		return k
	}
	k, err := sdk.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	m[alg] = k
	return k
}

// proof signs a token-endpoint proof with k at the fixture's time.
func (f *fixture) proof(k *sdk.Key) string {
	f.t.Helper()
	p, err := k.Proof(sdk.ProofRequest{Method: http.MethodPost, URL: testTokenURL, IssuedAt: f.now})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// basic is the client_secret_basic header value (RFC 6749 §2.3.1).
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// post sends a form to path; the request options run last.
func (f *fixture) post(path string, form url.Values, opts ...func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	f.e.ServeHTTP(w, r)
	return w
}

// tokenRequest sends a token request as sandbox-tpp with a fresh proof by
// f.key, unless the options change that.
func (f *fixture) tokenRequest(form url.Values, opts ...func(*http.Request)) *httptest.ResponseRecorder {
	f.t.Helper()
	base := []func(*http.Request){
		withHeader("Authorization", basic("sandbox-tpp", "sandbox-secret")),
		withHeader("DPoP", f.proof(f.key)),
	}
	return f.post("/oauth2/token", form, append(base, opts...)...)
}

func withHeader(name, value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

func withoutHeader(name string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Del(name) }
}

// tokenBody is the token endpoint's JSON answer, success or error.
type tokenBody struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	Scope            string `json:"scope"`
	RefreshToken     string `json:"refresh_token"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	Code             string `json:"code"`
	State            string `json:"state"`
	Iss              string `json:"iss"`

	ConsentID            string          `json:"consent_id"`
	AuthorizationDetails json.RawMessage `json:"authorization_details"`
}

func decode(t *testing.T, w *httptest.ResponseRecorder) tokenBody {
	t.Helper()
	var b tokenBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("answer %d is not JSON: %q", w.Code, w.Body.String())
	}
	return b
}

// mustToken asks for a token and fails the test unless it is issued.
func (f *fixture) mustToken(form url.Values, opts ...func(*http.Request)) tokenBody {
	f.t.Helper()
	w := f.tokenRequest(form, opts...)
	b := decode(f.t, w)
	if w.Code != http.StatusOK {
		f.t.Fatalf("token request = %d %s (%s), want 200", w.Code, b.Error, b.ErrorDescription)
	}
	return b
}

// authorizeQuery returns a valid authorization request for the payment
// consent pay-1.
func authorizeQuery() url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {"sandbox-tpp"},
		"redirect_uri":          {testRedirect},
		"scope":                 {"payments"},
		"code_challenge":        {testChallenge},
		"code_challenge_method": {"S256"},
		"consent_id":            {"pay-1"},
		"psu":                   {"alice"},
		"debtor_account":        {"acc-alice"},
		"state":                 {"xyz"},
	}
}

// authorize sends GET /oauth2/authorize, as JSON when asJSON.
func (f *fixture) authorize(q url.Values, asJSON bool) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+q.Encode(), nil)
	if asJSON {
		r.Header.Set("Accept", "application/json")
	}
	w := httptest.NewRecorder()
	f.e.ServeHTTP(w, r)
	return w
}

// code runs a valid authorization request and returns the code.
func (f *fixture) code(q url.Values) string {
	f.t.Helper()
	w := f.authorize(q, true)
	b := decode(f.t, w)
	if w.Code != http.StatusOK || b.Code == "" {
		f.t.Fatalf("authorize = %d %s (%s), want a code", w.Code, b.Error, b.ErrorDescription)
	}
	return b.Code
}

func exchangeForm(code string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {testRedirect},
		"code_verifier": {testVerifier},
	}
}

// introspect asks the in-process introspector.
func (f *fixture) introspect(token string) security.Introspection {
	f.t.Helper()
	info, err := f.srv.Introspect(context.Background(), token)
	if err != nil {
		f.t.Fatal(err)
	}
	return info
}

func decodeInto(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("answer is not JSON: %q", b)
	}
}

// requests returns the number of pushed requests in the fixture's store.
func (f *fixture) requests() int {
	_, _, _, n, _ := f.tokens.store.(*MemoryStore).sizes()
	return n
}

// registrations returns the number of registered clients in the fixture's
// store.
func (f *fixture) registrations() int {
	_, _, _, _, n := f.tokens.store.(*MemoryStore).sizes()
	return n
}
