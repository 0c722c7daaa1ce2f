package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Access token modes (PAYMENTS_ACCESS_TOKENS).
const (
	// AccessTokensAuto validates JWT access tokens (RFC 9068, typ at+jwt)
	// locally and introspects every other token.
	AccessTokensAuto = "auto"
	// AccessTokensIntrospect introspects every token.
	AccessTokensIntrospect = "introspect"
	// AccessTokensJWT accepts only JWT access tokens, validated locally.
	AccessTokensJWT = "jwt"
)

// AccessTokenError is the refusal of a JWT access token validated locally:
// the verifier answers 401 invalid_token, as for an inactive token. Reason
// names the failed check for logs and metrics (never the token).
type AccessTokenError struct{ Reason string }

func (e *AccessTokenError) Error() string { return "security: access token refused: " + e.Reason }

// jwsEncoding decodes JWS segments (RFC 7515 §2: base64url without padding);
// strict, so that no two texts decode to the same bytes.
var jwsEncoding = base64.RawURLEncoding.Strict()

// jwtAlgs is the allow-list of access token signature algorithms: asymmetric
// only, so none and HS* (whose secret could be taken to be a published
// public key) never verify anything.
var jwtAlgs = map[string]jwa.SignatureAlgorithm{
	"RS256": jwa.RS256,
	"PS256": jwa.PS256,
	"ES256": jwa.ES256,
	"EdDSA": jwa.EdDSA,
}

// TokenResolverConfig configures NewTokenResolver.
type TokenResolverConfig struct {
	// Mode is AccessTokensAuto, AccessTokensIntrospect or AccessTokensJWT;
	// "" means AccessTokensAuto.
	Mode string
	// Discovery gives the issuer and its jwks_uri; required.
	Discovery *Discovery
	// Introspector resolves the tokens that are not JWT access tokens;
	// required unless Mode is AccessTokensJWT.
	Introspector Introspector
	// Audience, when set, must be among a JWT's aud values.
	Audience string
	// Skew is how far nbf and iat may be in the future; zero means 10s, at
	// most 60s.
	Skew time.Duration
	// HTTPClient fetches the JWKS; nil means a client without redirects.
	HTTPClient *http.Client
	// JWKSTimeout bounds one JWKS fetch; zero means 5s.
	JWKSTimeout time.Duration
	// JWKSRefresh is how often the JWKS is refreshed in the background;
	// zero means 10m.
	JWKSRefresh time.Duration
	// UnknownKeyInterval is the least time between two fetches of the JWKS
	// caused by requests (a kid not in the cached set, or no set yet); zero
	// means 1m.
	UnknownKeyInterval time.Duration
	// CacheEntries bounds the cache of verified tokens; zero means 10,000.
	CacheEntries int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// TokenResolver is the Introspector the verifier uses when an issuer is
// configured: a JWS whose typ is at+jwt (RFC 9068 §2.1) is validated locally
// against the issuer's JWKS, any other token goes to the wrapped
// introspector (with its per-key bound, as IntrospectKey). A verified JWT is
// cached by SHA-256 of the token until its exp, so revoking it at the
// authorization server takes effect only at its exp. It is safe for
// concurrent use.
type TokenResolver struct {
	mode     string
	d        *Discovery
	intro    Introspector
	keyed    keyedIntrospector
	audience string
	skew     time.Duration
	now      func() time.Time
	keys     *jwksKeys
	cache    *tokenCache
	verifier map[string]jws.Verifier
	cancel   context.CancelFunc
}

// NewTokenResolver validates cfg and returns the resolver; Close stops the
// JWKS cache's background refresh.
func NewTokenResolver(cfg TokenResolverConfig) (*TokenResolver, error) {
	r := &TokenResolver{
		mode:     cfg.Mode,
		d:        cfg.Discovery,
		intro:    cfg.Introspector,
		audience: cfg.Audience,
		skew:     cfg.Skew,
		now:      cfg.Now,
		verifier: map[string]jws.Verifier{},
	}
	switch r.mode {
	case "":
		r.mode = AccessTokensAuto
	case AccessTokensAuto, AccessTokensIntrospect, AccessTokensJWT:
	default:
		return nil, fmt.Errorf("security: access token mode must be %q, %q or %q", AccessTokensAuto, AccessTokensIntrospect, AccessTokensJWT)
	}
	if r.d == nil {
		return nil, errors.New("security: token resolver needs the issuer's discovery")
	}
	if r.intro == nil && r.mode != AccessTokensJWT {
		return nil, errors.New("security: token resolver needs an introspector unless only JWT access tokens are accepted")
	}
	r.keyed, _ = r.intro.(keyedIntrospector)
	if r.skew == 0 {
		r.skew = 10 * time.Second
	}
	if r.skew < 0 || r.skew > time.Minute {
		return nil, errors.New("security: JWT clock skew must not be negative or above 60s")
	}
	if r.now == nil {
		r.now = time.Now
	}
	for name, alg := range jwtAlgs {
		v, err := jws.NewVerifier(alg)
		if err != nil {
			return nil, fmt.Errorf("security: %s verifier: %w", name, err)
		}
		r.verifier[name] = v
	}
	k := &jwksKeys{
		client:   cfg.HTTPClient,
		timeout:  cfg.JWKSTimeout,
		refresh:  cfg.JWKSRefresh,
		interval: cfg.UnknownKeyInterval,
	}
	if k.client == nil {
		k.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	k.client = limitedClient(k.client, maxMetadataBody)
	if k.timeout == 0 {
		k.timeout = 5 * time.Second
	}
	if k.refresh == 0 {
		k.refresh = 10 * time.Minute
	}
	if k.interval == 0 {
		k.interval = time.Minute
	}
	if k.timeout < 0 || k.refresh < time.Minute || k.interval < 0 {
		return nil, errors.New("security: JWKS timeout and unknown-key interval must be positive, refresh at least 1m")
	}
	entries := cfg.CacheEntries
	if entries <= 0 {
		entries = 10_000
	}
	r.cache = newTokenCache(int(min(entries, 1<<30)))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	// The refresh window is how often the cache looks for sets due for a
	// refresh; it must not exceed the refresh interval.
	k.cache = jwk.NewCache(ctx, jwk.WithRefreshWindow(time.Minute))
	r.keys = k
	return r, nil
}

// Close stops the JWKS cache's background refresh and releases the token
// cache; the wrapped introspector is the caller's to close.
func (r *TokenResolver) Close() {
	r.cancel()
}

// Introspect resolves token without a proof key; see IntrospectKey.
func (r *TokenResolver) Introspect(ctx context.Context, token string) (Introspection, error) {
	return r.IntrospectKey(ctx, token, "")
}

// IntrospectKey resolves a token presented with a proof whose key has the
// thumbprint jkt. A JWT access token (typ at+jwt) yields an active
// Introspection built from its verified claims, or an *AccessTokenError; any
// other token is introspected (in AccessTokensJWT mode it is refused with an
// *AccessTokenError). ErrAuthServerUnavailable means the issuer's metadata or
// keys are not known yet; other errors are the introspector's.
func (r *TokenResolver) IntrospectKey(ctx context.Context, token, jkt string) (Introspection, error) {
	if r.mode == AccessTokensIntrospect {
		return r.introspect(ctx, token, jkt)
	}
	h, ok := atHeader(token)
	if !ok {
		if r.mode == AccessTokensJWT {
			return Introspection{}, &AccessTokenError{Reason: "jwt_required"}
		}
		return r.introspect(ctx, token, jkt)
	}
	sum := sha256.Sum256([]byte(token))
	key := string(sum[:])
	now := r.now()
	if got, ok := r.cache.get(key, now.UnixNano()); ok {
		return got, nil
	}
	meta, ok := r.d.Metadata()
	if !ok {
		return Introspection{}, ErrAuthServerUnavailable
	}
	if meta.JWKSURI == "" {
		// The authorization server publishes no keys: only it can tell.
		if r.mode == AccessTokensJWT || r.intro == nil {
			return Introspection{}, ErrAuthServerUnavailable
		}
		return r.introspect(ctx, token, jkt)
	}
	res, err := r.verifyJWT(ctx, token, h, meta, now)
	if err != nil {
		return Introspection{}, err
	}
	if ttl := time.Unix(res.Exp, 0).Sub(now); ttl > 0 {
		r.cache.put(key, cachedAnswer{res: res, until: now.Add(ttl).UnixNano()}, now.UnixNano())
	}
	return res, nil
}

func (r *TokenResolver) introspect(ctx context.Context, token, jkt string) (Introspection, error) {
	if r.keyed != nil {
		return r.keyed.IntrospectKey(ctx, token, jkt)
	}
	return r.intro.Introspect(ctx, token)
}

// jwtHeader is the protected header of a JWT access token.
type jwtHeader struct {
	Typ  string          `json:"typ"`
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// atHeader decodes the protected header when token is a compact JWS (three
// base64url segments, RFC 7515 §7.1) whose typ is at+jwt or
// application/at+jwt, compared case-insensitively (RFC 9068 §2.1, RFC 7515
// §4.1.9). Anything else is not a JWT access token.
func atHeader(token string) (jwtHeader, bool) {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first <= 0 || last == first || last == len(token)-1 || strings.Count(token, ".") != 2 {
		return jwtHeader{}, false
	}
	raw, err := jwsEncoding.DecodeString(token[:first])
	if err != nil {
		return jwtHeader{}, false
	}
	var h jwtHeader
	// goccy/go-json decodes like encoding/json, faster; only these two
	// small fixed shapes use it.
	if err := gojson.Unmarshal(raw, &h); err != nil {
		return jwtHeader{}, false
	}
	if !asciiEqualFold(h.Typ, "at+jwt") && !asciiEqualFold(h.Typ, "application/at+jwt") {
		return jwtHeader{}, false
	}
	return h, true
}

// verifyJWT validates a JWT access token (RFC 9068 §4) in this order:
// algorithm on the allow-list, no crit, a JWKS key for kid whose type fits
// the algorithm, signature, then the claims: iss is the issuer, aud contains
// the audience (when configured), exp present and in the future, nbf and iat
// not beyond the skew, client_id and cnf.jkt present (RFC 9449 §6.1: the
// verifier then compares cnf.jkt with the proof key).
func (r *TokenResolver) verifyJWT(ctx context.Context, token string, h jwtHeader, meta ASMetadata, now time.Time) (Introspection, error) {
	// RFC 9068 §4 and RFC 8725 §3.1: the algorithm comes from an
	// allow-list, never from the key; none and HS* are refused here.
	verifier, ok := r.verifier[h.Alg]
	if !ok {
		return Introspection{}, &AccessTokenError{Reason: "jwt_alg"}
	}
	// RFC 7515 §4.1.11: we understand no extension, so crit is refused.
	if len(h.Crit) > 0 {
		return Introspection{}, &AccessTokenError{Reason: "jwt_crit"}
	}
	cands, err := r.keys.lookup(ctx, meta.JWKSURI, h.Kid, r.now)
	if err != nil {
		return Introspection{}, err
	}
	if len(cands) == 0 {
		return Introspection{}, &AccessTokenError{Reason: "jwt_unknown_key"}
	}
	last := strings.LastIndexByte(token, '.')
	sig, err := jwsEncoding.DecodeString(token[last+1:])
	if err != nil {
		return Introspection{}, &AccessTokenError{Reason: "jwt_malformed"}
	}
	input := []byte(token[:last])
	matched, verified := false, false
	for _, k := range cands {
		// RFC 8725 §3.1: the key's type must be the algorithm's (and its
		// alg, when the JWK has one, the same, RFC 7517 §4.4).
		if !k.fits(h.Alg) {
			continue
		}
		matched = true
		if k.verify(verifier, h.Alg, input, sig) {
			verified = true
			break
		}
	}
	switch {
	case !matched:
		return Introspection{}, &AccessTokenError{Reason: "jwt_key_mismatch"}
	case !verified:
		return Introspection{}, &AccessTokenError{Reason: "jwt_signature"}
	}
	first := strings.IndexByte(token, '.')
	payload, err := jwsEncoding.DecodeString(token[first+1 : last])
	if err != nil {
		return Introspection{}, &AccessTokenError{Reason: "jwt_malformed"}
	}
	return r.claims(payload, now)
}

// claims decodes the verified payload into an Introspection with the same
// decoding as an introspection answer (consent id sources, aud, cnf), after
// stating that a verified JWT is active, then checks the claims.
func (r *TokenResolver) claims(payload []byte, now time.Time) (Introspection, error) {
	var info Introspection
	extra, err := info.decode(payload, false)
	if err != nil {
		return Introspection{}, &AccessTokenError{Reason: "jwt_malformed"}
	}
	// RFC 9068 §4: iss must exactly match the issuer of the metadata.
	if extra.issuer != r.d.issuer {
		return Introspection{}, &AccessTokenError{Reason: "jwt_issuer"}
	}
	// active is an introspection member, not a claim: a token that says
	// anything about it is not one of ours.
	if extra.hasActive {
		return Introspection{}, &AccessTokenError{Reason: "jwt_malformed"}
	}
	info.Active = true // verified and, as checked below, unexpired
	switch {
	case r.audience != "" && !contains(info.Aud, r.audience):
		return Introspection{}, &AccessTokenError{Reason: "jwt_audience"}
	case info.Exp == 0:
		return Introspection{}, &AccessTokenError{Reason: "jwt_exp_missing"}
	case now.Unix() >= info.Exp:
		return Introspection{}, &AccessTokenError{Reason: "jwt_expired"}
	case info.Nbf != 0 && now.Add(r.skew).Unix() < info.Nbf:
		return Introspection{}, &AccessTokenError{Reason: "jwt_not_yet_valid"}
	case info.Iat != 0 && now.Add(r.skew).Unix() < info.Iat:
		return Introspection{}, &AccessTokenError{Reason: "jwt_issued_in_future"}
	case info.ClientID == "":
		return Introspection{}, &AccessTokenError{Reason: "jwt_client_id_missing"}
	case info.CnfJKT == "":
		// RFC 9449 §6.1: a DPoP-bound JWT carries cnf.jkt.
		return Introspection{}, &AccessTokenError{Reason: "jwt_not_bound"}
	}
	return info, nil
}

// jwtKey is one usable key of the JWKS.
type jwtKey struct {
	kty string // "RSA", "P-256", "Ed25519"
	alg string // the JWK's alg, or ""
	raw any    // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
}

// verify checks sig over input with k. ES256, the FAPI 2.0 algorithm most
// authorization servers sign with, is checked the way a proof's signature is
// (R || S to DER, one VerifyASN1, no big.Int round trip); every other
// algorithm goes through jwx's verifier for alg.
func (k jwtKey) verify(verifier jws.Verifier, alg string, input, sig []byte) bool {
	if pub, ok := k.raw.(*ecdsa.PublicKey); ok && alg == "ES256" && pub.Curve == elliptic.P256() {
		// RFC 7518 §3.4: R || S, each 32 octets.
		if len(sig) != 64 {
			return false
		}
		der, ok := ecdsaDER(sig)
		if !ok {
			return false
		}
		digest := sha256.Sum256(input)
		return ecdsa.VerifyASN1(pub, digest[:], der)
	}
	return verifier.Verify(input, sig, k.raw) == nil
}

// fits reports whether k may verify a signature made with alg.
func (k jwtKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg {
	case "RS256", "PS256":
		return k.kty == "RSA"
	case "ES256":
		return k.kty == "P-256"
	case "EdDSA":
		return k.kty == "Ed25519"
	}
	return false
}

// keyIndex is the usable keys of one fetched set, by kid.
type keyIndex struct {
	set   jwk.Set
	byKID map[string][]jwtKey
	all   []jwtKey
}

func (x *keyIndex) find(kid string) []jwtKey {
	if kid == "" {
		return x.all
	}
	return x.byKID[kid]
}

// emptyRetry is the least time between two fetches caused by requests while
// no set was ever fetched (each such request answers 503).
const emptyRetry = 5 * time.Second

// jwksKeys holds the issuer's JWKS in a jwk.Cache that refreshes it in the
// background. Requests never fetch it, except that a request meeting an
// unknown kid may cause one fetch per UnknownKeyInterval (RFC 7517 §5: key
// rotation adds a kid before using it), and while no set was ever fetched one
// fetch per 5s at most.
type jwksKeys struct {
	cache    *jwk.Cache
	client   *http.Client
	timeout  time.Duration
	refresh  time.Duration
	interval time.Duration

	mu          sync.Mutex // guards what follows and serialises fetches
	uri         string
	fetched     bool
	lastAttempt time.Time
	index       atomic.Pointer[keyIndex]
}

// lookup returns the usable keys for kid (all keys when kid is empty). It
// returns ErrAuthServerUnavailable when no set could be fetched yet.
func (k *jwksKeys) lookup(ctx context.Context, uri, kid string, now func() time.Time) ([]jwtKey, error) {
	x, err := k.current(ctx, uri, now(), false)
	if err != nil {
		return nil, err
	}
	if c := x.find(kid); len(c) > 0 {
		return c, nil
	}
	if x, err = k.current(ctx, uri, now(), true); err != nil {
		return nil, err
	}
	return x.find(kid), nil
}

// current returns the cached set's index; it fetches the set when there is
// none yet or when force is set, at most once per interval.
func (k *jwksKeys) current(ctx context.Context, uri string, now time.Time, force bool) (*keyIndex, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if uri != k.uri {
		if k.uri != "" {
			_ = k.cache.Unregister(k.uri)
		}
		if err := k.cache.Register(uri, jwk.WithHTTPClient(k.client), jwk.WithRefreshInterval(k.refresh)); err != nil {
			return nil, fmt.Errorf("%w: jwks: %v", ErrAuthServerUnavailable, err)
		}
		k.uri, k.fetched, k.lastAttempt = uri, false, time.Time{}
	}
	if k.fetched && (!force || now.Sub(k.lastAttempt) < k.interval) {
		// Get answers from the cache once the set was fetched.
		set, err := k.cache.Get(ctx, uri)
		if err != nil {
			return nil, fmt.Errorf("%w: jwks: %v", ErrAuthServerUnavailable, err)
		}
		return k.indexOf(set), nil
	}
	if !k.fetched && !k.lastAttempt.IsZero() && now.Sub(k.lastAttempt) < min(k.interval, emptyRetry) {
		return nil, ErrAuthServerUnavailable
	}
	k.lastAttempt = now
	// The fetch serves every request waiting here: a client that goes away
	// must not cancel it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.timeout)
	defer cancel()
	set, err := k.cache.Refresh(fctx, uri)
	if err != nil {
		if k.fetched {
			if set, err := k.cache.Get(ctx, uri); err == nil {
				return k.indexOf(set), nil
			}
		}
		return nil, fmt.Errorf("%w: jwks: %v", ErrAuthServerUnavailable, err)
	}
	k.fetched = true
	return k.indexOf(set), nil
}

// indexOf returns the index of set, built once per fetched set.
func (k *jwksKeys) indexOf(set jwk.Set) *keyIndex {
	if x := k.index.Load(); x != nil && x.set == set {
		return x
	}
	x := &keyIndex{set: set, byKID: map[string][]jwtKey{}}
	for i := range set.Len() {
		key, ok := set.Key(i)
		if !ok {
			continue
		}
		// RFC 7517 §4.2: a key for encryption is not for signatures.
		if u := key.KeyUsage(); u != "" && u != "sig" {
			continue
		}
		pub, err := jwk.PublicRawKeyOf(key)
		if err != nil {
			continue
		}
		jk := jwtKey{raw: pub}
		if a := key.Algorithm(); a != nil {
			jk.alg = a.String()
		}
		switch p := pub.(type) {
		case *rsa.PublicKey:
			if p.N.BitLen() < 2048 {
				continue
			}
			jk.kty = "RSA"
		case *ecdsa.PublicKey:
			if p.Curve != elliptic.P256() {
				continue
			}
			jk.kty = "P-256"
		case ed25519.PublicKey:
			jk.kty = "Ed25519"
		default:
			continue
		}
		x.all = append(x.all, jk)
		if kid := key.KeyID(); kid != "" {
			x.byKID[kid] = append(x.byKID[kid], jk)
		}
	}
	k.index.Store(x)
	return x
}

// limitedClient returns a copy of c whose response bodies end after max
// bytes, so that a JWKS cannot make us read without bound.
func limitedClient(c *http.Client, max int64) *http.Client {
	cc := *c
	rt := cc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	cc.Transport = limitedTransport{rt: rt, max: max}
	return &cc
}

type limitedTransport struct {
	rt  http.RoundTripper
	max int64
}

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, t.max), resp.Body}
	return resp, nil
}
