package integration

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// sandbox is a running server with its sandbox clients: the back-office admin
// and two aggregators, each with its own DPoP key.
type sandbox struct {
	s      *server
	ctx    context.Context
	admin  *client.Client
	tpp    *client.TokenClient
	tppKey *client.Key
	tppAPI *client.Client // client-credentials, scopes accounts payments
	tpp2   *client.Client // the second aggregator
}

func newSandbox(t *testing.T, s *server) *sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	sb := &sandbox{s: s, ctx: ctx}
	sb.admin = sb.clientFor(t, "sandbox-admin", "admin-secret", "ledger:admin", "consents:admin")
	sb.tppKey = mustKey(t, client.ES256)
	sb.tpp = mustTokenClient(t, s.URL, "sandbox-tpp", "sandbox-secret", sb.tppKey)
	api, err := client.New(s.URL, sb.tppKey, sb.tpp.ClientCredentialsSource("accounts", "payments"))
	if err != nil {
		t.Fatal(err)
	}
	sb.tppAPI = api
	sb.tpp2 = sb.clientFor(t, "sandbox-tpp-2", "sandbox-secret-2", "accounts", "payments")
	return sb
}

func mustKey(t *testing.T, alg client.Algorithm) *client.Key {
	t.Helper()
	k, err := client.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustTokenClient(t *testing.T, base, id, secret string, key *client.Key) *client.TokenClient {
	t.Helper()
	tc, err := client.NewTokenClient(client.TokenConfig{BaseURL: base, ClientID: id, ClientSecret: secret, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

func (sb *sandbox) clientFor(t *testing.T, id, secret string, scopes ...string) *client.Client {
	t.Helper()
	key := mustKey(t, client.ES256)
	tc := mustTokenClient(t, sb.s.URL, id, secret, key)
	c, err := client.New(sb.s.URL, key, tc.ClientCredentialsSource(scopes...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openAccount opens a funded GBP account for psu through the back office.
func (sb *sandbox) openAccount(t *testing.T, psu, opening string) obapi.LedgerAccount {
	t.Helper()
	body := obapi.CreateLedgerAccountRequest{Owner: psu, Currency: "GBP", Nickname: psu + " current"}
	if opening != "" {
		body.OpeningBalance = &opening
	}
	res, err := sb.admin.CreateLedgerAccountWithResponse(sb.ctx, &obapi.CreateLedgerAccountParams{}, body)
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON201 == nil {
		t.Fatalf("open account = %d %s", res.StatusCode(), res.Body)
	}
	return *res.JSON201
}

func initiation(creditor obapi.LedgerAccount, amount, ref string) obapi.OBWriteDomestic2DataInitiation {
	name := "Creditor"
	return obapi.OBWriteDomestic2DataInitiation{
		InstructionIdentification: ref,
		EndToEndIdentification:    ref,
		InstructedAmount:          obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: amount, Currency: "GBP"},
		CreditorAccount: obapi.OBCashAccountCreditor3{
			SchemeName:     obapi.OBExternalAccountIdentification4Code(creditor.Account[0].SchemeName),
			Identification: creditor.Account[0].Identification,
			Name:           &name,
		},
	}
}

// createConsent creates a payment consent as the first aggregator.
func (sb *sandbox) createConsent(t *testing.T, init obapi.OBWriteDomestic2DataInitiation) string {
	t.Helper()
	res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithResponse(sb.ctx,
		&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init}})
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON201 == nil {
		t.Fatalf("create consent = %d %s", res.StatusCode(), res.Body)
	}
	if res.JSON201.Data.Status != "AwaitingAuthorisation" {
		t.Fatalf("consent status = %s", res.JSON201.Data.Status)
	}
	return res.JSON201.Data.ConsentId
}

// psuClient has the PSU authorise the consent at the sandbox authorization
// server (authorization code + PKCE) and returns a client with the PSU token.
func (sb *sandbox) psuClient(t *testing.T, consentID, psu, debtor, scope string) *client.Client {
	t.Helper()
	tok, err := sb.authorize(consentID, psu, debtor, scope)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(sb.s.URL, sb.tppKey, sb.tpp.RefreshingSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// authorize has the PSU authorise the consent at the sandbox authorization
// server (authorization code + PKCE) and returns the PSU token, for a client
// of either API version; safe off the test goroutine.
func (sb *sandbox) authorize(consentID, psu, debtor, scope string) (*client.Token, error) {
	pkce, err := client.NewPKCE()
	if err != nil {
		return nil, err
	}
	auth := client.AuthorizeRequest{RedirectURI: "http://127.0.0.1/callback", Scope: scope, PKCE: pkce,
		ConsentID: consentID, PSU: psu, DebtorAccount: debtor}
	code, err := sb.tpp.SandboxAuthorize(sb.ctx, auth)
	if err != nil {
		return nil, fmt.Errorf("authorize %s: %w", consentID, err)
	}
	tok, err := sb.tpp.Exchange(sb.ctx, code, auth.RedirectURI, pkce)
	if err != nil {
		return nil, fmt.Errorf("exchange code for %s: %w", consentID, err)
	}
	return tok, nil
}

func (sb *sandbox) pay(t *testing.T, psu *client.Client, consentID string, init obapi.OBWriteDomestic2DataInitiation, key string) *obapi.CreateDomesticPaymentsResponse {
	t.Helper()
	res, err := psu.CreateDomesticPaymentsWithResponse(sb.ctx,
		&obapi.CreateDomesticPaymentsParams{XIdempotencyKey: key},
		obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: consentID, Initiation: init}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (sb *sandbox) reconcile(t *testing.T) obapi.ReconcileReport {
	t.Helper()
	res, err := sb.admin.ReconcileLedgerWithResponse(sb.ctx, &obapi.ReconcileLedgerParams{})
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil {
		t.Fatalf("reconcile = %d %s", res.StatusCode(), res.Body)
	}
	return *res.JSON200
}

func assertBalanced(t *testing.T, sb *sandbox) {
	t.Helper()
	r := sb.reconcile(t)
	if !r.Balanced || len(r.Drift) != 0 {
		t.Fatalf("reconcile = %+v, want balanced with no drift", r)
	}
	for _, tot := range r.Totals {
		if tot.Net != "0.00" && tot.Net != "0" {
			t.Errorf("currency %s nets to %s, want 0", tot.Currency, tot.Net)
		}
	}
}

func TestSandboxPaymentFlowEndToEnd(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")

	init := initiation(bob, "30.00", "inv-1")
	consentID := sb.createConsent(t, init)
	psu := sb.psuClient(t, consentID, "alice", alice.AccountId, "payments")

	res := sb.pay(t, psu, consentID, init, client.NewIdempotencyKey())
	if res.JSON201 == nil {
		t.Fatalf("payment = %d %s", res.StatusCode(), res.Body)
	}
	if got := res.JSON201.Data.Status; got != "AcceptedCreditSettlementCompleted" {
		t.Errorf("payment status = %s, want AcceptedCreditSettlementCompleted (internal creditor)", got)
	}
	get, err := sb.tppAPI.GetDomesticPaymentsDomesticPaymentIdWithResponse(sb.ctx, res.JSON201.Data.DomesticPaymentId,
		&obapi.GetDomesticPaymentsDomesticPaymentIdParams{})
	if err != nil || get.JSON200 == nil {
		t.Fatalf("get payment = %v %d %s", err, get.StatusCode(), get.Body)
	}
	if get.JSON200.Data.Status != res.JSON201.Data.Status {
		t.Errorf("payment status read back = %s", get.JSON200.Data.Status)
	}

	// The PSU's account information, through an account-access consent.
	perms := []obapi.OBExternalPermissions1Code{"ReadAccountsBasic", "ReadBalances", "ReadTransactionsBasic", "ReadTransactionsCredits", "ReadTransactionsDebits"}
	ac, err := sb.tppAPI.CreateAccountAccessConsentsWithResponse(sb.ctx, &obapi.CreateAccountAccessConsentsParams{},
		obapi.OBReadConsent1{Data: obapi.OBReadConsent1Data{Permissions: perms}})
	if err != nil || ac.JSON201 == nil {
		t.Fatalf("account access consent = %v %d %s", err, ac.StatusCode(), ac.Body)
	}
	reader := sb.psuClient(t, ac.JSON201.Data.ConsentId, "alice", "", "accounts")
	bal, err := reader.GetAccountsAccountIdBalancesWithResponse(sb.ctx, alice.AccountId, &obapi.GetAccountsAccountIdBalancesParams{})
	if err != nil || bal.JSON200 == nil {
		t.Fatalf("balances = %v %d %s", err, bal.StatusCode(), bal.Body)
	}
	for _, b := range bal.JSON200.Data.Balance {
		if b.Amount.Amount != "70.00" {
			t.Errorf("%s balance = %s, want 70.00", b.Type, b.Amount.Amount)
		}
	}
	txs, err := reader.GetAccountsAccountIdTransactionsWithResponse(sb.ctx, alice.AccountId, &obapi.GetAccountsAccountIdTransactionsParams{})
	if err != nil || txs.JSON200 == nil {
		t.Fatalf("transactions = %v %d %s", err, txs.StatusCode(), txs.Body)
	}
	var debits int
	for _, tx := range txs.JSON200.Data.Transaction {
		if tx.CreditDebitIndicator == "Debit" && tx.Amount.Amount == "30.00" {
			debits++
		}
	}
	if debits != 1 {
		t.Errorf("transactions show %d debits of 30.00, want 1: %s", debits, txs.Body)
	}
	// Bob's account is not Alice's to read.
	other, err := reader.GetAccountsAccountIdBalancesWithResponse(sb.ctx, bob.AccountId, &obapi.GetAccountsAccountIdBalancesParams{})
	if err != nil {
		t.Fatal(err)
	}
	if other.StatusCode() != http.StatusForbidden && other.StatusCode() != http.StatusBadRequest {
		t.Errorf("reading another PSU's balances = %d, want 403 or 400", other.StatusCode())
	}
	assertBalanced(t, sb)
}

func TestAnotherAggregatorCannotUseTheConsent(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	bob := sb.openAccount(t, "bob", "")
	consentID := sb.createConsent(t, initiation(bob, "1.00", "iso-1"))
	res, err := sb.tpp2.GetDomesticPaymentConsentsConsentIdWithResponse(sb.ctx, consentID, &obapi.GetDomesticPaymentConsentsConsentIdParams{})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode() != http.StatusForbidden {
		t.Fatalf("other aggregator reads the consent: %d %s, want 403", res.StatusCode(), res.Body)
	}
}
