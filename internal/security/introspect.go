package security

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgraph-io/ristretto/v2"
	gojson "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus"
)

// Introspection is what the authorization server says about an access token
// (RFC 7662 §2.2, with cnf from RFC 9449 §6.2 and the consent id from our
// contract). Times are Unix seconds; zero means the member was absent.
// ConsentID is read from consent_id, else openbanking_intent_id, else an RFC
// 9396 authorization_details element of type openbanking_intent
// (consentFromWire); a token with a consent id is a customer (PSU) token.
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	CnfJKT    string   `json:"-"`
	Aud       []string `json:"-"`
	ConsentID string   `json:"consent_id,omitempty"`
	// AuthorizationDetails is the RFC 9396 authorization_details member as
	// it was granted (a JSON array), or nil.
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`

	// Refusal, when set, is the reason the verifier refuses the token
	// whatever else it says: its consent id cannot be told (two different
	// values, or authorization_details that is not an array of objects).
	// UnmarshalJSON sets it; the answer itself decoded fine. It is never
	// marshalled.
	Refusal string `json:"-"`
}

// Reasons for Introspection.Refusal, as the verifier logs and counts them.
const (
	reasonConsentConflict      = "token_consent_conflict"
	reasonAuthorizationDetails = "token_authorization_details"
)

// introspectionWire is the JSON shape: cnf is nested, aud is a string or an
// array, and active must be present.
type introspectionWire struct {
	Active    *bool        `json:"active"`
	Issuer    string       `json:"iss"`
	Scope     string       `json:"scope"`
	ClientID  string       `json:"client_id"`
	Subject   string       `json:"sub"`
	Exp       *json.Number `json:"exp"` // pointers: null is absent to both decoders
	Nbf       *json.Number `json:"nbf"`
	Iat       *json.Number `json:"iat"`
	TokenType string       `json:"token_type"`
	Cnf       *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
	Aud                  json.RawMessage `json:"aud"`
	ConsentID            string          `json:"consent_id"`
	OpenBankingIntentID  string          `json:"openbanking_intent_id"`
	AuthorizationDetails json.RawMessage `json:"authorization_details"`
}

// MarshalJSON writes the RFC 7662 shape (cnf nested, aud as an array).
func (in Introspection) MarshalJSON() ([]byte, error) {
	type plain Introspection
	out := struct {
		plain
		Cnf *struct {
			JKT string `json:"jkt"`
		} `json:"cnf,omitempty"`
		Aud []string `json:"aud,omitempty"`
	}{plain: plain(in), Aud: in.Aud}
	if in.CnfJKT != "" {
		out.Cnf = &struct {
			JKT string `json:"jkt"`
		}{in.CnfJKT}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads an RFC 7662 answer. It fails when active is missing or
// not a boolean, or when a member has the wrong type. A consent id that
// cannot be told (consentFromWire) is not a decoding error: the answer
// decodes, marked for the verifier to refuse.
func (in *Introspection) UnmarshalJSON(b []byte) error {
	_, err := in.decode(b, true)
	return err
}

// decoded is what decode read besides the Introspection: the iss member and
// whether an active member was present at all.
type decoded struct {
	issuer    string
	hasActive bool
}

// decode is UnmarshalJSON; without needActive a missing active reads as
// false, so that the claims of a JWT access token (RFC 9068 §2.2), which have
// no active member, decode the same way, in one pass that also returns iss.
//
// The members are read with goccy/go-json, in less than half the time of
// encoding/json: after the two signatures, the largest cost of the first
// sight of a JWT access token. That decoder skips unknown members without
// checking their syntax and repairs text that is not UTF-8 its own way, so
// the input is first held to RFC 8259 (json.Valid, UTF-8 included: the
// standard decoder would replace bad bytes, here they are refused);
// FuzzClaimsDecoders checks that the result then equals encoding/json's.
func (in *Introspection) decode(b []byte, needActive bool) (decoded, error) {
	return in.decodeWith(gojson.Unmarshal, b, needActive)
}

func (in *Introspection) decodeWith(unmarshal func([]byte, any) error, b []byte, needActive bool) (decoded, error) {
	if !utf8.Valid(b) || !json.Valid(b) {
		return decoded{}, errors.New("introspection: not JSON in UTF-8")
	}
	var w introspectionWire
	if err := unmarshal(b, &w); err != nil {
		return decoded{}, err
	}
	if w.Active == nil && needActive {
		return decoded{}, errors.New("introspection: active missing")
	}
	extra := decoded{issuer: w.Issuer, hasActive: w.Active != nil}
	var out Introspection
	out.Active = w.Active != nil && *w.Active
	out.Scope, out.ClientID, out.Subject = w.Scope, w.ClientID, w.Subject
	out.TokenType = w.TokenType
	out.ConsentID, out.Refusal = consentFromWire(&w)
	if len(w.AuthorizationDetails) > 0 && string(w.AuthorizationDetails) != "null" {
		out.AuthorizationDetails = w.AuthorizationDetails
	}
	for _, f := range []struct {
		n   *json.Number
		dst *int64
	}{{w.Exp, &out.Exp}, {w.Nbf, &out.Nbf}, {w.Iat, &out.Iat}} {
		if f.n == nil || *f.n == "" {
			continue
		}
		v, err := unixSeconds(*f.n)
		if err != nil {
			return decoded{}, err
		}
		*f.dst = v
	}
	if w.Cnf != nil {
		out.CnfJKT = w.Cnf.JKT
	}
	if len(w.Aud) > 0 && string(w.Aud) != "null" {
		var one string
		if err := json.Unmarshal(w.Aud, &one); err == nil {
			out.Aud = []string{one}
		} else if err := json.Unmarshal(w.Aud, &out.Aud); err != nil {
			return decoded{}, errors.New("introspection: aud is neither a string nor an array of strings")
		}
	}
	*in = out
	return extra, nil
}

// consentFromWire returns the consent id of an answer, read in this order:
// consent_id; openbanking_intent_id (the UK Open Banking claim); the
// openbanking_intent_id, or consent_id, member of an RFC 9396 §2
// authorization_details element of type openbanking_intent. Empty values are
// absent, and elements of other types are ignored. Two different values, from
// two sources or two elements, return refusal reasonConsentConflict: which
// consent the customer granted cannot be told. authorization_details that is
// not an array of objects, each with a string type (RFC 9396 §2), or an
// openbanking_intent element whose id is not a string, returns
// reasonAuthorizationDetails.
func consentFromWire(w *introspectionWire) (id, refusal string) {
	var ids []string
	add := func(v string) {
		if v != "" {
			ids = append(ids, v)
		}
	}
	add(w.ConsentID)
	add(w.OpenBankingIntentID)
	if len(w.AuthorizationDetails) > 0 && string(w.AuthorizationDetails) != "null" {
		var details []map[string]json.RawMessage
		if err := json.Unmarshal(w.AuthorizationDetails, &details); err != nil {
			return "", reasonAuthorizationDetails
		}
		for _, d := range details {
			var typ string
			if d == nil || json.Unmarshal(d["type"], &typ) != nil {
				return "", reasonAuthorizationDetails
			}
			if typ != "openbanking_intent" {
				continue
			}
			for _, m := range []string{"openbanking_intent_id", "consent_id"} {
				raw, ok := d[m]
				if !ok || string(raw) == "null" {
					continue
				}
				var v string
				if json.Unmarshal(raw, &v) != nil {
					return "", reasonAuthorizationDetails
				}
				add(v)
			}
		}
	}
	if len(ids) == 0 {
		return "", ""
	}
	for _, v := range ids[1:] {
		if v != ids[0] {
			return "", reasonConsentConflict
		}
	}
	return ids[0], ""
}

// unixSeconds accepts integer or fractional seconds and truncates.
func unixSeconds(n json.Number) (int64, error) {
	if v, err := n.Int64(); err == nil {
		return v, nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e12 {
		return 0, errors.New("introspection: bad time value")
	}
	return int64(f), nil
}

// Introspector asks the authorization server about an access token. An error
// means the server could not be asked or answered nonsense (the request then
// fails with 503), except ErrIntrospectionThrottled; an unknown or revoked
// token is Active == false.
type Introspector interface {
	Introspect(ctx context.Context, token string) (Introspection, error)
}

// keyedIntrospector is an Introspector that also bounds, per proof key, the
// calls that come back inactive (HTTPIntrospector). The verifier uses
// IntrospectKey when its introspector has it.
type keyedIntrospector interface {
	IntrospectKey(ctx context.Context, token, jkt string) (Introspection, error)
}

// ErrIntrospectionThrottled means that the token was not sent to the
// authorization server because its proof key recently presented too many
// tokens that came back inactive (IntrospectionConfig.InactivePerKey). The
// verifier answers it exactly as it answers an inactive token.
var ErrIntrospectionThrottled = errors.New("security: introspection throttled for this proof key")

// IntrospectionConfig configures NewHTTPIntrospector.
type IntrospectionConfig struct {
	// URL is the RFC 7662 endpoint (required, http or https).
	URL string
	// ClientID is the resource server's client id at the authorization
	// server (required): RFC 7662 §2.1 has it authenticate every call, by
	// AuthMethod.
	ClientID string
	// AuthMethod is AuthClientSecretBasic, AuthClientSecretPost or
	// AuthPrivateKeyJWT; empty means AuthClientSecretBasic.
	AuthMethod string
	// ClientSecret is the secret of the client_secret_* methods (required
	// with them, unused with private_key_jwt).
	ClientSecret string
	// PrivateKey signs the private_key_jwt assertions (required with it):
	// EC P-256, RSA of at least 2048 bits or Ed25519 (ClientAssertionAlg).
	PrivateKey crypto.Signer
	// KeyID is the kid header of the assertions; empty omits it.
	KeyID string
	// AssertionAudience is the aud of the assertions: the authorization
	// server's issuer identifier (required with private_key_jwt).
	AssertionAudience string
	// Timeout bounds one introspection call; zero means 3s.
	Timeout time.Duration
	// HTTPClient sends the calls; nil means a new client without redirects.
	HTTPClient *http.Client
	// CacheTTL is how long an active answer is reused, never past the token's
	// exp; zero means 30s, negative disables the cache of active answers.
	CacheTTL time.Duration
	// NegativeCacheTTL is how long an inactive answer (an unknown, expired
	// or revoked token) is reused, so that a junk token sent again is not
	// checked again; zero means 5s, negative disables the cache of inactive
	// answers. Tokens do not normally turn active, but with an authorization
	// server whose nodes lag behind each other a token just issued may be
	// refused for up to this long.
	NegativeCacheTTL time.Duration
	// CacheEntries bounds each of the two caches (active and inactive
	// answers); zero means 10,000.
	CacheEntries int64
	// InactivePerKey bounds, per proof key, the calls that may come back
	// inactive within one second (IntrospectKey only). A key that reaches it
	// gets ErrIntrospectionThrottled, without a call, for every token not
	// cached as active, for InactiveBlock. Active answers and failed calls
	// are not counted. Zero means 10; negative disables the bound.
	InactivePerKey int
	// InactiveBlock is how long a key that reached InactivePerKey is refused
	// calls; zero means 5s.
	InactiveBlock time.Duration
	// InactiveKeys bounds how many proof keys are counted at once (the least
	// recently counted are forgotten first); zero means 10,000.
	InactiveKeys int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives an ERROR line when a call fails (the server's status
	// and error code, never the token), at most once per 10s per cause;
	// nil discards.
	Logger *slog.Logger
	// Registerer receives the introspection metrics (answers by outcome,
	// call latency); nil registers nothing.
	Registerer prometheus.Registerer
}

// HTTPIntrospector calls an RFC 7662 endpoint. It caches active answers
// (CacheTTL, never past exp) and inactive answers (NegativeCacheTTL) in
// ristretto, keyed by SHA-256 of the token; the caches may drop entries, which
// only costs a call, and failed calls are never cached. IntrospectKey also
// bounds, per proof key, the calls that come back inactive, so that a client
// with a valid key cannot use the resource server to make the authorization
// server check an unbounded stream of junk tokens. It is safe for concurrent
// use.
type HTTPIntrospector struct {
	url      string
	auth     *clientAuth
	timeout  time.Duration
	client   *http.Client
	ttl      time.Duration
	negTTL   time.Duration
	now      func() time.Time
	cache    *ristretto.Cache[string, cachedAnswer]
	negative *ristretto.Cache[string, int64] // until when (Unix ns) the token is known inactive
	limiter  *inactiveLimiter                // nil when InactivePerKey < 0
	log      *slog.Logger
	logLimit *logLimiter
	metrics  *introspectionMetrics

	transport *http.Transport // the transport of the client made here, if any
}

// cachedAnswer is an active answer and the time (Unix ns, our clock) until
// which it may be reused.
type cachedAnswer struct {
	res   Introspection
	until int64
}

const maxIntrospectionBody = 64 << 10

// introspectionIdleConns is how many idle connections to the introspection
// endpoint the client keeps: about the number of requests a server has in
// flight at once.
const introspectionIdleConns = 64

// NewHTTPIntrospector validates cfg and builds the client, its caches and the
// per-key bound.
func NewHTTPIntrospector(cfg IntrospectionConfig) (*HTTPIntrospector, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("security: introspection URL must be an absolute http(s) URL")
	}
	auth, err := newClientAuth(clientAuthConfig{
		method: cfg.AuthMethod, clientID: cfg.ClientID, clientSecret: cfg.ClientSecret,
		key: cfg.PrivateKey, keyID: cfg.KeyID, audience: cfg.AssertionAudience, now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	in := &HTTPIntrospector{
		url:     cfg.URL,
		auth:    auth,
		timeout: cfg.Timeout,
		client:  cfg.HTTPClient,
		ttl:     cfg.CacheTTL,
		negTTL:  cfg.NegativeCacheTTL,
		now:     cfg.Now,
	}
	if in.timeout == 0 {
		in.timeout = 3 * time.Second
	}
	if in.timeout < 0 {
		return nil, errors.New("security: introspection timeout must be positive")
	}
	if in.client == nil {
		// Every call goes to one host. net/http's default transport keeps
		// only two idle connections per host, so under concurrent requests
		// with uncached tokens (a new token per payment) all calls but two
		// would open a new connection and close it after one answer.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = introspectionIdleConns
		t.MaxIdleConnsPerHost = introspectionIdleConns
		in.transport = t
		in.client = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if in.ttl == 0 {
		in.ttl = 30 * time.Second
	}
	if in.negTTL == 0 {
		in.negTTL = 5 * time.Second
	}
	if in.now == nil {
		in.now = time.Now
	}
	entries := cfg.CacheEntries
	if entries <= 0 {
		entries = 10_000
	}
	if in.ttl > 0 {
		if in.cache, err = newAnswerCache[cachedAnswer](entries); err != nil {
			return nil, err
		}
	}
	if in.negTTL > 0 {
		if in.negative, err = newAnswerCache[int64](entries); err != nil {
			in.Close()
			return nil, err
		}
	}
	if cfg.InactivePerKey >= 0 {
		limit, block, keys := cfg.InactivePerKey, cfg.InactiveBlock, cfg.InactiveKeys
		if limit == 0 {
			limit = 10
		}
		if block == 0 {
			block = 5 * time.Second
		}
		if keys == 0 {
			keys = 10_000
		}
		if block < 0 || keys < 0 {
			in.Close()
			return nil, errors.New("security: introspection InactiveBlock and InactiveKeys must not be negative")
		}
		in.limiter = newInactiveLimiter(limit, block, keys)
	}
	in.log, in.logLimit = cfg.Logger, newLogLimiter(logEvery)
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	if in.metrics, err = newIntrospectionMetrics(cfg.Registerer); err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

func newAnswerCache[V any](entries int64) (*ristretto.Cache[string, V], error) {
	c, err := ristretto.NewCache(&ristretto.Config[string, V]{
		NumCounters: entries * 10,
		MaxCost:     entries,
		BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("security: introspection cache: %w", err)
	}
	return c, nil
}

// Close releases the caches and the idle connections of the client it made
// (a client passed in IntrospectionConfig is the caller's to close).
func (in *HTTPIntrospector) Close() {
	if in.cache != nil {
		in.cache.Close()
	}
	if in.negative != nil {
		in.negative.Close()
	}
	if in.transport != nil {
		in.transport.CloseIdleConnections()
	}
}

// Introspect returns the cached answer for token or asks the server.
// A 400 answer with error invalid_token or unsupported_token_type is an
// inactive token; other non-200 answers (401 and 403 above all: our own
// credentials refused), non-JSON answers, transport errors and timeouts are
// errors, each logged at ERROR at most once per 10s per cause.
// It counts no proof key, so it never returns ErrIntrospectionThrottled.
func (in *HTTPIntrospector) Introspect(ctx context.Context, token string) (Introspection, error) {
	return in.introspect(ctx, token, "")
}

// IntrospectKey is Introspect for a token presented with a proof whose key
// has the RFC 7638 thumbprint jkt. When the key's calls that came back
// inactive reached IntrospectionConfig.InactivePerKey within one second, it
// returns ErrIntrospectionThrottled without a call for InactiveBlock, unless
// the token is cached (as active, or as inactive: then it answers from the
// cache as usual). Calls already in flight when the bound is reached still
// complete, so a key sending concurrently may get that many more.
func (in *HTTPIntrospector) IntrospectKey(ctx context.Context, token, jkt string) (Introspection, error) {
	return in.introspect(ctx, token, jkt)
}

func (in *HTTPIntrospector) introspect(ctx context.Context, token, jkt string) (Introspection, error) {
	sum := sha256.Sum256([]byte(token))
	key := string(sum[:])
	now := in.now()
	if in.cache != nil {
		// The entry holds its own deadline (CacheTTL, never past exp) on our
		// clock; ristretto's TTL only reclaims the memory.
		if got, ok := in.cache.Get(key); ok && now.UnixNano() < got.until {
			in.metrics.count(outcomeCacheActive)
			return got.res, nil
		}
	}
	if in.negative != nil {
		if until, ok := in.negative.Get(key); ok && now.UnixNano() < until {
			in.metrics.count(outcomeCacheInactive)
			return Introspection{}, nil
		}
	}
	if jkt != "" && in.limiter != nil && in.limiter.blocked(jkt, now) {
		in.metrics.count(outcomeThrottled)
		return Introspection{}, ErrIntrospectionThrottled
	}
	started := time.Now() // latency metric only; decisions use in.now
	res, err := in.ask(ctx, token)
	in.metrics.duration.Observe(time.Since(started).Seconds())
	if err != nil {
		// Not counted by the per-key bound: the server, not the token, failed.
		in.failed(ctx, err)
		return Introspection{}, err
	}
	if !res.Active {
		in.metrics.count(outcomeInactive)
		if in.negative != nil {
			in.negative.SetWithTTL(key, now.Add(in.negTTL).UnixNano(), 1, in.negTTL)
		}
		if jkt != "" && in.limiter != nil {
			in.limiter.inactive(jkt, in.now())
		}
		return res, nil
	}
	if in.cache != nil {
		ttl := in.ttl
		if res.Exp != 0 {
			if left := time.Unix(res.Exp, 0).Sub(now); left < ttl {
				ttl = left
			}
		}
		if ttl > 0 {
			in.cache.SetWithTTL(key, cachedAnswer{res: res, until: now.Add(ttl).UnixNano()}, 1, ttl)
		}
	}
	in.metrics.count(outcomeActive)
	return res, nil
}

func (in *HTTPIntrospector) ask(ctx context.Context, token string) (Introspection, error) {
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	// RFC 7662 §2.1: the resource server authenticates as a client.
	auth := http.Header{}
	if err := in.auth.apply(auth, form); err != nil {
		return Introspection{}, fmt.Errorf("security: introspection client authentication: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url, strings.NewReader(form.Encode()))
	if err != nil {
		return Introspection{}, fmt.Errorf("security: introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	maps.Copy(req.Header, auth)
	resp, err := in.client.Do(req)
	if err != nil {
		// The error may quote the URL, never the token (it is in the body).
		return Introspection{}, transportFailure(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionBody+1))
	if err != nil {
		return Introspection{}, transportFailure(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		return statusAnswer(resp.StatusCode, body)
	}
	if len(body) > maxIntrospectionBody {
		return Introspection{}, malformed(errors.New("answer too large"))
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return Introspection{}, malformed(errors.New("answer is not JSON"))
	}
	var res Introspection
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&res); err != nil {
		return Introspection{}, malformed(fmt.Errorf("answer: %v", err))
	}
	return res, nil
}
