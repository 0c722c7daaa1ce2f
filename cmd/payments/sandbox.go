package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

const sandboxUsage = `usage:
  payments sandbox pay [--url http://localhost:8080] [--admin-url URL] [--amount 10.00] [--alg ES256] [--version 3.1]

Runs a whole payment against the sandbox (make run) and prints each step: opens two funded
accounts through the back office (client sandbox-admin), creates a payment consent (client
sandbox-tpp), has the sandbox authorization server approve it for the payer, exchanges the code
(PKCE, DPoP-bound token), pays, reads the payment and the payer's balances, and checks that the
ledger reconciles. Every call goes through the Go SDK in client/. With an admin listener
(PAYMENTS_ADMIN_ADDR), give its URL as --admin-url (default: PAYMENTS_ADMIN_PUBLIC_URL, else --url):
the back office calls go there, the tokens still come from --url.

--version picks the Open Banking API the aggregator calls: 3.1 (/open-banking/v3.1, the default)
or 4.0 (/open-banking/v4.0: ISO status codes, the payment RCVD when created and ACCC or ACSC when
read back, its payment-details, balances ITAV and ITBD). The back office is the same for both.
`

// Sandbox identities (README, "The sandbox authorization server").
const (
	sandboxAdminID     = "sandbox-admin"
	sandboxAdminSecret = "admin-secret"
	sandboxTPPID       = "sandbox-tpp"
	sandboxTPPSecret   = "sandbox-secret"
	sandboxRedirectURI = "http://127.0.0.1/callback"
)

// sandboxCommand runs `payments sandbox ...`.
func sandboxCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: sandbox needs a sub-command (pay)", errUsage)
	}
	if wantsHelp(args[:1]) {
		fmt.Fprint(stdout, sandboxUsage)
		return errHelp
	}
	if args[0] != "pay" {
		return fmt.Errorf("%w: unknown sandbox sub-command %q", errUsage, args[0])
	}
	fs := flag.NewFlagSet("payments sandbox pay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sandboxUsage) }
	defaultURL := getenv("PAYMENTS_PUBLIC_URL")
	if defaultURL == "" {
		defaultURL = "http://localhost:8080"
	}
	base := fs.String("url", defaultURL, "the service's base URL (its PAYMENTS_PUBLIC_URL)")
	adminURL := fs.String("admin-url", getenv("PAYMENTS_ADMIN_PUBLIC_URL"), "the back office's base URL when the service has an admin listener (its PAYMENTS_ADMIN_PUBLIC_URL); empty: --url")
	amount := fs.String("amount", "10.00", "amount to pay, GBP")
	alg := fs.String("alg", "ES256", "DPoP key algorithm: ES256, EdDSA, PS256")
	version := fs.String("version", sandboxV31, "Open Banking API version: 3.1 or 4.0")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	a, err := client.ParseAlgorithm(*alg)
	if err != nil {
		return fmt.Errorf("%w: --alg %q", errUsage, *alg)
	}
	if _, err := client.TargetURI(*base); err != nil {
		return fmt.Errorf("%w: --url %q: %v", errUsage, *base, err)
	}
	if *adminURL == "" {
		*adminURL = *base
	} else if _, err := client.TargetURI(*adminURL); err != nil {
		return fmt.Errorf("%w: --admin-url %q: %v", errUsage, *adminURL, err)
	}
	return sandboxPay(ctx, sandboxRun{base: *base, admin: *adminURL, amount: *amount, alg: a, version: *version, out: stdout})
}

// The Open Banking versions `sandbox pay` runs (--version).
const (
	sandboxV31 = "3.1"
	sandboxV40 = "4.0"
)

// sandboxRun is one sandbox payment.
type sandboxRun struct {
	base    string
	admin   string // the back office's base URL: the admin listener's, or "" for base
	amount  string
	alg     client.Algorithm
	version string // the aggregator's API: sandboxV31 or sandboxV40; "" means sandboxV31
	out     io.Writer
	step    int
}

// sandboxParties is what the aggregator's part of the flow starts from, on either version:
// its DPoP key and token client, and the accounts the back office opened for the payer and
// the payee.
type sandboxParties struct {
	key          *client.Key
	tpp          *client.TokenClient
	suffix       string // makes this run's names and identifications unique
	payer, payee string
	debtor       *obapi.LedgerAccount
	creditor     *obapi.LedgerAccount
}

func (r *sandboxRun) say(format string, args ...any) {
	r.step++
	fmt.Fprintf(r.out, "%2d. %s\n", r.step, fmt.Sprintf(format, args...))
}

// sandboxPay runs the whole flow; each step is one SDK call. The back office's parts (the
// accounts, the reconciliation) and the customer's approval are the same on both versions; the
// aggregator's calls are payV31's or payV4's.
func sandboxPay(ctx context.Context, r sandboxRun) error {
	if r.admin == "" {
		r.admin = r.base
	}
	pay := r.payV31
	switch r.version {
	case "", sandboxV31:
	case sandboxV40:
		pay = r.payV4
	default:
		return fmt.Errorf("%w: --version %q: the sandbox serves Open Banking %s and %s", errUsage, r.version, sandboxV31, sandboxV40)
	}
	key, err := client.GenerateKey(r.alg)
	if err != nil {
		return err
	}
	r.say("generated a %s DPoP key, thumbprint %s", key.Algorithm(), key.Thumbprint())

	// The bank's back office opens two customer accounts.
	admin, err := sandboxClient(r.base, r.admin, key, sandboxAdminID, sandboxAdminSecret, "ledger:admin consents:admin")
	if err != nil {
		return err
	}
	p := sandboxParties{key: key, suffix: randomSuffix()}
	p.payer, p.payee = "alice-"+p.suffix, "bob-"+p.suffix
	if p.debtor, err = openAccount(ctx, admin, p.payer, "100.00"); err != nil {
		return err
	}
	r.say("back office opened %s's account %s (%s) with %s GBP", p.payer, p.debtor.AccountId, p.debtor.Account[0].Identification, p.debtor.Balance)
	if p.creditor, err = openAccount(ctx, admin, p.payee, "0.00"); err != nil {
		return err
	}
	r.say("back office opened %s's account %s (%s) with %s GBP", p.payee, p.creditor.AccountId, p.creditor.Account[0].Identification, p.creditor.Balance)

	// The aggregator: a consent, the customer's approval, the payment, the payer's balances.
	p.tpp, err = client.NewTokenClient(client.TokenConfig{BaseURL: r.base, ClientID: sandboxTPPID, ClientSecret: sandboxTPPSecret, Key: key})
	if err != nil {
		return err
	}
	if err := pay(ctx, p); err != nil {
		return err
	}

	report, err := admin.ReconcileLedgerWithResponse(ctx, &obapi.ReconcileLedgerParams{})
	if err := expect("reconcile", err, report, 200); err != nil {
		return err
	}
	r.say("ledger reconcile: balanced = %v over %d accounts, drift %d", report.JSON200.Balanced, report.JSON200.AccountsChecked, len(report.JSON200.Drift))
	if !report.JSON200.Balanced || len(report.JSON200.Drift) != 0 {
		return errors.New("the ledger does not reconcile")
	}
	fmt.Fprintln(r.out, "done: the payment is booked")
	return nil
}

// payV31 is the aggregator's part of the flow on Open Banking v3.1.
func (r *sandboxRun) payV31(ctx context.Context, p sandboxParties) error {
	api, err := client.New(r.base, p.key, p.tpp.ClientCredentialsSource("payments"))
	if err != nil {
		return err
	}
	name := p.payee
	initiation := obapi.OBWriteDomestic2DataInitiation{
		InstructionIdentification: "sbx-" + p.suffix,
		EndToEndIdentification:    "sbx-" + p.suffix,
		InstructedAmount:          obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: r.amount, Currency: "GBP"},
		CreditorAccount: obapi.OBCashAccountCreditor3{
			SchemeName:     p.creditor.Account[0].SchemeName,
			Identification: p.creditor.Account[0].Identification,
			Name:           &name,
		},
	}
	consent, err := api.CreateDomesticPaymentConsentsWithResponse(ctx,
		&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: initiation}})
	if err := expect("create payment consent", err, consent, 201); err != nil {
		return err
	}
	consentID := consent.JSON201.Data.ConsentId
	r.say("%s created payment consent %s for %s GBP: %s", sandboxTPPID, consentID, r.amount, consent.JSON201.Data.Status)

	// The customer approves it at the authorization server; the aggregator exchanges the code.
	psuToken, err := r.approve(ctx, p, consentID)
	if err != nil {
		return err
	}
	psu, err := client.New(r.base, p.key, p.tpp.RefreshingSource(psuToken))
	if err != nil {
		return err
	}
	funds, err := psu.GetDomesticPaymentConsentsConsentIdFundsConfirmationWithResponse(ctx, consentID, &obapi.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams{})
	if err := expect("funds confirmation", err, funds, 200); err != nil {
		return err
	}
	available := funds.JSON200.Data.FundsAvailableResult != nil && funds.JSON200.Data.FundsAvailableResult.FundsAvailable
	r.say("funds confirmation: available = %v", available)

	// The payment itself.
	payment, err := psu.CreateDomesticPaymentsWithResponse(ctx,
		&obapi.CreateDomesticPaymentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: consentID, Initiation: initiation}})
	if err := expect("create payment", err, payment, 201); err != nil {
		return err
	}
	paymentID := payment.JSON201.Data.DomesticPaymentId
	r.say("payment %s: %s", paymentID, payment.JSON201.Data.Status)
	status, err := psu.GetDomesticPaymentsDomesticPaymentIdWithResponse(ctx, paymentID, &obapi.GetDomesticPaymentsDomesticPaymentIdParams{})
	if err := expect("read payment", err, status, 200); err != nil {
		return err
	}
	r.say("payment %s read back: %s", paymentID, status.JSON200.Data.Status)

	// The payer's balances, through an account access consent.
	balances, err := readBalances(ctx, r.base, p.key, p.tpp, p.payer, p.debtor.AccountId)
	if err != nil {
		return err
	}
	for _, b := range balances {
		r.say("%s's balance %s: %s %s %s", p.payer, b.Type, b.CreditDebitIndicator, b.Amount.Amount, b.Amount.Currency)
	}
	return nil
}

// approve has the payer approve a payment consent, paying from the debtor account, and
// exchanges the code for the payer's token.
func (r *sandboxRun) approve(ctx context.Context, p sandboxParties, consentID string) (*client.Token, error) {
	tok, err := sandboxApprove(ctx, p.tpp, "payments", consentID, p.payer, p.debtor.AccountId)
	if err != nil {
		return nil, err
	}
	r.say("%s approved the consent, paying from %s; code exchanged for a DPoP-bound %s token", p.payer, p.debtor.AccountId, tok.Scope)
	return tok, nil
}

func sandboxClient(base, apiBase string, key *client.Key, id, secret string, scope string) (*client.Client, error) {
	tc, err := client.NewTokenClient(client.TokenConfig{BaseURL: base, ClientID: id, ClientSecret: secret, Key: key})
	if err != nil {
		return nil, err
	}
	return client.New(apiBase, key, tc.ClientCredentialsSource(scope))
}

func openAccount(ctx context.Context, admin *client.Client, owner, opening string) (*obapi.LedgerAccount, error) {
	req := obapi.CreateLedgerAccountRequest{Owner: owner, Currency: "GBP", Nickname: owner + " current account"}
	if opening != "0.00" {
		req.OpeningBalance = &opening
	}
	res, err := admin.CreateLedgerAccountWithResponse(ctx, &obapi.CreateLedgerAccountParams{}, req)
	if err := expect("open account for "+owner, err, res, 201); err != nil {
		return nil, err
	}
	if len(res.JSON201.Account) == 0 {
		return nil, fmt.Errorf("open account for %s: no identification in the answer", owner)
	}
	return res.JSON201, nil
}

// sandboxApprove has the sandbox authorization server approve a consent for psu and exchanges
// the code for a PSU token.
func sandboxApprove(ctx context.Context, tpp *client.TokenClient, scope, consentID, psu, debtorAccount string) (*client.Token, error) {
	pkce, err := client.NewPKCE()
	if err != nil {
		return nil, err
	}
	auth := client.AuthorizeRequest{RedirectURI: sandboxRedirectURI, Scope: scope, PKCE: pkce, ConsentID: consentID, PSU: psu, DebtorAccount: debtorAccount}
	code, err := tpp.SandboxAuthorize(ctx, auth)
	if err != nil {
		return nil, fmt.Errorf("authorize consent %s: %w", consentID, err)
	}
	tok, err := tpp.Exchange(ctx, code, auth.RedirectURI, pkce)
	if err != nil {
		return nil, fmt.Errorf("exchange code for consent %s: %w", consentID, err)
	}
	return tok, nil
}

func readBalances(ctx context.Context, base string, key *client.Key, tpp *client.TokenClient, psu, accountID string) ([]obapi.OBReadBalance1DataBalance, error) {
	api, err := client.New(base, key, tpp.ClientCredentialsSource("accounts"))
	if err != nil {
		return nil, err
	}
	consent, err := api.CreateAccountAccessConsentsWithResponse(ctx,
		&obapi.CreateAccountAccessConsentsParams{},
		obapi.OBReadConsent1{Data: obapi.OBReadConsent1Data{Permissions: []obapi.OBExternalPermissions1Code{
			obapi.OBExternalPermissions1CodeReadAccountsBasic, obapi.OBExternalPermissions1CodeReadBalances,
		}}})
	if err := expect("create account access consent", err, consent, 201); err != nil {
		return nil, err
	}
	tok, err := sandboxApprove(ctx, tpp, "accounts", consent.JSON201.Data.ConsentId, psu, "")
	if err != nil {
		return nil, err
	}
	psuAPI, err := client.New(base, key, tpp.RefreshingSource(tok))
	if err != nil {
		return nil, err
	}
	res, err := psuAPI.GetAccountsAccountIdBalancesWithResponse(ctx, accountID, &obapi.GetAccountsAccountIdBalancesParams{})
	if err := expect("read balances", err, res, 200); err != nil {
		return nil, err
	}
	return res.JSON200.Data.Balance, nil
}

// expect turns a call's outcome into an error that says what failed, with the service's answer.
// res is only used when err is nil.
func expect(what string, err error, res typedResponse, want int) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if got := res.StatusCode(); got != want {
		body := res.GetBody()
		const max = 600
		if len(body) > max {
			body = body[:max]
		}
		return fmt.Errorf("%s: HTTP %d, want %d: %s", what, got, want, body)
	}
	return nil
}

// typedResponse is what every response of the generated client has.
type typedResponse interface {
	StatusCode() int
	GetBody() []byte
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
