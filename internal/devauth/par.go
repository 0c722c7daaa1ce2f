package devauth

import (
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Pushed authorization requests (RFC 9126).
const (
	requestURIPrefix   = "urn:ietf:params:oauth:request_uri:"
	requestURILifetime = 60 * time.Second
	maxPARPerClient    = 100
	maxPAREntries      = 10_000
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
	uri, err := s.par.put(cl.id, req)
	if err != nil {
		return s.refuse(c, "par", cl.id, unavailable("par_store_full"))
	}
	s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "authorization request pushed",
		slog.String("client_id", cl.id), slog.String("consent_id", req.consentID))
	noStore(c)
	return c.JSON(http.StatusCreated, parAnswer{RequestURI: uri, ExpiresIn: int64(requestURILifetime / time.Second)})
}

// errPARFull means the client, or the store, holds as many pushed requests
// as it may.
var errPARFull = errors.New("devauth: too many pushed authorization requests")

// parEntry is one pushed request.
type parEntry struct {
	clientID string
	req      authzRequest
	expires  time.Time
}

// parStore keeps pushed requests in memory under the SHA-256 of their
// request_uri: at most maxPARPerClient per client and maxPAREntries in all,
// expired entries purged when room is needed and at most a minute late.
type parStore struct {
	now func() time.Time

	mu        sync.Mutex
	entries   map[[sha256.Size]byte]parEntry
	perClient map[string]int
	lastSweep time.Time
}

func newPARStore(now func() time.Time) *parStore {
	return &parStore{now: now, entries: map[[sha256.Size]byte]parEntry{}, perClient: map[string]int{}}
}

// put stores req for clientID and returns its request_uri.
func (p *parStore) put(clientID string, req authzRequest) (string, error) {
	v, _, err := newSecret()
	if err != nil {
		return "", err
	}
	uri := requestURIPrefix + v
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.lastSweep) >= sweepEvery || len(p.entries) >= maxPAREntries || p.perClient[clientID] >= maxPARPerClient {
		p.sweep(now)
	}
	if len(p.entries) >= maxPAREntries || p.perClient[clientID] >= maxPARPerClient {
		return "", errPARFull
	}
	p.entries[hashOf(uri)] = parEntry{clientID: clientID, req: req, expires: now.Add(requestURILifetime)}
	p.perClient[clientID]++
	return uri, nil
}

// take returns and removes the request stored under uri for clientID. An
// unknown or expired uri, and another client's, give false; another
// client's is left in place, so that it cannot spend it for its owner.
func (p *parStore) take(uri, clientID string) (authzRequest, bool) {
	h := hashOf(uri)
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[h]
	if !ok || !secretEqual(e.clientID, clientID) {
		return authzRequest{}, false
	}
	p.remove(h, e)
	if !now.Before(e.expires) {
		return authzRequest{}, false
	}
	return e.req, true
}

// sweep removes the expired entries. The caller holds mu.
func (p *parStore) sweep(now time.Time) {
	p.lastSweep = now
	for h, e := range p.entries {
		if !now.Before(e.expires) {
			p.remove(h, e)
		}
	}
}

func (p *parStore) remove(h [sha256.Size]byte, e parEntry) {
	delete(p.entries, h)
	if p.perClient[e.clientID]--; p.perClient[e.clientID] <= 0 {
		delete(p.perClient, e.clientID)
	}
}

// size returns the number of stored requests (tests).
func (p *parStore) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}
