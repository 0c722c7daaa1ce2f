package devauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/obpay/payments/internal/openbanking"
)

type registerBody struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	Scope                   string   `json:"scope"`
	Error                   string   `json:"error"`
	ErrorDescription        string   `json:"error_description"`
}

func (f *fixture) registerClient(body string) (int, registerBody) {
	f.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth2/register", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	f.e.ServeHTTP(w, r)
	var b registerBody
	decodeInto(f.t, w.Body.Bytes(), &b)
	return w.Code, b
}

// newSigningKey returns a private P-256 JWK with a kid, and its public JWK
// set as JSON.
func newSigningKey(t *testing.T) (jwk.Key, string) {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, "k1")
	pub, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"keys": []any{pub}})
	return k, string(b)
}

func TestRegisterPrivateKeyJWTClient(t *testing.T) {
	f := newFixture(t)
	key, set := newSigningKey(t)
	status, b := f.registerClient(`{"token_endpoint_auth_method":"private_key_jwt","grant_types":["authorization_code","refresh_token"],` +
		`"redirect_uris":["http://127.0.0.1:7000/cb"],"client_name":"Test TPP","jwks":` + set + `}`)
	if status != http.StatusCreated || b.ClientID == "" || b.ClientSecret != "" || b.TokenEndpointAuthMethod != "private_key_jwt" || b.Scope != "accounts payments" {
		t.Fatalf("register = %d %+v", status, b)
	}
	f.consents.consents["pay-d"] = &fakeConsent{client: b.ClientID, kind: openbanking.KindPayment, status: openbanking.StatusAwaitingAuthorisation}
	claims := f.assertionClaims()
	claims["iss"], claims["sub"] = b.ClientID, b.ClientID

	// It did not ask for client_credentials.
	w := f.tokenRequest(withAssertion(url.Values{"grant_type": {"client_credentials"}}, sign(t, key, jwa.ES256, claims)), withoutHeader("Authorization"))
	if got := decode(t, w); w.Code != 400 || got.Error != "unauthorized_client" {
		t.Errorf("client_credentials = %d %s, want 400 unauthorized_client", w.Code, got.Error)
	}

	// Its registered redirect URI only.
	form := parForm()
	form.Set("consent_id", "pay-d")
	form.Set("redirect_uri", "http://127.0.0.1:7001/cb")
	claims["jti"] = randomJTI(t)
	if status, got := f.push(withAssertion(form, sign(t, key, jwa.ES256, claims)), withoutHeader("Authorization")); status != 400 || got.Error != "invalid_request" {
		t.Errorf("PAR with an unregistered redirect URI = %d %s, want 400 invalid_request", status, got.Error)
	}
	form.Set("redirect_uri", "http://127.0.0.1:7000/cb")
	claims["jti"] = randomJTI(t)
	uri := f.mustPush(withAssertion(form, sign(t, key, jwa.ES256, claims)), withoutHeader("Authorization"))
	q := authorizeURI(uri)
	q.Set("client_id", b.ClientID)
	code := f.code(q)
	ex := exchangeForm(code)
	ex.Set("redirect_uri", "http://127.0.0.1:7000/cb")
	claims["jti"] = randomJTI(t)
	tok := f.mustToken(withAssertion(ex, sign(t, key, jwa.ES256, claims)), withoutHeader("Authorization"))
	if info := f.introspect(tok.AccessToken); !info.Active || info.ClientID != b.ClientID || info.ConsentID != "pay-d" {
		t.Errorf("token = %+v", info)
	}
	// Another key does not authenticate it.
	other, _ := newSigningKey(t)
	claims["jti"] = randomJTI(t)
	w = f.tokenRequest(withAssertion(url.Values{"grant_type": {"client_credentials"}}, sign(t, other, jwa.ES256, claims)), withoutHeader("Authorization"))
	if got := decode(t, w); w.Code != 401 || got.Error != "invalid_client" {
		t.Errorf("assertion by another key = %d %s, want 401 invalid_client", w.Code, got.Error)
	}
}

func TestRegisterSecretClient(t *testing.T) {
	f := newFixture(t)
	status, b := f.registerClient(`{"grant_types":["client_credentials"],"scope":"accounts"}`)
	if status != http.StatusCreated || b.ClientSecret == "" || b.TokenEndpointAuthMethod != "client_secret_basic" {
		t.Fatalf("register = %d %+v", status, b)
	}
	tok := f.mustToken(url.Values{"grant_type": {"client_credentials"}}, withHeader("Authorization", basic(b.ClientID, b.ClientSecret)))
	if tok.Scope != "accounts" {
		t.Errorf("scope = %q, want accounts", tok.Scope)
	}
	w := f.tokenRequest(url.Values{"grant_type": {"client_credentials"}}, withHeader("Authorization", basic(b.ClientID, "guess")))
	if w.Code != 401 {
		t.Errorf("wrong secret = %d, want 401", w.Code)
	}
	// No authorization code grant: no authorization requests.
	q := authorizeQuery()
	q.Set("client_id", b.ClientID)
	if w := f.authorize(q, true); w.Code != 400 {
		t.Errorf("authorize = %d, want 400", w.Code)
	}
}

func TestRegisterRejects(t *testing.T) {
	_, set := newSigningKey(t)
	priv, _ := newSigningKey(t)
	privJSON, _ := json.Marshal(map[string]any{"keys": []any{priv}})
	cases := []struct{ name, body, code string }{
		{"not JSON", `{`, "invalid_client_metadata"},
		{"implicit grant", `{"grant_types":["implicit"],"redirect_uris":["http://127.0.0.1/cb"]}`, "invalid_client_metadata"},
		{"token response type", `{"response_types":["token"],"redirect_uris":["http://127.0.0.1/cb"]}`, "invalid_client_metadata"},
		{"no redirect URI", `{"grant_types":["authorization_code"]}`, "invalid_redirect_uri"},
		{"https redirect URI", `{"redirect_uris":["https://tpp.example/cb"]}`, "invalid_redirect_uri"},
		{"redirect URI with fragment", `{"redirect_uris":["http://127.0.0.1/cb#x"]}`, "invalid_redirect_uri"},
		{"admin scope", `{"redirect_uris":["http://127.0.0.1/cb"],"scope":"payments ledger:admin"}`, "invalid_client_metadata"},
		{"unknown auth method", `{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"tls_client_auth"}`, "invalid_client_metadata"},
		{"private_key_jwt without keys", `{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, "invalid_client_metadata"},
		{"private_key_jwt with jwks_uri", `{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://tpp.example/jwks"}`, "invalid_client_metadata"},
		{"a private key in jwks", `{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":` + string(privJSON) + `}`, "invalid_client_metadata"},
		{"jwks with a secret method", `{"redirect_uris":["http://127.0.0.1/cb"],"jwks":` + set + `}`, "invalid_client_metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			status, b := f.registerClient(tc.body)
			if status != 400 || b.Error != tc.code || b.ClientID != "" {
				t.Fatalf("register = %d %+v, want 400 %s", status, b, tc.code)
			}
			if n := f.registrations(); n != 0 {
				t.Errorf("%d clients registered, want none", n)
			}
		})
	}
}

func TestRegistryIsBounded(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < maxRegistered; i++ {
		if status, b := f.registerClient(`{"grant_types":["client_credentials"]}`); status != http.StatusCreated {
			t.Fatalf("registration %d = %d %+v", i, status, b)
		}
	}
	if status, b := f.registerClient(`{"grant_types":["client_credentials"]}`); status != http.StatusServiceUnavailable || b.Error != "temporarily_unavailable" {
		t.Fatalf("registration past the cap = %d %+v, want 503", status, b)
	}
	// Registrations end, and make room.
	f.now = f.now.Add(registrationLifetime)
	if status, _ := f.registerClient(`{"grant_types":["client_credentials"]}`); status != http.StatusCreated {
		t.Fatalf("registration after expiry = %d, want 201", status)
	}
}
