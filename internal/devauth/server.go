package devauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/security"
)

// Lifetimes.
const (
	defaultTokenLifetime   = 5 * time.Minute
	maxTokenLifetime       = time.Hour
	defaultRefreshLifetime = 8 * time.Hour
	codeLifetime           = 60 * time.Second
)

// Scopes the sandbox knows.
const (
	ScopeAccounts      = "accounts"
	ScopePayments      = "payments"
	ScopeLedgerAdmin   = "ledger:admin"
	ScopeConsentsAdmin = "consents:admin"
)

// Sandbox client credentials (listed in the README). They are public
// knowledge: the sandbox must never run where real money moves.
const (
	ResourceServerClientID     = "payments-rs"
	ResourceServerClientSecret = "payments-rs-secret"
)

// ConsentAuthoriser is what the sandbox needs from the Open Banking layer;
// *openbanking.Service implements it. AuthoriseConsent is the code path of
// POST /internal/v1/consents/{id}/authorise.
type ConsentAuthoriser interface {
	// ConsentClient returns the client that created the consent, its
	// kind, string(openbanking.KindPayment) or
	// string(openbanking.KindAccountAccess), and its status;
	// openbanking.ErrNotFound when there is no such consent.
	ConsentClient(ctx context.Context, consentID string) (clientID, kind, status string, err error)
	// AuthoriseConsent records that psu approved the consent, paying from
	// debtorAccount (payment consents; "" for account access consents).
	AuthoriseConsent(ctx context.Context, consentID, psu, debtorAccount string) error
}

// *openbanking.Service is the ConsentAuthoriser the service wires in.
var _ ConsentAuthoriser = (*openbanking.Service)(nil)

// Config configures a Server. The constructor copies it, fills defaults and
// validates it.
type Config struct {
	// Verifier checks the DPoP proofs of token requests with VerifyProof;
	// required. Its public URL is the sandbox's: the token endpoint's htu is
	// that URL plus "/oauth2/token".
	Verifier *security.Verifier
	// Consents authorises consents approved at /oauth2/authorize; required.
	Consents ConsentAuthoriser
	// Tokens keeps tokens, codes, pushed requests, registered clients and
	// (without Assertions) client assertion ids; nil means NewTokens(Now),
	// in memory. Pass the same Tokens to the Verifier as its Introspector.
	Tokens *Tokens
	// TokenLifetime is the life of an access token; zero means 5m, at most 1h.
	TokenLifetime time.Duration
	// RefreshLifetime is the life of a refresh token (rotation keeps the
	// first one's end); zero means 8h.
	RefreshLifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one INFO line per issued or refused grant, never a
	// token, code or secret; nil discards.
	Logger *slog.Logger
	// RequirePAR refuses authorization requests that did not come through
	// POST /oauth2/par (PAYMENTS_DEV_AUTH_REQUIRE_PAR); the metadata says so.
	RequirePAR bool
	// Customers serves the consent page at /oauth2/authorize for requests
	// that name no customer (psu); nil keeps refusing them.
	Customers CustomerDirectory
	// Password is every sandbox customer's password on the consent page;
	// "" means DefaultPassword.
	Password string
	// NoAutoApprove sends every request, even one naming psu, to the
	// consent page (with Customers set); otherwise such requests are
	// approved at once, as scripts rely on.
	NoAutoApprove bool
	// Assertions records the jti of accepted client assertions (RFC 7523
	// §3); nil means Tokens' store.
	Assertions security.ReplayStore
}

// Server is the sandbox authorization server: POST /oauth2/token
// (client_credentials, authorization_code with PKCE S256, refresh_token; a
// DPoP proof is required and the token is bound to its key), GET
// /oauth2/authorize (the consent page or sandbox auto-approval) and POST /oauth2/introspect
// (RFC 7662). It is safe for concurrent use.
type Server struct {
	verifier        *security.Verifier
	consents        ConsentAuthoriser
	tokens          *Tokens
	issuer          string
	tokenURL        string
	parURL          string
	introspectURL   string
	requirePAR      bool
	jtis            security.ReplayStore
	tokenLifetime   time.Duration
	refreshLifetime time.Duration
	now             func() time.Time
	log             *slog.Logger
	clients         map[string]*client // the sandbox's own, never changed
	customers       CustomerDirectory  // nil: no consent page
	password        string
	autoApprove     bool
	pages           *pageSessions
}

// New validates cfg and returns a Server with the sandbox clients and the
// resource server client payments-rs.
func New(cfg Config) (*Server, error) {
	s := &Server{
		verifier:        cfg.Verifier,
		consents:        cfg.Consents,
		tokens:          cfg.Tokens,
		tokenLifetime:   cfg.TokenLifetime,
		refreshLifetime: cfg.RefreshLifetime,
		now:             cfg.Now,
		log:             cfg.Logger,
		requirePAR:      cfg.RequirePAR,
		jtis:            cfg.Assertions,
		customers:       cfg.Customers,
		password:        cfg.Password,
		autoApprove:     !cfg.NoAutoApprove,
	}
	if s.password == "" {
		s.password = DefaultPassword
	}
	if s.verifier == nil {
		return nil, errors.New("devauth: a DPoP verifier is required")
	}
	if s.consents == nil {
		return nil, errors.New("devauth: a consent authoriser is required")
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.tokens == nil {
		s.tokens = NewTokens(s.now)
	}
	if s.tokenLifetime == 0 {
		s.tokenLifetime = defaultTokenLifetime
	}
	if s.tokenLifetime < time.Second || s.tokenLifetime > maxTokenLifetime {
		return nil, errors.New("devauth: token lifetime must be between 1s and 1h")
	}
	if s.refreshLifetime == 0 {
		s.refreshLifetime = defaultRefreshLifetime
	}
	if s.refreshLifetime < s.tokenLifetime {
		return nil, errors.New("devauth: refresh token lifetime must not be shorter than the access token lifetime")
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	clients, err := sandboxClients()
	if err != nil {
		return nil, err
	}
	s.clients = clients
	// The issuer is the public URL (RFC 8414 §2), as protected-resource
	// metadata names it.
	s.issuer = s.verifier.PublicURL()
	s.tokenURL = s.issuer + "/oauth2/token"
	s.parURL = s.issuer + "/oauth2/par"
	s.introspectURL = s.issuer + "/oauth2/introspect"
	s.pages = newPageSessions(s.now)
	return s, nil
}

// Register mounts the three endpoints on e. Call it only when the sandbox is
// enabled (PAYMENTS_DEV_AUTH=true); it logs a warning saying so.
func (s *Server) Register(e *echo.Echo) {
	s.log.Warn("sandbox authorization server mounted under /oauth2/: development only, its client secrets are public")
	e.POST("/oauth2/token", s.token)
	e.GET("/oauth2/authorize", s.authorize)
	if s.customers != nil {
		e.POST("/oauth2/authorize/signin", s.signIn)
		e.POST("/oauth2/authorize/decision", s.decide)
	}
	e.POST("/oauth2/par", s.pushedRequest)
	e.POST("/oauth2/introspect", s.introspect)
	e.POST("/oauth2/register", s.register)
	e.GET("/.well-known/oauth-authorization-server", s.metadata)
	e.GET("/.well-known/openid-configuration", s.metadata)
}

// Introspect answers for token in-process (see Tokens.Introspect), so that
// *Server implements security.Introspector.
func (s *Server) Introspect(ctx context.Context, token string) (security.Introspection, error) {
	return s.tokens.Introspect(ctx, token)
}

// client is a registered client: a secret (only its SHA-256 is kept) or
// public keys for private_key_jwt, or both.
type client struct {
	id             string
	hasSecret      bool
	secretHash     [sha256.Size]byte
	keys           []clientKey
	scopes         []string
	codeGrant      bool // may use /oauth2/authorize with loopback redirect URIs
	resourceServer bool // may call /oauth2/introspect
	// noClientCredentials refuses the client_credentials grant to a
	// registered client that did not ask for it.
	noClientCredentials bool
	// redirectURIs, when set (registered clients), are the only redirect
	// URIs the client may use, compared exactly (RFC 6749 §3.1.2.3).
	redirectURIs []string
}

// client returns the client registered as id: a sandbox client or one
// registered at /oauth2/register; nil when there is none. An error is the
// store's, and its answer is 503 (storeError).
func (s *Server) client(ctx context.Context, id string) (*client, error) {
	if cl, ok := s.clients[id]; ok {
		return cl, nil
	}
	if !strings.HasPrefix(id, registeredPrefix) {
		return nil, nil
	}
	r, err := s.tokens.store.Registration(ctx, id, s.now())
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return registeredClient(r)
}

// redirectAllowed reports whether cl may use the redirect URI raw: a
// loopback http URL (loopbackRedirect) and, for a registered client, one of
// those it registered.
func (cl *client) redirectAllowed(raw string) bool {
	if _, ok := loopbackRedirect(raw); !ok {
		return false
	}
	if len(cl.redirectURIs) == 0 {
		return true
	}
	for _, u := range cl.redirectURIs {
		if u == raw {
			return true
		}
	}
	return false
}

// FAPIClientID is the sandbox client that authenticates with
// private_key_jwt only. Its key pair is published in the repository
// (docs/sandbox-tpp-fapi.jwk, private key included) so that a FAPI client can
// start without registering: anyone can sign as this client.
const FAPIClientID = "sandbox-tpp-fapi"

// fapiClientKey is the public part of docs/sandbox-tpp-fapi.jwk.
const fapiClientKey = `{"kty":"EC","crv":"P-256","kid":"sandbox-tpp-fapi-1","use":"sig","alg":"ES256",` +
	`"x":"TPpGldrFe34fZOBv2eXUeU_MAVcO_Y9QlkIgtKGwbWQ","y":"sw5EJuFYLc-IvvZNRlxGv1njx_zF0fqZF_Q1OinVGa8"}`

func sandboxClients() (map[string]*client, error) {
	fapiKey, err := parseClientKey([]byte(fapiClientKey))
	if err != nil {
		return nil, err
	}
	withSecret := func(c *client, secret string) *client {
		c.hasSecret, c.secretHash = true, hashOf(secret)
		return c
	}
	list := []*client{
		withSecret(&client{id: "sandbox-tpp", scopes: []string{ScopeAccounts, ScopePayments}, codeGrant: true}, "sandbox-secret"),
		withSecret(&client{id: "sandbox-tpp-2", scopes: []string{ScopeAccounts, ScopePayments}, codeGrant: true}, "sandbox-secret-2"),
		{id: FAPIClientID, keys: []clientKey{fapiKey}, scopes: []string{ScopeAccounts, ScopePayments}, codeGrant: true},
		withSecret(&client{id: "sandbox-admin", scopes: []string{ScopeLedgerAdmin, ScopeConsentsAdmin}}, "admin-secret"),
		withSecret(&client{id: ResourceServerClientID, resourceServer: true}, ResourceServerClientSecret),
	}
	m := make(map[string]*client, len(list))
	for _, c := range list {
		m[c.id] = c
	}
	return m, nil
}

// noStore marks an answer that carries tokens, codes or token metadata as
// uncacheable (RFC 6749 §5.1).
func noStore(c echo.Context) {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// oauthError is an RFC 6749 §5.2 error answer. Descriptions are fixed
// strings, never request input.
type oauthError struct {
	status      int
	code        string
	description string
	reason      string // for the log only
	retryAfter  string
	iss         string // the issuer, on authorization error answers (RFC 9207)
}

// OAuth error codes (RFC 6749 §4.1.2.1, §5.2; RFC 9449 §5).
const (
	errInvalidRequest          = "invalid_request"
	errInvalidClient           = "invalid_client"
	errInvalidGrant            = "invalid_grant"
	errUnauthorizedClient      = "unauthorized_client"
	errUnsupportedGrantType    = "unsupported_grant_type"
	errUnsupportedResponseType = "unsupported_response_type"
	errInvalidScope            = "invalid_scope"
	errInvalidDPoPProof        = "invalid_dpop_proof"
	errInvalidRequestURI       = "invalid_request_uri"
	errInvalidAuthzDetails     = "invalid_authorization_details"
	errAccessDenied            = "access_denied"
	errServerError             = "server_error"
	errTemporarilyUnavailable  = "temporarily_unavailable"
)

func badRequest(code, description, reason string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, description: description, reason: reason}
}

func unavailable(reason string) *oauthError {
	return &oauthError{status: http.StatusServiceUnavailable, code: errTemporarilyUnavailable,
		description: "Try again later", reason: reason, retryAfter: "5"}
}

func serverError(reason string) *oauthError {
	return &oauthError{status: http.StatusInternalServerError, code: errServerError,
		description: "Internal error", reason: reason}
}

// write renders the error as JSON with no-store; invalid_client also
// carries the Basic challenge (RFC 6749 §5.2).
func (e *oauthError) write(c echo.Context) error {
	noStore(c)
	h := c.Response().Header()
	if e.code == errInvalidClient {
		h.Set("WWW-Authenticate", `Basic realm="sandbox"`)
	}
	if e.retryAfter != "" {
		h.Set("Retry-After", e.retryAfter)
	}
	body := map[string]string{"error": e.code, "error_description": e.description}
	if e.iss != "" {
		body["iss"] = e.iss
	}
	return c.JSON(e.status, body)
}
