package integration

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// chromium finds a Chromium to drive: absent, the test fails under CI=true
// (.ci/run installs it) and is skipped otherwise.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal("no Chromium: CI must install it (apt-get install chromium)")
	}
	t.Skip("no Chromium installed")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, for a closed
// network (nothing fetched in the background), and returns its context.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoSandbox, // CI runs as root
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(430, 932),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// callback is the aggregator's redirect URI: it records each query.
func callback(t *testing.T) (string, <-chan url.Values) {
	t.Helper()
	got := make(chan url.Values, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" { // the browser asks for /favicon.ico too
			http.NotFound(w, r)
			return
		}
		got <- r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>Back at the app</title><p id=done>Back at the app</p>"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/callback", got
}

func awaitCallback(t *testing.T, got <-chan url.Values) url.Values {
	t.Helper()
	select {
	case q := <-got:
		return q
	case <-time.After(15 * time.Second):
		t.Fatal("the browser never came back to the redirect URI")
		return nil
	}
}

// TestConsentPageInBrowser drives the customer journey in a real browser:
// the aggregator sends alice to the consent page, she signs in, picks her
// account and approves; the aggregator exchanges the code (DPoP) and books
// the payment. A second consent is rejected on the page.
func TestConsentPageInBrowser(t *testing.T) {
	chromium(t)
	s := startServer(t)
	sb := newSandbox(t, s)
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	redirectURI, got := callback(t)
	ctx := newBrowser(t)

	init := initiation(bob, "42.50", "bikes-1")
	shop := "Bob's Bikes"
	init.CreditorAccount.Name = &shop
	ref := "Order 1042"
	init.RemittanceInformation = &obapi.OBRemittanceInformation1{Reference: &ref}
	consentID := sb.createConsent(t, init)

	pkce, err := client.NewPKCE()
	if err != nil {
		t.Fatal(err)
	}
	auth := client.AuthorizeRequest{RedirectURI: redirectURI, Scope: "payments", State: "st-approve", PKCE: pkce, ConsentID: consentID}
	err = chromedp.Do(ctx,
		chromedp.Navigate(sb.tpp.AuthorizeURL(auth)),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "sandbox"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.SetValue(chromedp.ID("debtor_account"), alice.AccountId),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("approve"))); err != nil {
		t.Fatalf("browser: %v", err)
	}
	for _, want := range []string{"42.50 GBP", shop, bob.Account[0].Identification, ref, "sandbox-tpp", "alice"} {
		if !strings.Contains(page, want) {
			t.Errorf("the consent page does not show %q:\n%s", want, page)
		}
	}
	if os.Getenv("PAYMENTS_UPDATE_SCREENSHOT") != "" {
		if err := os.WriteFile(filepath.Join("..", "docs", "consent-page.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	q := awaitCallback(t, got)
	if q.Get("code") == "" || q.Get("state") != "st-approve" || q.Get("iss") != s.URL {
		t.Fatalf("redirect query = %v, want code, state and iss", q)
	}
	code := q.Get("code")
	tok, err := sb.tpp.Exchange(sb.ctx, code, redirectURI, pkce)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	psu, err := client.New(s.URL, sb.tppKey, sb.tpp.RefreshingSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	res := sb.pay(t, psu, consentID, init, client.NewIdempotencyKey())
	if res.JSON201 == nil {
		t.Fatalf("payment = %d %s", res.StatusCode(), res.Body)
	}
	if st := res.JSON201.Data.Status; st != "AcceptedCreditSettlementCompleted" {
		t.Errorf("payment status = %s", st)
	}
	assertBalanced(t, sb)

	// The second journey: alice rejects.
	// The creditor's name is the aggregator's text: the page shows it as text.
	init2 := initiation(bob, "5.00", "bikes-2")
	tricky := `Bob <script>document.title="owned"</script><img src=x onerror=alert(1)>`
	init2.CreditorAccount.Name = &tricky
	consent2 := sb.createConsent(t, init2)
	pkce2, _ := client.NewPKCE()
	auth2 := client.AuthorizeRequest{RedirectURI: redirectURI, Scope: "payments", State: "st-reject", PKCE: pkce2, ConsentID: consent2}
	err = chromedp.Do(ctx,
		chromedp.Navigate(sb.tpp.AuthorizeURL(auth2)),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "sandbox"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("reject")),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	page, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil || !strings.Contains(page, tricky) || title == "owned" {
		t.Fatalf("the creditor name was not shown as text (title %q, %v):\n%s", title, err, page)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("reject"))); err != nil {
		t.Fatalf("browser: %v", err)
	}
	q = awaitCallback(t, got)
	if q.Get("error") != "access_denied" || q.Get("state") != "st-reject" || q.Get("iss") != s.URL || q.Has("code") {
		t.Fatalf("redirect query = %v, want access_denied, state and iss", q)
	}
	c2, err := sb.tppAPI.GetDomesticPaymentConsentsConsentIdWithResponse(sb.ctx, consent2, &obapi.GetDomesticPaymentConsentsConsentIdParams{})
	if err != nil || c2.JSON200 == nil {
		t.Fatalf("read consent: %v", err)
	}
	if c2.JSON200.Data.Status != "Rejected" {
		t.Fatalf("consent status = %s, want Rejected", c2.JSON200.Data.Status)
	}
	if logs := s.Logs(); strings.Contains(logs, "password=") || strings.Contains(logs, code) || strings.Contains(logs, tok.AccessToken) {
		t.Error("the log holds a password, the code or the token")
	}
}
