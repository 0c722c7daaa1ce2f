package devauth

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// scopeForKind is the scope a PSU token for a consent of each kind must carry.
var scopeForKind = map[string]string{
	string(openbanking.KindPayment):       ScopePayments,
	string(openbanking.KindAccountAccess): ScopeAccounts,
}

// codeAnswer is the JSON form of the authorization response.
type codeAnswer struct {
	Code  string `json:"code"`
	State string `json:"state,omitempty"`
}

// authorize serves GET /oauth2/authorize, the sandbox's auto-approval: the
// PSU named by psu approves consent_id at once (paying from debtor_account
// for a payment consent), through the same code path as POST
// /internal/v1/consents/{id}/authorise, and the client gets a one-time code
// (RFC 6749 §4.1.1, §4.1.2) bound to its PKCE S256 challenge (RFC 7636 §4.4),
// redirect_uri, consent, PSU and, with dpop_jkt, its DPoP key (RFC 9449 §10).
// The answer is a 302 to redirect_uri, or JSON with Accept: application/json.
func (s *Server) authorize(c echo.Context) error {
	r := c.Request()
	q := r.URL.Query()
	// RFC 6749 §4.1.2.1: while the client or its redirect_uri is in doubt,
	// answer the user agent directly, never redirect.
	if repeated(q) {
		return s.refuse(c, "authorize", "", badRequest(errInvalidRequest, "Parameters must not be repeated", "parameter_repeated"))
	}
	cl := s.clients[q.Get("client_id")]
	if cl == nil || !cl.codeGrant {
		return s.refuse(c, "authorize", "", badRequest(errInvalidRequest, "Unknown client_id", "client_unknown"))
	}
	redirect, ok := loopbackRedirect(q.Get("redirect_uri"))
	if !ok {
		return s.refuse(c, "authorize", cl.id, badRequest(errInvalidRequest, "redirect_uri must be an http URL on 127.0.0.1 or localhost", "redirect_uri_invalid"))
	}
	state := q.Get("state")
	code, e := s.approve(r.Context(), cl, q)
	if e != nil {
		if wantsJSON(r) || e.status >= 500 {
			return s.refuse(c, "authorize", cl.id, e)
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "oauth request refused",
			slog.String("endpoint", "authorize"), slog.String("error", e.code), slog.String("reason", e.reason),
			slog.String("client_id", cl.id))
		return s.redirect(c, redirect, url.Values{"error": {e.code}, "error_description": {e.description}}, state)
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "consent approved in the sandbox",
		slog.String("client_id", cl.id), slog.String("consent_id", q.Get("consent_id")))
	if wantsJSON(r) {
		noStore(c)
		return c.JSON(http.StatusOK, codeAnswer{Code: code, State: state})
	}
	return s.redirect(c, redirect, url.Values{"code": {code}}, state)
}

// approve checks the request, authorises the consent and issues the code.
func (s *Server) approve(ctx context.Context, cl *client, q url.Values) (string, *oauthError) {
	// One rule for text that may be stored (the PSU, the consent and account
	// ids): the same the API applies to its JSON bodies.
	for _, vs := range q {
		for _, v := range vs {
			if models.CheckText(v) != nil {
				return "", badRequest(errInvalidRequest, "Parameters must be valid UTF-8 text without NUL", "parameter_text")
			}
		}
	}
	if rt := q.Get("response_type"); rt != "" && rt != "code" {
		return "", badRequest(errUnsupportedResponseType, "response_type must be code", "response_type")
	}
	// RFC 7636 §4.3: the sandbox requires S256; plain is never accepted.
	if q.Get("code_challenge_method") != "S256" {
		return "", badRequest(errInvalidRequest, "code_challenge_method must be S256", "pkce_method")
	}
	challenge := q.Get("code_challenge")
	if !isSHA256(challenge) {
		return "", badRequest(errInvalidRequest, "code_challenge must be a base64url SHA-256", "pkce_challenge")
	}
	dpopJKT := q.Get("dpop_jkt")
	if q.Has("dpop_jkt") && !isSHA256(dpopJKT) {
		return "", badRequest(errInvalidRequest, "dpop_jkt must be a JWK SHA-256 thumbprint", "dpop_jkt_malformed")
	}
	consentID, psu, debtor := q.Get("consent_id"), q.Get("psu"), q.Get("debtor_account")
	// Tokens carry the consent id in the canonical lower-case form the
	// resource server compares against; an upper-case UUID would otherwise
	// authorise a consent its token could never use.
	if id, ok := models.CanonicalID(consentID); ok {
		consentID = id
	}
	if consentID == "" || psu == "" {
		return "", badRequest(errInvalidRequest, "consent_id and psu are required", "consent_parameters_missing")
	}
	scopes, ok := parseScope(q.Get("scope"))
	if !ok || !scopeSubset(scopes, cl.scopes) {
		return "", badRequest(errInvalidScope, "Requested scope not allowed", "scope_not_allowed")
	}

	owner, kind, err := s.consents.ConsentClient(ctx, consentID)
	if err != nil {
		return "", s.consentError(ctx, err)
	}
	// A PSU token for a consent goes only to the client that created it; an
	// unknown consent and another client's get the same answer.
	if !secretEqual(owner, cl.id) {
		return "", badRequest(errInvalidRequest, "Unknown consent", "consent_other_client")
	}
	need, known := scopeForKind[kind]
	if !known || !scopeSubset([]string{need}, scopes) {
		return "", badRequest(errInvalidScope, "Scope does not cover the consent", "scope_not_for_consent")
	}
	// A PSU token serves one consent, so it gets that consent's scope only
	// (RFC 6749 §3.3 lets the server narrow the request; the token answer
	// names the scope granted).
	if err := s.consents.AuthoriseConsent(ctx, consentID, psu, debtor); err != nil {
		return "", s.consentError(ctx, err)
	}

	code, err := s.tokens.putCode(authCode{
		clientID:    cl.id,
		redirectURI: q.Get("redirect_uri"),
		challenge:   challenge,
		dpopJKT:     dpopJKT,
		scope:       need,
		consentID:   consentID,
		psu:         psu,
		expires:     s.now().Add(codeLifetime),
	})
	if err != nil {
		return "", storeError(err)
	}
	return code, nil
}

// consentError maps the Open Banking layer's errors to OAuth answers with
// fixed descriptions.
func (s *Server) consentError(ctx context.Context, err error) *oauthError {
	var fe *openbanking.FieldError
	switch {
	case errors.Is(err, openbanking.ErrNotFound):
		return badRequest(errInvalidRequest, "Unknown consent", "consent_not_found")
	case errors.Is(err, openbanking.ErrInvalidConsentStatus):
		return badRequest(errAccessDenied, "Consent is not awaiting authorisation", "consent_status")
	case errors.As(err, &fe) && fe.Path == "Psu":
		return badRequest(errInvalidRequest, "Invalid psu", "psu_invalid")
	// The sandbox stands in for the customer signed in at the bank, who
	// is told why an account cannot pay.
	case errors.Is(err, openbanking.ErrUnknownAccount):
		return badRequest(errInvalidRequest, "Unknown debtor_account: no account has this AccountId", "debtor_account_unknown")
	case errors.Is(err, openbanking.ErrNotPSUAccount):
		return badRequest(errInvalidRequest, "debtor_account is not an account of this psu", "debtor_account_not_psu")
	case errors.Is(err, openbanking.ErrAccountCurrency):
		return badRequest(errInvalidRequest, "debtor_account is not in the currency of the consent", "debtor_account_currency")
	case errors.As(err, &fe) && fe.Path == "DebtorAccount":
		return badRequest(errInvalidRequest, "Invalid debtor_account for this consent and PSU", "debtor_account_invalid")
	case errors.As(err, &fe):
		return badRequest(errInvalidRequest, "Invalid request", "consent_field_invalid")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return unavailable("consent_busy")
	case errors.Is(err, openbanking.ErrUnavailable):
		// The database cannot be reached: an outage, not a bug (503 with
		// Retry-After, as the API answers).
		return unavailable("consent_store_unavailable")
	}
	s.log.LogAttrs(ctx, slog.LevelError, "consent authorisation failed", slog.String("error", err.Error()))
	return serverError("consent_store")
}

// redirect answers 302 to the client's redirect URI with params and state
// added to its query (RFC 6749 §4.1.2). Values are query-encoded, so nothing
// from the request can break out of the Location header.
func (s *Server) redirect(c echo.Context, to *url.URL, params url.Values, state string) error {
	u := *to
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	noStore(c)
	return c.Redirect(http.StatusFound, u.String())
}

// loopbackRedirect accepts the sandbox clients' redirect URIs: http on
// 127.0.0.1 or localhost, any port and path, no userinfo or fragment
// (RFC 6749 §3.1.2, RFC 8252 §7.3).
func loopbackRedirect(raw string) (*url.URL, bool) {
	if raw == "" || len(raw) > 2048 || strings.ContainsAny(raw, "#\\") {
		return nil, false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Opaque != "" || u.User != nil {
		return nil, false
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
		return nil, false
	}
	return u, true
}

// wantsJSON reports whether the Accept header names application/json.
func wantsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
				return true
			}
		}
	}
	return false
}

// isSHA256 reports whether s is the unpadded base64url form of 32 bytes.
func isSHA256(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 32
}
