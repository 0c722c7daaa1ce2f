package authstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"gorm.io/gorm"

	sdk "github.com/obpay/payments/client"
	"github.com/obpay/payments/internal/devauth"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/postgres/authstore"
	"github.com/obpay/payments/internal/security"
	"github.com/obpay/payments/internal/testdb"
)

const (
	publicURL = "https://api.bank.example"
	redirect  = "http://127.0.0.1:8765/callback"
	verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

func challenge() string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// consents says that every consent belongs to owner and awaits
// authorisation, and accepts every authorisation.
type consents struct {
	mu    sync.Mutex
	owner string
}

func (c *consents) ConsentClient(context.Context, string) (string, string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.owner, string(openbanking.KindPayment), string(openbanking.StatusAwaitingAuthorisation), nil
}

func (c *consents) AuthoriseConsent(context.Context, string, string, string) error { return nil }

// sandbox is one devauth server process on the shared database: a restart is
// a new sandbox on the same database.
type sandbox struct {
	t      *testing.T
	tokens *devauth.Tokens
	e      *echo.Echo
	now    func() time.Time
}

func newSandbox(t *testing.T, db *gorm.DB, c *consents, now func() time.Time, maxPerClient int) *sandbox {
	t.Helper()
	store, err := authstore.New(db)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := devauth.NewStoredTokens(devauth.TokensConfig{Store: store, Now: now, MaxPerClient: maxPerClient})
	if err != nil {
		t.Fatal(err)
	}
	replay, err := security.NewMemoryReplayStore(security.WithReplayClock(now))
	if err != nil {
		t.Fatal(err)
	}
	v, err := security.NewVerifier(security.Config{PublicURL: publicURL, ReplayStore: replay, Introspector: tokens, Now: now,
		NonceSecret: []byte("0123456789abcdef0123456789abcdef-authstore")})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := devauth.New(devauth.Config{Verifier: v, Consents: c, Tokens: tokens, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	srv.Register(e)
	return &sandbox{t: t, tokens: tokens, e: e, now: now}
}

func (s *sandbox) do(r *http.Request) (int, map[string]any) {
	s.t.Helper()
	w := httptest.NewRecorder()
	s.e.ServeHTTP(w, r)
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		s.t.Fatalf("%s %s = %d, not JSON: %q", r.Method, r.URL.Path, w.Code, w.Body.String())
	}
	return w.Code, body
}

// post sends form to path as the client id with secret, with a DPoP proof
// by key when key is not nil.
func (s *sandbox) post(path, id, secret string, key *sdk.Key, form url.Values) (int, map[string]any) {
	s.t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	if key != nil {
		p, err := key.Proof(sdk.ProofRequest{Method: http.MethodPost, URL: publicURL + path, IssuedAt: s.now()})
		if err != nil {
			s.t.Fatal(err)
		}
		r.Header.Set("DPoP", p)
	}
	return s.do(r)
}

func (s *sandbox) introspect(token string) map[string]any {
	s.t.Helper()
	status, b := s.post("/oauth2/introspect", devauth.ResourceServerClientID, devauth.ResourceServerClientSecret, nil,
		url.Values{"token": {token}})
	if status != http.StatusOK {
		s.t.Fatalf("introspect = %d %v", status, b)
	}
	return b
}

func str(b map[string]any, k string) string {
	v, _ := b[k].(string)
	return v
}

// TestRestart: what the sandbox issued survives a new server on the same
// database: a registered client, a pushed request, a code, tokens; and a
// code used before the restart stays used.
func TestRestart(t *testing.T) {
	db := testdb.Open(t)
	now := time.Now()
	clock := func() time.Time { return now }
	c := &consents{}
	key, err := sdk.GenerateKey(sdk.ES256)
	if err != nil {
		t.Fatal(err)
	}

	first := newSandbox(t, db, c, clock, 0)
	r := httptest.NewRequest(http.MethodPost, "/oauth2/register", strings.NewReader(`{"redirect_uris": ["`+redirect+`"],
		"grant_types": ["authorization_code", "refresh_token", "client_credentials"], "scope": "payments"}`))
	r.Header.Set("Content-Type", "application/json")
	status, reg := first.do(r)
	id, secret := str(reg, "client_id"), str(reg, "client_secret")
	if status != http.StatusCreated || id == "" || secret == "" {
		t.Fatalf("register = %d %v", status, reg)
	}
	c.mu.Lock()
	c.owner = id
	c.mu.Unlock()
	status, par := first.post("/oauth2/par", id, secret, nil, url.Values{
		"response_type": {"code"}, "redirect_uri": {redirect}, "scope": {"payments"}, "state": {"s1"},
		"code_challenge": {challenge()}, "code_challenge_method": {"S256"}, "consent_id": {"pay-1"},
	})
	if status != http.StatusCreated || str(par, "request_uri") == "" {
		t.Fatalf("par = %d %v", status, par)
	}

	// The pushed request survives a restart, and the code it gives.
	second := newSandbox(t, db, c, clock, 0)
	q := url.Values{"client_id": {id}, "request_uri": {str(par, "request_uri")}, "psu": {"alice"}, "debtor_account": {"acc-1"}}
	r = httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+q.Encode(), nil)
	r.Header.Set("Accept", "application/json")
	status, authz := second.do(r)
	code := str(authz, "code")
	if status != http.StatusOK || code == "" {
		t.Fatalf("authorize after a restart = %d %v", status, authz)
	}
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"code_verifier": {verifier}}
	third := newSandbox(t, db, c, clock, 0)
	status, tok := third.post("/oauth2/token", id, secret, key, exchange)
	at, rt := str(tok, "access_token"), str(tok, "refresh_token")
	if status != http.StatusOK || at == "" || rt == "" {
		t.Fatalf("code exchange after a restart = %d %v", status, tok)
	}

	// After another restart the token introspects active, the refresh
	// token works and the registered client still authenticates.
	fourth := newSandbox(t, db, c, clock, 0)
	info := fourth.introspect(at)
	if info["active"] != true || str(info, "client_id") != id || str(info, "sub") != "alice" || str(info, "consent_id") != "pay-1" {
		t.Fatalf("introspection after a restart = %v", info)
	}
	if cnf, _ := info["cnf"].(map[string]any); cnf["jkt"] != key.Thumbprint() {
		t.Errorf("cnf after a restart = %v, want jkt %s", info["cnf"], key.Thumbprint())
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if status, b := fourth.post("/oauth2/token", id, secret, key, refresh); status != http.StatusOK || str(b, "access_token") == "" {
		t.Errorf("refresh after a restart = %d %v", status, b)
	}
	if status, b := fourth.post("/oauth2/token", id, secret, key, url.Values{"grant_type": {"client_credentials"}}); status != http.StatusOK {
		t.Errorf("registered client's client_credentials after a restart = %d %v", status, b)
	}
	if status, b := fourth.post("/oauth2/token", id, "wrong-secret", key, url.Values{"grant_type": {"client_credentials"}}); status != http.StatusUnauthorized {
		t.Errorf("wrong secret after a restart = %d %v, want 401", status, b)
	}

	// The code, used before the restart, is refused after it, and its
	// reuse revokes what it gave.
	if status, b := fourth.post("/oauth2/token", id, secret, key, exchange); status != http.StatusBadRequest || str(b, "error") != "invalid_grant" {
		t.Fatalf("code reused after a restart = %d %v, want 400 invalid_grant", status, b)
	}
	if info := fourth.introspect(at); info["active"] != false {
		t.Errorf("token of a reused code = %v, want inactive", info)
	}
	if status, b := fourth.post("/oauth2/token", id, secret, key, refresh); status != http.StatusBadRequest || str(b, "error") != "invalid_grant" {
		t.Errorf("refresh token of a reused code = %d %v, want 400 invalid_grant", status, b)
	}
}

// TestConcurrentExchange: two servers on one database exchange one code at
// once. The store lets exactly one spend it (TestRedeemCodeConcurrently);
// the other presentation is a reuse, which revokes what the code gave (RFC
// 6749 §4.1.2): at most one exchange gets tokens, and they end inactive.
func TestConcurrentExchange(t *testing.T) {
	db := testdb.Open(t)
	now := time.Now()
	clock := func() time.Time { return now }
	c := &consents{owner: "sandbox-tpp"}
	key, err := sdk.GenerateKey(sdk.ES256)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []*sandbox{newSandbox(t, db, c, clock, 0), newSandbox(t, db, c, clock, 0)}
	for round := 0; round < 5; round++ {
		q := url.Values{"response_type": {"code"}, "client_id": {"sandbox-tpp"}, "redirect_uri": {redirect},
			"scope": {"payments"}, "code_challenge": {challenge()}, "code_challenge_method": {"S256"},
			"consent_id": {"pay-1"}, "psu": {"alice"}, "debtor_account": {"acc-1"}}
		r := httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+q.Encode(), nil)
		r.Header.Set("Accept", "application/json")
		status, authz := nodes[0].do(r)
		if status != http.StatusOK {
			t.Fatalf("authorize = %d %v", status, authz)
		}
		exchange := url.Values{"grant_type": {"authorization_code"}, "code": {str(authz, "code")},
			"redirect_uri": {redirect}, "code_verifier": {verifier}}
		statuses := make([]int, len(nodes))
		answers := make([]map[string]any, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i], answers[i] = n.post("/oauth2/token", "sandbox-tpp", "sandbox-secret", key, exchange)
			}()
		}
		wg.Wait()
		ok := 0
		for i, s := range statuses {
			switch {
			case s == http.StatusOK:
				ok++
				if info := nodes[0].introspect(str(answers[i], "access_token")); info["active"] != false {
					t.Errorf("round %d: token of a code presented twice = %v, want inactive", round, info)
				}
			case s != http.StatusBadRequest || str(answers[i], "error") != "invalid_grant":
				t.Errorf("round %d: exchange = %d %v, want 200 or 400 invalid_grant", round, s, answers[i])
			}
		}
		if ok > 1 {
			t.Fatalf("round %d: concurrent exchanges answered %v, want at most one 200", round, statuses)
		}
	}
}

// TestCapPerClient: a client at its cap is refused; the other clients, the
// admin client above all, still get tokens.
func TestCapPerClient(t *testing.T) {
	db := testdb.Open(t)
	now := time.Now()
	clock := func() time.Time { return now }
	s := newSandbox(t, db, &consents{}, clock, 3)
	key, err := sdk.GenerateKey(sdk.ES256)
	if err != nil {
		t.Fatal(err)
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i < 3; i++ {
		if status, b := s.post("/oauth2/token", "sandbox-tpp", "sandbox-secret", key, cc); status != http.StatusOK {
			t.Fatalf("token %d = %d %v", i, status, b)
		}
	}
	status, b := s.post("/oauth2/token", "sandbox-tpp", "sandbox-secret", key, cc)
	if status != http.StatusTooManyRequests || str(b, "error") != "temporarily_unavailable" {
		t.Fatalf("token past the cap = %d %v, want 429 temporarily_unavailable", status, b)
	}
	if status, b := s.post("/oauth2/token", "sandbox-admin", "admin-secret", key, cc); status != http.StatusOK {
		t.Errorf("admin token while sandbox-tpp is at its cap = %d %v", status, b)
	}
	if status, b := s.post("/oauth2/token", "sandbox-tpp-2", "sandbox-secret-2", key, cc); status != http.StatusOK {
		t.Errorf("other aggregator's token while sandbox-tpp is at its cap = %d %v", status, b)
	}
	// The cap counts live tokens: once they expire, and once purged, the
	// client gets tokens again.
	now = now.Add(5 * time.Minute)
	if n, err := s.tokens.Purge(context.Background(), 1000); err != nil || n != 5 {
		t.Errorf("Purge = %d, %v; want the 5 expired tokens", n, err)
	}
	if status, b := s.post("/oauth2/token", "sandbox-tpp", "sandbox-secret", key, cc); status != http.StatusOK {
		t.Errorf("token once the others expired = %d %v", status, b)
	}
}

// postAssertion sends form to path authenticated by a client assertion of
// id signed with key (private_key_jwt), with a DPoP proof by proofKey.
func (s *sandbox) postAssertion(path, id string, key jwk.Key, jti string, proofKey *sdk.Key, form url.Values) (int, map[string]any) {
	s.t.Helper()
	claims, err := json.Marshal(map[string]any{"iss": id, "sub": id, "aud": publicURL, "jti": jti,
		"iat": s.now().Unix(), "exp": s.now().Add(time.Minute).Unix()})
	if err != nil {
		s.t.Fatal(err)
	}
	h := jws.NewHeaders()
	_ = h.Set(jws.KeyIDKey, key.KeyID())
	a, err := jws.Sign(claims, jws.WithKey(jwa.ES256, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		s.t.Fatal(err)
	}
	form.Set("client_assertion_type", security.ClientAssertionType)
	form.Set("client_assertion", string(a))
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	p, err := proofKey.Proof(sdk.ProofRequest{Method: http.MethodPost, URL: publicURL + path, IssuedAt: s.now()})
	if err != nil {
		s.t.Fatal(err)
	}
	r.Header.Set("DPoP", p)
	return s.do(r)
}

// TestRestartPrivateKeyJWT: a client registered with its keys
// (private_key_jwt) authenticates after a restart, and an assertion
// accepted before the restart is refused after it.
func TestRestartPrivateKeyJWT(t *testing.T) {
	db := testdb.Open(t)
	now := time.Now()
	clock := func() time.Time { return now }
	c := &consents{}
	proofKey, err := sdk.GenerateKey(sdk.ES256)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = key.Set(jwk.KeyIDKey, "k1")
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(map[string]any{"keys": []any{pub}})
	if err != nil {
		t.Fatal(err)
	}

	first := newSandbox(t, db, c, clock, 0)
	r := httptest.NewRequest(http.MethodPost, "/oauth2/register", strings.NewReader(`{"token_endpoint_auth_method": "private_key_jwt",
		"grant_types": ["client_credentials"], "scope": "accounts", "jwks": `+string(set)+`}`))
	r.Header.Set("Content-Type", "application/json")
	status, reg := first.do(r)
	id := str(reg, "client_id")
	if status != http.StatusCreated || id == "" {
		t.Fatalf("register = %d %v", status, reg)
	}
	cc := func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }
	if status, b := first.postAssertion("/oauth2/token", id, key, "jti-1", proofKey, cc()); status != http.StatusOK {
		t.Fatalf("token before the restart = %d %v", status, b)
	}

	second := newSandbox(t, db, c, clock, 0)
	if status, b := second.postAssertion("/oauth2/token", id, key, "jti-1", proofKey, cc()); status != http.StatusUnauthorized || str(b, "error") != "invalid_client" {
		t.Errorf("assertion replayed after a restart = %d %v, want 401 invalid_client", status, b)
	}
	status, b := second.postAssertion("/oauth2/token", id, key, "jti-2", proofKey, cc())
	if status != http.StatusOK || str(b, "scope") != "accounts" {
		t.Fatalf("token after a restart = %d %v, want 200 with scope accounts", status, b)
	}
}
