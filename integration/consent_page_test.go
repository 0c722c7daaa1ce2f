package integration

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// pageAgent is a browser without JavaScript: a cookie jar, and redirects
// to the aggregator left unfollowed.
type pageAgent struct {
	t    *testing.T
	http *http.Client
	base string
}

func newPageAgent(t *testing.T, base string) *pageAgent {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &pageAgent{t: t, base: base, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (a *pageAgent) read(res *http.Response, err error) (*http.Response, string) {
	a.t.Helper()
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (a *pageAgent) get(u string) (*http.Response, string) { return a.read(a.http.Get(u)) }

func (a *pageAgent) post(path string, form url.Values) (*http.Response, string) {
	return a.read(a.http.PostForm(a.base+path, form))
}

func csrfIn(t *testing.T, page string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in:\n%s", page)
	}
	return m[1]
}

// TestConsentPageWithoutAutoApproval runs the page against the real service
// with PAYMENTS_DEV_AUTH_AUTO_APPROVE=false: a request naming psu gets the
// page too, a wrong password and another customer's account are refused
// with nothing authorised, and alice's own account is accepted.
func TestConsentPageWithoutAutoApproval(t *testing.T) {
	s := startServer(t, "PAYMENTS_DEV_AUTH_AUTO_APPROVE=false", "PAYMENTS_DEV_AUTH_PASSWORD=open-sesame")
	sb := newSandbox(t, s)
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "10.00")
	consentID := sb.createConsent(t, initiation(bob, "12.00", "page-1"))
	pkce, err := client.NewPKCE()
	if err != nil {
		t.Fatal(err)
	}
	auth := client.AuthorizeRequest{RedirectURI: "http://127.0.0.1/callback", Scope: "payments", State: "s1", PKCE: pkce,
		ConsentID: consentID, PSU: "alice", DebtorAccount: alice.AccountId}
	a := newPageAgent(t, s.URL)
	res, page := a.get(sb.tpp.AuthorizeURL(auth))
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="password"`) {
		t.Fatalf("authorize with psu, auto-approval off = %d, want the sign-in page:\n%s", res.StatusCode, page)
	}
	token := csrfIn(t, page)
	if res, _ := a.post("/oauth2/authorize/signin", url.Values{"csrf": {token}, "username": {"alice"}, "password": {"sandbox"}}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the default password while another is set = %d, want 401", res.StatusCode)
	}
	res, page = a.post("/oauth2/authorize/signin", url.Values{"csrf": {token}, "username": {"alice"}, "password": {"open-sesame"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "12.00 GBP") || !strings.Contains(page, alice.AccountId) {
		t.Fatalf("sign in = %d:\n%s", res.StatusCode, page)
	}
	if strings.Contains(page, bob.AccountId) {
		t.Fatal("the page offers bob's account to alice")
	}
	token = csrfIn(t, page) // the sign-in renewed the session and its token
	res, _ = a.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"approve"}, "debtor_account": {bob.AccountId}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("approve from bob's account = %d, want 400", res.StatusCode)
	}
	if st := consentStatus(t, sb, consentID); st != "AwaitingAuthorisation" {
		t.Fatalf("consent = %s after a refused approval", st)
	}
	res, _ = a.post("/oauth2/authorize/decision", url.Values{"csrf": {token}, "action": {"approve"}, "debtor_account": {alice.AccountId}})
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("iss") != s.URL {
		t.Fatalf("approve = %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := sb.tpp.Exchange(sb.ctx, loc.Query().Get("code"), auth.RedirectURI, pkce); err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if st := consentStatus(t, sb, consentID); st != "Authorised" {
		t.Fatalf("consent = %s, want Authorised", st)
	}
}

func consentStatus(t *testing.T, sb *sandbox, id string) string {
	t.Helper()
	res, err := sb.tppAPI.GetDomesticPaymentConsentsConsentIdWithResponse(sb.ctx, id, &obapi.GetDomesticPaymentConsentsConsentIdParams{})
	if err != nil || res.JSON200 == nil {
		t.Fatalf("read consent: %v", err)
	}
	return string(res.JSON200.Data.Status)
}
