package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// exampleJWK is a throwaway ES256 key for the examples; never use a published key for real.
const exampleJWK = `{
  "kty": "EC",
  "crv": "P-256",
  "x": "ZpKdE-gtu7Kgw_o6e_aDUmt3fn18SsLfzSbv8koIcx0",
  "y": "j6XP0k4HewB3mlAF16r8zA2ivpOWoUIzLXKI0h8b-oc",
  "d": "1r-09O2QdEiRUMKRwMGlgoZw_PgbtTWQVwuwSbz6dUI",
  "alg": "ES256"
}`

func ExampleGenerateKey() {
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		log.Fatal(err)
	}
	jwk, err := key.MarshalJWK() // save it, e.g. to key.jwk with mode 0600
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Algorithm(), len(key.Thumbprint()), strings.Contains(string(jwk), `"d"`))
	// Output: ES256 43 true
}

func ExampleParseKey() {
	key, err := client.ParseKey([]byte(exampleJWK)) // or client.LoadKey("key.jwk"); PEM works too
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Algorithm(), key.Thumbprint())
	// Output: ES256 YMLd_HczUoq7psSm7n1f9_GMP3N0OpXWXChNSzoP4_k
}

func ExampleKey_Proof() {
	key, _ := client.ParseKey([]byte(exampleJWK))
	proof, err := key.Proof(client.ProofRequest{
		Method:      "GET",
		URL:         "http://localhost:8080/open-banking/v3.1/aisp/accounts?page=2",
		AccessToken: "the-access-token",
		Nonce:       "the-servers-nonce",
	})
	if err != nil {
		log.Fatal(err)
	}
	// Send it as the DPoP header of exactly one request.
	fmt.Println(strings.Count(proof, "."))
	// Output: 2
}

func ExampleTargetURI() {
	htu, _ := client.TargetURI("HTTPS://bank.example/open-banking/v3.1/aisp/accounts?page=2#top")
	fmt.Println(htu)
	// Output: https://bank.example/open-banking/v3.1/aisp/accounts
}

func ExampleAccessTokenHash() {
	// RFC 9449 Figure 14.
	fmt.Println(client.AccessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"))
	// Output: fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo
}

// A server that asks for a nonce the first time: the transport answers the challenge by itself.
func ExampleNewTransport() {
	attempts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts++
		w.Header().Set("DPoP-Nonce", "n-1")
		if !strings.Contains(r.Header.Get("DPoP"), ".") || attempts == 1 {
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "booked")
	}))
	defer srv.Close()

	key, _ := client.GenerateKey(client.EdDSA)
	tr, err := client.NewTransport(key, client.StaticToken("the-access-token"), nil)
	if err != nil {
		log.Fatal(err)
	}
	hc := &http.Client{Transport: tr}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/pay", strings.NewReader(`{"amount":"10.00"}`))
	req.Header.Set("x-idempotency-key", client.NewIdempotencyKey())
	res, err := hc.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.StatusCode, string(body), "after", attempts, "attempts; nonce now", tr.Nonce(srv.URL))
	// Output: 200 booked after 2 attempts; nonce now n-1
}

// A typed Open Banking call; here against a stand-in for the service.
func ExampleNew() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"Data":{"DomesticPaymentId":"pay-1","ConsentId":"c-1","Status":"AcceptedSettlementCompleted",
			"CreationDateTime":"2026-01-02T03:04:05Z","StatusUpdateDateTime":"2026-01-02T03:04:05Z",
			"Initiation":{"InstructionIdentification":"i","EndToEndIdentification":"e",
			"InstructedAmount":{"Amount":"10.00","Currency":"GBP"},
			"CreditorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"40400187654321"}}},
			"Links":{"Self":"/x"},"Meta":{}}`)
	}))
	defer srv.Close()

	key, _ := client.GenerateKey(client.ES256)
	api, err := client.New(srv.URL, key, client.StaticToken("a-token-bound-to-key"))
	if err != nil {
		log.Fatal(err)
	}
	res, err := api.GetDomesticPaymentsDomesticPaymentIdWithResponse(context.Background(), "pay-1", &obapi.GetDomesticPaymentsDomesticPaymentIdParams{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StatusCode(), res.JSON200.Data.Status)
	// Output: 200 AcceptedSettlementCompleted
}

// Client credentials against a stand-in token endpoint.
func ExampleTokenClient_ClientCredentials() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"opaque","token_type":"DPoP","expires_in":300,"scope":"payments"}`)
	}))
	defer srv.Close()

	key, _ := client.GenerateKey(client.ES256)
	tc, err := client.NewTokenClient(client.TokenConfig{BaseURL: srv.URL, ClientID: "sandbox-tpp", ClientSecret: "sandbox-secret", Key: key})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tc.ClientCredentials(context.Background(), "payments")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.Scope)
	// Output: DPoP payments
}

// Most callers hand a token source to New and never call the token endpoint themselves.
func ExampleTokenClient_ClientCredentialsSource() {
	key, _ := client.GenerateKey(client.ES256)
	tc, _ := client.NewTokenClient(client.TokenConfig{BaseURL: "http://localhost:8080", ClientID: "sandbox-tpp", ClientSecret: "sandbox-secret", Key: key})
	api, err := client.New("http://localhost:8080", key, tc.ClientCredentialsSource("payments"))
	if err != nil {
		log.Fatal(err)
	}
	_ = api // api.CreateDomesticPaymentConsentsWithResponse(...)
}

// The authorization code flow in the sandbox: the sandbox approves the consent for the customer
// at once; against a real bank, redirect the customer's browser to AuthorizeURL instead and
// read the code from your redirect URI.
func ExampleTokenClient_SandboxAuthorize() {
	ctx := context.Background()
	key, _ := client.GenerateKey(client.ES256)
	tc, _ := client.NewTokenClient(client.TokenConfig{BaseURL: "http://localhost:8080", ClientID: "sandbox-tpp", ClientSecret: "sandbox-secret", Key: key})
	pkce, _ := client.NewPKCE()
	auth := client.AuthorizeRequest{
		RedirectURI: "http://127.0.0.1/callback", Scope: "payments", PKCE: pkce,
		ConsentID: "the-consent-id", PSU: "alice", DebtorAccount: "alices-account-id",
	}
	code, err := tc.SandboxAuthorize(ctx, auth)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tc.Exchange(ctx, code, auth.RedirectURI, pkce)
	if err != nil {
		log.Fatal(err)
	}
	psu, _ := client.New("http://localhost:8080", key, tc.RefreshingSource(tok))
	_ = psu // psu.CreateDomesticPaymentsWithResponse(...)
}

func ExampleNewPKCE() {
	pkce, _ := client.NewPKCE()
	fmt.Println(len(pkce.Verifier), len(pkce.Challenge), pkce.Method)
	// Output: 43 43 S256
}

func ExampleNewIdempotencyKey() {
	key := client.NewIdempotencyKey() // one per operation; reuse it to retry that operation
	fmt.Println(len(key), "version", string(key[14]))
	// Output: 36 version 4
}

func ExampleStaticToken() {
	key, _ := client.GenerateKey(client.ES256)
	api, err := client.New("http://localhost:8080", key, client.StaticToken("a-token-from-elsewhere"))
	fmt.Println(api != nil, err)
	// Output: true <nil>
}
