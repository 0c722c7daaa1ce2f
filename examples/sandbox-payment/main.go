// Command sandbox-payment books one payment in the sandbox with the Go SDK, the way an
// aggregator's code would: start the service with `make run`, then
//
//	go run ./examples/sandbox-payment -url http://localhost:8080
//	go run ./examples/sandbox-payment -url http://localhost:8080 -version 4.0
//
// It plays three parts. The bank's back office (client sandbox-admin) opens a funded account for
// the customer "alice" and one for "bob". The aggregator (client sandbox-tpp) asks for a payment
// consent, has the customer approve it (the sandbox approves at once) and pays, on Open Banking
// v3.1 (client.New) or, with -version 4.0, v4.0 (client.NewV4). The DPoP proofs, nonces and token
// renewals are all inside the SDK.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

func main() {
	base := flag.String("url", "http://localhost:8080", "the service's base URL")
	amount := flag.String("amount", "10.00", "amount to pay, GBP")
	version := flag.String("version", "3.1", "Open Banking version: 3.1 or 4.0")
	flag.Parse()
	if *version != "3.1" && *version != "4.0" {
		log.Fatalf("-version %q: use 3.1 or 4.0", *version)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pay(ctx, *base, *amount, *version); err != nil {
		log.Fatal(err)
	}
}

func pay(ctx context.Context, base, amount, version string) error {
	// One DPoP key for this aggregator; tokens are bound to it. Save it with key.MarshalJWK().
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		return err
	}

	// Back office (sandbox only): two customers and their accounts.
	adminTokens, err := client.NewTokenClient(client.TokenConfig{BaseURL: base, ClientID: "sandbox-admin", ClientSecret: "admin-secret", Key: key})
	if err != nil {
		return err
	}
	admin, err := client.New(base, key, adminTokens.ClientCredentialsSource("ledger:admin"))
	if err != nil {
		return err
	}
	suffix := client.NewIdempotencyKey()[:8]
	alice, bob := "alice-"+suffix, "bob-"+suffix
	opening := "100.00"
	debtor, err := admin.CreateLedgerAccountWithResponse(ctx, &obapi.CreateLedgerAccountParams{},
		obapi.CreateLedgerAccountRequest{Owner: alice, Currency: "GBP", Nickname: "Alice", OpeningBalance: &opening})
	if err != nil || debtor.JSON201 == nil {
		return failed("open alice's account", err, debtor)
	}
	creditor, err := admin.CreateLedgerAccountWithResponse(ctx, &obapi.CreateLedgerAccountParams{},
		obapi.CreateLedgerAccountRequest{Owner: bob, Currency: "GBP", Nickname: "Bob"})
	if err != nil || creditor.JSON201 == nil {
		return failed("open bob's account", err, creditor)
	}
	fmt.Printf("accounts: %s pays from %s, %s is paid into %s\n", alice, debtor.JSON201.AccountId, bob, creditor.JSON201.Account[0].Identification)

	// The aggregator: a consent with its client credentials token.
	tpp, err := client.NewTokenClient(client.TokenConfig{BaseURL: base, ClientID: "sandbox-tpp", ClientSecret: "sandbox-secret", Key: key})
	if err != nil {
		return err
	}
	c := customer{psu: alice, debtor: debtor.JSON201.AccountId}
	if version == "4.0" {
		return payV4(ctx, base, key, tpp, c, "Bob", creditor.JSON201.Account[0].Identification, amount, "example-"+suffix)
	}
	api, err := client.New(base, key, tpp.ClientCredentialsSource("payments"))
	if err != nil {
		return err
	}
	initiation := obapi.OBWriteDomestic2DataInitiation{
		InstructionIdentification: "example-" + suffix,
		EndToEndIdentification:    "example-" + suffix,
		InstructedAmount:          obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: amount, Currency: "GBP"},
		CreditorAccount: obapi.OBCashAccountCreditor3{
			SchemeName:     "UK.OBIE.SortCodeAccountNumber",
			Identification: creditor.JSON201.Account[0].Identification,
		},
	}
	consent, err := api.CreateDomesticPaymentConsentsWithResponse(ctx,
		&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: initiation}})
	if err != nil || consent.JSON201 == nil {
		return failed("create consent", err, consent)
	}
	consentID := consent.JSON201.Data.ConsentId
	fmt.Printf("consent %s: %s\n", consentID, consent.JSON201.Data.Status)

	// The customer approves; the aggregator exchanges the code for a token bound to its key.
	psuToken, err := c.approve(ctx, tpp, consentID)
	if err != nil {
		return err
	}
	psu, err := client.New(base, key, tpp.RefreshingSource(psuToken))
	if err != nil {
		return err
	}

	// The payment. Keep the idempotency key: retrying with it after a network error is safe.
	idempotencyKey := client.NewIdempotencyKey()
	payment, err := psu.CreateDomesticPaymentsWithResponse(ctx,
		&obapi.CreateDomesticPaymentsParams{XIdempotencyKey: idempotencyKey},
		obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: consentID, Initiation: initiation}})
	if err != nil {
		return fmt.Errorf("pay: %w", err) // no answer: retry with the same idempotency key
	}
	// An error answer, read by the SDK: it names the cause it can tell (errors.Is with
	// client.ErrCustomerTokenRequired, client.ErrNoSuchEndpoint, ...) and quotes the server.
	if err := client.ResponseError(payment.HTTPResponse, payment.Body); err != nil {
		return fmt.Errorf("pay: %w", err)
	}
	// 201 Rejected: the debtor account could not fund the payment; nothing was booked.
	if err := client.CheckPayment(payment.JSON201); err != nil {
		return err
	}
	fmt.Printf("payment %s: %s\n", payment.JSON201.Data.DomesticPaymentId, payment.JSON201.Data.Status)
	return nil
}

// customer is the payer: a PSU id and the account they pay from.
type customer struct {
	psu    string
	debtor string // AccountId
}

// approve has the customer approve the consent (the sandbox approves at once) and exchanges
// the code for a token bound to the aggregator's key. It is the same on both versions.
func (c customer) approve(ctx context.Context, tpp *client.TokenClient, consentID string) (*client.Token, error) {
	pkce, err := client.NewPKCE()
	if err != nil {
		return nil, err
	}
	auth := client.AuthorizeRequest{RedirectURI: "http://127.0.0.1/callback", Scope: "payments", PKCE: pkce,
		ConsentID: consentID, PSU: c.psu, DebtorAccount: c.debtor}
	code, err := tpp.SandboxAuthorize(ctx, auth)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	psuToken, err := tpp.Exchange(ctx, code, auth.RedirectURI, pkce)
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	return psuToken, nil
}

// failed reports a call that did not give the expected answer.
func failed(what string, err error, res interface {
	StatusCode() int
	GetBody() []byte
}) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	fmt.Fprintf(os.Stderr, "%s: HTTP %d: %s\n", what, res.StatusCode(), res.GetBody())
	return fmt.Errorf("%s: HTTP %d", what, res.StatusCode())
}
