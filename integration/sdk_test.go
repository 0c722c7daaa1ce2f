package integration

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// sdkWorld is the sandbox seen through the SDK: one aggregator key, the back office, the
// aggregator's client, and a payer with a funded account.
type sdkWorld struct {
	base     string
	key      *client.Key
	admin    *client.Client
	tpp      *client.TokenClient
	api      *client.Client // sandbox-tpp, client credentials, scope payments
	payer    string
	debtor   obapi.LedgerAccount
	creditor obapi.LedgerAccount
}

func newSDKWorld(t *testing.T, ctx context.Context, base string, opening string) *sdkWorld {
	t.Helper()
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		t.Fatal(err)
	}
	w := &sdkWorld{base: base, key: key, payer: "alice-sdk"}
	adminTokens, err := client.NewTokenClient(client.TokenConfig{BaseURL: base, ClientID: "sandbox-admin", ClientSecret: "admin-secret", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if w.admin, err = client.New(base, key, adminTokens.ClientCredentialsSource("ledger:admin consents:admin")); err != nil {
		t.Fatal(err)
	}
	open := func(owner string, balance *string) obapi.LedgerAccount {
		res, err := w.admin.CreateLedgerAccountWithResponse(ctx, &obapi.CreateLedgerAccountParams{},
			obapi.CreateLedgerAccountRequest{Owner: owner, Currency: "GBP", Nickname: owner, OpeningBalance: balance})
		if err != nil || res.JSON201 == nil {
			t.Fatalf("open account for %s: %v %s", owner, err, body(res))
		}
		return *res.JSON201
	}
	w.debtor = open(w.payer, &opening)
	w.creditor = open("bob-sdk", nil)
	if w.tpp, err = client.NewTokenClient(client.TokenConfig{BaseURL: base, ClientID: "sandbox-tpp", ClientSecret: "sandbox-secret", Key: key}); err != nil {
		t.Fatal(err)
	}
	if w.api, err = client.New(base, key, w.tpp.ClientCredentialsSource("payments")); err != nil {
		t.Fatal(err)
	}
	return w
}

// body returns a typed response's body for a failure message; res may be a nil pointer when
// the call itself failed.
func body(res interface{ GetBody() []byte }) string {
	if v := reflect.ValueOf(res); !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return ""
	}
	return string(res.GetBody())
}

// pay runs one whole payment through the SDK and counts its API calls.
func (w *sdkWorld) pay(ctx context.Context, n int, calls *atomic.Int64) error {
	initiation := obapi.OBWriteDomestic2DataInitiation{
		InstructionIdentification: fmt.Sprintf("sdk-%d", n),
		EndToEndIdentification:    fmt.Sprintf("sdk-%d", n),
		InstructedAmount:          obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: "1.00", Currency: "GBP"},
		CreditorAccount:           obapi.OBCashAccountCreditor3{SchemeName: w.creditor.Account[0].SchemeName, Identification: w.creditor.Account[0].Identification},
	}
	calls.Add(1)
	consent, err := w.api.CreateDomesticPaymentConsentsWithResponse(ctx,
		&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: initiation}})
	if err != nil || consent.JSON201 == nil {
		return fmt.Errorf("payment %d: consent: %v %s", n, err, body(consent))
	}
	id := consent.JSON201.Data.ConsentId
	pkce, err := client.NewPKCE()
	if err != nil {
		return err
	}
	auth := client.AuthorizeRequest{RedirectURI: "http://127.0.0.1/cb", Scope: "payments", PKCE: pkce, ConsentID: id, PSU: w.payer, DebtorAccount: w.debtor.AccountId}
	code, err := w.tpp.SandboxAuthorize(ctx, auth)
	if err != nil {
		return fmt.Errorf("payment %d: authorize: %w", n, err)
	}
	tok, err := w.tpp.Exchange(ctx, code, auth.RedirectURI, pkce)
	if err != nil {
		return fmt.Errorf("payment %d: exchange: %w", n, err)
	}
	psu, err := client.New(w.base, w.key, w.tpp.RefreshingSource(tok))
	if err != nil {
		return err
	}
	calls.Add(1)
	funds, err := psu.GetDomesticPaymentConsentsConsentIdFundsConfirmationWithResponse(ctx, id, &obapi.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams{})
	if err != nil || funds.JSON200 == nil {
		return fmt.Errorf("payment %d: funds confirmation: %v %s", n, err, body(funds))
	}
	calls.Add(1)
	payment, err := psu.CreateDomesticPaymentsWithResponse(ctx,
		&obapi.CreateDomesticPaymentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: id, Initiation: initiation}})
	if err != nil || payment.JSON201 == nil {
		return fmt.Errorf("payment %d: pay: %v %s", n, err, body(payment))
	}
	if s := payment.JSON201.Data.Status; s != "AcceptedSettlementCompleted" && s != "AcceptedCreditSettlementCompleted" {
		return fmt.Errorf("payment %d: status %s", n, s)
	}
	calls.Add(1)
	got, err := psu.GetDomesticPaymentsDomesticPaymentIdWithResponse(ctx, payment.JSON201.Data.DomesticPaymentId, &obapi.GetDomesticPaymentsDomesticPaymentIdParams{})
	if err != nil || got.JSON200 == nil {
		return fmt.Errorf("payment %d: read: %v %s", n, err, body(got))
	}
	return nil
}

// The SDK drives the whole payment flow with a 1 s nonce window: 200 sequential API calls
// (50 payments of 4 calls) and 50 concurrent payments, and no error reaches the caller.
func TestSDKPaymentsWithShortNonceWindow(t *testing.T) {
	s := startServer(t, "PAYMENTS_DPOP_NONCE_WINDOW=1s")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w := newSDKWorld(t, ctx, s.URL, "1000.00")
	var calls atomic.Int64

	for i := range 50 {
		if i%10 == 9 {
			// Idle for more than two windows: the nonce the SDK holds expires, so the next
			// call must be challenged and retried.
			time.Sleep(2100 * time.Millisecond)
		}
		if err := w.pay(ctx, i, &calls); err != nil {
			t.Fatal(err)
		}
	}
	if got := calls.Load(); got != 200 {
		t.Fatalf("sequential phase made %d API calls, want 200", got)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 50; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.pay(ctx, i, &calls); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	report, err := w.admin.ReconcileLedgerWithResponse(ctx, &obapi.ReconcileLedgerParams{})
	if err != nil || report.JSON200 == nil || !report.JSON200.Balanced || len(report.JSON200.Drift) != 0 {
		t.Errorf("reconcile: %v %s", err, body(report))
	}
	challenges := strings.Count(s.Logs(), "use_dpop_nonce")
	if challenges < 5 {
		t.Errorf("the server logged %d nonce challenges, want at least 5: the nonce dance was not exercised", challenges)
	}
	t.Logf("%d API calls, 100 payments, %d nonce challenges in the server log", calls.Load(), challenges)
}

// The sandbox command and the example program run against the real server.
func TestSDKExamplesRun(t *testing.T) {
	s := startServer(t)
	tests := []struct {
		name string
		cmd  *exec.Cmd
		want []string
	}{
		{"payments sandbox pay", exec.Command(binary, "sandbox", "pay", "--url", s.URL, "--amount", "12.34"), []string{"done: the payment is booked"}},
		{"payments sandbox pay --version 4.0", exec.Command(binary, "sandbox", "pay", "--url", s.URL, "--version", "4.0"), []string{": RCVD\n", "read back: ACCC\n", "details: ACCC", "balance ITAV: Credit 90.00 GBP", "done: the payment is booked"}},
		{"examples/sandbox-payment", exec.Command("go", "run", "../examples/sandbox-payment", "-url", s.URL), []string{"SettlementCompleted"}},
		{"examples/sandbox-payment -version 4.0", exec.Command("go", "run", "../examples/sandbox-payment", "-url", s.URL, "-version", "4.0"), []string{"consent ", ": AWAU\n", ": RCVD\n", "read back: ACCC\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.cmd.CombinedOutput()
			if found := contains(string(out), tc.want...); err != nil || len(found) != len(tc.want) {
				t.Errorf("%s: %v; printed %q of %q:\n%s", tc.name, err, found, tc.want, out)
			}
		})
	}
}

// TestSDKErrorsNameTheCause runs the SDK's mistakes of a first hour against the service: a
// base URL with the API prefix, a client-credentials token on a payment, a debtor account that
// is not the customer's, a payment the debtor cannot fund. Each error says which.
func TestSDKErrorsNameTheCause(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	w := newSDKWorld(t, ctx, s.URL, "5.00")

	// The base URL names the API prefix, which the operations add again.
	wrong, err := client.New(s.URL+"/open-banking/v3.1", w.key, w.tpp.ClientCredentialsSource("payments"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := wrong.GetDomesticPaymentConsentsConsentIdWithResponse(ctx, "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a", &obapi.GetDomesticPaymentConsentsConsentIdParams{})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.ResponseError(res.HTTPResponse, res.Body); !errors.Is(err, client.ErrNoSuchEndpoint) ||
		!strings.Contains(err.Error(), "check the client's BaseURL (it should be the service's PAYMENTS_PUBLIC_URL)") {
		t.Errorf("wrong base URL: %v, want ErrNoSuchEndpoint", err)
	}

	initiation := obapi.OBWriteDomestic2DataInitiation{
		InstructionIdentification: "sdk-errors", EndToEndIdentification: "sdk-errors",
		InstructedAmount: obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: "10.00", Currency: "GBP"},
		CreditorAccount:  obapi.OBCashAccountCreditor3{SchemeName: w.creditor.Account[0].SchemeName, Identification: w.creditor.Account[0].Identification},
	}
	consent := func() string {
		t.Helper()
		res, err := w.api.CreateDomesticPaymentConsentsWithResponse(ctx, &obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
			obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: initiation}})
		if err != nil || res.JSON201 == nil {
			t.Fatalf("consent: %v %s", err, body(res))
		}
		return res.JSON201.Data.ConsentId
	}
	payWith := func(api *client.Client, consentID string) (*obapi.CreateDomesticPaymentsResponse, error) {
		t.Helper()
		res, err := api.CreateDomesticPaymentsWithResponse(ctx, &obapi.CreateDomesticPaymentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
			obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: consentID, Initiation: initiation}})
		if err != nil {
			t.Fatal(err)
		}
		return res, client.ResponseError(res.HTTPResponse, res.Body)
	}

	// The aggregator's own token where the customer's is needed.
	id := consent()
	if _, err := payWith(w.api, id); !errors.Is(err, client.ErrCustomerTokenRequired) ||
		!strings.Contains(err.Error(), "this call needs a token the customer authorised (authorization code), not a client-credentials token") {
		t.Errorf("client-credentials token: %v, want ErrCustomerTokenRequired", err)
	}

	// The customer picks another customer's account.
	pkce, err := client.NewPKCE()
	if err != nil {
		t.Fatal(err)
	}
	auth := client.AuthorizeRequest{RedirectURI: "http://127.0.0.1/cb", Scope: "payments", PKCE: pkce, ConsentID: id,
		PSU: w.payer, DebtorAccount: w.creditor.AccountId}
	var oe *client.OAuthError
	if _, err := w.tpp.SandboxAuthorize(ctx, auth); !errors.As(err, &oe) || oe.Description != "debtor_account is not an account of this psu" {
		t.Errorf("another customer's account: %v", err)
	}

	// The customer's 5.00 cannot fund 10.00: 201 Rejected.
	auth.DebtorAccount = w.debtor.AccountId
	code, err := w.tpp.SandboxAuthorize(ctx, auth)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := w.tpp.Exchange(ctx, code, auth.RedirectURI, pkce)
	if err != nil {
		t.Fatal(err)
	}
	psu, err := client.New(s.URL, w.key, client.StaticToken(tok.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	res2, err := payWith(psu, id)
	if err != nil || res2.JSON201 == nil {
		t.Fatalf("payment: %v %s", err, body(res2))
	}
	if err := client.CheckPayment(res2.JSON201); !errors.Is(err, client.ErrInsufficientFunds) {
		t.Errorf("payment %s: CheckPayment = %v, want ErrInsufficientFunds", res2.JSON201.Data.Status, err)
	}
}
