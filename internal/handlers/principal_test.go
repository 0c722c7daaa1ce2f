package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/internal/security"
)

// answers is an introspector with one fixed answer per token.
type answers map[string]security.Introspection

func (a answers) Introspect(_ context.Context, token string) (security.Introspection, error) {
	return a[token], nil
}

// TestTokenKindThroughTheRealMiddleware runs the real DPoP verifier in front
// of the handlers: a client-credentials token whose sub is the client id
// (RFC 9068 §2.2) creates a consent as the client it is, while a token that
// carries a consent id is the customer's and is refused there.
func TestTokenKindThroughTheRealMiddleware(t *testing.T) {
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(5 * time.Minute).Unix()
	tokens := answers{
		"client-with-sub": {Active: true, Scope: "payments", ClientID: "tpp-sub", Subject: "tpp-sub",
			TokenType: "DPoP", Exp: exp, CnfJKT: key.Thumbprint()},
		"psu": {Active: true, Scope: "payments", ClientID: "tpp-sub", Subject: "alice", ConsentID: "c-1",
			TokenType: "DPoP", Exp: exp, CnfJKT: key.Thumbprint()},
	}

	replay, err := security.NewMemoryReplayStore()
	if err != nil {
		t.Fatal(err)
	}
	v, err := security.NewVerifier(security.Config{PublicURL: testBase, NonceMode: security.NonceOff,
		ReplayStore: replay, Introspector: tokens})
	if err != nil {
		t.Fatal(err)
	}
	dpop, err := security.NewMiddleware(security.MiddlewareConfig{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	e := newAPIWith(t, dpop).e

	const path = "/open-banking/v3.1/pisp/domestic-payment-consents"
	tests := []struct {
		token string
		want  int
	}{
		{"client-with-sub", http.StatusCreated},
		{"psu", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			proof, err := key.Proof(client.ProofRequest{Method: http.MethodPost, URL: testBase + path, AccessToken: tt.token})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(consentBody("10.00", "11223321325698")))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "DPoP "+tt.token)
			req.Header.Set("DPoP", proof)
			req.Header.Set("x-idempotency-key", "k-"+tt.token)
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("POST consent with token %s = %d %s, want %d", tt.token, rec.Code, rec.Body, tt.want)
			}
		})
	}
}
