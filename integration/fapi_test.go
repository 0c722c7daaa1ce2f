package integration

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// fapiClient is sandbox-tpp-fapi speaking to the sandbox over HTTP with
// private_key_jwt (the published test key) and a DPoP key.
type fapiClient struct {
	t      *testing.T
	base   string
	signer jwk.Key
	dpop   *client.Key
}

func newFAPIClient(t *testing.T, base string) *fapiClient {
	t.Helper()
	b, err := os.ReadFile("../docs/sandbox-tpp-fapi.jwk")
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.ParseKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return &fapiClient{t: t, base: base, signer: k, dpop: mustKey(t, client.ES256)}
}

// assertion signs a client assertion for the issuer.
func (c *fapiClient) assertion() string {
	c.t.Helper()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"iss": "sandbox-tpp-fapi", "sub": "sandbox-tpp-fapi", "aud": c.base,
		"jti": base64.RawURLEncoding.EncodeToString(jti), "iat": now.Unix(), "exp": now.Add(60 * time.Second).Unix()})
	h := jws.NewHeaders()
	_ = h.Set(jws.KeyIDKey, c.signer.KeyID())
	out, err := jws.Sign(claims, jws.WithKey(jwa.ES256, c.signer, jws.WithProtectedHeaders(h)))
	if err != nil {
		c.t.Fatal(err)
	}
	return string(out)
}

// post sends form to path with the client assertion and a DPoP proof by
// key (nil: none), and decodes the JSON answer.
func (c *fapiClient) post(path string, form url.Values, key *client.Key) (int, map[string]any) {
	c.t.Helper()
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", c.assertion())
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if key != nil {
		p, err := key.Proof(client.ProofRequest{Method: http.MethodPost, URL: c.base + path})
		if err != nil {
			c.t.Fatal(err)
		}
		req.Header.Set("DPoP", p)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body
}

// TestSandboxFAPIFlow runs a FAPI 2.0 client's payment against the sandbox:
// discovery through RFC 8414 metadata, private_key_jwt with the published
// key, a pushed authorization request naming the consent by
// authorization_details and binding the code to the DPoP key, the 303 with
// iss, the code exchange, and the payment with the customer's token.
func TestSandboxFAPIFlow(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	fc := newFAPIClient(t, s.URL)

	res, err := http.Get(s.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Issuer string   `json:"issuer"`
		PAR    string   `json:"pushed_authorization_request_endpoint"`
		Token  string   `json:"token_endpoint"`
		Auth   []string `json:"token_endpoint_auth_methods_supported"`
	}
	err = json.NewDecoder(res.Body).Decode(&meta)
	res.Body.Close()
	if err != nil || meta.Issuer != s.URL || meta.PAR != s.URL+"/oauth2/par" || len(meta.Auth) == 0 || meta.Auth[0] != "private_key_jwt" {
		t.Fatalf("metadata = %+v, %v", meta, err)
	}

	// A client credentials token, then the payment consent.
	status, body := fc.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"payments"}}, fc.dpop)
	if status != http.StatusOK {
		t.Fatalf("client credentials = %d %v", status, body)
	}
	api, err := client.New(s.URL, fc.dpop, client.StaticToken(body["access_token"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	payer := sb.openAccount(t, "fapi-alice", "50.00")
	payee := sb.openAccount(t, "fapi-bob", "")
	init := initiation(payee, "5.00", "fapi-1")
	cres, err := api.CreateDomesticPaymentConsentsWithResponse(sb.ctx,
		&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init}})
	if err != nil || cres.JSON201 == nil {
		t.Fatalf("create consent: %v %d", err, cres.StatusCode())
	}
	consentID := cres.JSON201.Data.ConsentId

	// Another aggregator cannot push a request for it.
	pkce, err := client.NewPKCE()
	if err != nil {
		t.Fatal(err)
	}
	details := `[{"type":"openbanking_intent","openbanking_intent_id":"` + consentID + `"}]`
	par := url.Values{"response_type": {"code"}, "redirect_uri": {"http://127.0.0.1/cb"}, "scope": {"payments"},
		"code_challenge": {pkce.Challenge}, "code_challenge_method": {"S256"}, "state": {"s1"}, "authorization_details": {details}}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/oauth2/par", strings.NewReader(par.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("sandbox-tpp-2", "sandbox-secret-2")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("PAR by another aggregator = %d, want 400", res.StatusCode)
	}

	status, body = fc.post("/oauth2/par", par, fc.dpop)
	uri, _ := body["request_uri"].(string)
	if status != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("PAR = %d %v", status, body)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"client_id": {"sandbox-tpp-fapi"}, "request_uri": {uri}, "psu": {"fapi-alice"}, "debtor_account": {payer.AccountId}}
	res, err = noRedirect.Get(s.URL + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || loc.Query().Get("iss") != s.URL || loc.Query().Get("state") != "s1" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize = %d %s, want 303 with code, state and iss", res.StatusCode, res.Header.Get("Location"))
	}

	status, body = fc.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"http://127.0.0.1/cb"}, "code_verifier": {pkce.Verifier}}, fc.dpop)
	if status != http.StatusOK || body["consent_id"] != consentID || body["authorization_details"] == nil {
		t.Fatalf("code exchange = %d %v", status, body)
	}
	psu, err := client.New(s.URL, fc.dpop, client.StaticToken(body["access_token"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	paid := sb.pay(t, psu, consentID, init, client.NewIdempotencyKey())
	if paid.JSON201 == nil {
		t.Fatalf("payment = %d %s", paid.StatusCode(), paid.Body)
	}
	assertBalanced(t, sb)
}
