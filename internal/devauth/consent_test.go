package devauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/security"
)

// fakeCustomers adds the consent page's needs to the fake consents.
type fakeCustomers struct {
	*fakeConsents
	rejected []string
}

func (f *fakeCustomers) ConsentDetails(_ context.Context, id string) (openbanking.ConsentDetails, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.consents[id]
	if !ok {
		return openbanking.ConsentDetails{}, openbanking.ErrNotFound
	}
	d := openbanking.ConsentDetails{ID: id, ClientID: c.client, Kind: c.kind, Status: c.status}
	if c.kind == openbanking.KindPayment {
		d.Amount = models.Amount{Minor: 1250, Currency: "GBP"}
		d.Creditor = openbanking.AccountRef{SchemeName: "UK.OBIE.SortCodeAccountNumber",
			Identification: "60000000000002", Name: `Bob <script>alert("x")</script>`}
		d.Reference = "Dinner & <b>drinks</b>"
	} else {
		exp := time.Date(2027, 1, 2, 3, 4, 0, 0, time.UTC)
		d.Permissions = []openbanking.Permission{openbanking.ReadAccountsBasic, openbanking.ReadBalances}
		d.ExpiresAt = &exp
	}
	return d, nil
}

func (f *fakeCustomers) CustomerAccounts(_ context.Context, psu string) ([]models.Account, error) {
	acct := func(id, owner, cur string) models.Account {
		return models.Account{ID: models.AccountID(id), Owner: owner, Currency: cur, Kind: models.KindCustomer,
			SchemeName: "UK.OBIE.SortCodeAccountNumber", Identification: "600000" + id[len(id)-3:] + "00000",
			Balance: models.Amount{Minor: 100000, Currency: cur}}
	}
	switch psu {
	case "alice":
		return []models.Account{acct("acc-alice", "alice", "GBP"), acct("acc-alice-eur", "alice", "EUR")}, nil
	case "bob":
		return []models.Account{acct("acc-bob", "bob", "GBP")}, nil
	}
	return []models.Account{}, nil
}

func (f *fakeCustomers) RejectConsent(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.consents[id]
	if !ok {
		return openbanking.ErrNotFound
	}
	if c.status != openbanking.StatusAwaitingAuthorisation {
		return openbanking.ErrInvalidConsentStatus
	}
	c.status = openbanking.StatusRejected
	f.rejected = append(f.rejected, id)
	return nil
}

func (f *fakeCustomers) status(id string) openbanking.ConsentStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.consents[id].status
}

// pageFixture is a sandbox with the consent page on.
type pageFixture struct {
	*fixture
	customers *fakeCustomers
}

func newPageFixture(t *testing.T, opts ...fixtureOption) *pageFixture {
	p := &pageFixture{}
	opts = append([]fixtureOption{func(_ *security.Config, c *Config) {
		p.customers = &fakeCustomers{fakeConsents: c.Consents.(*fakeConsents)}
		c.Customers = p.customers
	}}, opts...)
	p.fixture = newFixture(t, opts...)
	return p
}

// browser is one user agent: it keeps the page cookie.
type browser struct {
	t      *testing.T
	f      *pageFixture
	cookie *http.Cookie
}

func (b *browser) do(r *http.Request) *httptest.ResponseRecorder {
	if b.cookie != nil {
		r.AddCookie(b.cookie)
	}
	w := httptest.NewRecorder()
	b.f.e.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.Name == pageCookie {
			b.cookie = c
		}
	}
	return w
}

func (b *browser) get(q url.Values) *httptest.ResponseRecorder {
	return b.do(httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+q.Encode(), nil))
}

func (b *browser) post(path string, form url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(r)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("page %d without a CSRF field:\n%s", w.Code, w.Body.String())
	}
	return m[1]
}

// pageQuery is a payment authorization request that names no customer.
func pageQuery() url.Values {
	q := authorizeQuery()
	q.Del("psu")
	q.Del("debtor_account")
	return q
}

// signIn opens the page for q and signs in as user; it returns the consent
// page's answer and its CSRF token.
func (b *browser) signIn(q url.Values, user, password string) (*httptest.ResponseRecorder, string) {
	b.t.Helper()
	w := b.get(q)
	if w.Code != http.StatusOK {
		b.t.Fatalf("authorize = %d, want the sign-in page:\n%s", w.Code, w.Body.String())
	}
	token := csrfOf(b.t, w)
	w = b.post("/oauth2/authorize/signin", url.Values{"csrf": {token}, "username": {user}, "password": {password}})
	if w.Code == http.StatusOK {
		token = csrfOf(b.t, w) // a sign-in renews the session and its token
	}
	return w, token
}

// A sign-in renews the session: the cookie and the token from before it
// (planted, or seen by someone else) decide nothing.
func TestConsentPageSignInRenewsTheSession(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	w := b.get(pageQuery())
	before, oldToken := b.cookie, csrfOf(t, w)
	w = b.post("/oauth2/authorize/signin", url.Values{"csrf": {oldToken}, "username": {"alice"}, "password": {DefaultPassword}})
	if w.Code != http.StatusOK || b.cookie.Value == before.Value || csrfOf(t, w) == oldToken {
		t.Fatalf("sign-in = %d; cookie renewed %v; token renewed %v", w.Code, b.cookie.Value != before.Value, csrfOf(t, w) != oldToken)
	}
	stale := &browser{t: t, f: f, cookie: before}
	if w := stale.post("/oauth2/authorize/decision", url.Values{"csrf": {oldToken}, "action": {"approve"}, "debtor_account": {"acc-alice"}}); w.Code != http.StatusForbidden {
		t.Fatalf("decision with the session from before the sign-in = %d, want 403", w.Code)
	}
	if f.customers.status("pay-1") != openbanking.StatusAwaitingAuthorisation {
		t.Fatal("the stale session changed the consent")
	}
}

func TestConsentPageCookieAndHeaders(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	w := b.get(pageQuery())
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("authorize without psu = %d %q, want the HTML page", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, want := range []string{`name="viewport"`, `<label for="username">`, `<label for="password">`, `id="password"`} {
		if !strings.Contains(body, want) {
			t.Errorf("sign-in page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Error("the page holds a script")
	}
	c := b.cookie
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/oauth2/" || !c.Secure {
		t.Fatalf("cookie = %+v, want HttpOnly, SameSite=Strict, Path=/oauth2/, Secure (https issuer)", c)
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers = %v", w.Header())
	}
	if f.consents.callCount() != 0 {
		t.Error("showing the page authorised something")
	}
}

func TestConsentPageWrongPassword(t *testing.T) {
	f := newPageFixture(t)
	for _, tc := range []struct{ user, password string }{{"alice", "wrong"}, {"mallory", DefaultPassword}, {"", DefaultPassword}} {
		b := &browser{t: t, f: f}
		w, _ := b.signIn(pageQuery(), tc.user, tc.password)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "wrong password") {
			t.Errorf("sign in %q/%q = %d, want 401 with the form again", tc.user, tc.password, w.Code)
		}
		if strings.Contains(w.Body.String(), `id="approve"`) {
			t.Errorf("sign in %q/%q shows the consent", tc.user, tc.password)
		}
	}
	if f.consents.callCount() != 0 || f.customers.status("pay-1") != openbanking.StatusAwaitingAuthorisation {
		t.Error("a failed sign-in changed the consent")
	}
}

func TestConsentPageSignInTriesBounded(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	w := b.get(pageQuery())
	token := csrfOf(t, w)
	for i := 0; i < maxSignInTries; i++ {
		if w := b.post("/oauth2/authorize/signin", url.Values{"csrf": {token}, "username": {"alice"}, "password": {"guess"}}); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d = %d, want 401", i+1, w.Code)
		}
	}
	w = b.post("/oauth2/authorize/signin", url.Values{"csrf": {token}, "username": {"alice"}, "password": {DefaultPassword}})
	if w.Code != http.StatusForbidden {
		t.Fatalf("sign in after %d failures = %d, want 403 (session over)", maxSignInTries, w.Code)
	}
}

func TestConsentPageCSRF(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	w, token := b.signIn(pageQuery(), "alice", DefaultPassword)
	if w.Code != http.StatusOK {
		t.Fatalf("sign in = %d", w.Code)
	}
	approve := url.Values{"action": {"approve"}, "debtor_account": {"acc-alice"}}
	for name, tok := range map[string][]string{"missing": nil, "empty": {""}, "wrong": {token[:len(token)-2] + "xx"}} {
		form := url.Values{}
		for k, v := range approve {
			form[k] = v
		}
		if tok != nil {
			form["csrf"] = tok
		}
		if w := b.post("/oauth2/authorize/decision", form); w.Code != http.StatusForbidden {
			t.Errorf("%s token: decision = %d, want 403", name, w.Code)
		}
		if w := b.post("/oauth2/authorize/signin", url.Values{"csrf": tok, "username": {"alice"}, "password": {DefaultPassword}}); w.Code != http.StatusForbidden {
			t.Errorf("%s token: sign in = %d, want 403", name, w.Code)
		}
	}
	// The right token without the session cookie (another browser, or a
	// cross-site form the cookie is not sent with).
	other := &browser{t: t, f: f}
	if w := other.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"approve"}, "debtor_account": {"acc-alice"}}); w.Code != http.StatusForbidden {
		t.Errorf("no cookie: decision = %d, want 403", w.Code)
	}
	if f.consents.callCount() != 0 || f.customers.status("pay-1") != openbanking.StatusAwaitingAuthorisation {
		t.Error("a refused post changed the consent")
	}
}

func TestConsentPageApprove(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	w, token := b.signIn(pageQuery(), "alice", DefaultPassword)
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, "12.50 GBP") || !strings.Contains(body, "60000000000002") ||
		!strings.Contains(body, "sandbox-tpp") || !strings.Contains(body, `<label for="debtor_account">`) {
		t.Fatalf("consent page = %d:\n%s", w.Code, body)
	}
	if !strings.Contains(body, `value="acc-alice"`) || strings.Contains(body, `value="acc-alice-eur"`) {
		t.Errorf("the page must offer alice's GBP accounts only:\n%s", body)
	}
	w = b.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"approve"}, "debtor_account": {"acc-alice"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("approve = %d, want 303:\n%s", w.Code, w.Body.String())
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), testRedirect+"?") {
		t.Fatalf("Location = %q", w.Header().Get("Location"))
	}
	q := loc.Query()
	if q.Get("code") == "" || q.Get("state") != "xyz" || q.Get("iss") != testPublicURL {
		t.Fatalf("redirect query = %v", q)
	}
	if got := f.consents.calls; len(got) != 1 || got[0] != (authoriseCall{"pay-1", "alice", "acc-alice"}) {
		t.Fatalf("AuthoriseConsent calls = %v", got)
	}
	if f.customers.status("pay-1") != openbanking.StatusAuthorised {
		t.Fatal("consent not authorised")
	}
	tok := f.mustToken(exchangeForm(q.Get("code")))
	if tok.AccessToken == "" || tok.ConsentID != "pay-1" {
		t.Fatalf("token = %+v", tok)
	}
	if info := f.introspect(tok.AccessToken); info.Subject != "alice" {
		t.Errorf("token subject = %q, want alice", info.Subject)
	}
	// The decision is made once.
	if w := b.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"approve"}, "debtor_account": {"acc-alice"}}); w.Code != http.StatusForbidden {
		t.Errorf("second decision = %d, want 403", w.Code)
	}
}

func TestConsentPageReject(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	_, token := b.signIn(pageQuery(), "alice", DefaultPassword)
	w := b.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"reject"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("reject = %d, want 303", w.Code)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	q := loc.Query()
	if q.Get("error") != "access_denied" || q.Get("state") != "xyz" || q.Get("iss") != testPublicURL || q.Has("code") {
		t.Fatalf("redirect query = %v", q)
	}
	if f.customers.status("pay-1") != openbanking.StatusRejected || f.consents.callCount() != 0 {
		t.Fatal("consent not rejected, or authorised")
	}
}

func TestConsentPageRefusesAnotherCustomersAccount(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	_, token := b.signIn(pageQuery(), "alice", DefaultPassword)
	for _, acct := range []string{"acc-bob", "acc-alice-eur", "", "nope"} {
		w := b.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"approve"}, "debtor_account": {acct}})
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "your own accounts") {
			t.Errorf("approve from %q = %d, want 400 and the page again", acct, w.Code)
		}
	}
	if f.consents.callCount() != 0 || f.customers.status("pay-1") != openbanking.StatusAwaitingAuthorisation {
		t.Fatal("another customer's account was used")
	}
	// The session survives: alice can still choose her own.
	if w := b.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"approve"}, "debtor_account": {"acc-alice"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("approve from alice's own = %d", w.Code)
	}
}

func TestConsentPageDecisionNeedsSignIn(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	token := csrfOf(t, b.get(pageQuery()))
	if w := b.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"approve"}, "debtor_account": {"acc-alice"}}); w.Code != http.StatusForbidden {
		t.Fatalf("decision before sign-in = %d, want 403", w.Code)
	}
	if f.consents.callCount() != 0 {
		t.Fatal("authorised without a customer")
	}
}

func TestConsentPageGetChangesNothing(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	_, _ = b.signIn(pageQuery(), "alice", DefaultPassword)
	for _, path := range []string{"/oauth2/authorize/decision?action=approve&debtor_account=acc-alice", "/oauth2/authorize/signin?username=alice&password=sandbox", "/oauth2/authorize?" + pageQuery().Encode()} {
		w := b.do(httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code == http.StatusSeeOther {
			t.Errorf("GET %s = 303", path)
		}
	}
	if f.consents.callCount() != 0 || f.customers.status("pay-1") != openbanking.StatusAwaitingAuthorisation || len(f.customers.rejected) != 0 {
		t.Fatal("a GET changed the consent")
	}
}

func TestConsentPageEscapes(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	w, _ := b.signIn(pageQuery(), "alice", DefaultPassword)
	body := w.Body.String()
	if strings.Contains(body, "<script") || strings.Contains(body, "<b>drinks") {
		t.Fatalf("creditor name or reference not escaped:\n%s", body)
	}
	if !strings.Contains(body, "Bob &lt;script&gt;") || !strings.Contains(body, "Dinner &amp; &lt;b&gt;drinks") {
		t.Fatalf("escaped creditor name or reference missing:\n%s", body)
	}
}

func TestConsentPageAccountAccess(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	q := pageQuery()
	q.Set("consent_id", "acc-1")
	q.Set("scope", "accounts")
	w, token := b.signIn(q, "bob", DefaultPassword)
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, "your balances") || !strings.Contains(body, "2 January 2027") || strings.Contains(body, "debtor_account") {
		t.Fatalf("account access page = %d:\n%s", w.Code, body)
	}
	w = b.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"approve"}})
	if w.Code != http.StatusSeeOther || f.customers.status("acc-1") != openbanking.StatusAuthorised {
		t.Fatalf("approve = %d, status %s", w.Code, f.customers.status("acc-1"))
	}
}

func TestConsentPageAnotherClientsConsent(t *testing.T) {
	f := newPageFixture(t)
	b := &browser{t: t, f: f}
	q := pageQuery()
	q.Set("consent_id", "pay-2") // sandbox-tpp-2's
	w := b.get(q)
	if w.Code != http.StatusSeeOther || b.cookie != nil {
		t.Fatalf("another client's consent = %d (cookie %v), want the error redirect and no session", w.Code, b.cookie)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	if loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("redirect = %s", loc)
	}
}

func TestConsentPageWithPAR(t *testing.T) {
	f := newPageFixture(t)
	form := pageQuery()
	form.Del("client_id")
	w := f.post("/oauth2/par", form, withHeader("Authorization", basic("sandbox-tpp", "sandbox-secret")))
	var par parAnswer
	decodeInto(t, w.Body.Bytes(), &par)
	if w.Code != http.StatusCreated {
		t.Fatalf("par = %d %s", w.Code, w.Body.String())
	}
	b := &browser{t: t, f: f}
	_, token := b.signIn(url.Values{"client_id": {"sandbox-tpp"}, "request_uri": {par.RequestURI}}, "alice", DefaultPassword)
	w = b.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"approve"}, "debtor_account": {"acc-alice"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("approve = %d", w.Code)
	}
	loc, _ := url.Parse(w.Header().Get("Location"))
	f.mustToken(exchangeForm(loc.Query().Get("code")))
}

func TestConsentPageAutoApprove(t *testing.T) {
	// Scripted approval stays as it was while on.
	f := newPageFixture(t)
	if w := f.authorize(authorizeQuery(), false); w.Code != http.StatusSeeOther || f.consents.callCount() != 1 {
		t.Fatalf("authorize with psu = %d, want the scripted 303", w.Code)
	}
	// Off: even a request naming psu gets the page.
	g := newPageFixture(t, func(_ *security.Config, c *Config) { c.NoAutoApprove = true })
	b := &browser{t: t, f: g}
	w := b.get(authorizeQuery())
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="password"`) || g.consents.callCount() != 0 {
		t.Fatalf("authorize with psu, auto-approval off = %d, want the sign-in page", w.Code)
	}
	// JSON callers without psu keep the scripted refusal.
	if w := f.authorize(pageQuery(), true); w.Code != http.StatusBadRequest {
		t.Fatalf("JSON authorize without psu = %d, want 400", w.Code)
	}
}

func TestConsentPageSessionsBounded(t *testing.T) {
	now := time.Unix(0, 0)
	p := newPageSessions(func() time.Time { return now })
	for i := 0; i < maxPageSessions; i++ {
		if _, ok := p.put(&pageSession{}); !ok {
			t.Fatalf("put %d refused", i)
		}
	}
	if _, ok := p.put(&pageSession{}); ok {
		t.Fatal("put past the cap accepted")
	}
	now = now.Add(pageLifetime)
	if _, ok := p.put(&pageSession{}); !ok {
		t.Fatal("expired sessions were not dropped")
	}
}
