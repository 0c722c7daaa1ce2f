package handlers

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/internal/security"
)

// TestDPoPRefusalsNameTheCheckAndMoveNoMoney sends a payment with one DPoP
// rule broken at a time through the real verifier and the real handlers and
// ledger: each answer names the failed check in the challenge's
// error_description and in the OB error body (token answers excepted: they
// read the same whatever the token's state), and nothing reaches the ledger.
func TestDPoPRefusalsNameTheCheckAndMoveNoMoney(t *testing.T) {
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		t.Fatal(err)
	}
	other, err := client.GenerateKey(client.ES256)
	if err != nil {
		t.Fatal(err)
	}
	tokens := answers{}
	dpop := realDPoP(t, tokens)
	// The setup calls (accounts, consent, authorisation) use the test
	// headers; the payments under test go through the real verifier.
	mixed := func(next echo.HandlerFunc) echo.HandlerFunc {
		fake, real := fakeDPoP(next), dpop(next)
		return func(c echo.Context) error {
			if c.Request().Header.Get(hClient) != "" {
				return fake(c)
			}
			return real(c)
		}
	}
	a := newAPIWith(t, mixed)
	alice, _ := a.openAccount("alice", "100.00")
	_, bobIdent := a.openAccount("bob", "")
	consent := consentBody("10.00", bobIdent)
	ready := a.paymentConsent("tpp-a", consent)
	a.authorise(ready, "alice", alice)
	exp := time.Now().Add(5 * time.Minute).Unix()
	psu := security.Introspection{Active: true, Scope: "payments", ClientID: "tpp-a", Subject: "alice", ConsentID: ready,
		TokenType: "DPoP", Exp: exp, CnfJKT: key.Thumbprint()}
	tokens["psu"] = psu
	tokens["revoked"] = security.Introspection{Active: false}
	unbound := psu
	unbound.CnfJKT = other.Thumbprint()
	tokens["other-key"] = unbound

	const path = "/open-banking/v3.1/pisp/domestic-payments"
	const url = testBase + path
	body := paymentBody(consent, ready)

	// The nonce of the verifier's current window, from a first challenge.
	first := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	p, _ := key.Proof(client.ProofRequest{Method: http.MethodPost, URL: url, AccessToken: "psu"})
	first.Header.Set("Authorization", "DPoP psu")
	first.Header.Set("DPoP", p)
	first.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	a.e.ServeHTTP(rec, first)
	nonce := rec.Header().Get("DPoP-Nonce")
	if rec.Code != http.StatusUnauthorized || nonce == "" {
		t.Fatalf("first payment = %d (nonce %q), want 401 use_dpop_nonce with a nonce", rec.Code, nonce)
	}

	proof := func(r client.ProofRequest) string {
		t.Helper()
		if r.Method == "" {
			r.Method = http.MethodPost
		}
		if r.URL == "" {
			r.URL = url
		}
		if r.AccessToken == "" {
			r.AccessToken = "psu"
		}
		if r.Nonce == "" {
			r.Nonce = nonce
		}
		s, err := key.Proof(r)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// withHeader returns a proof whose protected header has name set to
	// value (its signature no longer verifies, but the header is checked
	// first).
	withHeader := func(name, value string) string {
		h, rest, _ := strings.Cut(proof(client.ProofRequest{}), ".")
		raw, _ := base64.RawURLEncoding.DecodeString(h)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		m[name] = value
		raw, _ = json.Marshal(m)
		return base64.RawURLEncoding.EncodeToString(raw) + "." + rest
	}
	spent := proof(client.ProofRequest{})
	withoutNonce, err := key.Proof(client.ProofRequest{Method: http.MethodPost, URL: url, AccessToken: "psu"})
	if err != nil {
		t.Fatal(err)
	}

	const algs = `algs="ES256 EdDSA Ed25519 PS256"`
	tests := []struct {
		name    string
		token   string
		proofs  []string
		status  int
		header  string // the exact WWW-Authenticate
		message string // the OB error body's Errors[0].Message
	}{
		{name: "htu of another host", proofs: []string{proof(client.ProofRequest{URL: "http://127.0.0.1:8080" + path})},
			status: 401, message: "htu does not match this request: expected " + url},
		{name: "htu of another port", proofs: []string{proof(client.ProofRequest{URL: "https://api.example.test:8443/ob" + path})},
			status: 401, message: "htu does not match this request: expected " + url},
		{name: "htm of another method", proofs: []string{proof(client.ProofRequest{Method: http.MethodGet})},
			status: 401, message: "htm does not match this request: expected POST"},
		{name: "iat two minutes old", proofs: []string{proof(client.ProofRequest{IssuedAt: time.Now().Add(-2 * time.Minute)})},
			status: 401, message: "DPoP proof iat too old: a proof may be at most 60s old, so sign a new one for every request and check the client clock"},
		{name: "iat a minute ahead", proofs: []string{proof(client.ProofRequest{IssuedAt: time.Now().Add(time.Minute)})},
			status: 401, message: "DPoP proof iat in the future: at most 10s ahead of the server clock is allowed, so check the client clock"},
		{name: "ath of another token", proofs: []string{proof(client.ProofRequest{AccessToken: "another-token"})},
			status: 401, message: "ath does not match the access token: it must be the base64url SHA-256 of the token as sent"},
		{name: "typ jwt", proofs: []string{withHeader("typ", "jwt")},
			status: 401, message: "DPoP proof typ must be dpop+jwt"},
		{name: "alg RS256", proofs: []string{withHeader("alg", "RS256")},
			status: 401, message: "DPoP proof alg not allowed: use one of ES256 EdDSA Ed25519 PS256"},
		{name: "no DPoP header", status: 401, message: "DPoP proof missing: send exactly one DPoP header"},
		{name: "two DPoP headers", proofs: []string{proof(client.ProofRequest{}), proof(client.ProofRequest{})},
			status: 401, message: "More than one DPoP header: send exactly one"},
		{name: "proof sent twice", proofs: []string{spent},
			status: 401, message: "DPoP proof jti already used: sign a new proof for every request"},
		{name: "token bound to another key", token: "other-key", proofs: []string{proof(client.ProofRequest{AccessToken: "other-key"})},
			status: 401, header: `DPoP error="invalid_token", error_description="DPoP key does not match the token's cnf.jkt", ` + algs,
			message: "DPoP key does not match the token's cnf.jkt"},
		{name: "revoked token", token: "revoked", proofs: []string{proof(client.ProofRequest{AccessToken: "revoked"})},
			status: 401, header: `DPoP error="invalid_token", error_description="Invalid access token", ` + algs,
			message: "Invalid access token"},
		{name: "unknown token", token: "unknown", proofs: []string{proof(client.ProofRequest{AccessToken: "unknown"})},
			status: 401, header: `DPoP error="invalid_token", error_description="Invalid access token", ` + algs,
			message: "Invalid access token"},
		{name: "nonce missing", proofs: []string{withoutNonce}, status: 401, header: `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`,
			message: "DPoP nonce missing: sign a new proof with the DPoP-Nonce of this answer and send the request again"},
		{name: "nonce not the server's", proofs: []string{proof(client.ProofRequest{Nonce: "eyJ7S_zG.eyJH0-Z.HX4w-7v"})},
			status: 401, header: `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`,
			message: "DPoP nonce unknown or expired: sign a new proof with the DPoP-Nonce of this answer and send the request again"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "proof sent twice" {
				// The first use passes the verifier, which records the
				// proof last, and is then refused by the handler (no
				// idempotency key): no payment, but the proof is spent.
				r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
				r.Header.Set("Authorization", "DPoP psu")
				r.Header.Set("DPoP", spent)
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				a.e.ServeHTTP(w, r)
				if w.Code != http.StatusBadRequest {
					t.Fatalf("first use of the proof = %d %s, want 400 (no idempotency key)", w.Code, w.Body)
				}
			}
			before, payments, consumed := a.balance(alice), a.count("payments"), a.count("consents WHERE status = 'Consumed'")
			token := tc.token
			if token == "" {
				token = "psu"
			}
			r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			r.Header.Set("Authorization", "DPoP "+token)
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set(HeaderIdempotencyKey, "k-"+string(rune('a'+i)))
			for _, p := range tc.proofs {
				r.Header.Add("DPoP", p)
			}
			w := httptest.NewRecorder()
			a.e.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			header := tc.header
			if header == "" {
				header = `DPoP error="invalid_dpop_proof", error_description="` + tc.message + `", ` + algs
			}
			if got := w.Header().Get("WWW-Authenticate"); got != header {
				t.Errorf("WWW-Authenticate = %q, want %q", got, header)
			}
			b := decodeError(t, w)
			if b.Errors[0].ErrorCode != CodeUnauthorized || b.Errors[0].Message != tc.message {
				t.Errorf("error = %s %q, want %s %q", b.Errors[0].ErrorCode, b.Errors[0].Message, CodeUnauthorized, tc.message)
			}
			if got := a.balance(alice); got != before {
				t.Errorf("alice = %s, want %s: money moved", got, before)
			}
			if a.count("payments") != payments || a.count("consents WHERE status = 'Consumed'") != consumed {
				t.Errorf("a payment was written or a consent consumed")
			}
		})
	}
}

// realDPoP is the service's DPoP middleware with the real verifier, an
// in-memory replay store and tokens as its introspector, under testBase.
func realDPoP(t *testing.T, tokens answers) echo.MiddlewareFunc {
	t.Helper()
	replay, err := security.NewMemoryReplayStore()
	if err != nil {
		t.Fatal(err)
	}
	v, err := security.NewVerifier(security.Config{PublicURL: testBase, ReplayStore: replay, Introspector: tokens,
		NonceSecret: []byte("a nonce secret of at least thirty-two bytes")})
	if err != nil {
		t.Fatal(err)
	}
	dpop, err := security.NewMiddleware(security.MiddlewareConfig{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	return dpop
}
