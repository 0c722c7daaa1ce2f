package devauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/obpay/payments/internal/security"
)

// Sizes and limits.
const (
	secretBytes = 32 // 256-bit tokens and codes
	// DefaultMaxPerClient is the default of TokensConfig.MaxPerClient.
	DefaultMaxPerClient = 10_000
)

// Errors of Tokens; the endpoints turn them into OAuth answers.
var (
	errWrongHolder  = errors.New("devauth: grant belongs to another client or key")
	errScopeWidened = errors.New("devauth: refresh asks for more scope than granted")
)

// grant is what one access or refresh token stands for. family names the
// authorization code it descends from (zero for client credentials), so that a
// reused code revokes every token issued from it (RFC 6749 §4.1.2).
type grant struct {
	clientID  string
	subject   string
	scope     string
	consentID string
	jkt       string
	issuedAt  time.Time
	expires   time.Time
	family    Hash
}

func (g grant) stored(h Hash, kind TokenKind) Grant {
	return Grant{Hash: h, Kind: kind, ClientID: g.clientID, Subject: g.subject, Scope: g.scope,
		ConsentID: g.consentID, JKT: g.jkt, IssuedAt: g.issuedAt, Expires: g.expires, Family: g.family}
}

func grantOf(g Grant) grant {
	return grant{clientID: g.ClientID, subject: g.Subject, scope: g.Scope, consentID: g.ConsentID, jkt: g.JKT,
		issuedAt: g.IssuedAt, expires: g.Expires, family: g.Family}
}

// authCode is an authorization code's binding (RFC 6749 §4.1.2, RFC 7636
// §4.4, RFC 9449 §10).
type authCode struct {
	clientID    string
	redirectURI string
	challenge   string // base64url SHA-256 of the verifier (S256)
	dpopJKT     string // "" when the client sent no dpop_jkt
	scope       string
	consentID   string
	psu         string
	expires     time.Time
}

// TokensConfig configures NewStoredTokens.
type TokensConfig struct {
	// Store keeps the entries; nil means a new MemoryStore (nothing
	// survives a restart).
	Store Store
	// Now is the clock; nil means time.Now. Give it the Server's.
	Now func() time.Time
	// MaxPerClient is how many live access tokens one client may hold, and
	// as many refresh tokens and authorization codes; past it the client
	// gets 429 until some expire, and other clients are not affected. Zero
	// means DefaultMaxPerClient.
	MaxPerClient int
	// CacheTTL is how long Introspect reuses an active answer without asking
	// the Store, never past the token's exp; zero means it always asks. A
	// token revoked through these Tokens (its code reused) leaves the cache
	// at once; one revoked through another process's stays active here for
	// at most CacheTTL, as with a resource server's introspection cache.
	CacheTTL time.Duration
}

// maxCached bounds the introspection cache of Tokens.
const maxCached = 100_000

// cachedGrant is an active access token's grant and the time until which
// Introspect may reuse it.
type cachedGrant struct {
	g     Grant
	until time.Time
}

// Tokens is the sandbox's state in a Store: access tokens, refresh tokens,
// authorization codes, pushed requests, registered clients and accepted
// client assertion ids. Tokens, codes and request_uris are kept under their
// SHA-256, never themselves. Tokens implements security.Introspector, so the
// resource server can introspect in-process, with at most one store lookup
// per call (none for an active answer still cached, CacheTTL). It is safe
// for concurrent use.
type Tokens struct {
	store        Store
	now          func() time.Time
	maxPerClient int
	cacheTTL     time.Duration

	mu    sync.Mutex
	cache map[Hash]cachedGrant // active access tokens; nil when cacheTTL is zero
}

// NewTokens returns Tokens on a new MemoryStore using the clock now (nil
// means time.Now); give it the same clock as the Server's Config.
func NewTokens(now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{store: NewMemoryStore(), now: now, maxPerClient: DefaultMaxPerClient}
}

// NewStoredTokens returns Tokens as cfg says.
func NewStoredTokens(cfg TokensConfig) (*Tokens, error) {
	t := &Tokens{store: cfg.Store, now: cfg.Now, maxPerClient: cfg.MaxPerClient, cacheTTL: cfg.CacheTTL}
	if t.store == nil {
		t.store = NewMemoryStore()
	}
	if t.now == nil {
		t.now = time.Now
	}
	switch {
	case t.maxPerClient == 0:
		t.maxPerClient = DefaultMaxPerClient
	case t.maxPerClient < 0:
		return nil, errors.New("devauth: MaxPerClient must not be negative")
	}
	switch {
	case t.cacheTTL < 0:
		return nil, errors.New("devauth: CacheTTL must not be negative")
	case t.cacheTTL > 0:
		t.cache = map[Hash]cachedGrant{}
	}
	return t, nil
}

// Introspect answers RFC 7662 §2.2 for token: active with the token's client,
// subject (PSU tokens only), scope, consent, iat, exp, token_type "DPoP" and
// cnf.jkt (RFC 9449 §6.2), or inactive when the token is unknown, expired or
// revoked. An active answer may come from the cache (CacheTTL); otherwise
// it is one Store lookup. It fails only when the store does (ErrUnavailable
// or another error), and the resource server then refuses the request with
// 503.
func (ts *Tokens) Introspect(ctx context.Context, token string) (security.Introspection, error) {
	now := ts.now()
	h := hashOf(token)
	sg, ok := ts.cached(h, now)
	var err error
	if !ok {
		sg, err = ts.store.Token(ctx, KindAccess, h, now)
		if err == nil {
			ts.remember(sg, now)
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return security.Introspection{Active: false}, nil
	case err != nil:
		return security.Introspection{}, err
	case !now.Before(sg.Expires):
		return security.Introspection{Active: false}, nil
	}
	g := grantOf(sg)
	info := security.Introspection{
		Active:    true,
		Scope:     g.scope,
		ClientID:  g.clientID,
		Subject:   g.subject,
		Exp:       g.expires.Unix(),
		Iat:       g.issuedAt.Unix(),
		TokenType: "DPoP",
		CnfJKT:    g.jkt,
		ConsentID: g.consentID,
	}
	if g.consentID != "" {
		info.AuthorizationDetails = grantedDetails(g.consentID)
	}
	return info, nil
}

// cached returns the cached grant of the access token h, if it may be
// reused at now.
func (ts *Tokens) cached(h Hash, now time.Time) (Grant, bool) {
	if ts.cache == nil {
		return Grant{}, false
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	c, ok := ts.cache[h]
	if !ok || !now.Before(c.until) {
		return Grant{}, false
	}
	return c.g, true
}

// remember caches g until CacheTTL from now or its expiry, whichever is
// first. A full cache first drops what it may no longer reuse, and caches
// nothing when that frees no room.
func (ts *Tokens) remember(g Grant, now time.Time) {
	if ts.cache == nil {
		return
	}
	until := now.Add(ts.cacheTTL)
	if g.Expires.Before(until) {
		until = g.Expires
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.cache) >= maxCached {
		for h, c := range ts.cache {
			if !now.Before(c.until) {
				delete(ts.cache, h)
			}
		}
		if len(ts.cache) >= maxCached {
			return
		}
	}
	ts.cache[g.Hash] = cachedGrant{g: g, until: until}
}

// forgetFamily drops the cached tokens issued from the code family.
func (ts *Tokens) forgetFamily(family Hash) {
	if ts.cache == nil {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for h, c := range ts.cache {
		if c.g.Family == family {
			delete(ts.cache, h)
		}
	}
}

// Purge deletes at most limit expired entries of each kind from the store
// and returns how many it deleted; serve runs it every minute.
func (ts *Tokens) Purge(ctx context.Context, limit int) (int, error) {
	return ts.store.Purge(ctx, ts.now(), limit)
}

// issueAccess stores g under a new random access token and returns it.
func (ts *Tokens) issueAccess(ctx context.Context, g grant) (string, error) {
	return ts.put(ctx, KindAccess, g)
}

// issueRefresh stores g under a new random refresh token and returns it.
func (ts *Tokens) issueRefresh(ctx context.Context, g grant) (string, error) {
	return ts.put(ctx, KindRefresh, g)
}

// put stores g under a new random token of kind and returns the token. An
// access token is also cached as its first introspection would cache it:
// the client uses it at once, and this process knows the answer.
func (ts *Tokens) put(ctx context.Context, kind TokenKind, g grant) (string, error) {
	v, h, err := newSecret()
	if err != nil {
		return "", err
	}
	now, sg := ts.now(), g.stored(h, kind)
	if err := ts.store.PutToken(ctx, sg, now, ts.maxPerClient); err != nil {
		return "", err
	}
	if kind == KindAccess {
		ts.remember(sg, now)
	}
	return v, nil
}

// putCode stores c under a new random code and returns the code.
func (ts *Tokens) putCode(ctx context.Context, c authCode) (string, error) {
	v, h, err := newSecret()
	if err != nil {
		return "", err
	}
	err = ts.store.PutCode(ctx, Code{Hash: h, ClientID: c.clientID, RedirectURI: c.redirectURI, Challenge: c.challenge,
		DPoPJKT: c.dpopJKT, Scope: c.scope, ConsentID: c.consentID, PSU: c.psu, Expires: c.expires}, ts.now(), ts.maxPerClient)
	if err != nil {
		return "", err
	}
	return v, nil
}

// dropCode deletes a code that was never handed out.
func (ts *Tokens) dropCode(ctx context.Context, code string) error {
	return ts.store.DeleteCode(ctx, hashOf(code))
}

// redeemCode spends the code and returns its binding with the family its
// tokens will carry. A code is good for one attempt only (RFC 6749 §4.1.2):
// a second presentation fails with ErrCodeReused and revokes every token
// issued from the code. Unknown or expired codes fail with ErrNotFound.
func (ts *Tokens) redeemCode(ctx context.Context, code string) (authCode, Hash, error) {
	h := hashOf(code)
	c, err := ts.store.RedeemCode(ctx, h, ts.now())
	if errors.Is(err, ErrCodeReused) {
		ts.forgetFamily(h)
	}
	if err != nil {
		return authCode{}, h, err
	}
	return authCode{clientID: c.ClientID, redirectURI: c.RedirectURI, challenge: c.Challenge, dpopJKT: c.DPoPJKT,
		scope: c.Scope, consentID: c.ConsentID, psu: c.PSU, expires: c.Expires}, h, nil
}

// refreshGrant returns the grant of a refresh token presented by clientID
// with a proof signed by the key jkt (RFC 6749 §6, RFC 9449 §5), asking for
// scope (nil means the original scope). The token is not rotated: it stays
// until the grant ends or the code it came from is reused. Unknown or
// expired tokens fail with ErrNotFound; a token of another client or key
// with errWrongHolder, one asked for more scope than it carries with
// errScopeWidened; neither revokes anything, so that someone who stole it
// cannot have it revoked for its owner.
func (ts *Tokens) refreshGrant(ctx context.Context, token, clientID, jkt string, scope []string) (grant, error) {
	sg, err := ts.store.Token(ctx, KindRefresh, hashOf(token), ts.now())
	if err != nil {
		return grant{}, err
	}
	g := grantOf(sg)
	switch {
	case !secretEqual(g.clientID, clientID) || !secretEqual(g.jkt, jkt):
		return grant{}, errWrongHolder
	case scope != nil && !scopeSubset(scope, strings.Fields(g.scope)):
		return grant{}, errScopeWidened
	}
	return g, nil
}

// size returns the number of stored entries of each kind in a MemoryStore
// (tests); -1 for another store.
func (ts *Tokens) size() (access, refresh, codes int) {
	m, ok := ts.store.(*MemoryStore)
	if !ok {
		return -1, -1, -1
	}
	access, refresh, codes, _, _ = m.sizes()
	return access, refresh, codes
}

// newSecret returns a random 256-bit base64url value and its hash.
func newSecret() (string, Hash, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", Hash{}, err
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	return v, hashOf(v), nil
}

func hashOf(s string) Hash { return sha256.Sum256([]byte(s)) }

// secretEqual compares two strings in constant time: it compares their
// SHA-256 hashes, so neither the content nor the length leaks.
func secretEqual(a, b string) bool {
	ha, hb := hashOf(a), hashOf(b)
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// scopeSubset reports whether every scope in want is in have.
func scopeSubset(want, have []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if w == h {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// joinScopes renders scopes the RFC 6749 §3.3 way.
func joinScopes(s []string) string { return strings.Join(s, " ") }
