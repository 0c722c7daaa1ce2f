package security

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrAuthServerUnavailable means that what the authorization server publishes
// (its RFC 8414 metadata, or its JWKS for a JWT access token) is not known
// yet: it could not be fetched since the start. The verifier answers 503, as
// for any introspection failure; it never fails open.
var ErrAuthServerUnavailable = errors.New("security: authorization server metadata or keys not available")

// ErrIssuerMismatch means that a metadata document named an issuer other than
// the configured one (RFC 8414 §3.3): it is not used.
var ErrIssuerMismatch = errors.New("security: authorization server metadata names another issuer")

// ASMetadata is an authorization server's RFC 8414 §2 metadata: the resource
// server reads Issuer, JWKSURI and IntrospectionEndpoint from the document it
// fetches; the sandbox authorization server publishes all of it.
type ASMetadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	TokenEndpoint         string `json:"token_endpoint,omitempty"`
	JWKSURI               string `json:"jwks_uri,omitempty"`
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`
	RegistrationEndpoint  string `json:"registration_endpoint,omitempty"`
	// RFC 9126 §5.
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint,omitempty"`
	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests"`

	ScopesSupported                                    []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                             []string `json:"response_types_supported,omitempty"`
	GrantTypesSupported                                []string `json:"grant_types_supported,omitempty"`
	CodeChallengeMethodsSupported                      []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported                  []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported         []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthMethodsSupported          []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	// RFC 9449 §5.1.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// RFC 9207 §3.
	AuthorizationResponseISSParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// RFC 9396 §10.
	AuthorizationDetailsTypesSupported []string `json:"authorization_details_types_supported,omitempty"`
}

// Authorization server states reported by Discovery.Status.
const (
	ASStatusUp          = "UP"          // the last fetch succeeded
	ASStatusStale       = "STALE"       // known, but the last refresh failed
	ASStatusUnreachable = "UNREACHABLE" // never fetched since the start
)

// DiscoveryConfig configures NewDiscovery.
type DiscoveryConfig struct {
	// Issuer is the authorization server's issuer identifier
	// (PAYMENTS_ISSUER): an https URL without query or fragment, or http for
	// a loopback host; required.
	Issuer string
	// HTTPClient fetches the metadata; nil means a client without redirects.
	HTTPClient *http.Client
	// Timeout bounds one fetch of all candidate documents; zero means 5s.
	Timeout time.Duration
	// Refresh is the interval between fetches once the metadata is known;
	// zero means 10m.
	Refresh time.Duration
	// RetryMin and RetryMax bound the backoff between failed fetches (it
	// doubles from RetryMin up to RetryMax); zero means 1s and 1m.
	RetryMin, RetryMax time.Duration
	// Logger receives a WARN line per failed fetch; nil discards.
	Logger *slog.Logger
}

// Discovery holds the authorization server's metadata, fetched by Fetch and
// kept fresh by Run. It is safe for concurrent use.
type Discovery struct {
	issuer     string
	candidates []string
	client     *http.Client
	timeout    time.Duration
	refresh    time.Duration
	retryMin   time.Duration
	retryMax   time.Duration
	log        *slog.Logger

	meta    atomic.Pointer[ASMetadata]
	lastErr atomic.Bool // the last fetch failed
}

const maxMetadataBody = 256 << 10

// NewDiscovery validates cfg. It fetches nothing: call Fetch, then Run.
func NewDiscovery(cfg DiscoveryConfig) (*Discovery, error) {
	if err := CheckIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	d := &Discovery{
		issuer:   cfg.Issuer,
		client:   cfg.HTTPClient,
		timeout:  cfg.Timeout,
		refresh:  cfg.Refresh,
		retryMin: cfg.RetryMin,
		retryMax: cfg.RetryMax,
		log:      cfg.Logger,
	}
	if d.client == nil {
		d.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if d.timeout == 0 {
		d.timeout = 5 * time.Second
	}
	if d.refresh == 0 {
		d.refresh = 10 * time.Minute
	}
	if d.retryMin == 0 {
		d.retryMin = time.Second
	}
	if d.retryMax == 0 {
		d.retryMax = time.Minute
	}
	if d.timeout < 0 || d.refresh < 0 || d.retryMin < 0 || d.retryMax < d.retryMin {
		return nil, errors.New("security: discovery intervals must be positive, RetryMax at least RetryMin")
	}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d.candidates = metadataURLs(cfg.Issuer)
	return d, nil
}

// CheckIssuer reports whether issuer is usable as an issuer identifier: RFC
// 8414 §2 asks for an https URL without query or fragment; http is accepted
// only for a loopback host (development).
func CheckIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(issuer, "#") {
		return errors.New("security: issuer must be an absolute https URL without userinfo, query or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return errors.New("security: issuer must use https (http only for a loopback host)")
		}
	default:
		return errors.New("security: issuer must be an absolute https URL")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// metadataURLs lists where the metadata may be, in the order tried: RFC 8414
// §3.1 inserts the well-known segment between the host and the issuer's path;
// OpenID Connect Discovery 1.0 §4 appends it to the issuer. Without a path
// both forms are the same URL.
func metadataURLs(issuer string) []string {
	u, _ := url.Parse(issuer)
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	origin := u.Scheme + "://" + u.Host
	base := strings.TrimSuffix(issuer, "/")
	var out []string
	add := func(s string) {
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	add(origin + "/.well-known/oauth-authorization-server" + path)
	add(base + "/.well-known/openid-configuration")
	add(base + "/.well-known/oauth-authorization-server")
	add(origin + "/.well-known/openid-configuration" + path)
	return out
}

// Metadata returns the last metadata fetched, and false when none was
// fetched yet.
func (d *Discovery) Metadata() (ASMetadata, bool) {
	m := d.meta.Load()
	if m == nil {
		return ASMetadata{}, false
	}
	return *m, true
}

// Status is ASStatusUp, ASStatusStale or ASStatusUnreachable.
func (d *Discovery) Status() string {
	switch {
	case d.meta.Load() == nil:
		return ASStatusUnreachable
	case d.lastErr.Load():
		return ASStatusStale
	}
	return ASStatusUp
}

// Fetch tries the metadata URLs in turn and keeps the first document that
// is valid and names the configured issuer (RFC 8414 §3.3). On failure the
// metadata fetched before, if any, stays in use. It returns ErrIssuerMismatch
// when a document named another issuer and none matched, or another error.
func (d *Discovery) Fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var firstErr error
	mismatch := false
	for _, u := range d.candidates {
		m, err := d.fetchOne(ctx, u)
		if err == nil {
			d.meta.Store(&m)
			d.lastErr.Store(false)
			return nil
		}
		if errors.Is(err, ErrIssuerMismatch) {
			mismatch = true
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	d.lastErr.Store(true)
	if mismatch {
		return ErrIssuerMismatch
	}
	return firstErr
}

func (d *Discovery) fetchOne(ctx context.Context, u string) (ASMetadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ASMetadata{}, fmt.Errorf("security: metadata request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return ASMetadata{}, fmt.Errorf("security: metadata call: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBody+1))
	if err != nil {
		return ASMetadata{}, fmt.Errorf("security: metadata read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return ASMetadata{}, fmt.Errorf("security: metadata status %d at %s", resp.StatusCode, u)
	}
	if len(body) > maxMetadataBody {
		return ASMetadata{}, errors.New("security: metadata document too large")
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return ASMetadata{}, errors.New("security: metadata document is not JSON")
	}
	var m ASMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		return ASMetadata{}, fmt.Errorf("security: metadata document: %v", err)
	}
	// RFC 8414 §3.3: the issuer must be identical to the one the metadata
	// URL was built from, else the document must not be used.
	if m.Issuer != d.issuer {
		return ASMetadata{}, ErrIssuerMismatch
	}
	for _, e := range []string{m.JWKSURI, m.IntrospectionEndpoint} {
		if e != "" && checkEndpoint(e) != nil {
			return ASMetadata{}, errors.New("security: metadata endpoint must be an absolute https URL (http only for loopback)")
		}
	}
	return m, nil
}

// checkEndpoint accepts an absolute https URL, or http for a loopback host.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("security: bad endpoint URL")
	}
	if u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil
	}
	return errors.New("security: endpoint must use https")
}

// Run keeps the metadata fresh until ctx ends: every Refresh while fetches
// succeed, and with a backoff from RetryMin to RetryMax while they fail (an
// authorization server unreachable at start is retried until it answers).
// Call it in its own goroutine, after a first Fetch.
func (d *Discovery) Run(ctx context.Context) {
	retry := d.retryMin
	for {
		wait := d.refresh
		if d.lastErr.Load() || d.meta.Load() == nil {
			wait = retry
			retry = min(retry*2, d.retryMax)
		} else {
			retry = d.retryMin
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := d.Fetch(ctx); err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "authorization server metadata fetch failed",
				"issuer", d.issuer, "status", d.Status(), "error", err.Error())
		}
	}
}

// DiscoveredIntrospector is an Introspector whose RFC 7662 endpoint is the
// introspection_endpoint of the discovered metadata: until the metadata is
// known (or when it has no such endpoint) every call returns
// ErrAuthServerUnavailable (503). When the endpoint changes, a new
// HTTPIntrospector (with empty caches) is built for it. It is safe for
// concurrent use.
type DiscoveredIntrospector struct {
	d   *Discovery
	cfg IntrospectionConfig

	mu   sync.Mutex
	cur  atomic.Pointer[boundIntrospector]
	olds []*HTTPIntrospector // replaced ones, closed by Close
}

type boundIntrospector struct {
	url string
	hi  *HTTPIntrospector
}

// NewDiscoveredIntrospector validates cfg (its URL is ignored: the discovered
// endpoint replaces it) and returns the introspector.
func NewDiscoveredIntrospector(d *Discovery, cfg IntrospectionConfig) (*DiscoveredIntrospector, error) {
	if d == nil {
		return nil, errors.New("security: discovery is required")
	}
	// Build one against the issuer to check the rest of cfg at start.
	cfg.URL = d.issuer
	hi, err := NewHTTPIntrospector(cfg)
	if err != nil {
		return nil, err
	}
	hi.Close()
	return &DiscoveredIntrospector{d: d, cfg: cfg}, nil
}

// Introspect calls the discovered endpoint; see HTTPIntrospector.Introspect.
// It returns ErrAuthServerUnavailable while the endpoint is unknown.
func (di *DiscoveredIntrospector) Introspect(ctx context.Context, token string) (Introspection, error) {
	hi, err := di.current()
	if err != nil {
		return Introspection{}, err
	}
	return hi.Introspect(ctx, token)
}

// IntrospectKey calls the discovered endpoint; see
// HTTPIntrospector.IntrospectKey. It returns ErrAuthServerUnavailable while
// the endpoint is unknown.
func (di *DiscoveredIntrospector) IntrospectKey(ctx context.Context, token, jkt string) (Introspection, error) {
	hi, err := di.current()
	if err != nil {
		return Introspection{}, err
	}
	return hi.IntrospectKey(ctx, token, jkt)
}

func (di *DiscoveredIntrospector) current() (*HTTPIntrospector, error) {
	m, ok := di.d.Metadata()
	if !ok || m.IntrospectionEndpoint == "" {
		return nil, ErrAuthServerUnavailable
	}
	if b := di.cur.Load(); b != nil && b.url == m.IntrospectionEndpoint {
		return b.hi, nil
	}
	di.mu.Lock()
	defer di.mu.Unlock()
	if b := di.cur.Load(); b != nil && b.url == m.IntrospectionEndpoint {
		return b.hi, nil
	}
	cfg := di.cfg
	cfg.URL = m.IntrospectionEndpoint
	hi, err := NewHTTPIntrospector(cfg)
	if err != nil {
		return nil, fmt.Errorf("security: discovered introspection endpoint: %w", err)
	}
	if old := di.cur.Swap(&boundIntrospector{url: cfg.URL, hi: hi}); old != nil {
		// Requests in flight may still use it: it is closed only by Close.
		di.olds = append(di.olds, old.hi)
	}
	return hi, nil
}

// Close releases every introspector built.
func (di *DiscoveredIntrospector) Close() {
	di.mu.Lock()
	defer di.mu.Unlock()
	if b := di.cur.Load(); b != nil {
		b.hi.Close()
	}
	for _, hi := range di.olds {
		hi.Close()
	}
	di.olds = nil
}
