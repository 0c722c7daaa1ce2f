package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrTokenExpired means a token source holds an expired (or nearly expired) token and has no
// refresh token to renew it with.
var ErrTokenExpired = errors.New("oauth2: token expired and cannot be refreshed")

// Token is an access token from the authorization server, bound to a DPoP key.
//
// Its String and LogValue methods never reveal the access or refresh token.
type Token struct {
	// AccessToken is the token to send as `Authorization: DPoP <AccessToken>`.
	AccessToken string
	// TokenType is "DPoP" for a DPoP-bound token.
	TokenType string
	// RefreshToken renews the token (authorization code grant); empty when none was issued.
	RefreshToken string
	// Scope is the space-separated scope granted.
	Scope string
	// Expiry is when the access token stops working; the zero value means unknown.
	Expiry time.Time
}

// String describes the token without revealing it.
func (t *Token) String() string {
	return fmt.Sprintf("%s token (scope %q, expires %s, value redacted)", t.TokenType, t.Scope, t.Expiry.Format(time.RFC3339))
}

// LogValue logs the token's type, scope and expiry, never its value.
func (t *Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token_type", t.TokenType),
		slog.String("scope", t.Scope),
		slog.Time("expiry", t.Expiry),
	)
}

// fresh reports whether the token can still be used for leeway from now.
func (t *Token) fresh(now time.Time, leeway time.Duration) bool {
	return t != nil && t.AccessToken != "" && (t.Expiry.IsZero() || now.Add(leeway).Before(t.Expiry))
}

// TokenSource gives the access token to send with a request. Implementations must be safe for
// concurrent use; the Transport calls Token once per request.
type TokenSource interface {
	// Token returns a token that is valid now.
	Token(ctx context.Context) (*Token, error)
}

// TokenRenewer is a TokenSource that can replace a token before it expires. The Transport uses
// it when a resource server refuses a token with a 401 `WWW-Authenticate: DPoP
// error="invalid_token"` (RFC 6750 §3.1, RFC 9449 §7.1): a token revoked or forgotten by the
// server is dropped at once instead of being sent until its expiry.
//
// ClientCredentialsSource and RefreshingSource implement it; StaticToken does not.
type TokenRenewer interface {
	TokenSource
	// DropToken tells the source that the server refused accessToken. When accessToken is the
	// token the source holds, the next Token call gets a new one; when the source already holds
	// another token, nothing changes. It reports whether Token can give a token other than
	// accessToken: false when the source cannot get one (a token without a refresh token), in
	// which case it keeps accessToken.
	DropToken(accessToken string) bool
}

// StaticToken returns a TokenSource that always gives the same access token, for tokens
// obtained elsewhere. It never refreshes, and a token the server refuses is kept.
func StaticToken(accessToken string) TokenSource {
	return staticToken{tok: &Token{AccessToken: accessToken, TokenType: "DPoP"}}
}

type staticToken struct{ tok *Token }

func (s staticToken) Token(context.Context) (*Token, error) { return s.tok, nil }

// OAuthError is an error answer of the authorization server (RFC 6749 §5.2), such as
// invalid_client, invalid_grant, invalid_scope or invalid_dpop_proof. Use errors.As to read it.
// An answer that is not an OAuth error has Code "server_error"; a 404 also wraps
// ErrNoSuchEndpoint (errors.Is) and says which URL was not found.
type OAuthError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Code is the `error` member, e.g. "invalid_grant".
	Code string
	// Description is the `error_description` member, if any: the server's words, which for
	// invalid_dpop_proof name the failed check.
	Description string

	cause error
}

// Error implements error.
func (e *OAuthError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("oauth2: %s (HTTP %d): %s", e.Code, e.StatusCode, e.Description)
	}
	return fmt.Sprintf("oauth2: %s (HTTP %d)", e.Code, e.StatusCode)
}

// Unwrap returns ErrNoSuchEndpoint for a 404 that is not an OAuth error, else nil.
func (e *OAuthError) Unwrap() error { return e.cause }

// TokenConfig configures a TokenClient.
type TokenConfig struct {
	// BaseURL is the authorization server's base URL, e.g. "http://localhost:8080" for the
	// sandbox. TokenURL and AuthorizeURL default to BaseURL + "/oauth2/token" and
	// BaseURL + "/oauth2/authorize". Required unless both are set.
	BaseURL string
	// TokenURL is the token endpoint; the zero value means BaseURL + "/oauth2/token".
	TokenURL string
	// AuthorizeURL is the authorization endpoint; the zero value means BaseURL + "/oauth2/authorize".
	AuthorizeURL string
	// ClientID and ClientSecret authenticate the client. Required.
	ClientID, ClientSecret string
	// SecretInBody sends the credentials as form fields (client_secret_post) instead of HTTP
	// Basic (client_secret_basic, the default).
	SecretInBody bool
	// Key is the DPoP key the tokens are bound to. Use the same key for the API calls. Required.
	Key *Key
	// HTTPClient sends the requests; its Transport is wrapped with DPoP. nil means a client
	// with a 30 s timeout over http.DefaultTransport.
	HTTPClient *http.Client
	// RefreshLeeway is how long before expiry a token source renews its token; zero means 30 s.
	RefreshLeeway time.Duration
}

// TokenClient obtains DPoP-bound tokens from an OAuth 2.0 authorization server: client
// credentials, authorization code with PKCE, and refresh. Every token request carries a DPoP
// proof signed by the configured key (RFC 9449 §5), so the tokens are bound to that key, and
// nonce challenges at the token endpoint are answered like those of the API (see Transport).
//
// A TokenClient is safe for concurrent use.
type TokenClient struct {
	cfg       TokenConfig
	http      *http.Client // with the DPoP transport, for the token endpoint
	plain     *http.Client // without DPoP, for the sandbox authorization endpoint
	transport *Transport
	now       func() time.Time
}

// NewTokenClient checks cfg and returns a TokenClient. It returns an error naming the missing
// field, and ErrInvalidURL when an endpoint is not an absolute http(s) URL.
func NewTokenClient(cfg TokenConfig) (*TokenClient, error) {
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.TokenURL == "" {
		cfg.TokenURL = base + "/oauth2/token"
	}
	if cfg.AuthorizeURL == "" {
		cfg.AuthorizeURL = base + "/oauth2/authorize"
	}
	for _, u := range []string{cfg.TokenURL, cfg.AuthorizeURL} {
		if _, err := TargetURI(u); err != nil {
			return nil, fmt.Errorf("token client: endpoint %q: %w", u, ErrInvalidURL)
		}
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("token client: ClientID and ClientSecret are required")
	}
	if cfg.Key == nil {
		return nil, fmt.Errorf("token client: Key is required: %w", ErrInvalidKey)
	}
	if cfg.RefreshLeeway == 0 {
		cfg.RefreshLeeway = 30 * time.Second
	}
	plain := cfg.HTTPClient
	if plain == nil {
		plain = &http.Client{Timeout: 30 * time.Second}
	}
	tr, err := NewTransport(cfg.Key, nil, plain.Transport)
	if err != nil {
		return nil, err
	}
	signed := *plain
	signed.Transport = tr
	return &TokenClient{cfg: cfg, http: &signed, plain: plain, transport: tr, now: time.Now}, nil
}

// ClientCredentials asks for a token with the client_credentials grant (RFC 6749 §4.4) for the
// given scopes (none means the client's default scope). It returns *OAuthError when the server
// refuses.
func (c *TokenClient) ClientCredentials(ctx context.Context, scopes ...string) (*Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return c.token(ctx, form)
}

// Exchange trades an authorization code for a token (RFC 6749 §4.1.3) with its PKCE verifier
// (RFC 7636 §4.5). redirectURI must be the one of the authorization request. It returns
// *OAuthError when the server refuses (invalid_grant for a wrong, used or expired code, or a
// verifier that does not match).
func (c *TokenClient) Exchange(ctx context.Context, code, redirectURI string, pkce PKCE) (*Token, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {pkce.Verifier},
	}
	return c.token(ctx, form)
}

// Refresh renews a token with its refresh token (RFC 6749 §6). The new token is bound to the
// same key (RFC 9449 §5). It returns *OAuthError when the server refuses.
func (c *TokenClient) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	return c.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// tokenResponse is the token endpoint's success answer (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

func (c *TokenClient) token(ctx context.Context, form url.Values) (*Token, error) {
	if c.cfg.SecretInBody {
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !c.cfg.SecretInBody {
		// RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and encoded.
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, oauthError(res, body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return nil, fmt.Errorf("token response: not a token (HTTP %d)", res.StatusCode)
	}
	if !strings.EqualFold(tr.TokenType, "DPoP") {
		// RFC 9449 §5: a server that ignored the proof issues a Bearer token; using it with
		// DPoP would fail, and using it as a Bearer token would defeat the binding.
		return nil, fmt.Errorf("token response: token_type %q, want DPoP", tr.TokenType)
	}
	tok := &Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, RefreshToken: tr.RefreshToken, Scope: tr.Scope}
	if tr.ExpiresIn > 0 {
		tok.Expiry = c.now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	return tok, nil
}

func oauthError(res *http.Response, body []byte) error {
	e := &OAuthError{StatusCode: res.StatusCode}
	var parsed struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); ct == "application/json" && json.Unmarshal(body, &parsed) == nil && parsed.Error != "" {
		e.Code, e.Description = parsed.Error, parsed.ErrorDescription
	} else {
		e.Code = "server_error"
		if res.StatusCode == http.StatusNotFound {
			e.cause = ErrNoSuchEndpoint
			e.Description = "no such endpoint at " + requestURL(res) +
				": check the token client's BaseURL or endpoint URLs (the sandbox's BaseURL is the service's PAYMENTS_PUBLIC_URL)"
		}
	}
	return e
}

// requestURL is the URL a response answers, without user info.
func requestURL(res *http.Response) string {
	if res.Request == nil || res.Request.URL == nil {
		return "(unknown URL)"
	}
	return res.Request.URL.Redacted()
}

// PKCE is a Proof Key for Code Exchange pair (RFC 7636) with the S256 method.
type PKCE struct {
	// Verifier is the secret sent with Exchange: 43 characters of base64url (256 random bits).
	Verifier string
	// Challenge is base64url(SHA-256(Verifier)), sent in the authorization request.
	Challenge string
	// Method is always "S256".
	Method string
}

// NewPKCE makes a new random PKCE pair. Use one per authorization request.
func NewPKCE() (PKCE, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return PKCE{}, fmt.Errorf("pkce: %v", err)
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(v))
	return PKCE{Verifier: v, Challenge: base64.RawURLEncoding.EncodeToString(sum[:]), Method: "S256"}, nil
}

// AuthorizeRequest is an authorization request for a consent (RFC 6749 §4.1.1 with PKCE).
type AuthorizeRequest struct {
	// RedirectURI is where the code goes. The sandbox accepts any http://127.0.0.1 or
	// http://localhost URI. Required.
	RedirectURI string
	// Scope is "payments" for a payment consent, "accounts" for an account access consent.
	Scope string
	// State is an opaque value returned with the code; empty means none.
	State string
	// PKCE carries the challenge; keep its Verifier for Exchange. Required.
	PKCE PKCE
	// ConsentID is the consent the customer is asked to approve. Required.
	ConsentID string
	// PSU is the approving customer's subject (sandbox auto-approval only).
	PSU string
	// DebtorAccount is the AccountId the customer pays from (sandbox, payment consents only).
	DebtorAccount string
}

func (c *TokenClient) authorizeURL(r AuthorizeRequest) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.cfg.ClientID},
		"redirect_uri":          {r.RedirectURI},
		"scope":                 {r.Scope},
		"code_challenge":        {r.PKCE.Challenge},
		"code_challenge_method": {"S256"},
		"consent_id":            {r.ConsentID},
		// RFC 9449 §10: bind the code to this key.
		"dpop_jkt": {c.cfg.Key.Thumbprint()},
	}
	for k, v := range map[string]string{"state": r.State, "psu": r.PSU, "debtor_account": r.DebtorAccount} {
		if v != "" {
			q.Set(k, v)
		}
	}
	sep := "?"
	if strings.Contains(c.cfg.AuthorizeURL, "?") {
		sep = "&"
	}
	return c.cfg.AuthorizeURL + sep + q.Encode()
}

// AuthorizeURL returns the URL to send the customer's browser to, for an authorization server
// where the customer logs in and decides.
func (c *TokenClient) AuthorizeURL(r AuthorizeRequest) string { return c.authorizeURL(r) }

// SandboxAuthorize has the sandbox authorization server approve a consent on behalf of r.PSU
// (paying from r.DebtorAccount for a payment consent) and returns the authorization code, ready
// for Exchange. Only the sandbox (`PAYMENTS_DEV_AUTH=true`) answers it; a real bank's server
// shows the customer a login page instead (see AuthorizeURL). It returns *OAuthError when the
// server refuses.
func (c *TokenClient) SandboxAuthorize(ctx context.Context, r AuthorizeRequest) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.authorizeURL(r), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	noRedirect := *c.plain
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := noRedirect.Do(req)
	if err != nil {
		return "", fmt.Errorf("authorize: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("authorize: %w", err)
	}
	if res.StatusCode == http.StatusFound || res.StatusCode == http.StatusSeeOther {
		loc, err := url.Parse(res.Header.Get("Location"))
		if err == nil && loc.Query().Get("code") != "" {
			return loc.Query().Get("code"), nil
		}
		return "", &OAuthError{StatusCode: res.StatusCode, Code: loc.Query().Get("error"), Description: loc.Query().Get("error_description")}
	}
	if res.StatusCode != http.StatusOK {
		return "", oauthError(res, body)
	}
	var answer struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Code == "" {
		return "", errors.New("authorize: answer has no code")
	}
	return answer.Code, nil
}

// ClientCredentialsSource returns a TokenSource that gets a client credentials token for scopes
// and gets a new one shortly before it expires (RefreshLeeway), or as soon as a resource server
// refuses it as invalid_token (it is a TokenRenewer). Its Token returns *OAuthError when the
// server refuses.
func (c *TokenClient) ClientCredentialsSource(scopes ...string) TokenSource {
	return &cachedSource{
		leeway:    c.cfg.RefreshLeeway,
		now:       c.now,
		renewable: func(*Token) bool { return true },
		fetch: func(ctx context.Context, _ *Token) (*Token, error) {
			return c.ClientCredentials(ctx, scopes...)
		},
	}
}

// RefreshingSource returns a TokenSource that gives tok while it is fresh and renews it with its
// refresh token shortly before it expires (RefreshLeeway), or as soon as a resource server
// refuses it as invalid_token (it is a TokenRenewer); it then keeps the renewed token (and its
// new refresh token, if the server rotates it). Its Token returns ErrTokenExpired when the
// token must be renewed but has no refresh token, and *OAuthError when the server refuses. A
// token without a refresh token that a resource server refuses is kept: the refusal reaches the
// caller.
func (c *TokenClient) RefreshingSource(tok *Token) TokenSource {
	return &cachedSource{
		leeway:    c.cfg.RefreshLeeway,
		now:       c.now,
		tok:       tok,
		renewable: func(old *Token) bool { return old != nil && old.RefreshToken != "" },
		fetch: func(ctx context.Context, old *Token) (*Token, error) {
			if old == nil || old.RefreshToken == "" {
				return nil, ErrTokenExpired
			}
			next, err := c.Refresh(ctx, old.RefreshToken)
			if err != nil {
				return nil, err
			}
			if next.RefreshToken == "" {
				next.RefreshToken = old.RefreshToken
			}
			return next, nil
		},
	}
}

// cachedSource holds one token and renews it under a lock, so that concurrent callers cause one
// token request, not one each, also when they all had the same token refused.
type cachedSource struct {
	leeway    time.Duration
	now       func() time.Time
	fetch     func(ctx context.Context, old *Token) (*Token, error)
	renewable func(old *Token) bool // whether fetch can replace old

	mu      sync.Mutex
	tok     *Token
	dropped bool // a resource server refused tok: the next Token call fetches, keeping tok for its refresh token
}

var _ TokenRenewer = (*cachedSource)(nil)

func (s *cachedSource) Token(ctx context.Context) (*Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dropped && s.tok.fresh(s.now(), s.leeway) {
		return s.tok, nil
	}
	next, err := s.fetch(ctx, s.tok)
	if err != nil {
		return nil, err
	}
	s.tok, s.dropped = next, false
	return next, nil
}

// DropToken implements TokenRenewer.
func (s *cachedSource) DropToken(accessToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == nil || s.tok.AccessToken != accessToken {
		return true // already replaced (by a concurrent caller) or never held
	}
	if !s.renewable(s.tok) {
		return false
	}
	s.dropped = true
	return true
}
