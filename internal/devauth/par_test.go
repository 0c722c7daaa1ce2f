package devauth

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	sdk "github.com/obpay/payments/client"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/security"
)

const testPARURL = testPublicURL + "/oauth2/par"

// parForm is a valid pushed request for pay-1, without psu and debtor
// account (the customer's part comes at /oauth2/authorize).
func parForm() url.Values {
	q := authorizeQuery()
	q.Del("client_id")
	q.Del("psu")
	q.Del("debtor_account")
	return q
}

// parProof signs a PAR-endpoint proof with k at the fixture's time.
func (f *fixture) parProof(k *sdk.Key) string {
	f.t.Helper()
	p, err := k.Proof(sdk.ProofRequest{Method: http.MethodPost, URL: testPARURL, IssuedAt: f.now})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

type parBody struct {
	RequestURI       string `json:"request_uri"`
	ExpiresIn        int64  `json:"expires_in"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// push sends form to the PAR endpoint as sandbox-tpp unless opts change it.
func (f *fixture) push(form url.Values, opts ...func(*http.Request)) (int, parBody) {
	f.t.Helper()
	base := []func(*http.Request){withHeader("Authorization", basic("sandbox-tpp", "sandbox-secret"))}
	w := f.post("/oauth2/par", form, append(base, opts...)...)
	var b parBody
	decodeInto(f.t, w.Body.Bytes(), &b)
	return w.Code, b
}

func (f *fixture) mustPush(form url.Values, opts ...func(*http.Request)) string {
	f.t.Helper()
	status, b := f.push(form, opts...)
	if status != http.StatusCreated || !strings.HasPrefix(b.RequestURI, "urn:ietf:params:oauth:request_uri:") || b.ExpiresIn != 60 {
		f.t.Fatalf("PAR = %d %+v, want 201 with a request_uri for 60 s", status, b)
	}
	return b.RequestURI
}

// authorizeURI is the authorization request naming a pushed one, with the
// customer's part.
func authorizeURI(uri string) url.Values {
	return url.Values{"client_id": {"sandbox-tpp"}, "request_uri": {uri}, "psu": {"alice"}, "debtor_account": {"acc-alice"}}
}

func TestPushedAuthorizationRequest(t *testing.T) {
	t.Run("code through PAR, bound to the PAR proof's key", func(t *testing.T) {
		f := newFixture(t)
		uri := f.mustPush(parForm(), withHeader("DPoP", f.parProof(f.key)))
		w := f.authorize(authorizeURI(uri), false)
		u, _ := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusSeeOther || u.Query().Get("code") == "" || u.Query().Get("state") != "xyz" || u.Query().Get("iss") != testPublicURL {
			t.Fatalf("authorize = %d %q, want 303 with code, state and iss", w.Code, w.Header().Get("Location"))
		}
		code := u.Query().Get("code")
		// RFC 9449 §10: only the PAR proof's key may exchange the code.
		other := otherKey(t, sdk.ES256)
		if w := f.tokenRequest(exchangeForm(code), withHeader("DPoP", f.proof(other))); w.Code != 400 || decode(t, w).Error != "invalid_grant" {
			t.Fatalf("exchange with another key = %d, want 400 invalid_grant", w.Code)
		}
		// That attempt spent the code (RFC 6749 §4.1.2).
		if w := f.tokenRequest(exchangeForm(code)); w.Code != 400 {
			t.Errorf("exchange after a failed attempt = %d, want 400", w.Code)
		}
	})
	t.Run("authorization_details, customer in the pushed request", func(t *testing.T) {
		f := newFixture(t)
		form := parForm()
		form.Del("consent_id")
		form.Set("authorization_details", `[{"type":"openbanking_intent","openbanking_intent_id":"pay-1"}]`)
		form.Set("psu", "alice")
		form.Set("debtor_account", "acc-alice")
		uri := f.mustPush(form)
		code := f.code(url.Values{"client_id": {"sandbox-tpp"}, "request_uri": {uri}})
		tok := f.mustToken(exchangeForm(code))
		if tok.ConsentID != "pay-1" || !strings.Contains(string(tok.AuthorizationDetails), `"openbanking_intent_id":"pay-1"`) {
			t.Errorf("token answer = %+v, want consent_id and authorization_details", tok)
		}
	})
	t.Run("private_key_jwt", func(t *testing.T) {
		f := newFixture(t)
		f.consents.consents["pay-f"] = &fakeConsent{client: FAPIClientID, kind: openbanking.KindPayment, status: openbanking.StatusAwaitingAuthorisation}
		claims := f.assertionClaims()
		claims["aud"] = testPARURL
		form := withAssertion(parForm(), sign(t, fapiKey(t), jwa.ES256, claims))
		form.Set("consent_id", "pay-f")
		uri := f.mustPush(form, withoutHeader("Authorization"))
		q := authorizeURI(uri)
		q.Set("client_id", FAPIClientID)
		if code := f.code(q); code == "" {
			t.Fatal("no code")
		}
	})
	t.Run("request_uri is single use", func(t *testing.T) {
		f := newFixture(t)
		uri := f.mustPush(parForm())
		f.code(authorizeURI(uri))
		f.consents.consents["pay-1"].status = openbanking.StatusAwaitingAuthorisation
		w := f.authorize(authorizeURI(uri), true)
		if b := decode(t, w); w.Code != 400 || b.Error != "invalid_request_uri" {
			t.Errorf("second use = %d %s, want 400 invalid_request_uri", w.Code, b.Error)
		}
	})
	t.Run("request_uri expires after 60 s", func(t *testing.T) {
		f := newFixture(t)
		uri := f.mustPush(parForm())
		f.now = f.now.Add(60 * time.Second)
		w := f.authorize(authorizeURI(uri), true)
		if b := decode(t, w); w.Code != 400 || b.Error != "invalid_request_uri" {
			t.Errorf("expired request_uri = %d %s, want 400 invalid_request_uri", w.Code, b.Error)
		}
		if f.consents.callCount() != 0 {
			t.Error("the consent was authorised")
		}
	})
	t.Run("request_uri is bound to its client", func(t *testing.T) {
		f := newFixture(t)
		uri := f.mustPush(parForm())
		q := authorizeURI(uri)
		q.Set("client_id", "sandbox-tpp-2")
		w := f.authorize(q, true)
		if b := decode(t, w); w.Code != 400 || b.Error != "invalid_request_uri" {
			t.Errorf("another client's request_uri = %d %s, want 400 invalid_request_uri", w.Code, b.Error)
		}
		if f.consents.callCount() != 0 {
			t.Error("the consent was authorised")
		}
		// Its owner can still use it.
		f.code(authorizeURI(uri))
	})
	t.Run("customer in the query must match the pushed one", func(t *testing.T) {
		f := newFixture(t)
		form := parForm()
		form.Set("psu", "alice")
		uri := f.mustPush(form)
		q := authorizeURI(uri)
		q.Set("psu", "mallory")
		w := f.authorize(q, true)
		if b := decode(t, w); w.Code != 400 || b.Error != "invalid_request" || f.consents.callCount() != 0 {
			t.Errorf("other psu = %d %s, %d calls; want 400 invalid_request and no authorisation", w.Code, b.Error, f.consents.callCount())
		}
	})

	set := func(k, v string) func(url.Values) { return func(q url.Values) { q.Set(k, v) } }
	del := func(k string) func(url.Values) { return func(q url.Values) { q.Del(k) } }
	badAuth := []func(*http.Request){withHeader("Authorization", basic("sandbox-tpp", "wrong"))}
	cases := []struct {
		name   string
		form   func(url.Values)
		opts   func(f *fixture) []func(*http.Request)
		status int
		code   string
	}{
		{name: "bad credentials with a valid request", opts: func(*fixture) []func(*http.Request) { return badAuth }, status: 401, code: "invalid_client"},
		{name: "bad credentials with a bad request", form: func(q url.Values) { q.Del("response_type"); q.Add("scope", "x") },
			opts: func(*fixture) []func(*http.Request) { return badAuth }, status: 401, code: "invalid_client"},
		{name: "no credentials", opts: func(*fixture) []func(*http.Request) { return []func(*http.Request){withoutHeader("Authorization")} },
			status: 401, code: "invalid_client"},
		{name: "an assertion by an unregistered key", form: func(q url.Values) {
			withAssertion(q, sign(t, strangerKey(t), jwa.ES256, map[string]any{"iss": FAPIClientID, "sub": FAPIClientID,
				"aud": testPublicURL, "jti": "j", "exp": time.Unix(1_800_000_030, 0).Unix()}))
		}, opts: func(*fixture) []func(*http.Request) { return []func(*http.Request){withoutHeader("Authorization")} }, status: 401, code: "invalid_client"},
		{name: "admin client", opts: func(*fixture) []func(*http.Request) {
			return []func(*http.Request){withHeader("Authorization", basic("sandbox-admin", "admin-secret"))}
		}, status: 400, code: "unauthorized_client"},
		{name: "no response_type", form: del("response_type"), status: 400, code: "invalid_request"},
		{name: "response_type token", form: set("response_type", "token"), status: 400, code: "unsupported_response_type"},
		{name: "repeated parameter", form: func(q url.Values) { q.Add("scope", "accounts") }, status: 400, code: "invalid_request"},
		{name: "request_uri pushed", form: set("request_uri", "urn:ietf:params:oauth:request_uri:x"), status: 400, code: "invalid_request"},
		{name: "client_id of another client", form: set("client_id", "sandbox-tpp-2"), status: 400, code: "invalid_request"},
		{name: "no PKCE", form: del("code_challenge"), status: 400, code: "invalid_request"},
		{name: "redirect to another host", form: set("redirect_uri", "http://attacker.example/cb"), status: 400, code: "invalid_request"},
		{name: "another client's consent", form: set("consent_id", "pay-2"), status: 400, code: "invalid_request"},
		{name: "another client's consent by authorization_details", form: func(q url.Values) {
			q.Del("consent_id")
			q.Set("authorization_details", `[{"type":"openbanking_intent","openbanking_intent_id":"pay-2"}]`)
		}, status: 400, code: "invalid_request"},
		{name: "unknown consent", form: set("consent_id", "nope"), status: 400, code: "invalid_request"},
		{name: "consent already authorised", form: set("consent_id", "done-1"), status: 400, code: "access_denied"},
		{name: "authorization_details of another type", form: set("authorization_details", `[{"type":"x"}]`), status: 400, code: "invalid_authorization_details"},
		{name: "a proof for another endpoint", opts: func(f *fixture) []func(*http.Request) {
			return []func(*http.Request){withHeader("DPoP", f.proof(f.key))}
		}, status: 400, code: "invalid_dpop_proof"},
		{name: "dpop_jkt of another key than the proof's", form: set("dpop_jkt", otherKey(t, sdk.ES256).Thumbprint()),
			opts: func(f *fixture) []func(*http.Request) {
				return []func(*http.Request){withHeader("DPoP", f.parProof(f.key))}
			}, status: 400, code: "invalid_dpop_proof"},
	}
	for _, tc := range cases {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			f := newFixture(t)
			form := parForm()
			if tc.form != nil {
				tc.form(form)
			}
			var opts []func(*http.Request)
			if tc.opts != nil {
				opts = tc.opts(f)
			}
			status, b := f.push(form, opts...)
			if status != tc.status || b.Error != tc.code || b.RequestURI != "" {
				t.Fatalf("PAR = %d %+v, want %d %s", status, b, tc.status, tc.code)
			}
			if f.requests() != 0 || f.consents.callCount() != 0 {
				t.Errorf("%d requests stored, %d authorisations; want none", f.requests(), f.consents.callCount())
			}
		})
	}
}

func TestPARStoreIsBounded(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < maxPARPerClient; i++ {
		f.mustPush(parForm())
	}
	if status, b := f.push(parForm()); status != http.StatusTooManyRequests || b.Error != "temporarily_unavailable" {
		t.Fatalf("PAR past the client's cap = %d %s, want 429 temporarily_unavailable", status, b.Error)
	}
	// Another client is not locked out.
	f.consents.consents["pay-2"].status = openbanking.StatusAwaitingAuthorisation
	form := parForm()
	form.Set("consent_id", "pay-2")
	f.mustPush(form, withHeader("Authorization", basic("sandbox-tpp-2", "sandbox-secret-2")))
	// Expired entries are purged.
	f.now = f.now.Add(61 * time.Second)
	f.mustPush(parForm())
	if n := f.requests(); n != 1 {
		t.Errorf("%d requests stored after expiry, want 1", n)
	}
}

func TestRequirePAR(t *testing.T) {
	f := newFixture(t, func(_ *security.Config, c *Config) { c.RequirePAR = true })
	w := f.authorize(authorizeQuery(), false)
	u, _ := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusSeeOther || u.Query().Get("error") != "invalid_request" || u.Query().Get("code") != "" || u.Query().Get("iss") != testPublicURL {
		t.Fatalf("authorize without PAR = %d %q, want 303 with error=invalid_request and iss", w.Code, w.Header().Get("Location"))
	}
	if f.consents.callCount() != 0 {
		t.Error("the consent was authorised without PAR")
	}
	if !f.srv.Metadata().RequirePushedAuthorizationRequests {
		t.Error("metadata does not say PAR is required")
	}
	f.code(authorizeURI(f.mustPush(parForm())))
}

// TestConsentOfAnotherClient is the rule that one aggregator cannot have
// another's consent authorised for a customer of its choosing, whatever the
// way it names the consent: nothing is authorised, no code issued.
func TestConsentOfAnotherClient(t *testing.T) {
	tpp2 := withHeader("Authorization", basic("sandbox-tpp-2", "sandbox-secret-2"))
	ways := []struct {
		name string
		try  func(f *fixture) int
	}{
		{"consent_id in the query", func(f *fixture) int {
			q := authorizeQuery()
			q.Set("client_id", "sandbox-tpp-2")
			return f.authorize(q, true).Code
		}},
		{"authorization_details in the query", func(f *fixture) int {
			q := authorizeQuery()
			q.Set("client_id", "sandbox-tpp-2")
			q.Del("consent_id")
			q.Set("authorization_details", `[{"type":"openbanking_intent","openbanking_intent_id":"pay-1"}]`)
			return f.authorize(q, true).Code
		}},
		{"consent_id pushed", func(f *fixture) int {
			status, _ := f.push(parForm(), tpp2)
			return status
		}},
		{"authorization_details pushed", func(f *fixture) int {
			form := parForm()
			form.Del("consent_id")
			form.Set("authorization_details", `[{"type":"openbanking_intent","openbanking_intent_id":"pay-1"}]`)
			status, _ := f.push(form, tpp2)
			return status
		}},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			f := newFixture(t)
			if status := w.try(f); status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", status)
			}
			if f.consents.callCount() != 0 || f.consents.consents["pay-1"].status != openbanking.StatusAwaitingAuthorisation {
				t.Error("the first aggregator's consent was authorised for the second")
			}
			if _, _, codes := f.tokens.size(); codes != 0 || f.requests() != 0 {
				t.Error("a code or a pushed request was stored")
			}
		})
	}
}
