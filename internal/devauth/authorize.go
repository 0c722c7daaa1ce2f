package devauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
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

// codeAnswer is the JSON form of the authorization response, with the
// issuer as RFC 9207 §2 adds it to the redirect.
type codeAnswer struct {
	Code  string `json:"code"`
	State string `json:"state,omitempty"`
	Iss   string `json:"iss"`
}

// detailsType is the RFC 9396 authorization details type that names an
// Open Banking consent ("intent").
const detailsType = "openbanking_intent"

// authzRequest is a checked authorization request (RFC 6749 §4.1.1), from
// the query or pushed (RFC 9126).
type authzRequest struct {
	redirectURI string
	state       string
	challenge   string // base64url SHA-256 of the PKCE verifier
	dpopJKT     string // "" when not bound to a key (RFC 9449 §10)
	scopes      []string
	consentID   string
	// psu and debtorAccount stand in for the customer's sign-in and choice
	// (sandbox auto-approval); "" when not given.
	psu, debtorAccount string
}

// authorize serves GET /oauth2/authorize. A request that names no customer
// (or any, with auto-approval off) gets the consent page (consent.go) when
// it is served. Otherwise this is the sandbox's auto-approval: the
// PSU named by psu approves the consent at once (paying from debtor_account
// for a payment consent), through the same code path as POST
// /internal/v1/consents/{id}/authorise, and the client gets a one-time code
// (RFC 6749 §4.1.1, §4.1.2) bound to its PKCE S256 challenge (RFC 7636 §4.4),
// redirect_uri, consent, PSU and, with dpop_jkt, its DPoP key (RFC 9449 §10).
// The request is in the query or was pushed (request_uri, RFC 9126 §4); psu
// and debtor_account may come with the request_uri. The answer is a 303 to
// redirect_uri with iss (RFC 9207), or JSON with Accept: application/json.
func (s *Server) authorize(c echo.Context) error {
	r := c.Request()
	q := r.URL.Query()
	// RFC 6749 §4.1.2.1: while the client or its redirect_uri is in doubt,
	// answer the user agent directly, never redirect.
	if repeated(q) {
		return s.refuse(c, "authorize", "", badRequest(errInvalidRequest, "Parameters must not be repeated", "parameter_repeated"))
	}
	cl, err := s.client(r.Context(), q.Get("client_id"))
	if err != nil {
		return s.refuse(c, "authorize", "", storeError(err))
	}
	if cl == nil || !cl.codeGrant {
		return s.refuse(c, "authorize", "", badRequest(errInvalidRequest, "Unknown client_id", "client_unknown"))
	}
	var (
		req authzRequest
		e   *oauthError
	)
	if q.Has("request_uri") {
		// RFC 9126 §4: the pushed request is the request; it is spent now.
		req, err = s.tokens.takeRequest(r.Context(), q.Get("request_uri"), cl.id)
		switch {
		case errors.Is(err, ErrNotFound):
			return s.refuse(c, "authorize", cl.id, badRequest(errInvalidRequestURI, "Unknown, expired or used request_uri", "request_uri_unknown"))
		case err != nil:
			return s.refuse(c, "authorize", cl.id, storeError(err))
		}
		if e = checkText(q); e == nil {
			e = mergeCustomer(&req, q)
		}
	} else {
		if !cl.redirectAllowed(q.Get("redirect_uri")) {
			return s.refuse(c, "authorize", cl.id, badRequest(errInvalidRequest, redirectRule, "redirect_uri_invalid"))
		}
		req, e = parseAuthzRequest(cl, q)
		req.redirectURI, req.state = q.Get("redirect_uri"), q.Get("state")
		if e == nil && s.requirePAR {
			e = badRequest(errInvalidRequest, "Authorization requests must be pushed to the PAR endpoint first", "par_required")
		}
	}
	redirect, _ := loopbackRedirect(req.redirectURI)
	var code string
	switch {
	case e == nil && s.pageEnabled(r, req):
		// The customer signs in and decides on the consent page.
		if e = s.startPage(c, cl, req); e == nil {
			return nil
		}
	case e == nil:
		code, e = s.approve(r.Context(), cl, req)
	}
	if e != nil {
		e.iss = s.issuer
		if wantsJSON(r) || e.status >= 500 {
			return s.refuse(c, "authorize", cl.id, e)
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "oauth request refused",
			slog.String("endpoint", "authorize"), slog.String("error", e.code), slog.String("reason", e.reason),
			slog.String("client_id", cl.id))
		return s.redirect(c, redirect, url.Values{"error": {e.code}, "error_description": {e.description}}, req.state)
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "consent approved in the sandbox",
		slog.String("client_id", cl.id), slog.String("consent_id", req.consentID))
	if wantsJSON(r) {
		noStore(c)
		return c.JSON(http.StatusOK, codeAnswer{Code: code, State: req.state, Iss: s.issuer})
	}
	return s.redirect(c, redirect, url.Values{"code": {code}}, req.state)
}

// checkText applies one rule to text that may be stored (the PSU, the
// consent and account ids): the one the API applies to its JSON bodies.
func checkText(q url.Values) *oauthError {
	for _, vs := range q {
		for _, v := range vs {
			if models.CheckText(v) != nil {
				return badRequest(errInvalidRequest, "Parameters must be valid UTF-8 text without NUL", "parameter_text")
			}
		}
	}
	return nil
}

// mergeCustomer takes psu and debtor_account from the query of an
// authorization request that names a pushed one, unless the pushed request
// had them: then they must not differ.
func mergeCustomer(req *authzRequest, q url.Values) *oauthError {
	for _, f := range []struct {
		name string
		dst  *string
	}{{"psu", &req.psu}, {"debtor_account", &req.debtorAccount}} {
		v := q.Get(f.name)
		switch {
		case v == "":
		case *f.dst == "":
			*f.dst = v
		case *f.dst != v:
			return badRequest(errInvalidRequest, "psu and debtor_account must match the pushed request", "customer_mismatch")
		}
	}
	return nil
}

// parseAuthzRequest checks the parameters of an authorization request
// other than client_id, redirect_uri and state: response_type code, PKCE
// S256, dpop_jkt, scope within the client's, and the consent, named by
// consent_id or by RFC 9396 authorization_details (or both, the same).
func parseAuthzRequest(cl *client, q url.Values) (authzRequest, *oauthError) {
	if e := checkText(q); e != nil {
		return authzRequest{}, e
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return authzRequest{}, badRequest(errInvalidRequest, "response_type is required", "response_type_missing")
	default:
		return authzRequest{}, badRequest(errUnsupportedResponseType, "response_type must be code", "response_type")
	}
	// RFC 7636 §4.3: the sandbox requires S256; plain is never accepted.
	if q.Get("code_challenge_method") != "S256" {
		return authzRequest{}, badRequest(errInvalidRequest, "code_challenge_method must be S256", "pkce_method")
	}
	req := authzRequest{challenge: q.Get("code_challenge"), dpopJKT: q.Get("dpop_jkt"),
		psu: q.Get("psu"), debtorAccount: q.Get("debtor_account")}
	if !isSHA256(req.challenge) {
		return authzRequest{}, badRequest(errInvalidRequest, "code_challenge must be a base64url SHA-256", "pkce_challenge")
	}
	if q.Has("dpop_jkt") && !isSHA256(req.dpopJKT) {
		return authzRequest{}, badRequest(errInvalidRequest, "dpop_jkt must be a JWK SHA-256 thumbprint", "dpop_jkt_malformed")
	}
	consentID := q.Get("consent_id")
	if q.Has("authorization_details") {
		id, e := intentFromDetails(q.Get("authorization_details"))
		if e != nil {
			return authzRequest{}, e
		}
		if consentID != "" && consentID != id {
			return authzRequest{}, badRequest(errInvalidRequest, "consent_id and authorization_details name different consents", "consent_conflict")
		}
		consentID = id
	}
	// Tokens carry the consent id in the canonical lower-case form the
	// resource server compares against; an upper-case UUID would otherwise
	// authorise a consent its token could never use.
	if id, ok := models.CanonicalID(consentID); ok {
		consentID = id
	}
	if consentID == "" {
		return authzRequest{}, badRequest(errInvalidRequest, "consent_id or authorization_details is required", "consent_parameters_missing")
	}
	req.consentID = consentID
	scopes, ok := parseScope(q.Get("scope"))
	if !ok || !scopeSubset(scopes, cl.scopes) {
		return authzRequest{}, badRequest(errInvalidScope, "Requested scope not allowed", "scope_not_allowed")
	}
	req.scopes = scopes
	return req, nil
}

// maxDetails bounds the elements of authorization_details.
const maxDetails = 8

// intentFromDetails reads RFC 9396 §2 authorization_details: a JSON array
// of objects with a type, exactly one of type openbanking_intent naming the
// consent in openbanking_intent_id. Other types are not supported (§5).
func intentFromDetails(raw string) (string, *oauthError) {
	bad := func(reason string) *oauthError {
		return badRequest(errInvalidAuthzDetails, "authorization_details must hold one openbanking_intent with an openbanking_intent_id", reason)
	}
	var details []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &details); err != nil || len(details) == 0 || len(details) > maxDetails {
		return "", bad("authorization_details_malformed")
	}
	id := ""
	for _, d := range details {
		var typ, intent string
		if json.Unmarshal(d["type"], &typ) != nil || typ != detailsType {
			return "", bad("authorization_details_type")
		}
		if json.Unmarshal(d["openbanking_intent_id"], &intent) != nil || intent == "" || id != "" {
			return "", bad("authorization_details_intent")
		}
		id = intent
	}
	return id, nil
}

// grantedDetails is the authorization_details a PSU token for consentID
// carries: the consent as one openbanking_intent element.
func grantedDetails(consentID string) json.RawMessage {
	b, _ := json.Marshal([]map[string]string{{"type": detailsType, "openbanking_intent_id": consentID}})
	return b
}

// checkConsent reports whether the consent may be authorised for cl: it
// exists, cl created it (an unknown consent and another client's get the
// same answer), it awaits authorisation, and scopes cover its kind. It
// returns the scope a token for it carries.
func (s *Server) checkConsent(ctx context.Context, cl *client, req authzRequest) (string, *oauthError) {
	owner, kind, status, err := s.consents.ConsentClient(ctx, req.consentID)
	if err != nil {
		return "", s.consentError(ctx, err)
	}
	// A PSU token for a consent goes only to the client that created it.
	if !secretEqual(owner, cl.id) {
		return "", badRequest(errInvalidRequest, "Unknown consent", "consent_other_client")
	}
	if status != string(openbanking.StatusAwaitingAuthorisation) {
		return "", badRequest(errAccessDenied, "Consent is not awaiting authorisation", "consent_status")
	}
	need, known := scopeForKind[kind]
	if !known || !scopeSubset([]string{need}, req.scopes) {
		return "", badRequest(errInvalidScope, "Scope does not cover the consent", "scope_not_for_consent")
	}
	return need, nil
}

// approve authorises the consent for the PSU and issues the code.
func (s *Server) approve(ctx context.Context, cl *client, req authzRequest) (string, *oauthError) {
	if req.psu == "" {
		return "", badRequest(errInvalidRequest, "consent_id and psu are required", "consent_parameters_missing")
	}
	// A PSU token serves one consent, so it gets that consent's scope only
	// (RFC 6749 §3.3 lets the server narrow the request; the token answer
	// names the scope granted).
	scope, e := s.checkConsent(ctx, cl, req)
	if e != nil {
		return "", e
	}
	// The code is stored first, so that a client at its cap is refused
	// before its consent is authorised; no one knows the code until it is
	// returned, and it is dropped when the authorisation fails.
	code, err := s.tokens.putCode(ctx, authCode{
		clientID:    cl.id,
		redirectURI: req.redirectURI,
		challenge:   req.challenge,
		dpopJKT:     req.dpopJKT,
		scope:       scope,
		consentID:   req.consentID,
		psu:         req.psu,
		expires:     s.now().Add(codeLifetime),
	})
	if err != nil {
		return "", storeError(err)
	}
	if err := s.consents.AuthoriseConsent(ctx, req.consentID, req.psu, req.debtorAccount); err != nil {
		if derr := s.tokens.dropCode(ctx, code); derr != nil {
			// Unknown to anyone, it expires unused.
			s.log.LogAttrs(ctx, slog.LevelWarn, "unused authorization code not dropped", slog.String("error", derr.Error()))
		}
		return "", s.consentError(ctx, err)
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

// redirect answers 303 to the client's redirect URI with params, state and
// iss added to its query (RFC 6749 §4.1.2, RFC 9207 §2; 303 so that a
// browser never repeats a POST to the client, FAPI 2.0 Security Profile
// §5.3.2.2). Values are query-encoded, so nothing from the request can break
// out of the Location header.
func (s *Server) redirect(c echo.Context, to *url.URL, params url.Values, state string) error {
	u := *to
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", s.issuer)
	u.RawQuery = q.Encode()
	noStore(c)
	return c.Redirect(http.StatusSeeOther, u.String())
}

// redirectRule is the refusal of a redirect URI the client may not use.
const redirectRule = "redirect_uri must be an http URL on 127.0.0.1 or localhost (and a registered one, for a registered client)"

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
