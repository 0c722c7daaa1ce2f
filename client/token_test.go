package client

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testClientID = "sandbox-tpp"
	testSecret   = "s3cret+/:&x" // characters that RFC 6749 §2.3.1 encoding must survive
)

// fakeAS is a small authorization server: a DPoP-checking token endpoint (optionally demanding
// a nonce, the way RFC 9449 §8 lets an authorization server) and sandbox auto-approval.
type fakeAS struct {
	t            *testing.T
	url          string
	requireNonce bool
	tokenType    string // "" means DPoP
	expiresIn    int

	mu        sync.Mutex
	requests  int
	jkts      []string
	challenge string // PKCE challenge of the code issued
	redirect  string
	issued    int
	refresh   map[string]bool
}

func newFakeAS(t *testing.T) (*fakeAS, *httptest.Server) {
	as := &fakeAS{t: t, expiresIn: 300, refresh: map[string]bool{}}
	ts := httptest.NewServer(as)
	t.Cleanup(ts.Close)
	as.url = ts.URL
	return as, ts
}

func (as *fakeAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	defer as.mu.Unlock()
	switch r.URL.Path {
	case "/oauth2/authorize":
		q := r.URL.Query()
		if r.Header.Get("Accept") != "application/json" || q.Get("code_challenge_method") != "S256" || q.Get("client_id") != testClientID || q.Get("consent_id") == "" {
			oauthAnswer(w, 400, "", `{"error":"invalid_request"}`)
			return
		}
		as.challenge, as.redirect = q.Get("code_challenge"), q.Get("redirect_uri")
		oauthAnswer(w, 200, "", `{"code":"code-1","state":"`+q.Get("state")+`"}`)
	case "/oauth2/token":
		as.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (as *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	as.requests++
	d, err := verifyProof(r.Header.Get("DPoP"))
	if err != nil || d.Claims.Method != "POST" || d.Claims.URL != as.url+"/oauth2/token" || d.Claims.AccessTokenHash != "" {
		oauthAnswer(w, 400, "", `{"error":"invalid_dpop_proof"}`)
		return
	}
	if as.requireNonce && d.Claims.Nonce != "as-nonce" {
		oauthAnswer(w, 400, "as-nonce", `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`)
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	if id != testClientID || secret != testSecret {
		w.Header().Set("WWW-Authenticate", "Basic")
		oauthAnswer(w, 401, "", `{"error":"invalid_client"}`)
		return
	}
	as.jkts = append(as.jkts, d.JWK.thumbprint())
	as.issued++
	refresh := ""
	switch r.PostFormValue("grant_type") {
	case "client_credentials":
	case "authorization_code":
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if r.PostFormValue("code") != "code-1" || b64.EncodeToString(sum[:]) != as.challenge || r.PostFormValue("redirect_uri") != as.redirect {
			oauthAnswer(w, 400, "", `{"error":"invalid_grant","error_description":"code, verifier or redirect_uri"}`)
			return
		}
		refresh = fmt.Sprintf("rt-%d", as.issued)
	case "refresh_token":
		if !as.refresh[r.PostFormValue("refresh_token")] {
			oauthAnswer(w, 400, "", `{"error":"invalid_grant"}`)
			return
		}
	default:
		oauthAnswer(w, 400, "", `{"error":"unsupported_grant_type"}`)
		return
	}
	if refresh != "" {
		as.refresh[refresh] = true
	}
	typ := as.tokenType
	if typ == "" {
		typ = "DPoP"
	}
	body, _ := json.Marshal(map[string]any{"access_token": fmt.Sprintf("at-%d", as.issued), "token_type": typ, "expires_in": as.expiresIn, "scope": r.PostFormValue("scope"), "refresh_token": refresh})
	oauthAnswer(w, 200, "", string(body))
}

func oauthAnswer(w http.ResponseWriter, status int, nonce, body string) {
	if nonce != "" {
		w.Header().Set("DPoP-Nonce", nonce)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func newTestTokenClient(t *testing.T, as *fakeAS, key *Key, secretInBody bool) *TokenClient {
	t.Helper()
	c, err := NewTokenClient(TokenConfig{BaseURL: as.url, ClientID: testClientID, ClientSecret: testSecret, SecretInBody: secretInBody, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// codeFlow runs sandbox authorization and the code exchange.
func codeFlow(ctx context.Context, c *TokenClient) (*Token, error) {
	pkce, err := NewPKCE()
	if err != nil {
		return nil, err
	}
	req := AuthorizeRequest{RedirectURI: "http://127.0.0.1/cb", Scope: "payments", PKCE: pkce, ConsentID: "c-1", PSU: "alice", DebtorAccount: "a-1", State: "s"}
	code, err := c.SandboxAuthorize(ctx, req)
	if err != nil {
		return nil, err
	}
	return c.Exchange(ctx, code, req.RedirectURI, pkce)
}

func TestTokenClientGrants(t *testing.T) {
	tests := []struct {
		name         string
		secretInBody bool
		requireNonce bool
		grant        func(ctx context.Context, c *TokenClient) (*Token, error)
		wantRequests int
		wantRefresh  bool
	}{
		{
			name:         "client credentials with HTTP Basic",
			grant:        func(ctx context.Context, c *TokenClient) (*Token, error) { return c.ClientCredentials(ctx, "payments") },
			wantRequests: 1,
		},
		{
			name:         "client credentials with form fields",
			secretInBody: true,
			grant:        func(ctx context.Context, c *TokenClient) (*Token, error) { return c.ClientCredentials(ctx, "payments") },
			wantRequests: 1,
		},
		{
			name:         "client credentials answering a token endpoint nonce challenge",
			requireNonce: true,
			grant:        func(ctx context.Context, c *TokenClient) (*Token, error) { return c.ClientCredentials(ctx) },
			wantRequests: 2,
		},
		{
			name:         "authorization code with PKCE",
			grant:        codeFlow,
			wantRequests: 1,
			wantRefresh:  true,
		},
		{
			name: "refresh",
			grant: func(ctx context.Context, c *TokenClient) (*Token, error) {
				tok, err := codeFlow(ctx, c)
				if err != nil {
					return nil, err
				}
				return c.Refresh(ctx, tok.RefreshToken)
			},
			wantRequests: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			as, _ := newFakeAS(t)
			as.requireNonce = tc.requireNonce
			key := mustKey(t, ES256)
			c := newTestTokenClient(t, as, key, tc.secretInBody)
			before := time.Now()
			tok, err := tc.grant(context.Background(), c)
			if err != nil {
				t.Fatalf("grant = %v", err)
			}
			if tok.AccessToken == "" || tok.TokenType != "DPoP" || (tok.RefreshToken != "") != tc.wantRefresh {
				t.Errorf("token = %+v (refresh %q)", tok, tok.RefreshToken)
			}
			if exp := before.Add(300 * time.Second); tok.Expiry.Before(exp) || tok.Expiry.After(exp.Add(5*time.Second)) {
				t.Errorf("expiry %v, want about %v", tok.Expiry, exp)
			}
			as.mu.Lock()
			defer as.mu.Unlock()
			if as.requests != tc.wantRequests {
				t.Errorf("token endpoint saw %d requests, want %d", as.requests, tc.wantRequests)
			}
			for _, jkt := range as.jkts {
				if jkt != key.Thumbprint() {
					t.Errorf("token request proof key %s, want %s", jkt, key.Thumbprint())
				}
			}
		})
	}
}

func TestTokenClientErrors(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(as *fakeAS)
		secret   string
		grant    func(ctx context.Context, c *TokenClient) (*Token, error)
		wantCode string // OAuthError code; "" means a non-OAuth error
	}{
		{
			name:     "wrong secret is invalid_client",
			secret:   "wrong",
			grant:    func(ctx context.Context, c *TokenClient) (*Token, error) { return c.ClientCredentials(ctx) },
			wantCode: "invalid_client",
		},
		{
			name:     "unknown refresh token is invalid_grant",
			grant:    func(ctx context.Context, c *TokenClient) (*Token, error) { return c.Refresh(ctx, "nope") },
			wantCode: "invalid_grant",
		},
		{
			name: "wrong PKCE verifier is invalid_grant",
			grant: func(ctx context.Context, c *TokenClient) (*Token, error) {
				pkce, _ := NewPKCE()
				req := AuthorizeRequest{RedirectURI: "http://127.0.0.1/cb", Scope: "payments", PKCE: pkce, ConsentID: "c-1"}
				code, err := c.SandboxAuthorize(ctx, req)
				if err != nil {
					return nil, err
				}
				other, _ := NewPKCE()
				return c.Exchange(ctx, code, req.RedirectURI, other)
			},
			wantCode: "invalid_grant",
		},
		{
			name: "authorization refused is an OAuth error",
			grant: func(ctx context.Context, c *TokenClient) (*Token, error) {
				_, err := c.SandboxAuthorize(ctx, AuthorizeRequest{})
				return nil, err
			},
			wantCode: "invalid_request",
		},
		{
			name:  "a Bearer token is refused",
			setup: func(as *fakeAS) { as.tokenType = "Bearer" },
			grant: func(ctx context.Context, c *TokenClient) (*Token, error) { return c.ClientCredentials(ctx) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			as, _ := newFakeAS(t)
			if tc.setup != nil {
				tc.setup(as)
			}
			secret := testSecret
			if tc.secret != "" {
				secret = tc.secret
			}
			c, err := NewTokenClient(TokenConfig{BaseURL: as.url, ClientID: testClientID, ClientSecret: secret, Key: mustKey(t, ES256)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tc.grant(context.Background(), c)
			var oe *OAuthError
			switch {
			case err == nil:
				t.Fatal("grant succeeded, want an error")
			case tc.wantCode == "" && errors.As(err, &oe):
				t.Errorf("error = %v, want a non-OAuth error", err)
			case tc.wantCode != "" && (!errors.As(err, &oe) || oe.Code != tc.wantCode):
				t.Errorf("error = %v, want OAuthError %s", err, tc.wantCode)
			}
		})
	}
}

func TestNewTokenClientChecksConfig(t *testing.T) {
	key := mustKey(t, ES256)
	tests := []struct {
		name    string
		cfg     TokenConfig
		wantErr error
	}{
		{"no URL", TokenConfig{ClientID: "a", ClientSecret: "b", Key: key}, ErrInvalidURL},
		{"no key", TokenConfig{BaseURL: "http://localhost:8080", ClientID: "a", ClientSecret: "b"}, ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewTokenClient(tc.cfg); !errors.Is(err, tc.wantErr) {
				t.Errorf("NewTokenClient = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if _, err := NewTokenClient(TokenConfig{BaseURL: "http://localhost:8080", Key: key}); err == nil {
		t.Errorf("NewTokenClient without credentials succeeded")
	}
}

func TestTokenSourcesRenewBeforeExpiry(t *testing.T) {
	as, _ := newFakeAS(t)
	c := newTestTokenClient(t, as, mustKey(t, ES256), false)
	clock := &fakeClock{t: time.Now()}
	c.now = clock.Now
	ctx := context.Background()
	requests := func() int {
		as.mu.Lock()
		defer as.mu.Unlock()
		return as.requests
	}

	src := c.ClientCredentialsSource("payments")
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := src.Token(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := requests(); got != 1 {
		t.Errorf("20 concurrent Token calls made %d token requests, want 1", got)
	}
	clock.Advance(260 * time.Second) // 40 s before expiry: still fresh
	first, _ := src.Token(ctx)
	clock.Advance(15 * time.Second) // 25 s before expiry: inside the 30 s leeway
	second, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := requests(); got != 2 || first.AccessToken == second.AccessToken {
		t.Errorf("after the leeway: %d requests and token %s -> %s; want a renewal", got, first.AccessToken, second.AccessToken)
	}

	psu, err := codeFlow(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	refreshing := c.RefreshingSource(psu)
	if tok, _ := refreshing.Token(ctx); tok != psu {
		t.Errorf("a fresh token was not reused")
	}
	clock.Advance(280 * time.Second)
	renewed, err := refreshing.Token(ctx)
	if err != nil || renewed.AccessToken == psu.AccessToken || renewed.RefreshToken == "" {
		t.Errorf("RefreshingSource near expiry = %v, %v; want a renewed token keeping a refresh token", renewed, err)
	}

	noRefresh := c.RefreshingSource(&Token{AccessToken: "x", TokenType: "DPoP", Expiry: clock.Now().Add(time.Second)})
	if _, err := noRefresh.Token(ctx); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("RefreshingSource without refresh token = %v, want ErrTokenExpired", err)
	}
}

func TestTokenNeverPrintsItsValue(t *testing.T) {
	tok := &Token{AccessToken: "secret-access", RefreshToken: "secret-refresh", TokenType: "DPoP", Scope: "payments"}
	for _, s := range []string{tok.String(), fmt.Sprint(tok), tok.LogValue().String()} {
		if strings.Contains(s, "secret") {
			t.Errorf("%q reveals the token", s)
		}
	}
}

func TestPKCE(t *testing.T) {
	p, err := NewPKCE()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(p.Verifier))
	if len(p.Verifier) != 43 || p.Challenge != b64.EncodeToString(sum[:]) || p.Method != "S256" {
		t.Errorf("PKCE = %+v: want a 43-character verifier and its S256 challenge", p)
	}
	q, _ := NewPKCE()
	if q.Verifier == p.Verifier {
		t.Errorf("two PKCE pairs share a verifier")
	}
}

func TestTokenSourcesDropRefusedTokens(t *testing.T) {
	as, _ := newFakeAS(t)
	c := newTestTokenClient(t, as, mustKey(t, ES256), false)
	ctx := context.Background()

	src, ok := c.ClientCredentialsSource("payments").(TokenRenewer)
	if !ok {
		t.Fatal("ClientCredentialsSource is not a TokenRenewer")
	}
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !src.DropToken("someone-else") {
		t.Errorf("DropToken(a token it does not hold) = false, want true")
	}
	if tok, _ := src.Token(ctx); tok != first || as.tokenRequests() != 1 {
		t.Errorf("dropping a token it does not hold replaced %s", first.AccessToken)
	}
	if !src.DropToken(first.AccessToken) {
		t.Fatalf("DropToken(%s) = false, want true", first.AccessToken)
	}
	second, err := src.Token(ctx)
	if err != nil || second.AccessToken == first.AccessToken || as.tokenRequests() != 2 {
		t.Errorf("Token after DropToken = %v, %v with %d token requests; want a new token from a second request", second, err, as.tokenRequests())
	}

	psu, err := codeFlow(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	refreshing := c.RefreshingSource(psu).(TokenRenewer)
	if !refreshing.DropToken(psu.AccessToken) {
		t.Fatal("RefreshingSource with a refresh token: DropToken = false, want true")
	}
	renewed, err := refreshing.Token(ctx)
	if err != nil || renewed.AccessToken == psu.AccessToken || renewed.RefreshToken != psu.RefreshToken {
		t.Errorf("Token after DropToken = %v, %v; want a refreshed token keeping the refresh token", renewed, err)
	}

	bare := &Token{AccessToken: "psu-only", TokenType: "DPoP", Expiry: time.Now().Add(time.Hour)}
	noRefresh := c.RefreshingSource(bare).(TokenRenewer)
	if noRefresh.DropToken("psu-only") {
		t.Errorf("RefreshingSource without a refresh token: DropToken = true, want false")
	}
	if tok, err := noRefresh.Token(ctx); err != nil || tok != bare {
		t.Errorf("Token after a refused DropToken = %v, %v; want the token kept", tok, err)
	}

	if _, ok := StaticToken("x").(TokenRenewer); ok {
		t.Errorf("StaticToken is a TokenRenewer; it cannot get another token")
	}
}
