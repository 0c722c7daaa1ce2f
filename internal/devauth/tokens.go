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

// Sizes and limits of the in-memory store.
const (
	secretBytes       = 32 // 256-bit tokens and codes
	defaultMaxEntries = 100_000
	sweepEvery        = time.Minute
)

// Errors of the store; the endpoints turn them into OAuth answers.
var (
	errStoreFull    = errors.New("devauth: token store full")
	errUnknownGrant = errors.New("devauth: unknown, expired or used grant")
	errCodeReused   = errors.New("devauth: authorization code used twice")
	errWrongHolder  = errors.New("devauth: grant belongs to another client or key")
	errScopeWidened = errors.New("devauth: refresh asks for more scope than granted")
)

// grant is what one access or refresh token stands for. family names the
// authorization code it descends from ("" for client credentials), so that a
// reused code revokes every token issued from it (RFC 6749 §4.1.2).
type grant struct {
	clientID  string
	subject   string
	scope     string
	consentID string
	jkt       string
	issuedAt  time.Time
	expires   time.Time
	family    [sha256.Size]byte
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
	used        bool
}

// Tokens keeps the sandbox's access tokens, refresh tokens and authorization
// codes in memory, each under the SHA-256 of its value: the values themselves
// are never stored. It implements security.Introspector, so the resource
// server can introspect in-process. It is safe for concurrent use. Tokens do
// not survive a restart.
type Tokens struct {
	now        func() time.Time
	maxEntries int

	mu        sync.Mutex
	access    map[[sha256.Size]byte]grant
	refresh   map[[sha256.Size]byte]grant
	codes     map[[sha256.Size]byte]*authCode
	lastSweep time.Time
}

// NewTokens returns an empty store using the clock now (nil means time.Now);
// give it the same clock as the Server's Config.
func NewTokens(now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	return &Tokens{
		now:        now,
		maxEntries: defaultMaxEntries,
		access:     map[[sha256.Size]byte]grant{},
		refresh:    map[[sha256.Size]byte]grant{},
		codes:      map[[sha256.Size]byte]*authCode{},
	}
}

// Introspect answers RFC 7662 §2.2 for token: active with the token's client,
// subject (PSU tokens only), scope, consent, iat, exp, token_type "DPoP" and
// cnf.jkt (RFC 9449 §6.2), or inactive when the token is unknown, expired or
// revoked. It never returns an error.
func (ts *Tokens) Introspect(_ context.Context, token string) (security.Introspection, error) {
	h := hashOf(token)
	now := ts.now()
	ts.mu.Lock()
	g, ok := ts.access[h]
	ts.mu.Unlock()
	if !ok || !now.Before(g.expires) {
		return security.Introspection{Active: false}, nil
	}
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

// issueAccess stores g under a new random access token and returns it.
func (ts *Tokens) issueAccess(g grant) (string, error) {
	return ts.put(ts.access, g)
}

// issueRefresh stores g under a new random refresh token and returns it.
func (ts *Tokens) issueRefresh(g grant) (string, error) {
	return ts.put(ts.refresh, g)
}

func (ts *Tokens) put(m map[[sha256.Size]byte]grant, g grant) (string, error) {
	v, h, err := newSecret()
	if err != nil {
		return "", err
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if err := ts.makeRoom(len(m)); err != nil {
		return "", err
	}
	m[h] = g
	return v, nil
}

// putCode stores c under a new random code and returns the code.
func (ts *Tokens) putCode(c authCode) (string, error) {
	v, h, err := newSecret()
	if err != nil {
		return "", err
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if err := ts.makeRoom(len(ts.codes)); err != nil {
		return "", err
	}
	ts.codes[h] = &c
	return v, nil
}

// redeemCode marks the code used and returns its binding with the family
// its tokens will carry. A code is good for one attempt only (RFC 6749
// §4.1.2): a second presentation fails with errCodeReused and revokes every
// token issued from the code. Unknown or expired codes fail with
// errUnknownGrant.
func (ts *Tokens) redeemCode(code string) (authCode, [sha256.Size]byte, error) {
	h := hashOf(code)
	now := ts.now()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	c, ok := ts.codes[h]
	switch {
	case !ok || !now.Before(c.expires):
		return authCode{}, h, errUnknownGrant
	case c.used:
		ts.revokeFamily(h)
		return authCode{}, h, errCodeReused
	}
	c.used = true
	return *c, h, nil
}

// refreshGrant returns the grant of a refresh token presented by clientID
// with a proof signed by the key jkt (RFC 6749 §6, RFC 9449 §5), asking for
// scope (nil means the original scope). The token is not rotated: it stays
// until the grant ends or the code it came from is reused. A token of another
// client or key fails with errWrongHolder, one asked for more scope than it
// carries with errScopeWidened; neither revokes anything, so that someone
// who stole it cannot have it revoked for its owner.
func (ts *Tokens) refreshGrant(token, clientID, jkt string, scope []string) (grant, error) {
	h := hashOf(token)
	now := ts.now()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	g, ok := ts.refresh[h]
	switch {
	case !ok || !now.Before(g.expires):
		return grant{}, errUnknownGrant
	case !secretEqual(g.clientID, clientID) || !secretEqual(g.jkt, jkt):
		return grant{}, errWrongHolder
	case scope != nil && !scopeSubset(scope, strings.Fields(g.scope)):
		return grant{}, errScopeWidened
	}
	return g, nil
}

// revokeFamily deletes the tokens issued from one authorization code. The
// caller holds mu.
func (ts *Tokens) revokeFamily(family [sha256.Size]byte) {
	for h, g := range ts.access {
		if g.family == family {
			delete(ts.access, h)
		}
	}
	for h, g := range ts.refresh {
		if g.family == family {
			delete(ts.refresh, h)
		}
	}
}

// makeRoom sweeps expired entries at most once a minute, or at once when a
// map of size n is full; it refuses when the map is still full afterwards.
// The caller holds mu.
func (ts *Tokens) makeRoom(n int) error {
	now := ts.now()
	if n < ts.maxEntries && now.Sub(ts.lastSweep) < sweepEvery {
		return nil
	}
	ts.lastSweep = now
	for h, g := range ts.access {
		if !now.Before(g.expires) {
			delete(ts.access, h)
		}
	}
	for h, g := range ts.refresh {
		if !now.Before(g.expires) {
			delete(ts.refresh, h)
		}
	}
	for h, c := range ts.codes {
		// Used codes are kept until they expire, to recognise reuse.
		if !now.Before(c.expires) {
			delete(ts.codes, h)
		}
	}
	if len(ts.access) >= ts.maxEntries || len(ts.refresh) >= ts.maxEntries || len(ts.codes) >= ts.maxEntries {
		return errStoreFull
	}
	return nil
}

// size returns the number of live entries of each kind (tests).
func (ts *Tokens) size() (access, refresh, codes int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.access), len(ts.refresh), len(ts.codes)
}

// newSecret returns a random 256-bit base64url value and its hash.
func newSecret() (string, [sha256.Size]byte, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", [sha256.Size]byte{}, err
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	return v, hashOf(v), nil
}

func hashOf(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }

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
