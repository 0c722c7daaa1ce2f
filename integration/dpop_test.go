package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// rawCaller sends hand-built DPoP requests, so tests can send exactly the bad
// input they mean.
type rawCaller struct {
	t     *testing.T
	base  string
	key   *client.Key
	token string
	nonce string
}

func (r *rawCaller) proof(method, url, token, nonce string) string {
	r.t.Helper()
	p, err := r.key.Proof(client.ProofRequest{Method: method, URL: url, AccessToken: token, Nonce: nonce})
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// learnNonce makes one request without a nonce to learn the server's nonce.
func (r *rawCaller) learnNonce(path string) {
	r.t.Helper()
	url := r.base + path
	res, _ := do(r.t, http.MethodGet, url, nil, http.Header{
		"Authorization": {"DPoP " + r.token},
		"Dpop":          {r.proof(http.MethodGet, url, r.token, "")},
	})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		r.t.Fatalf("nonce-less request = %d %q, want 401 use_dpop_nonce", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	r.nonce = res.Header.Get("DPoP-Nonce")
	if r.nonce == "" {
		r.t.Fatal("use_dpop_nonce answer without DPoP-Nonce")
	}
}

func wwwAuthError(res *http.Response) string {
	h := res.Header.Get("WWW-Authenticate")
	i := strings.Index(h, `error="`)
	if i < 0 {
		return ""
	}
	rest := h[i+len(`error="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestDPoPAttacksAgainstTheRealServer(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	init := initiation(bob, "25.00", "att-1")
	consentID := sb.createConsent(t, init)

	// The aggregator's legitimate PSU token, bound to its key.
	pkce, _ := client.NewPKCE()
	auth := client.AuthorizeRequest{RedirectURI: "http://127.0.0.1/cb", Scope: "payments", PKCE: pkce,
		ConsentID: consentID, PSU: "alice", DebtorAccount: alice.AccountId}
	code, err := sb.tpp.SandboxAuthorize(sb.ctx, auth)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := sb.tpp.Exchange(sb.ctx, code, auth.RedirectURI, pkce)
	if err != nil {
		t.Fatal(err)
	}
	payURL := s.URL + "/open-banking/v3.1/pisp/domestic-payments"
	body := []byte(fmt.Sprintf(`{"Data":{"ConsentId":%q,"Initiation":{"InstructionIdentification":"att-1","EndToEndIdentification":"att-1","InstructedAmount":{"Amount":"25.00","Currency":"GBP"},"CreditorAccount":{"SchemeName":%q,"Identification":%q,"Name":"Creditor"}}},"Risk":{}}`,
		consentID, bob.Account[0].SchemeName, bob.Account[0].Identification))

	legit := &rawCaller{t: t, base: s.URL, key: sb.tppKey, token: tok.AccessToken}
	legit.learnNonce("/open-banking/v3.1/pisp/domestic-payments/unknown")
	thief := &rawCaller{t: t, base: s.URL, key: mustKey(t, client.ES256), token: tok.AccessToken, nonce: legit.nonce}

	hdr := func(auth, proof string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}, "X-Idempotency-Key": {client.NewIdempotencyKey()}}
		if auth != "" {
			h.Set("Authorization", auth)
		}
		if proof != "" {
			h.Set("DPoP", proof)
		}
		return h
	}
	cases := []struct {
		name       string
		header     http.Header
		wantStatus int
		wantError  string
	}{
		{"stolen token as a bearer token", hdr("Bearer "+tok.AccessToken, ""), 401, ""},
		{"stolen token without a proof", hdr("DPoP "+tok.AccessToken, ""), 401, "invalid_dpop_proof"},
		{"stolen token with the thief's own key", hdr("DPoP "+tok.AccessToken, thief.proof("POST", payURL, tok.AccessToken, thief.nonce)), 401, "invalid_token"},
		{"proof for another URL", hdr("DPoP "+tok.AccessToken, legit.proof("POST", s.URL+"/open-banking/v3.1/pisp/domestic-payment-consents", tok.AccessToken, legit.nonce)), 401, "invalid_dpop_proof"},
		{"proof for another method", hdr("DPoP "+tok.AccessToken, legit.proof("GET", payURL, tok.AccessToken, legit.nonce)), 401, "invalid_dpop_proof"},
		{"proof for another token", hdr("DPoP "+tok.AccessToken, legit.proof("POST", payURL, "another-token", legit.nonce)), 401, "invalid_dpop_proof"},
		{"proof without the nonce", hdr("DPoP "+tok.AccessToken, legit.proof("POST", payURL, tok.AccessToken, "")), 401, "use_dpop_nonce"},
		{"unknown token", hdr("DPoP forged-token", legit.proof("POST", payURL, "forged-token", legit.nonce)), 401, "invalid_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, b := do(t, http.MethodPost, payURL, body, tc.header)
			if res.StatusCode != tc.wantStatus || wwwAuthError(res) != tc.wantError {
				t.Fatalf("= %d %q %s, want %d error=%q", res.StatusCode, res.Header.Get("WWW-Authenticate"), b, tc.wantStatus, tc.wantError)
			}
			if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "DPoP") {
				t.Errorf("challenge %q does not use the DPoP scheme", res.Header.Get("WWW-Authenticate"))
			}
		})
	}

	// Nothing above moved money.
	assertBalance(t, sb, alice.AccountId, "alice", "100.00")

	// The legitimate proof works once; the same proof replayed is refused.
	proof := legit.proof("POST", payURL, tok.AccessToken, legit.nonce)
	first, b := do(t, http.MethodPost, payURL, body, hdr("DPoP "+tok.AccessToken, proof))
	if first.StatusCode != http.StatusCreated {
		t.Fatalf("legitimate payment = %d %s", first.StatusCode, b)
	}
	replayed, _ := do(t, http.MethodPost, payURL, body, hdr("DPoP "+tok.AccessToken, proof))
	if replayed.StatusCode != 401 || wwwAuthError(replayed) != "invalid_dpop_proof" {
		t.Fatalf("replayed proof = %d %q, want 401 invalid_dpop_proof", replayed.StatusCode, replayed.Header.Get("WWW-Authenticate"))
	}
	assertBalance(t, sb, alice.AccountId, "alice", "75.00")
	assertBalanced(t, sb)
}

// assertBalance reads an account's balance through a fresh account-access
// consent of its owner.
func assertBalance(t *testing.T, sb *sandbox, accountID, psu, want string) {
	t.Helper()
	perms := []obapi.OBExternalPermissions1Code{"ReadAccountsBasic", "ReadBalances"}
	ac, err := sb.tppAPI.CreateAccountAccessConsentsWithResponse(sb.ctx, &obapi.CreateAccountAccessConsentsParams{},
		obapi.OBReadConsent1{Data: obapi.OBReadConsent1Data{Permissions: perms}})
	if err != nil || ac.JSON201 == nil {
		t.Fatalf("account access consent = %v %d %s", err, ac.StatusCode(), ac.Body)
	}
	reader := sb.psuClient(t, ac.JSON201.Data.ConsentId, psu, "", "accounts")
	bal, err := reader.GetAccountsAccountIdBalancesWithResponse(sb.ctx, accountID, &obapi.GetAccountsAccountIdBalancesParams{})
	if err != nil || bal.JSON200 == nil {
		t.Fatalf("balances = %v %d %s", err, bal.StatusCode(), bal.Body)
	}
	for _, b := range bal.JSON200.Data.Balance {
		if b.Amount.Amount != want {
			t.Fatalf("%s balance = %s, want %s", b.Type, b.Amount.Amount, want)
		}
	}
}

func TestIntrospectionDownAnswers503(t *testing.T) {
	dead := fmt.Sprintf("http://127.0.0.1:%d/introspect", freePort(t))
	s := startServer(t, "PAYMENTS_DEV_AUTH=false", "PAYMENTS_INTROSPECTION_URL="+dead,
		"PAYMENTS_INTROSPECTION_CLIENT_ID=rs", "PAYMENTS_INTROSPECTION_CLIENT_SECRET=rs-secret",
		"PAYMENTS_DPOP_NONCE=off", "PAYMENTS_INTROSPECTION_TIMEOUT=500ms")
	key := mustKey(t, client.ES256)
	url := s.URL + "/open-banking/v3.1/aisp/accounts"
	proof, err := key.Proof(client.ProofRequest{Method: "GET", URL: url, AccessToken: "some-token"})
	if err != nil {
		t.Fatal(err)
	}
	res, b := do(t, http.MethodGet, url, nil, http.Header{"Authorization": {"DPoP some-token"}, "Dpop": {proof}})
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("with introspection down = %d (Retry-After %q) %s, want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"), b)
	}
}

func TestRedisReplayStoreIsSharedByTwoNodes(t *testing.T) {
	redisURL := redisURLForTest(t)
	secret := "nonce-secret-shared-by-both-nodes-0123456789"
	// Node a runs the sandbox authorization server; node b introspects against it over HTTP.
	a := startServer(t, "PAYMENTS_REPLAY_STORE="+redisURL, "PAYMENTS_DPOP_NONCE_SECRET="+secret)
	b := startServer(t, "PAYMENTS_REPLAY_STORE="+redisURL, "PAYMENTS_DPOP_NONCE_SECRET="+secret,
		"PAYMENTS_DEV_AUTH=false", "PAYMENTS_INTROSPECTION_URL="+a.URL+"/oauth2/introspect",
		"PAYMENTS_INTROSPECTION_CLIENT_ID=payments-rs", "PAYMENTS_INTROSPECTION_CLIENT_SECRET=payments-rs-secret",
		"PAYMENTS_PUBLIC_URL="+a.URL)
	// Both nodes serve the same public URL (a's), as behind a load balancer.
	key := mustKey(t, client.ES256)
	tc := mustTokenClient(t, a.URL, "sandbox-tpp", "sandbox-secret", key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := tc.ClientCredentials(ctx, "accounts")
	if err != nil {
		t.Fatal(err)
	}
	caller := &rawCaller{t: t, base: a.URL, key: key, token: tok.AccessToken}
	caller.learnNonce("/open-banking/v3.1/aisp/account-access-consents/unknown")
	url := a.URL + "/open-banking/v3.1/aisp/account-access-consents/unknown"
	proof := caller.proof("GET", url, tok.AccessToken, caller.nonce)
	h := http.Header{"Authorization": {"DPoP " + tok.AccessToken}, "Dpop": {proof}}
	first, body := do(t, http.MethodGet, url, nil, h)
	if first.StatusCode == http.StatusUnauthorized {
		t.Fatalf("first use on node a = 401 %q %s", first.Header.Get("WWW-Authenticate"), body)
	}
	second, _ := do(t, http.MethodGet, b.URL+"/open-banking/v3.1/aisp/account-access-consents/unknown", nil, h)
	if second.StatusCode != http.StatusUnauthorized || wwwAuthError(second) != "invalid_dpop_proof" {
		t.Fatalf("replay on node b = %d %q, want 401 invalid_dpop_proof", second.StatusCode, second.Header.Get("WWW-Authenticate"))
	}
}
