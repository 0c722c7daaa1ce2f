package devauth

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Pushed authorization requests (RFC 9126).
const (
	requestURIPrefix   = "urn:ietf:params:oauth:request_uri:"
	requestURILifetime = 60 * time.Second
	maxPARPerClient    = 100
)

// parAnswer is the PAR endpoint's 201 answer (RFC 9126 §2.2).
type parAnswer struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

// pushedRequest serves POST /oauth2/par (RFC 9126 §2): the client
// authenticates first (any failure is 401 invalid_client, whatever else the
// request holds), may send a DPoP proof whose key the code is then bound to
// (RFC 9449 §10.1), and pushes an authorization request that is checked as
// /oauth2/authorize checks it, and more: the consent must be one of this
// client's awaiting authorisation. The answer names the stored request
// with a request_uri that is good once, for 60 s, for this client only.
func (s *Server) pushedRequest(c echo.Context) error {
	form, e := parseForm(c)
	if e != nil && form == nil {
		return s.refuse(c, "par", "", e)
	}
	cl, ae := s.authenticate(c.Request(), form, s.parURL)
	if ae != nil {
		return s.refuse(c, "par", "", ae)
	}
	if e != nil { // repeated parameters, judged once the client is known
		return s.refuse(c, "par", cl.id, e)
	}
	if !cl.codeGrant {
		return s.refuse(c, "par", cl.id, badRequest(errUnauthorizedClient, "Client may not use the authorization code grant", "client_without_code_grant"))
	}
	// RFC 9126 §2.1: request_uri is not allowed here; client_id, when
	// sent, is the authenticated client's.
	if form.Has("request_uri") {
		return s.refuse(c, "par", cl.id, badRequest(errInvalidRequest, "request_uri must not be pushed", "request_uri_pushed"))
	}
	if form.Has("client_id") && form.Get("client_id") != cl.id {
		return s.refuse(c, "par", cl.id, badRequest(errInvalidRequest, "client_id is not the authenticated client", "client_id_mismatch"))
	}
	if !cl.redirectAllowed(form.Get("redirect_uri")) {
		return s.refuse(c, "par", cl.id, badRequest(errInvalidRequest, redirectRule, "redirect_uri_invalid"))
	}
	req, e := parseAuthzRequest(cl, form)
	if e != nil {
		return s.refuse(c, "par", cl.id, e)
	}
	req.redirectURI, req.state = form.Get("redirect_uri"), form.Get("state")
	if len(c.Request().Header.Values("DPoP")) > 0 {
		jkt, e := s.checkProof(c, s.parURL)
		if e != nil {
			return s.refuse(c, "par", cl.id, e)
		}
		// RFC 9449 §10.1: a proof and dpop_jkt must name the same key.
		if req.dpopJKT != "" && !secretEqual(req.dpopJKT, jkt) {
			return s.refuse(c, "par", cl.id, badRequest(errInvalidDPoPProof, "dpop_jkt is not the thumbprint of the proof's key", "dpop_jkt_proof_mismatch"))
		}
		req.dpopJKT = jkt
	}
	if _, e := s.checkConsent(c.Request().Context(), cl, req); e != nil {
		return s.refuse(c, "par", cl.id, e)
	}
	uri, err := s.tokens.putRequest(c.Request().Context(), cl.id, req)
	if err != nil {
		return s.refuse(c, "par", cl.id, storeError(err))
	}
	s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "authorization request pushed",
		slog.String("client_id", cl.id), slog.String("consent_id", req.consentID))
	noStore(c)
	return c.JSON(http.StatusCreated, parAnswer{RequestURI: uri, ExpiresIn: int64(requestURILifetime / time.Second)})
}

// storedRequest is how a pushed authzRequest is kept in the Store.
type storedRequest struct {
	RedirectURI   string   `json:"redirect_uri"`
	State         string   `json:"state,omitempty"`
	Challenge     string   `json:"code_challenge"`
	DPoPJKT       string   `json:"dpop_jkt,omitempty"`
	Scopes        []string `json:"scopes"`
	ConsentID     string   `json:"consent_id"`
	PSU           string   `json:"psu,omitempty"`
	DebtorAccount string   `json:"debtor_account,omitempty"`
}

// putRequest stores req for clientID, for requestURILifetime, and returns its
// request_uri; ErrClientAtCap when the client holds maxPARPerClient live
// requests.
func (ts *Tokens) putRequest(ctx context.Context, clientID string, req authzRequest) (string, error) {
	v, _, err := newSecret()
	if err != nil {
		return "", err
	}
	uri := requestURIPrefix + v
	raw, err := json.Marshal(storedRequest{RedirectURI: req.redirectURI, State: req.state, Challenge: req.challenge,
		DPoPJKT: req.dpopJKT, Scopes: req.scopes, ConsentID: req.consentID, PSU: req.psu, DebtorAccount: req.debtorAccount})
	if err != nil {
		return "", err
	}
	now := ts.now()
	err = ts.store.PutRequest(ctx, PushedRequest{Hash: hashOf(uri), ClientID: clientID, Request: raw,
		Expires: now.Add(requestURILifetime)}, now, maxPARPerClient)
	if err != nil {
		return "", err
	}
	return uri, nil
}

// takeRequest returns and removes the request stored under uri for
// clientID: ErrNotFound when it is unknown, expired or another client's (an
// other client's is left in place, so that it cannot spend it for its owner).
func (ts *Tokens) takeRequest(ctx context.Context, uri, clientID string) (authzRequest, error) {
	r, err := ts.store.TakeRequest(ctx, hashOf(uri), clientID, ts.now())
	if err != nil {
		return authzRequest{}, err
	}
	var sr storedRequest
	if err := json.Unmarshal(r.Request, &sr); err != nil {
		return authzRequest{}, fmt.Errorf("devauth: stored request: %v", err)
	}
	return authzRequest{redirectURI: sr.RedirectURI, state: sr.State, challenge: sr.Challenge, dpopJKT: sr.DPoPJKT,
		scopes: sr.Scopes, consentID: sr.ConsentID, psu: sr.PSU, debtorAccount: sr.DebtorAccount}, nil
}
