package security

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Size caps applied before any parsing, so that no input makes the parser
// work or allocate in proportion to an attacker's budget.
const (
	maxTokenLen = 4096 // Authorization token68
	maxProofLen = 8192 // DPoP header value
	maxJTILen   = 256
)

// Config configures a Verifier. The constructor copies it, fills defaults and
// validates it; it is read-only afterwards.
type Config struct {
	// Algs is the allow-list of proof algorithms (PAYMENTS_DPOP_ALGS); empty
	// means DefaultAlgs. Only ES256, PS256, EdDSA and Ed25519 are supported.
	Algs []string
	// PublicURL is the external base URL clients call (PAYMENTS_PUBLIC_URL),
	// required; the middleware appends the dispatched path to it.
	PublicURL string
	// MaxAge is how old a proof's iat may be; zero means 60s, at most 5m.
	MaxAge time.Duration
	// Skew is how far in the future iat may be; zero means 10s, at most 60s.
	Skew time.Duration
	// NonceMode is NonceRequired or NonceOff; "" means NonceRequired.
	NonceMode string
	// NonceSecret keys the stateless nonces, at least 32 bytes; empty means a
	// random secret for this process (then other nodes reject its nonces).
	NonceSecret []byte
	// NonceWindow is the life of one nonce window, at least 1s; zero means 5m.
	NonceWindow time.Duration
	// ReplayStore records accepted proofs; required.
	ReplayStore ReplayStore
	// Introspector resolves access tokens; required.
	Introspector Introspector
	// Audience, when set, must be among the token's aud values.
	Audience string
	// ResourceMetadata is the URL of the service's protected-resource
	// metadata (RFC 9728 §3), which every 401 challenge names in its
	// resource_metadata parameter (RFC 9728 §5.1). Optional: empty means the
	// challenges name none. When set it must be an absolute http(s) URL
	// without userinfo or fragment, made only of characters a quoted-string
	// may carry.
	ResourceMetadata string
	// RetryAfter is advertised with 503 answers; zero means 5s.
	RetryAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer receives the verifier's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives one INFO line per rejected request; nil discards.
	Logger *slog.Logger
}

// Verifier checks DPoP-protected requests (RFC 9449 §4.3 and §7.1) in the
// order doc.go lists. It is safe for concurrent use.
type Verifier struct {
	algs       map[string]bool
	algsHeader string
	publicURL  string
	maxAge     time.Duration
	skew       time.Duration
	nonces     nonceIssuer
	replay     ReplayStore
	intro      Introspector
	keyed      keyedIntrospector // intro, when it bounds calls per proof key
	audience   string
	metadata   string // RFC 9728 §5.1 resource_metadata of 401 challenges
	retryAfter time.Duration
	now        func() time.Time
	log        *slog.Logger
	metrics    *metrics
	keys       *keyCache

	// Descriptions that name the configuration, built once here so that
	// a refusal costs no formatting (see descriptions).
	descAlg, descIATOld, descIATFuture string
}

// NewVerifier validates cfg and returns a Verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{
		algs:       map[string]bool{},
		maxAge:     cfg.MaxAge,
		skew:       cfg.Skew,
		replay:     cfg.ReplayStore,
		intro:      cfg.Introspector,
		audience:   cfg.Audience,
		retryAfter: cfg.RetryAfter,
		now:        cfg.Now,
		log:        cfg.Logger,
		keys:       newKeyCache(4096),
	}
	algs := cfg.Algs
	if len(algs) == 0 {
		algs = DefaultAlgs
	}
	var names []string
	for _, a := range algs {
		switch a {
		case algES256, algPS256, algEdDSA, algEd25519:
		default:
			return nil, fmt.Errorf("security: DPoP algorithm %q is not supported (use ES256, PS256, EdDSA, Ed25519)", a)
		}
		if !v.algs[a] {
			v.algs[a] = true
			names = append(names, a)
		}
	}
	v.algsHeader = strings.Join(names, " ")
	base, err := normalizeHTU(cfg.PublicURL)
	if err != nil || strings.ContainsAny(cfg.PublicURL, "?#") {
		return nil, errors.New("security: public URL must be an absolute http(s) URL without userinfo, query or fragment")
	}
	v.publicURL = strings.TrimSuffix(base, "/")
	if v.maxAge == 0 {
		v.maxAge = 60 * time.Second
	}
	if v.maxAge < 0 || v.maxAge > 5*time.Minute {
		return nil, errors.New("security: DPoP max age must not be negative or above 5m")
	}
	if v.skew == 0 {
		v.skew = 10 * time.Second
	}
	if v.skew < 0 || v.skew > 60*time.Second {
		return nil, errors.New("security: DPoP clock skew must not be negative or above 60s")
	}
	switch cfg.NonceMode {
	case "", NonceRequired:
		v.nonces.window = cfg.NonceWindow
		if v.nonces.window == 0 {
			v.nonces.window = 5 * time.Minute
		}
		if v.nonces.window < time.Second {
			return nil, errors.New("security: DPoP nonce window must be at least 1s")
		}
		v.nonces.secret = append([]byte(nil), cfg.NonceSecret...)
		if len(v.nonces.secret) == 0 {
			v.nonces.secret = make([]byte, 32)
			if _, err := rand.Read(v.nonces.secret); err != nil {
				return nil, fmt.Errorf("security: nonce secret: %w", err)
			}
		}
		if len(v.nonces.secret) < 32 {
			return nil, errors.New("security: DPoP nonce secret must be at least 32 bytes")
		}
	case NonceOff:
		v.nonces.off = true
	default:
		return nil, fmt.Errorf("security: DPoP nonce mode must be %q or %q", NonceRequired, NonceOff)
	}
	if v.replay == nil {
		return nil, errors.New("security: replay store is required")
	}
	if v.intro == nil {
		return nil, errors.New("security: introspector is required")
	}
	v.keyed, _ = v.intro.(keyedIntrospector)
	if v.metadata, err = checkResourceMetadata(cfg.ResourceMetadata); err != nil {
		return nil, err
	}
	if v.retryAfter == 0 {
		v.retryAfter = 5 * time.Second
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if v.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	v.descAlg = "DPoP proof alg not allowed: use one of " + v.algsHeader
	v.descIATOld = "DPoP proof iat too old: a proof may be at most " + shortDuration(v.maxAge) +
		" old, so sign a new one for every request and check the client clock"
	v.descIATFuture = "DPoP proof iat in the future: at most " + shortDuration(v.skew) +
		" ahead of the server clock is allowed, so check the client clock"
	return v, nil
}

// shortDuration writes a whole number of seconds as the configuration's
// defaults spell it: 60s, 90s, 5m; anything else as time.Duration does.
func shortDuration(d time.Duration) string {
	switch {
	case d >= 2*time.Minute && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d > 0 && d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// PublicURL returns the normalised public base URL without a trailing slash.
func (v *Verifier) PublicURL() string { return v.publicURL }

// Algs returns the allowed proof algorithms, space-separated, as the
// challenge's algs parameter carries them.
func (v *Verifier) Algs() string { return v.algsHeader }

// Request holds the facts of one protected request.
type Request struct {
	// Method is the dispatched HTTP method.
	Method string
	// URL is the full public URL of the dispatched route: the configured
	// public base URL plus the escaped path, never built from Host or
	// X-Forwarded-* headers.
	URL string
	// Base and Route are the configured public base URL and the route the
	// router matched, its parameters as ":name" (echo's form, e.g.
	// /open-banking/v3.1/pisp/domestic-payments/:DomesticPaymentId). An
	// htu refusal names Base+Route with "{name}" for each parameter, so the
	// answer says which URL to sign without echoing what the request put
	// in the path; they are joined only then. Empty Route: the refusal
	// names no URL.
	Base, Route string
	// Authorization and DPoP are every value of those headers, as received.
	Authorization []string
	DPoP          []string
	// TokenParameter is true when the request also carries access_token in
	// its query or form body (RFC 6750 §2.2, §2.3).
	TokenParameter bool
}

// Result carries what a successful verification asks the response to do.
type Result struct {
	// Nonce, when set, is a fresh DPoP-Nonce to send on the success answer
	// (with Cache-Control: no-store) because the client's nonce is about to
	// expire (RFC 9449 §8.2).
	Nonce string
}

// Verify runs every check of RFC 9449 §4.3 and §7.1 on req and returns the
// verified principal. Every failure is a *Error; a 503 means the
// authorization server or the replay store could not answer.
func (v *Verifier) Verify(ctx context.Context, req Request) (Principal, Result, error) {
	started := time.Now() // latency metric only; decisions use v.now
	p, res, e := v.verify(ctx, req)
	v.metrics.latency.Observe(time.Since(started).Seconds())
	if e != nil {
		v.metrics.rejections.WithLabelValues(e.Reason, e.Code).Inc()
		v.log.LogAttrs(ctx, slog.LevelInfo, "dpop request rejected",
			slog.String("reason", e.Reason), slog.Int("status", e.Status), slog.String("code", e.Code),
			slog.String("jkt", p.JKT), slog.String("client_id", p.ClientID))
		return Principal{}, Result{}, e
	}
	v.metrics.accepted.Inc()
	return p, res, nil
}

// verify returns the partial principal with a failure so that the log line
// can name the key and the client once they are known.
func (v *Verifier) verify(ctx context.Context, req Request) (Principal, Result, *Error) {
	var p Principal
	now := v.now()

	token, e := v.checkAuthorization(req)
	if e != nil {
		return p, Result{}, e
	}
	proof, e := v.checkProofHeader(req.DPoP)
	if e != nil {
		return p, Result{}, e
	}
	key, e := v.checkProtectedHeader(proof.header)
	if e != nil {
		return p, Result{}, e
	}
	p.JKT = key.jkt
	if e := v.checkSignature(key, proof); e != nil {
		return p, Result{}, e
	}
	claims, e := v.checkClaims(proof.payload, now)
	if e != nil {
		return p, Result{}, e
	}
	if e := v.checkMethod(claims, req.Method); e != nil {
		return p, Result{}, e
	}
	if e := v.checkTarget(claims, req.URL, req.Base, req.Route); e != nil {
		return p, Result{}, e
	}
	var res Result
	if res.Nonce, e = v.checkNonce(claims, now); e != nil {
		return p, Result{}, e
	}
	if e := v.checkIssuedAt(claims, now); e != nil {
		return p, Result{}, e
	}
	if e := v.checkTokenHash(claims, token); e != nil {
		return p, Result{}, e
	}
	info, e := v.introspect(ctx, token, key.jkt, now)
	if e != nil {
		return p, Result{}, e
	}
	p.ClientID = info.ClientID
	if e := v.checkBinding(info, key); e != nil {
		return p, Result{}, e
	}
	if e := v.checkReplay(ctx, key, claims); e != nil {
		return p, Result{}, e
	}
	// A token is a customer (PSU) token only when it carries a consent id,
	// and then sub is the PSU. A client-credentials token keeps an empty
	// Subject whatever its sub says: RFC 9068 §2.2 asks such tokens to carry
	// sub = the client id, which is no customer.
	if info.ConsentID != "" {
		p.Subject = info.Subject
	}
	p.Scopes = strings.Fields(info.Scope)
	p.ConsentID = info.ConsentID
	return p, res, nil
}

// checkAuthorization performs P2-P6.
//
// RFC 6750 §3.1 and RFC 9449 Fig.19: one Authorization header only, and no
// second way of sending the token. RFC 6750 §3.1 (last paragraph): a request
// without usable credentials gets the bare challenge (RFC 9449 Fig.15); that
// includes Bearer, because a DPoP-bound token is never a bearer token (RFC 9449
// §7.2). RFC 9449 §7.1: "DPoP" 1*SP token68, scheme case-insensitive (RFC 9110
// §11.1).
func (v *Verifier) checkAuthorization(req Request) (string, *Error) {
	switch {
	case len(req.Authorization) > 1:
		return "", v.multipleMethods("authorization_repeated")
	case len(req.Authorization) == 0 || strings.TrimSpace(req.Authorization[0]) == "":
		if req.TokenParameter {
			return "", v.noCredentials("token_in_parameter_only")
		}
		return "", v.noCredentials("no_authorization")
	case req.TokenParameter:
		return "", v.multipleMethods("token_in_header_and_parameter")
	}
	h := req.Authorization[0]
	scheme, rest, _ := strings.Cut(h, " ")
	if !asciiEqualFold(scheme, "DPoP") {
		return "", v.noCredentials("scheme_not_dpop")
	}
	token := strings.TrimLeft(rest, " ")
	if len(token) > maxTokenLen {
		return "", v.tokenError("token_too_long")
	}
	if !isToken68(token) {
		return "", v.tokenError("token_malformed")
	}
	return token, nil
}

// compactProof is a DPoP header value split into its three segments.
type compactProof struct {
	header, payload, signature string
	signingInput               string
}

// checkProofHeader performs P7 and P8: exactly one DPoP header (RFC 9449
// §4.3 (1)), a size cap, and the JWS compact serialization with three
// non-empty base64url segments (RFC 9449 §4.3 (2), RFC 7515 §7.1). The JSON
// serialization is never accepted.
func (v *Verifier) checkProofHeader(values []string) (compactProof, *Error) {
	switch {
	case len(values) == 0:
		return compactProof{}, v.proofError("proof_missing")
	case len(values) > 1:
		return compactProof{}, v.proofError("proof_repeated")
	}
	s := values[0]
	if len(s) > maxProofLen {
		return compactProof{}, v.proofError("proof_too_large")
	}
	if !allCompactChars(s) {
		return compactProof{}, v.proofError("proof_not_compact")
	}
	h, rest, ok1 := strings.Cut(s, ".")
	pl, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || h == "" || pl == "" || sig == "" || strings.Contains(sig, ".") {
		return compactProof{}, v.proofError("proof_not_compact")
	}
	return compactProof{header: h, payload: pl, signature: sig, signingInput: s[:len(h)+1+len(pl)]}, nil
}

// compactChars marks with 1 the bytes of a JWS compact serialization: the
// base64url alphabet (RFC 7515 §2, no padding) and the segment separator.
var compactChars = func() (t [256]byte) {
	for c := 0; c < 256; c++ {
		if isAlnum(byte(c)) || c == '-' || c == '_' || c == '.' {
			t[c] = 1
		}
	}
	return t
}()

// token68Chars marks with 1 the bytes of an RFC 9110 §11.2 token68 before
// its trailing '=' padding: the compact serialization's and "~+/".
var token68Chars = func() (t [256]byte) {
	t = compactChars
	for _, c := range []byte("~+/") {
		t[c] = 1
	}
	return t
}()

// allCompactChars reports whether every byte of s is in compactChars.
func allCompactChars(s string) bool { return allIn(&compactChars, s) }

// allIn reports whether every byte of s is marked in table. It tests eight
// bytes per branch, since it reads whole proofs and access tokens on every
// request.
func allIn(table *[256]byte, s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if table[s[i]]&table[s[i+1]]&table[s[i+2]]&table[s[i+3]]&
			table[s[i+4]]&table[s[i+5]]&table[s[i+6]]&table[s[i+7]] == 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if table[s[i]] == 0 {
			return false
		}
	}
	return true
}

// checkProtectedHeader performs P9-P13 on the protected header, or returns
// the cached verdict for the same header bytes.
func (v *Verifier) checkProtectedHeader(segment string) (*proofKey, *Error) {
	if k, ok := v.keys.get(segment); ok {
		return k, nil
	}
	raw, err := b64.DecodeString(segment)
	if err != nil {
		return nil, v.proofError("header_encoding")
	}
	// RFC 7515 §5.2 step 3, RFC 7519 §7.2 step 4 and RFC 8259 §8.1: the
	// decoded header is a UTF-8 JSON text, every byte of it (members we
	// ignore included), without a byte order mark. encoding/json alone
	// would read invalid UTF-8 as U+FFFD.
	if hasBOM(raw) {
		return nil, v.proofError("header_bom")
	}
	if !utf8.Valid(raw) {
		return nil, v.proofError("header_not_utf8")
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw, &h); err != nil || h == nil {
		return nil, v.proofError("header_not_object")
	}
	// P9, RFC 9449 §4.3 (4): typ is dpop+jwt (RFC 7515 §4.1.9: the
	// "application/" prefix may be omitted; media types are case-insensitive).
	typ, _ := jsonString(h, "typ")
	if !asciiEqualFold(typ, "dpop+jwt") && !asciiEqualFold(typ, "application/dpop+jwt") {
		return nil, v.proofError("typ")
	}
	// P10, RFC 9449 §4.3 (5) and RFC 8725 §3.1: alg from our allow-list only
	// (never none, never symmetric), compared exactly.
	alg, _ := jsonString(h, "alg")
	if !v.algs[alg] {
		return nil, v.fail(401, CodeInvalidProof, v.descAlg, "alg_not_allowed")
	}
	// P11, RFC 9449 §4.3 (7): an embedded public JWK; P12, RFC 7518 §3.4 and
	// §6, RFC 8037 §2, FAPI 2.0 §5.4.1: its type, curve and size match alg.
	jwkRaw, ok := h["jwk"]
	if !ok || len(jwkRaw) == 0 || jwkRaw[0] != '{' {
		return nil, v.proofError("jwk_missing")
	}
	key, reason := parseJWK(jwkRaw, alg)
	if key == nil {
		return nil, v.proofError(reason)
	}
	// P13, RFC 7515 §4.1.11 and RFC 7797: no critical extensions, no
	// unencoded payload; RFC 8725 §3.10: never a key by reference. kid and
	// x5c are ignored: the only key is jwk.
	if _, ok := h["crit"]; ok {
		return nil, v.proofError("crit")
	}
	if _, ok := h["b64"]; ok {
		return nil, v.proofError("b64")
	}
	if _, ok := h["jku"]; ok {
		return nil, v.proofError("jku")
	}
	if _, ok := h["x5u"]; ok {
		return nil, v.proofError("x5u")
	}
	v.keys.put(strings.Clone(segment), key)
	return key, nil
}

// checkSignature performs P14, RFC 9449 §4.3 (6): the signature verifies with
// the embedded key under the allow-listed algorithm.
func (v *Verifier) checkSignature(k *proofKey, proof compactProof) *Error {
	// The largest signature of an allowed key is 1024 bytes (RSA 8192 bits);
	// anything longer cannot verify.
	var buf [maxRSABits / 8]byte
	if b64.DecodedLen(len(proof.signature)) > len(buf) {
		return v.proofError("signature")
	}
	n, err := b64.Decode(buf[:], []byte(proof.signature))
	if err != nil || !k.verify(proof.signingInput, buf[:n]) {
		return v.proofError("signature")
	}
	return nil
}

// checkClaims performs P15, RFC 9449 §4.2 and §4.3 (3), for a proof sent
// with an access token: typed jti, htm, htu, iat and ath, a string nonce if
// present, valid exp/nbf if present (decodeClaims).
func (v *Verifier) checkClaims(segment string, now time.Time) (proofClaims, *Error) {
	return v.decodeClaims(segment, now, true)
}

// checkMethod performs P16, RFC 9449 §4.3 (8): htm equals the method, byte for
// byte (RFC 9110 §9.1: methods are case-sensitive).
func (v *Verifier) checkMethod(c proofClaims, method string) *Error {
	if c.Method != method {
		return v.fail(401, CodeInvalidProof, methodMismatch(method), "htm_mismatch")
	}
	return nil
}

// methodMismatch names the method htm must carry. The method is the one the
// router dispatched, but only the methods of our routes are written out, as
// constants; any other gets the general words.
func methodMismatch(method string) string {
	switch method {
	case http.MethodGet:
		return "htm does not match this request: expected GET"
	case http.MethodPost:
		return "htm does not match this request: expected POST"
	case http.MethodPut:
		return "htm does not match this request: expected PUT"
	case http.MethodPatch:
		return "htm does not match this request: expected PATCH"
	case http.MethodDelete:
		return "htm does not match this request: expected DELETE"
	}
	return descriptions["htm_mismatch"]
}

// checkTarget performs P17, RFC 9449 §4.3 (9): htu equals the target URI,
// both normalised per RFC 3986 §6.2.2 and §6.2.3, query and fragment ignored.
// A refusal names base+route, the URL the proof should have named with the
// route's parameters as placeholders (see Request.Route).
func (v *Verifier) checkTarget(c proofClaims, target, base, route string) *Error {
	want, err := normalizeHTU(target)
	if err != nil {
		return v.proofError("target_url_invalid")
	}
	if c.URL == target {
		return nil // the same string has the same normal form
	}
	got, err := normalizeHTU(c.URL)
	if err != nil || got != want {
		named := ""
		if route != "" {
			named = base + routeTemplate(route)
		}
		return v.fail(401, CodeInvalidProof, targetMismatch(named), "htu_mismatch")
	}
	return nil
}

// routeTemplate writes the ":name" segments of route as "{name}".
func routeTemplate(route string) string {
	if !strings.Contains(route, "/:") {
		return route
	}
	segs := strings.Split(route, "/")
	for i, seg := range segs {
		if name, ok := strings.CutPrefix(seg, ":"); ok && i > 2 {
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/")
}

// maxExpectedURL bounds the URL an htu mismatch names.
const maxExpectedURL = 512

// targetMismatch names the URL htu must carry: want, the configured public
// URL followed by the matched route with placeholders for its parameters,
// so nothing the client put in the path is repeated. A URL that would not
// fit in a challenge (quotable), or is longer than maxExpectedURL, is not
// named. Only a refused request builds this string.
func targetMismatch(want string) string {
	if want == "" || len(want) > maxExpectedURL || quotable(want) == "" {
		return descHTUMismatch
	}
	return descHTUMismatch + ": expected " + want
}

// checkNonce performs P18, RFC 9449 §4.3 (10) and §9: when nonces are
// required, the proof carries a nonce we issued in the current or previous
// window; otherwise the answer is use_dpop_nonce with a fresh one. A nonce
// from the previous window asks for a fresh one on the success answer.
func (v *Verifier) checkNonce(c proofClaims, now time.Time) (string, *Error) {
	if v.nonces.off {
		return "", nil
	}
	if !c.hasNonce {
		return "", v.nonceError("nonce_missing", now)
	}
	valid, previous := v.nonces.check(c.Nonce, now)
	if !valid {
		return "", v.nonceError("nonce_invalid", now)
	}
	if previous {
		return v.nonces.issue(now), nil
	}
	return "", nil
}

// checkIssuedAt performs P19, RFC 9449 §4.3 (11) and §11.1: iat is at most
// MaxAge old and at most Skew ahead of our clock.
func (v *Verifier) checkIssuedAt(c proofClaims, now time.Time) *Error {
	offset := c.IssuedAt - float64(now.UnixNano())/1e9
	v.metrics.iatOffset.Observe(offset)
	if offset > v.skew.Seconds() {
		return v.fail(401, CodeInvalidProof, v.descIATFuture, "iat_in_future")
	}
	if offset < -v.maxAge.Seconds() {
		return v.fail(401, CodeInvalidProof, v.descIATOld, "iat_too_old")
	}
	return nil
}

// checkTokenHash performs P20, RFC 9449 §4.3 (12) and §4.2: ath is the
// base64url SHA-256 of the access token exactly as sent, compared in constant
// time.
func (v *Verifier) checkTokenHash(c proofClaims, token string) *Error {
	sum := sha256.Sum256([]byte(token))
	var want [43]byte
	b64.Encode(want[:], sum[:])
	if subtle.ConstantTimeCompare([]byte(c.AccessTokenHash), want[:]) != 1 {
		return v.proofError("ath_mismatch")
	}
	return nil
}

// introspect performs P21, RFC 7662 §2.2 and RFC 9449 §6.2: the token is
// active, of type DPoP (RFC 9449 §6.2), access_token or untyped (RFC 7662
// §2.2 leaves token_type optional and some servers name the token kind; a
// Bearer token is never accepted, RFC 9449 §7.2), inside its validity
// period, meant for us when an audience is configured, and bound to a key
// (cnf.jkt). Its consent id can be told (Introspection.Refusal), and a token
// with a consent id names its customer (sub). An
// introspection failure answers 503: we never fail open. The proof key jkt
// goes to an introspector that bounds calls per key; a token it refused to
// send (ErrIntrospectionThrottled) gets the answer an inactive token gets, so
// the answer tells nothing about the token.
func (v *Verifier) introspect(ctx context.Context, token, jkt string, now time.Time) (Introspection, *Error) {
	var info Introspection
	var err error
	if v.keyed != nil {
		info, err = v.keyed.IntrospectKey(ctx, token, jkt)
	} else {
		info, err = v.intro.Introspect(ctx, token)
	}
	var refused *AccessTokenError
	switch {
	case errors.Is(err, ErrIntrospectionThrottled):
		return Introspection{}, v.tokenError("token_throttled")
	case errors.As(err, &refused):
		// A JWT access token that failed local validation (TokenResolver).
		return Introspection{}, v.tokenError(refused.Reason)
	case err != nil:
		return info, v.unavailable(descAuthServerDown, "introspection_unavailable")
	}
	switch {
	case !info.Active:
		return info, v.tokenError("token_inactive")
	case info.TokenType != "" && !asciiEqualFold(info.TokenType, "DPoP") && !asciiEqualFold(info.TokenType, "access_token"):
		return info, v.tokenError("token_type")
	case info.Exp != 0 && now.Unix() >= info.Exp:
		return info, v.tokenError("token_expired")
	case info.Nbf != 0 && now.Add(v.skew).Unix() < info.Nbf:
		return info, v.tokenError("token_not_yet_valid")
	case v.audience != "" && !contains(info.Aud, v.audience):
		return info, v.tokenError("token_audience")
	case len(info.CnfJKT) != 43:
		return info, v.bindingError("token_not_bound")
	case info.Refusal != "":
		return info, v.tokenError(info.Refusal)
	case info.ConsentID != "" && info.Subject == "":
		// A customer token must name its customer.
		return info, v.tokenError("token_consent_without_sub")
	}
	return info, nil
}

// checkBinding performs P22, RFC 9449 §4.3 (12) and §6: the token's cnf.jkt
// equals the RFC 7638 thumbprint of the proof key (constant time).
func (v *Verifier) checkBinding(info Introspection, k *proofKey) *Error {
	if subtle.ConstantTimeCompare([]byte(info.CnfJKT), []byte(k.jkt)) != 1 {
		return v.bindingError("key_binding_mismatch")
	}
	return nil
}

// checkReplay performs P23, RFC 9449 §11.1: the (jkt, jti) pair is recorded
// atomically, last, until the proof can no longer pass checkIssuedAt; a pair
// already recorded is a replay. The proof key's thumbprint is the entry's owner
// for a store that shares its room fairly (FairReplayStore). A store failure,
// or a refusal because the key holds more than its share, answers 503 (fail
// closed).
func (v *Verifier) checkReplay(ctx context.Context, k *proofKey, c proofClaims) *Error {
	until := unixFloat(c.IssuedAt).Add(v.maxAge + v.skew + time.Second)
	seen, err := seenFor(ctx, v.replay, k.jkt, replayKey(k.jkt, c.JTI), until)
	switch {
	case errors.Is(err, ErrReplayShareExceeded):
		return v.unavailable(descReplayDown, "replay_share_exceeded")
	case err != nil:
		return v.unavailable(descReplayDown, "replay_store_unavailable")
	}
	if seen {
		return v.proofError("replay")
	}
	return nil
}

// replayKey is hex(SHA-256(jkt || 0x00 || jti)): fixed length, no request
// bytes stored, and no ambiguity between the two parts.
func replayKey(jkt, jti string) string {
	var in [64 + 1 + maxJTILen]byte
	b := append(in[:0], jkt...)
	b = append(b, 0)
	b = append(b, jti...)
	sum := sha256.Sum256(b)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// afterSeconds reports whether the Unix time s (seconds) is after t.
func afterSeconds(s float64, t time.Time) bool {
	return s > float64(t.UnixNano())/1e9
}

func unixFloat(s float64) time.Time {
	sec, frac := math.Modf(s)
	return time.Unix(int64(sec), int64(frac*1e9))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isToken68 reports whether s is a non-empty RFC 9110 §11.2 token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	return body != "" && allIn(&token68Chars, body)
}
