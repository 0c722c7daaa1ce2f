package security

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Introspection is what the authorization server says about an access token
// (RFC 7662 §2.2, with cnf from RFC 9449 §6.2 and consent_id from our
// contract). Times are Unix seconds; zero means the member was absent.
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
}

// introspectionWire is the JSON shape: cnf is nested, aud is a string or an
// array, and active must be present.
type introspectionWire struct {
	Active    *bool       `json:"active"`
	Scope     string      `json:"scope"`
	ClientID  string      `json:"client_id"`
	Subject   string      `json:"sub"`
	Exp       json.Number `json:"exp"`
	Nbf       json.Number `json:"nbf"`
	Iat       json.Number `json:"iat"`
	TokenType string      `json:"token_type"`
	Cnf       *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
	Aud       json.RawMessage `json:"aud"`
	ConsentID string          `json:"consent_id"`
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
// not a boolean, or when a member has the wrong type.
func (in *Introspection) UnmarshalJSON(b []byte) error {
	var w introspectionWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.Active == nil {
		return errors.New("introspection: active missing")
	}
	var out Introspection
	out.Active = *w.Active
	out.Scope, out.ClientID, out.Subject = w.Scope, w.ClientID, w.Subject
	out.TokenType, out.ConsentID = w.TokenType, w.ConsentID
	for _, f := range []struct {
		n   json.Number
		dst *int64
	}{{w.Exp, &out.Exp}, {w.Nbf, &out.Nbf}, {w.Iat, &out.Iat}} {
		if f.n == "" {
			continue
		}
		v, err := unixSeconds(f.n)
		if err != nil {
			return err
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
			return errors.New("introspection: aud is neither a string nor an array of strings")
		}
	}
	*in = out
	return nil
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
// fails with 503); an unknown or revoked token is Active == false.
type Introspector interface {
	Introspect(ctx context.Context, token string) (Introspection, error)
}

// IntrospectionConfig configures NewHTTPIntrospector.
type IntrospectionConfig struct {
	// URL is the RFC 7662 endpoint (required, http or https).
	URL string
	// ClientID and ClientSecret authenticate the resource server with HTTP
	// Basic (RFC 7662 §2.1, RFC 6749 §2.3.1); both required.
	ClientID, ClientSecret string
	// Timeout bounds one introspection call; zero means 3s.
	Timeout time.Duration
	// HTTPClient sends the calls; nil means a new client without redirects.
	HTTPClient *http.Client
	// CacheTTL is how long an active answer is reused, never past the token's
	// exp; zero means 30s, negative disables the cache.
	CacheTTL time.Duration
	// CacheEntries bounds the cache; zero means 10,000.
	CacheEntries int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// HTTPIntrospector calls an RFC 7662 endpoint and caches active answers in
// ristretto, keyed by SHA-256 of the token. The cache may drop entries (that
// only costs a call); inactive and failed answers are never cached. It is safe
// for concurrent use.
type HTTPIntrospector struct {
	url     string
	auth    string
	timeout time.Duration
	client  *http.Client
	ttl     time.Duration
	now     func() time.Time
	cache   *ristretto.Cache[string, Introspection]

	transport *http.Transport // the transport of the client made here, if any
}

const maxIntrospectionBody = 64 << 10

// introspectionIdleConns is how many idle connections to the introspection
// endpoint the client keeps: about the number of requests a server has in
// flight at once.
const introspectionIdleConns = 64

// NewHTTPIntrospector validates cfg and builds the client and its cache.
func NewHTTPIntrospector(cfg IntrospectionConfig) (*HTTPIntrospector, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("security: introspection URL must be an absolute http(s) URL")
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("security: introspection client id and secret are required")
	}
	in := &HTTPIntrospector{
		url:     cfg.URL,
		timeout: cfg.Timeout,
		client:  cfg.HTTPClient,
		ttl:     cfg.CacheTTL,
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
	if in.now == nil {
		in.now = time.Now
	}
	// RFC 6749 §2.3.1: form-urlencode id and secret before Base64.
	in.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cfg.ClientID)+":"+url.QueryEscape(cfg.ClientSecret)))
	if in.ttl > 0 {
		entries := cfg.CacheEntries
		if entries <= 0 {
			entries = 10_000
		}
		c, err := ristretto.NewCache(&ristretto.Config[string, Introspection]{
			NumCounters: entries * 10,
			MaxCost:     entries,
			BufferItems: 64,
		})
		if err != nil {
			return nil, fmt.Errorf("security: introspection cache: %w", err)
		}
		in.cache = c
	}
	return in, nil
}

// Close releases the cache and the idle connections of the client it made
// (a client passed in IntrospectionConfig is the caller's to close).
func (in *HTTPIntrospector) Close() {
	if in.cache != nil {
		in.cache.Close()
	}
	if in.transport != nil {
		in.transport.CloseIdleConnections()
	}
}

// Introspect returns the cached active answer for token or asks the server.
// Non-200 answers, non-JSON answers, transport errors and timeouts are errors.
func (in *HTTPIntrospector) Introspect(ctx context.Context, token string) (Introspection, error) {
	sum := sha256.Sum256([]byte(token))
	key := string(sum[:])
	if in.cache != nil {
		if got, ok := in.cache.Get(key); ok {
			// Never serve a cached answer past the token's exp.
			if got.Exp == 0 || in.now().Unix() < got.Exp {
				return got, nil
			}
		}
	}
	res, err := in.ask(ctx, token)
	if err != nil {
		return Introspection{}, err
	}
	if in.cache != nil && res.Active {
		ttl := in.ttl
		if res.Exp != 0 {
			if left := time.Unix(res.Exp, 0).Sub(in.now()); left < ttl {
				ttl = left
			}
		}
		if ttl > 0 {
			in.cache.SetWithTTL(key, res, 1, ttl)
		}
	}
	return res, nil
}

func (in *HTTPIntrospector) ask(ctx context.Context, token string) (Introspection, error) {
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url, strings.NewReader(form))
	if err != nil {
		return Introspection{}, fmt.Errorf("security: introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", in.auth)
	resp, err := in.client.Do(req)
	if err != nil {
		// The error may quote the URL, never the token (it is in the body).
		return Introspection{}, fmt.Errorf("security: introspection call: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionBody+1))
	if err != nil {
		return Introspection{}, fmt.Errorf("security: introspection read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Introspection{}, fmt.Errorf("security: introspection status %d", resp.StatusCode)
	}
	if len(body) > maxIntrospectionBody {
		return Introspection{}, errors.New("security: introspection answer too large")
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return Introspection{}, errors.New("security: introspection answer is not JSON")
	}
	var res Introspection
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&res); err != nil {
		return Introspection{}, fmt.Errorf("security: introspection answer: %v", err)
	}
	return res, nil
}
