package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obpay/payments/client"
)

// challenge is the challenge the service sends for code and description,
// with the default PAYMENTS_DPOP_ALGS.
func challenge(code, description string) string {
	return `DPoP error="` + code + `", error_description="` + description + `", algs="ES256 EdDSA Ed25519 PS256"`
}

// The words of the malformed token answer, which names its syntax only.
const malformedToken = "Access token malformed: Authorization must be DPoP, a space, then the token (token68 characters)"

// TestSandboxMountedOnlyWhenEnabled: with PAYMENTS_DEV_AUTH=false (and an
// introspection URL, so the service can start) nothing under /oauth2 exists
// and no sandbox warning is logged; with the sandbox on, the token endpoint
// answers and serve warns that it is mounted.
func TestSandboxMountedOnlyWhenEnabled(t *testing.T) {
	off := startServer(t, "PAYMENTS_DEV_AUTH=false",
		"PAYMENTS_INTROSPECTION_URL=http://127.0.0.1:1/introspect",
		"PAYMENTS_INTROSPECTION_CLIENT_ID=rs", "PAYMENTS_INTROSPECTION_CLIENT_SECRET=rs-secret")
	on := startServer(t)

	form := []byte(url.Values{"grant_type": {"client_credentials"}, "client_id": {"sandbox-tpp"},
		"client_secret": {"sandbox-secret"}}.Encode())
	formHeader := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	endpoints := []struct {
		method, path string
	}{
		{http.MethodPost, "/oauth2/token"},
		{http.MethodGet, "/oauth2/authorize?client_id=sandbox-tpp"},
		{http.MethodPost, "/oauth2/introspect"},
	}
	for _, ep := range endpoints {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			res, b := do(t, ep.method, off.URL+ep.path, form, formHeader)
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("sandbox off: %s %s = %d %s, want 404", ep.method, ep.path, res.StatusCode, b)
			}
			res, b = do(t, ep.method, on.URL+ep.path, form, formHeader)
			if res.StatusCode == http.StatusNotFound {
				t.Errorf("sandbox on: %s %s = 404 %s, want the endpoint", ep.method, ep.path, b)
			}
		})
	}
	const warning = "sandbox authorization server mounted"
	if strings.Contains(off.Logs(), warning) {
		t.Errorf("sandbox off, yet the log says %q", warning)
	}
	if !strings.Contains(on.Logs(), warning) {
		t.Errorf("sandbox on, but the log lacks %q", warning)
	}
}

// fakeAS is an RFC 7662 endpoint whose behaviour the test switches. It
// answers active only for the configured client credentials (HTTP Basic,
// form-urlencoded first: RFC 6749 §2.3.1) and counts the calls.
type fakeAS struct {
	id, secret string
	jkt        string
	mode       atomic.Value // string: "active", "status500", "not-json", "slow"
	calls      atomic.Int64
	mu         sync.Mutex
	badAuth    int
}

func (f *fakeAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	user, pass, ok := r.BasicAuth()
	if ok {
		user, _ = url.QueryUnescape(user)
		pass, _ = url.QueryUnescape(pass)
	}
	if !ok || user != f.id || pass != f.secret {
		f.mu.Lock()
		f.badAuth++
		f.mu.Unlock()
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	switch f.mode.Load().(string) {
	case "status500":
		http.Error(w, "boom", http.StatusInternalServerError)
	case "not-json":
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>maintenance</html>"))
	case "truncated":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"active":true,"scope":"ledger:admin"`))
	case "slow":
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"active":false}`))
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"active": true, "scope": "ledger:admin", "client_id": "back-office", "token_type": "DPoP",
			"exp": time.Now().Add(5 * time.Minute).Unix(), "cnf": map[string]string{"jkt": f.jkt},
		})
	}
}

// TestIntrospectionFailuresNeverReachAHandler runs the service against an
// authorization server that fails in several ways: each protected call
// answers 503 with Retry-After, no challenge, and creates nothing (the
// account count read back afterwards is unchanged), while the same call
// with the server healthy creates an account (the control). Invalid proofs
// never cause an introspection call, and challenges never echo request
// input.
func TestIntrospectionFailuresNeverReachAHandler(t *testing.T) {
	key := mustKey(t, client.ES256)
	as := &fakeAS{id: "rs:client", secret: "s3cret&more", jkt: key.Thumbprint()}
	as.mode.Store("active")
	asSrv := httptest.NewServer(as)
	defer asSrv.Close()

	s := startServer(t, "PAYMENTS_DEV_AUTH=false", "PAYMENTS_INTROSPECTION_URL="+asSrv.URL,
		"PAYMENTS_INTROSPECTION_CLIENT_ID="+as.id, "PAYMENTS_INTROSPECTION_CLIENT_SECRET="+as.secret,
		"PAYMENTS_DPOP_NONCE=off", "PAYMENTS_INTROSPECTION_TIMEOUT=500ms")

	n := 0
	call := func(method, path string, body []byte) (*http.Response, []byte) {
		t.Helper()
		n++
		token := fmt.Sprintf("token-%d", n) // a fresh token each time: no cache hit
		u := s.URL + path
		proof, err := key.Proof(client.ProofRequest{Method: method, URL: u, AccessToken: token})
		if err != nil {
			t.Fatal(err)
		}
		return do(t, method, u, body, http.Header{"Authorization": {"DPoP " + token}, "Dpop": {proof},
			"Content-Type": {"application/json"}})
	}
	accounts := func() int {
		t.Helper()
		as.mode.Store("active")
		res, b := call(http.MethodGet, "/internal/v1/ledger/reconcile", nil)
		var rep struct{ AccountsChecked int }
		if res.StatusCode != http.StatusOK || json.Unmarshal(b, &rep) != nil {
			t.Fatalf("reconcile = %d %s", res.StatusCode, b)
		}
		return rep.AccountsChecked
	}
	open := func(owner string) (*http.Response, []byte) {
		return call(http.MethodPost, "/internal/v1/accounts", []byte(`{"Owner":"`+owner+`","Currency":"GBP","Nickname":"Main"}`))
	}

	// Control: with a healthy authorization server the handler runs.
	before := accounts()
	if res, b := open("control"); res.StatusCode != http.StatusCreated {
		t.Fatalf("control account = %d %s, want 201", res.StatusCode, b)
	}
	if got := accounts(); got != before+1 {
		t.Fatalf("accounts after the control = %d, want %d", got, before+1)
	}
	before++

	for _, mode := range []string{"status500", "not-json", "truncated", "slow"} {
		t.Run(mode, func(t *testing.T) {
			as.mode.Store(mode)
			res, b := open("ghost-" + mode)
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("= %d %s, want 503", res.StatusCode, b)
			}
			if res.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if w := res.Header.Get("WWW-Authenticate"); w != "" {
				t.Errorf("WWW-Authenticate = %q on a 503, want none (the credentials did not fail)", w)
			}
		})
	}
	if got := accounts(); got != before {
		t.Errorf("accounts = %d after the failed calls, want %d: a handler ran", got, before)
	}

	// Local failures: no introspection call, fixed challenges.
	callsBefore := as.calls.Load()
	u := s.URL + "/internal/v1/accounts"
	good, err := key.Proof(client.ProofRequest{Method: http.MethodPost, URL: u, AccessToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := key.Proof(client.ProofRequest{Method: http.MethodPost, URL: "https://evil.example/internal/v1/accounts", AccessToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	local := []struct {
		name      string
		auth      string
		proof     string
		challenge string
	}{
		{"token with a quote", `DPoP tok"en`, good, challenge("invalid_token", malformedToken)},
		{"token with a comma", "DPoP tok,algs=none", good, challenge("invalid_token", malformedToken)},
		{"proof with a quote", "DPoP tok", `x"y.z.w`, challenge("invalid_dpop_proof",
			"DPoP proof is not a compact JWS: three base64url parts without padding, joined by dots")},
		// The expected URL is the service's PAYMENTS_PUBLIC_URL plus the path.
		{"proof for another host", "DPoP tok", other, challenge("invalid_dpop_proof",
			"htu does not match this request: expected "+u)},
		{"proof for another token", "DPoP tok2", good, challenge("invalid_dpop_proof",
			"ath does not match the access token: it must be the base64url SHA-256 of the token as sent")},
	}
	// RFC 9728 §5.1: every 401 challenge ends with the metadata's URL.
	metadata := `, resource_metadata="` + s.URL + `/.well-known/oauth-protected-resource"`
	for _, tc := range local {
		t.Run(tc.name, func(t *testing.T) {
			res, b := do(t, http.MethodPost, u, []byte(`{"Owner":"x","Currency":"GBP"}`), http.Header{
				"Authorization": {tc.auth}, "Dpop": {tc.proof}, "Content-Type": {"application/json"}})
			if want := tc.challenge + metadata; res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != want {
				t.Errorf("= %d %q %s, want 401 %q", res.StatusCode, res.Header.Get("WWW-Authenticate"), b, want)
			}
		})
	}
	if got := as.calls.Load(); got != callsBefore {
		t.Errorf("local failures made %d introspection calls, want 0", got-callsBefore)
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.badAuth != 0 {
		t.Errorf("%d introspection calls with wrong client credentials", as.badAuth)
	}
}
