package devauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/security"
)

// maxFormBytes caps a token or introspection request body.
const maxFormBytes = 16 << 10

// tokenAnswer is the token endpoint's success answer (RFC 6749 §5.1, RFC 9449
// §5: token_type DPoP).
// A PSU token's answer names its consent as consent_id and as RFC 9396 §7
// authorization_details.
type tokenAnswer struct {
	AccessToken          string          `json:"access_token"`
	TokenType            string          `json:"token_type"`
	ExpiresIn            int64           `json:"expires_in"`
	Scope                string          `json:"scope,omitempty"`
	RefreshToken         string          `json:"refresh_token,omitempty"`
	ConsentID            string          `json:"consent_id,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
}

// token serves POST /oauth2/token: form parameters (RFC 6749 §3.2), client
// authentication (§2.3.1), the DPoP proof (RFC 9449 §5), then the grant.
func (s *Server) token(c echo.Context) error {
	form, e := parseForm(c)
	if e != nil && form == nil {
		return s.refuse(c, "token", "", e)
	}
	cl, ae := s.authenticate(c.Request(), form, s.tokenURL)
	if ae != nil {
		return s.refuse(c, "token", "", ae)
	}
	if e != nil { // repeated parameters, judged once the client is known
		return s.refuse(c, "token", cl.id, e)
	}
	jkt, e := s.checkProof(c, s.tokenURL)
	if e != nil {
		return s.refuse(c, "token", cl.id, e)
	}
	var (
		ans tokenAnswer
		g   grant
		ctx = c.Request().Context()
	)
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
		ans, g, e = s.clientCredentials(ctx, cl, form, jkt)
	case "authorization_code":
		ans, g, e = s.authorizationCode(ctx, cl, form, jkt)
	case "refresh_token":
		ans, g, e = s.refreshToken(ctx, cl, form, jkt)
	case "":
		e = badRequest(errInvalidRequest, "grant_type is required", "grant_type_missing")
	default:
		e = badRequest(errUnsupportedGrantType, "Unsupported grant_type", "grant_type_unsupported")
	}
	if e != nil {
		return s.refuse(c, "token", cl.id, e)
	}
	s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "token issued",
		slog.String("grant_type", form.Get("grant_type")), slog.String("client_id", cl.id),
		slog.String("jkt", jkt), slog.String("consent_id", g.consentID), slog.String("scope", g.scope))
	noStore(c)
	return c.JSON(http.StatusOK, ans)
}

// checkProof verifies the DPoP proof of a POST to endpoint (the token or PAR
// endpoint) and returns its key's thumbprint (RFC 9449 §5: the token is bound
// to that key; §10.1: the code is). A nonce claim is accepted but not
// required.
func (s *Server) checkProof(c echo.Context, endpoint string) (string, *oauthError) {
	r := c.Request()
	res, err := s.verifier.VerifyProof(r.Context(), security.ProofRequest{
		Method: http.MethodPost, URL: endpoint, DPoP: r.Header.Values("DPoP"),
	})
	var se *security.Error
	switch {
	case err == nil:
		return res.JKT, nil
	case errors.As(err, &se) && se.Status == http.StatusServiceUnavailable:
		return "", unavailable("replay_store_unavailable")
	case errors.As(err, &se):
		// The verifier's description names the failed check in fixed
		// words (for htu, the token endpoint's configured URL); it never
		// holds request input.
		desc := se.Description
		if desc == "" {
			desc = "Invalid DPoP proof"
		}
		return "", badRequest(errInvalidDPoPProof, desc, "dpop_"+se.Reason)
	default:
		return "", serverError("dpop_verifier")
	}
}

// clientCredentials is RFC 6749 §4.4: a token for the client itself, for the
// requested scopes (a subset of the client's; none means all of them), with
// no refresh token (§4.4.3).
func (s *Server) clientCredentials(ctx context.Context, cl *client, form url.Values, jkt string) (tokenAnswer, grant, *oauthError) {
	if len(cl.scopes) == 0 || cl.noClientCredentials {
		return tokenAnswer{}, grant{}, badRequest(errUnauthorizedClient, "Client may not use this grant", "client_without_scopes")
	}
	scopes := cl.scopes
	if form.Has("scope") {
		var ok bool
		if scopes, ok = parseScope(form.Get("scope")); !ok || !scopeSubset(scopes, cl.scopes) {
			return tokenAnswer{}, grant{}, badRequest(errInvalidScope, "Requested scope not allowed", "scope_not_allowed")
		}
	}
	now := s.now()
	g := grant{clientID: cl.id, scope: joinScopes(scopes), jkt: jkt, issuedAt: now, expires: now.Add(s.tokenLifetime)}
	at, err := s.tokens.issueAccess(ctx, g)
	if err != nil {
		return tokenAnswer{}, grant{}, storeError(err)
	}
	return s.answer(at, "", g), g, nil
}

// authorizationCode is RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5, §4.6) and the
// code's DPoP key binding (RFC 9449 §10): the code is spent on the first
// attempt, whatever its outcome.
func (s *Server) authorizationCode(ctx context.Context, cl *client, form url.Values, jkt string) (tokenAnswer, grant, *oauthError) {
	code, redirectURI, verifier := form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
	if code == "" || redirectURI == "" || verifier == "" {
		return tokenAnswer{}, grant{}, badRequest(errInvalidRequest, "code, redirect_uri and code_verifier are required", "code_parameters_missing")
	}
	// RFC 7636 §4.1: 43 to 128 unreserved characters.
	if !validVerifier(verifier) {
		return tokenAnswer{}, grant{}, badRequest(errInvalidRequest, "Malformed code_verifier", "code_verifier_malformed")
	}
	ac, family, err := s.tokens.redeemCode(ctx, code)
	switch {
	case errors.Is(err, ErrCodeReused):
		return tokenAnswer{}, grant{}, badRequest(errInvalidGrant, "Invalid authorization code", "code_reused")
	case errors.Is(err, ErrNotFound):
		return tokenAnswer{}, grant{}, badRequest(errInvalidGrant, "Invalid authorization code", "code_unknown")
	case err != nil:
		return tokenAnswer{}, grant{}, storeError(err)
	}
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	switch {
	case !secretEqual(ac.clientID, cl.id):
		return tokenAnswer{}, grant{}, badRequest(errInvalidGrant, "Invalid authorization code", "code_other_client")
	case ac.redirectURI != redirectURI:
		return tokenAnswer{}, grant{}, badRequest(errInvalidGrant, "redirect_uri differs from the authorization request", "redirect_uri_mismatch")
	case subtle.ConstantTimeCompare([]byte(challenge), []byte(ac.challenge)) != 1:
		return tokenAnswer{}, grant{}, badRequest(errInvalidGrant, "PKCE verification failed", "pkce_mismatch")
	case ac.dpopJKT != "" && !secretEqual(ac.dpopJKT, jkt):
		return tokenAnswer{}, grant{}, badRequest(errInvalidGrant, "Authorization code bound to another DPoP key", "dpop_jkt_mismatch")
	}
	now := s.now()
	g := grant{clientID: cl.id, subject: ac.psu, scope: ac.scope, consentID: ac.consentID, jkt: jkt,
		issuedAt: now, expires: now.Add(s.tokenLifetime), family: family}
	return s.issuePair(ctx, g, now.Add(s.refreshLifetime))
}

// refreshToken is RFC 6749 §6 without rotation (FAPI 2.0 Security Profile
// §5.3.2.1): the refresh token must come from its client with a proof by the
// key it is bound to (RFC 9449 §5), and stays valid until the grant ends; the
// answer has no new refresh token. A token presented by another client or
// key is refused and left as it was. A requested scope must be within the
// original grant.
func (s *Server) refreshToken(ctx context.Context, cl *client, form url.Values, jkt string) (tokenAnswer, grant, *oauthError) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return tokenAnswer{}, grant{}, badRequest(errInvalidRequest, "refresh_token is required", "refresh_token_missing")
	}
	var want []string
	if form.Has("scope") {
		var ok bool
		if want, ok = parseScope(form.Get("scope")); !ok {
			return tokenAnswer{}, grant{}, badRequest(errInvalidScope, "Requested scope not allowed", "scope_malformed")
		}
	}
	old, err := s.tokens.refreshGrant(ctx, rt, cl.id, jkt, want)
	switch {
	case errors.Is(err, errScopeWidened):
		return tokenAnswer{}, grant{}, badRequest(errInvalidScope, "Requested scope not allowed", "scope_widened")
	case errors.Is(err, errWrongHolder):
		return tokenAnswer{}, grant{}, badRequest(errInvalidGrant, "Invalid refresh token", "refresh_token_other_holder")
	case errors.Is(err, ErrNotFound):
		return tokenAnswer{}, grant{}, badRequest(errInvalidGrant, "Invalid refresh token", "refresh_token_unknown")
	case err != nil:
		return tokenAnswer{}, grant{}, storeError(err)
	}
	now := s.now()
	g := old
	if want != nil {
		g.scope = joinScopes(want)
	}
	g.issuedAt, g.expires = now, now.Add(s.tokenLifetime)
	if g.expires.After(old.expires) {
		g.expires = old.expires
	}
	at, err := s.tokens.issueAccess(ctx, g)
	if err != nil {
		return tokenAnswer{}, grant{}, storeError(err)
	}
	return s.answer(at, "", g), g, nil
}

// issuePair stores an access token for g and a refresh token for the same
// grant that ends at refreshEnd.
func (s *Server) issuePair(ctx context.Context, g grant, refreshEnd time.Time) (tokenAnswer, grant, *oauthError) {
	at, err := s.tokens.issueAccess(ctx, g)
	if err != nil {
		return tokenAnswer{}, grant{}, storeError(err)
	}
	r := g
	r.expires = refreshEnd
	rt, err := s.tokens.issueRefresh(ctx, r)
	if err != nil {
		return tokenAnswer{}, grant{}, storeError(err)
	}
	return s.answer(at, rt, g), g, nil
}

func (s *Server) answer(accessToken, refreshToken string, g grant) tokenAnswer {
	a := tokenAnswer{
		AccessToken:  accessToken,
		TokenType:    "DPoP",
		ExpiresIn:    int64(g.expires.Sub(g.issuedAt).Seconds()),
		Scope:        g.scope,
		RefreshToken: refreshToken,
		ConsentID:    g.consentID,
	}
	if g.consentID != "" {
		a.AuthorizationDetails = grantedDetails(g.consentID)
	}
	return a
}

// storeError maps a Store's failure to issue or find an entry: a client at
// its cap gets 429 (only that client: the others keep getting tokens), a full
// or unreachable store 503, anything else 500.
func storeError(err error) *oauthError {
	switch {
	case errors.Is(err, ErrClientAtCap):
		return &oauthError{status: http.StatusTooManyRequests, code: errTemporarilyUnavailable,
			description: "This client holds as many live tokens, codes or pushed requests as the sandbox allows one client: " +
				"reuse the ones it has until they expire, then ask again",
			reason: "client_at_cap", retryAfter: "60"}
	case errors.Is(err, ErrCodeReused):
		return badRequest(errInvalidGrant, "Invalid authorization code", "code_reused")
	case errors.Is(err, ErrFull):
		return unavailable("store_full")
	case errors.Is(err, ErrUnavailable):
		return unavailable("store_unavailable")
	}
	return serverError("store")
}

// refuse logs a refused request at INFO (ERROR for our own failures) and
// writes the error answer.
func (s *Server) refuse(c echo.Context, endpoint, clientID string, e *oauthError) error {
	level := slog.LevelInfo
	if e.status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(c.Request().Context(), level, "oauth request refused",
		slog.String("endpoint", endpoint), slog.String("error", e.code), slog.String("reason", e.reason),
		slog.String("client_id", clientID))
	return e.write(c)
}

// parseForm reads an application/x-www-form-urlencoded body of at most 16 KiB
// (RFC 6749 §3.2). Repeated parameters (§3.1) give both the form and an
// error, so that the caller authenticates the client before refusing them;
// any other error comes without a form. Query parameters are not read.
func parseForm(c echo.Context) (url.Values, *oauthError) {
	r := c.Request()
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest(errInvalidRequest, "Body must be application/x-www-form-urlencoded", "content_type")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
	if err != nil || len(body) > maxFormBytes {
		return nil, badRequest(errInvalidRequest, "Body unreadable or too large", "body_too_large")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest(errInvalidRequest, "Malformed form body", "form_malformed")
	}
	if repeated(form) {
		return form, badRequest(errInvalidRequest, "Parameters must not be repeated", "parameter_repeated")
	}
	return form, nil
}

func repeated(v url.Values) bool {
	for _, vs := range v {
		if len(vs) > 1 {
			return true
		}
	}
	return false
}

// parseScope splits an RFC 6749 §3.3 scope: space-separated tokens, at least
// one, duplicates dropped.
func parseScope(s string) ([]string, bool) {
	var out []string
	for _, f := range strings.Split(s, " ") {
		if f == "" {
			continue
		}
		for i := 0; i < len(f); i++ {
			// scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
			if c := f[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return nil, false
			}
		}
		if !scopeSubset([]string{f}, out) {
			out = append(out, f)
		}
	}
	return out, len(out) > 0
}

// validVerifier checks RFC 7636 §4.1: 43 to 128 characters of
// ALPHA / DIGIT / "-" / "." / "_" / "~".
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	return true
}
