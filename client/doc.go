// Package client is the Go SDK for aggregators (third-party providers) of the payments Open
// Banking API. It makes DPoP (RFC 9449) invisible: the key, the proofs, the server's nonces and
// the one retry a nonce challenge needs are handled for you.
//
// # A payment in twenty lines
//
// Against the sandbox (`make run`), with alice's AccountId as debtor and bob's sort code and
// account number as creditor (see Test accounts):
//
//	key, _ := client.GenerateKey(client.ES256)
//	tpp, _ := client.NewTokenClient(client.TokenConfig{BaseURL: base, ClientID: "sandbox-tpp", ClientSecret: "sandbox-secret", Key: key})
//	api, _ := client.New(base, key, tpp.ClientCredentialsSource("payments"))
//	initiation := obapi.OBWriteDomestic2DataInitiation{
//		InstructionIdentification: "inv-42", EndToEndIdentification: "inv-42",
//		InstructedAmount: obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: "10.00", Currency: "GBP"},
//		CreditorAccount:  obapi.OBCashAccountCreditor3{SchemeName: "UK.OBIE.SortCodeAccountNumber", Identification: creditor},
//	}
//	consent, _ := api.CreateDomesticPaymentConsentsWithResponse(ctx, &obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
//		obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: initiation}})
//	consentID := consent.JSON201.Data.ConsentId
//	pkce, _ := client.NewPKCE()
//	auth := client.AuthorizeRequest{RedirectURI: "http://127.0.0.1/cb", Scope: "payments", PKCE: pkce, ConsentID: consentID, PSU: "alice", DebtorAccount: debtor}
//	code, _ := tpp.SandboxAuthorize(ctx, auth) // a real bank: redirect the customer to tpp.AuthorizeURL(auth)
//	psuToken, _ := tpp.Exchange(ctx, code, auth.RedirectURI, pkce)
//	psu, _ := client.New(base, key, tpp.RefreshingSource(psuToken))
//	payment, _ := psu.CreateDomesticPaymentsWithResponse(ctx, &obapi.CreateDomesticPaymentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
//		obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: consentID, Initiation: initiation}})
//	fmt.Println(payment.JSON201.Data.Status) // AcceptedCreditSettlementCompleted when the creditor banks here
//
// (Check every error in real code; `payments sandbox pay` and examples/sandbox-payment run this
// flow end to end, accounts included, and on v4.0 with --version 4.0 and -version 4.0.)
//
// # Test accounts
//
// The sandbox (PAYMENTS_DEV_AUTH=true) has two customers, PSU ids "alice" and "bob", each with a
// GBP account of 1,000.00 GBP that the service opens at its first start on an empty database
// and logs at every start. Learn their accounts as an aggregator does at a bank: create an
// account access consent (ReadAccountsBasic, ReadAccountsDetail), have the customer authorise it
// (SandboxAuthorize with PSU "alice", no DebtorAccount), and list GetAccountsWithResponse with
// the token Exchange returns. Alice's AccountId is the debtor; bob's Account[0].Identification
// is the creditor. examples/curl/sandbox.sh in the repository does the same with curl.
//
// # The pieces
//
//   - Key: a DPoP key pair. GenerateKey (ES256, EdDSA, PS256), ParseKey and LoadKey (JWK or
//     PEM), MarshalJWK and MarshalPEM to save it, Thumbprint for the RFC 7638 `jkt`. Keep one
//     key per authorization server for as long as its tokens live.
//   - Key.Proof: one proof for one request, with a fresh 128-bit `jti`, `iat`, `htm`, `htu`
//     (scheme, host and path: no query or fragment), `ath` when a token is sent and `nonce`
//     when one is known. The `payments dpop proof` command prints one for curl.
//   - Transport: an http.RoundTripper that signs every request, remembers each server's
//     `DPoP-Nonce` (from every response, 2xx included) and, on a `use_dpop_nonce` challenge,
//     sends the request once more with a new proof carrying the new nonce. Never more than
//     once, never with an old proof, always with the same body and `x-idempotency-key`. When
//     the API refuses the access token (401 `invalid_token`, e.g. a revoked token), a
//     TokenRenewer source (ClientCredentialsSource, RefreshingSource with a refresh token)
//     drops it and the request is sent once more with a new token; a second refusal, or one
//     for a StaticToken, reaches the caller.
//   - TokenClient: tokens from the authorization server with a DPoP proof at the token
//     endpoint: ClientCredentials, the authorization code flow with PKCE (AuthorizeURL or,
//     in the sandbox, SandboxAuthorize, then Exchange), Refresh. ClientCredentialsSource and
//     RefreshingSource renew tokens shortly before they expire.
//   - Client: the generated client (package obapi) over the Transport: New(baseURL, key,
//     tokens) gives a typed method for every operation.
//   - ClientV4: the same for UK Open Banking v4.0 (package obapi4, paths under
//     "/open-banking/v4.0"): NewV4(baseURL, key, tokens). The service serves both versions from
//     one ledger with the same tokens; v4 answers carry ISO status codes (a new payment is RCVD,
//     then ACSC or ACCC, or RJCT with StatusReason AM04 for insufficient funds, which
//     CheckPaymentV4 turns into ErrInsufficientFunds) and four-character error codes (U002,
//     U004, U042, ...), which APIError carries in ErrorCode. A consent is paid on the version
//     it was created on.
//
// # Errors
//
// The typed methods return the answer whatever its status. ResponseError(res.HTTPResponse,
// res.Body) turns an answer of 400 or above into an *APIError: the status, the OB error body's
// code, message and path, the DPoP challenge's error and error_description (which name the
// failed check, e.g. "htu does not match this request: expected https://..."), and a Cause
// when the answer tells it: ErrNoSuchEndpoint (404: the client's base URL is not the service's
// PAYMENTS_PUBLIC_URL), ErrCustomerTokenRequired (a client-credentials token on a call that
// needs the customer's), ErrDebtorAccountUnknown, ErrDebtorAccountNotCustomers and
// ErrDebtorAccountCurrency (a debtor account refused at authorisation). A payment is created
// even when its debtor cannot fund it: CheckPayment turns its 201 Rejected into an error that
// wraps ErrInsufficientFunds. A TokenClient returns *OAuthError, which wraps ErrNoSuchEndpoint
// for a 404.
//
// # Retries and idempotency
//
// A nonce challenge is answered inside the transport because the server did nothing with the
// challenged request. Any other failure (a network error, a timeout, a 5xx) leaves the outcome
// unknown: retry the whole call yourself with the same body and the same `x-idempotency-key`
// (NewIdempotencyKey makes one); the service answers a repeated key with the resource it already
// created and never books a payment twice.
//
// The package depends on the generated clients (packages obapi and obapi4) and the Go standard
// library only: keys, proofs and thumbprints are built with crypto/ecdsa, crypto/ed25519 and
// crypto/rsa.
package client
