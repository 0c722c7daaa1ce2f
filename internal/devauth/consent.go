package devauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// CustomerDirectory is what the consent page needs from the Open Banking
// layer beyond ConsentAuthoriser; *openbanking.Service implements it.
type CustomerDirectory interface {
	// ConsentDetails returns what the customer is shown;
	// openbanking.ErrNotFound when there is no such consent.
	ConsentDetails(ctx context.Context, consentID string) (openbanking.ConsentDetails, error)
	// CustomerAccounts returns psu's customer accounts (none for a
	// stranger): the sandbox's customers are the owners of accounts.
	CustomerAccounts(ctx context.Context, psu string) ([]models.Account, error)
	// RejectConsent records that the customer refused the consent.
	RejectConsent(ctx context.Context, consentID string) error
}

var _ CustomerDirectory = (*openbanking.Service)(nil)

// DefaultPassword is the sandbox customers' password when Config.Password
// is empty. It is public: the sandbox must never run where real money moves.
const DefaultPassword = "sandbox"

// Consent page sessions.
const (
	pageCookie      = "obpay_consent"
	pageLifetime    = 10 * time.Minute
	maxPageSessions = 10_000
	maxSignInTries  = 5
	pageCookiePath  = "/oauth2/"
	pageSecurityCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
)

//go:embed templates/consent.html
var templateFS embed.FS

var consentTemplate = template.Must(template.ParseFS(templateFS, "templates/consent.html"))

// pageSession is one customer's journey through the consent page: the
// checked authorization request, then the signed-in customer.
type pageSession struct {
	csrf     string
	clientID string
	req      authzRequest
	psu      string // "" until signed in
	tries    int
	expires  time.Time
}

// pageSessions keeps the sessions in memory, at most maxPageSessions, each
// for pageLifetime.
type pageSessions struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*pageSession
}

func newPageSessions(now func() time.Time) *pageSessions {
	return &pageSessions{now: now, m: map[string]*pageSession{}}
}

// put stores a new session and returns its id; false when the store is full.
func (p *pageSessions) put(ps *pageSession) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if len(p.m) >= maxPageSessions {
		for id, s := range p.m {
			if !now.Before(s.expires) {
				delete(p.m, id)
			}
		}
		if len(p.m) >= maxPageSessions {
			return "", false
		}
	}
	id := randomToken()
	ps.expires = now.Add(pageLifetime)
	p.m[id] = ps
	return id, true
}

// get returns a copy of the live session id names.
func (p *pageSessions) get(id string) (pageSession, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.m[id]
	if !ok {
		return pageSession{}, false
	}
	if !p.now().Before(s.expires) {
		delete(p.m, id)
		return pageSession{}, false
	}
	return *s, true
}

// update changes the live session id names with f.
func (p *pageSessions) update(id string, f func(*pageSession)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.m[id]; ok {
		f(s)
	}
}

// signedIn ends session id and stores a copy for psu under a new id with a
// new CSRF token, so that an id or token known before the sign-in (a
// planted cookie, a form seen earlier) is worth nothing after it. It
// returns the new id and the session; false when id is gone.
func (p *pageSessions) signedIn(id, psu string) (string, pageSession, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.m[id]
	if !ok || !p.now().Before(s.expires) {
		delete(p.m, id)
		return "", pageSession{}, false
	}
	delete(p.m, id)
	n := *s
	n.psu, n.csrf, n.tries = psu, randomToken(), 0
	newID := randomToken()
	p.m[newID] = &n
	return newID, n, true
}

// take removes the session and reports whether it was there: a decision is
// made once.
func (p *pageSessions) take(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.m[id]
	delete(p.m, id)
	return ok
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("devauth: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// pageData is what the template shows.
type pageData struct {
	Step     string // "signin", "consent" or "error"
	Error    string
	CSRF     string
	Client   string
	PSU      string
	Payment  *paymentView
	Access   *accessView
	Accounts []accountView
}

type paymentView struct {
	Amount, Currency, CreditorName, Scheme, Identification, Reference string
}

type accessView struct {
	Permissions []string
	Expires     string
}

type accountView struct{ ID, Label string }

// permissionText says each permission in words.
var permissionText = map[openbanking.Permission]string{
	openbanking.ReadAccountsBasic:       "your accounts' names and currencies",
	openbanking.ReadAccountsDetail:      "your accounts' details, including sort codes and account numbers",
	openbanking.ReadBalances:            "your balances",
	openbanking.ReadTransactionsBasic:   "your transactions, without their details",
	openbanking.ReadTransactionsDetail:  "your transactions with their details (amounts, references)",
	openbanking.ReadTransactionsCredits: "the money coming into your accounts",
	openbanking.ReadTransactionsDebits:  "the money going out of your accounts",
}

// schemeText names the account identification schemes in words.
var schemeText = map[string]string{
	"UK.OBIE.SortCodeAccountNumber": "Sort code and account number",
	"UK.OBIE.IBAN":                  "IBAN",
}

// pageEnabled reports whether req goes to the consent page rather than the
// scripted approval: the page is served, and the request names no customer
// or scripted approval is off. JSON callers keep the scripted answers.
func (s *Server) pageEnabled(r *http.Request, req authzRequest) bool {
	return s.customers != nil && !wantsJSON(r) && (req.psu == "" || !s.autoApprove)
}

// startPage opens a session for a checked authorization request and shows
// the sign-in form. The consent is checked first (it must be the client's
// own, awaiting authorisation), so that nobody signs in for nothing.
func (s *Server) startPage(c echo.Context, cl *client, req authzRequest) *oauthError {
	ctx := c.Request().Context()
	if _, e := s.checkConsent(ctx, cl, req); e != nil {
		return e
	}
	d, err := s.customers.ConsentDetails(ctx, req.consentID)
	if err != nil {
		return s.consentError(ctx, err)
	}
	// Scripted approval is off: psu and debtor_account are the customer's
	// to give on the page, not the aggregator's.
	hint := req.psu
	req.psu, req.debtorAccount = "", ""
	ps := &pageSession{csrf: randomToken(), clientID: cl.id, req: req}
	id, ok := s.pages.put(ps)
	if !ok {
		return unavailable("consent_sessions_full")
	}
	s.setPageCookie(c, id, int(pageLifetime/time.Second))
	data := pageData{Step: "signin", CSRF: ps.csrf, Client: cl.id, PSU: hint}
	if d.Kind == openbanking.KindPayment {
		data.Payment = &paymentView{}
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "consent page shown", slog.String("client_id", cl.id), slog.String("consent_id", req.consentID))
	_ = s.renderPage(c, http.StatusOK, data)
	return nil
}

func (s *Server) setPageCookie(c echo.Context, id string, maxAge int) {
	c.SetCookie(&http.Cookie{
		Name: pageCookie, Value: id, Path: pageCookiePath, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: strings.HasPrefix(s.issuer, "https:"),
	})
}

// renderPage writes the page with headers that keep it out of caches and
// frames.
func (s *Server) renderPage(c echo.Context, status int, data pageData) error {
	noStore(c)
	h := c.Response().Header()
	h.Set("Content-Security-Policy", pageSecurityCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	var b strings.Builder
	if err := consentTemplate.Execute(&b, data); err != nil {
		s.log.LogAttrs(c.Request().Context(), slog.LevelError, "consent page failed", slog.String("error", err.Error()))
		return c.String(http.StatusInternalServerError, "internal error")
	}
	return c.HTMLBlob(status, []byte(b.String()))
}

// pageError shows the page's dead end with a message.
func (s *Server) pageError(c echo.Context, status int, msg string) error {
	return s.renderPage(c, status, pageData{Step: "error", Error: msg})
}

// pagePost reads a consent page POST: the form, and the session its cookie
// names, whose CSRF token the form must repeat. ok is false when the answer
// has been written (403 for a missing or wrong token: nothing changes).
func (s *Server) pagePost(c echo.Context) (id string, ps pageSession, form url.Values, ok bool) {
	form, e := parseForm(c)
	if e != nil {
		_ = s.pageError(c, http.StatusBadRequest, "The form could not be read.")
		return "", ps, nil, false
	}
	ck, err := c.Cookie(pageCookie)
	if err != nil || ck.Value == "" {
		_ = s.pageError(c, http.StatusForbidden, "Your session is missing: cookies must be allowed.")
		return "", ps, nil, false
	}
	ps, found := s.pages.get(ck.Value)
	token := form.Get("csrf")
	if !found || token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(ps.csrf)) != 1 {
		s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "consent page post refused", slog.String("reason", "csrf_or_session"))
		_ = s.pageError(c, http.StatusForbidden, "This form has expired or did not come from this page.")
		return "", ps, nil, false
	}
	return ck.Value, ps, form, true
}

// signIn serves POST /oauth2/authorize/signin: the customer's name and the
// sandbox password. A wrong one shows the form again with 401; after
// maxSignInTries the session ends.
func (s *Server) signIn(c echo.Context) error {
	id, ps, form, ok := s.pagePost(c)
	if !ok {
		return nil
	}
	ctx := c.Request().Context()
	d, err := s.customers.ConsentDetails(ctx, ps.req.consentID)
	if err != nil {
		return s.pageError(c, http.StatusServiceUnavailable, "The request cannot be shown now. Try again later.")
	}
	retry := pageData{Step: "signin", CSRF: ps.csrf, Client: ps.clientID}
	if d.Kind == openbanking.KindPayment {
		retry.Payment = &paymentView{}
	}
	user, password := form.Get("username"), form.Get("password")
	var accounts []models.Account
	good := subtle.ConstantTimeCompare([]byte(password), []byte(s.password)) == 1 &&
		user != "" && len(user) <= openbanking.MaxPSULen && models.CheckText(user) == nil
	if good {
		if accounts, err = s.customers.CustomerAccounts(ctx, user); err != nil {
			return s.pageError(c, http.StatusServiceUnavailable, "Sign-in is unavailable now. Try again later.")
		}
		good = len(accounts) > 0
	}
	if !good {
		tries := 0
		s.pages.update(id, func(p *pageSession) { p.tries++; tries = p.tries })
		s.log.LogAttrs(ctx, slog.LevelInfo, "consent page sign-in refused", slog.String("client_id", ps.clientID))
		if tries >= maxSignInTries {
			s.pages.take(id)
			return s.pageError(c, http.StatusUnauthorized, "Too many failed sign-ins.")
		}
		retry.Error = "Unknown customer or wrong password."
		retry.PSU = user
		return s.renderPage(c, http.StatusUnauthorized, retry)
	}
	newID, ps, ok := s.pages.signedIn(id, user)
	if !ok {
		return s.pageError(c, http.StatusForbidden, "This form has expired or did not come from this page.")
	}
	s.setPageCookie(c, newID, int(time.Until(ps.expires)/time.Second)+1)
	s.log.LogAttrs(ctx, slog.LevelInfo, "consent page sign-in", slog.String("client_id", ps.clientID), slog.String("consent_id", ps.req.consentID))
	return s.renderPage(c, http.StatusOK, consentView(ps, user, d, accounts, ""))
}

// consentView is the consent page for the signed-in customer.
func consentView(ps pageSession, psu string, d openbanking.ConsentDetails, accounts []models.Account, msg string) pageData {
	data := pageData{Step: "consent", CSRF: ps.csrf, Client: ps.clientID, PSU: psu, Error: msg}
	switch d.Kind {
	case openbanking.KindPayment:
		scheme := schemeText[d.Creditor.SchemeName]
		if scheme == "" {
			scheme = d.Creditor.SchemeName
		}
		data.Payment = &paymentView{Amount: d.Amount.Format(), Currency: d.Amount.Currency,
			CreditorName: d.Creditor.Name, Scheme: scheme, Identification: d.Creditor.Identification, Reference: d.Reference}
		for _, a := range payingAccounts(accounts, d.Amount.Currency) {
			label := a.Identification
			if a.Name != "" {
				label = a.Name + " · " + label
			}
			data.Accounts = append(data.Accounts, accountView{ID: string(a.ID), Label: label + " · " + a.Balance.Format() + " " + a.Currency})
		}
	case openbanking.KindAccountAccess:
		v := &accessView{Expires: "you withdraw it"}
		if d.ExpiresAt != nil {
			v.Expires = d.ExpiresAt.UTC().Format("2 January 2006, 15:04 UTC")
		}
		for _, p := range d.Permissions {
			if t, ok := permissionText[p]; ok {
				v.Permissions = append(v.Permissions, t)
			} else {
				v.Permissions = append(v.Permissions, string(p))
			}
		}
		data.Access = v
	}
	return data
}

// payingAccounts are the accounts that can pay in currency.
func payingAccounts(accounts []models.Account, currency string) []models.Account {
	var out []models.Account
	for _, a := range accounts {
		if a.Kind == models.KindCustomer && a.Currency == currency {
			out = append(out, a)
		}
	}
	return out
}

// decide serves POST /oauth2/authorize/decision: Approve authorises the
// consent through the scripted approval's code path and redirects with a
// code; Reject marks it Rejected and redirects with access_denied. The
// debtor account must be one of the signed-in customer's in the consent's
// currency.
func (s *Server) decide(c echo.Context) error {
	id, ps, form, ok := s.pagePost(c)
	if !ok {
		return nil
	}
	ctx := c.Request().Context()
	if ps.psu == "" {
		return s.pageError(c, http.StatusForbidden, "Sign in first.")
	}
	cl, err := s.client(ctx, ps.clientID)
	if err != nil {
		return s.pageError(c, http.StatusServiceUnavailable, "The request cannot be decided now. Try again later.")
	}
	if cl == nil {
		s.pages.take(id)
		return s.pageError(c, http.StatusBadRequest, "The app that sent you here is no longer known.")
	}
	redirect, _ := loopbackRedirect(ps.req.redirectURI)
	req := ps.req
	req.psu = ps.psu
	switch form.Get("action") {
	case "approve":
		d, err := s.customers.ConsentDetails(ctx, req.consentID)
		if err != nil {
			return s.pageError(c, http.StatusServiceUnavailable, "The request cannot be decided now. Try again later.")
		}
		accounts, err := s.customers.CustomerAccounts(ctx, ps.psu)
		if err != nil {
			return s.pageError(c, http.StatusServiceUnavailable, "The request cannot be decided now. Try again later.")
		}
		if d.Kind == openbanking.KindPayment {
			chosen := form.Get("debtor_account")
			mine := false
			for _, a := range payingAccounts(accounts, d.Amount.Currency) {
				mine = mine || string(a.ID) == chosen
			}
			if !mine {
				s.log.LogAttrs(ctx, slog.LevelInfo, "consent page decision refused",
					slog.String("client_id", cl.id), slog.String("reason", "debtor_account_not_psu"))
				return s.renderPage(c, http.StatusBadRequest, consentView(ps, ps.psu, d, accounts, "Choose one of your own accounts to pay from."))
			}
			req.debtorAccount = chosen
		}
		if !s.pages.take(id) {
			return s.pageError(c, http.StatusForbidden, "This request was already decided.")
		}
		s.setPageCookie(c, "", -1)
		code, e := s.approve(ctx, cl, req)
		if e != nil {
			return s.pageRefusal(c, cl, redirect, req, e)
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "consent approved on the consent page",
			slog.String("client_id", cl.id), slog.String("consent_id", req.consentID))
		return s.redirect(c, redirect, url.Values{"code": {code}}, req.state)
	case "reject":
		if !s.pages.take(id) {
			return s.pageError(c, http.StatusForbidden, "This request was already decided.")
		}
		s.setPageCookie(c, "", -1)
		if _, e := s.checkConsent(ctx, cl, req); e != nil {
			return s.pageRefusal(c, cl, redirect, req, e)
		}
		if err := s.customers.RejectConsent(ctx, req.consentID); err != nil {
			return s.pageRefusal(c, cl, redirect, req, s.consentError(ctx, err))
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "consent rejected on the consent page",
			slog.String("client_id", cl.id), slog.String("consent_id", req.consentID))
		return s.redirect(c, redirect, url.Values{"error": {errAccessDenied}, "error_description": {"The customer rejected the request"}}, req.state)
	default:
		return s.pageError(c, http.StatusBadRequest, "Choose Approve or Reject.")
	}
}

// pageRefusal answers a decision that failed as the scripted approval
// does: a redirect with the error, or the page for a server error.
func (s *Server) pageRefusal(c echo.Context, cl *client, redirect *url.URL, req authzRequest, e *oauthError) error {
	s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "oauth request refused",
		slog.String("endpoint", "authorize"), slog.String("error", e.code), slog.String("reason", e.reason),
		slog.String("client_id", cl.id))
	if e.status >= 500 || redirect == nil {
		return s.pageError(c, e.status, "The request cannot be decided now.")
	}
	return s.redirect(c, redirect, url.Values{"error": {e.code}, "error_description": {e.description}}, req.state)
}
