package devauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	sdk "github.com/obpay/payments/client"
	"github.com/obpay/payments/internal/security"
)

func TestIntrospectionEndpoint(t *testing.T) {
	f := newFixture(t)
	psu := f.mustToken(exchangeForm(f.code(authorizeQuery())))
	rs := []func(*http.Request){withHeader("Authorization", basic(ResourceServerClientID, ResourceServerClientSecret))}
	cases := []struct {
		name   string
		form   url.Values
		opts   []func(*http.Request)
		status int
		want   string // exact JSON body for 200 answers, error code otherwise
	}{
		{name: "active PSU token", form: url.Values{"token": {psu.AccessToken}}, opts: rs, status: 200,
			want: `{"active":true,"scope":"payments","client_id":"sandbox-tpp","sub":"alice","exp":1800000300,"iat":1800000000,` +
				`"token_type":"DPoP","consent_id":"pay-1","authorization_details":[{"openbanking_intent_id":"pay-1","type":"openbanking_intent"}],"cnf":{"jkt":"` + f.key.Thumbprint() + `"}}`},
		{name: "with a token_type_hint", form: url.Values{"token": {"unknown"}, "token_type_hint": {"access_token"}}, opts: rs, status: 200,
			want: `{"active":false}`},
		{name: "refresh token is not an access token", form: url.Values{"token": {psu.RefreshToken}}, opts: rs, status: 200,
			want: `{"active":false}`},
		{name: "credentials in the form", form: url.Values{"token": {"unknown"}, "client_id": {ResourceServerClientID},
			"client_secret": {ResourceServerClientSecret}}, status: 200, want: `{"active":false}`},
		{name: "no token", form: url.Values{}, opts: rs, status: 400, want: "invalid_request"},
		{name: "no client authentication", form: url.Values{"token": {psu.AccessToken}}, status: 401, want: "invalid_client"},
		{name: "wrong secret", form: url.Values{"token": {psu.AccessToken}}, status: 401, want: "invalid_client",
			opts: []func(*http.Request){withHeader("Authorization", basic(ResourceServerClientID, "guess"))}},
		{name: "an aggregator", form: url.Values{"token": {psu.AccessToken}}, status: 403, want: "unauthorized_client",
			opts: []func(*http.Request){withHeader("Authorization", basic("sandbox-tpp", "sandbox-secret"))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := f.post("/oauth2/introspect", tc.form, tc.opts...)
			if w.Code != tc.status {
				t.Fatalf("introspect = %d %s, want %d", w.Code, w.Body.String(), tc.status)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Error("introspection answer is cacheable")
			}
			if tc.status == 200 {
				if got := w.Body.String(); got != tc.want+"\n" {
					t.Errorf("body = %s, want %s", got, tc.want)
				}
				return
			}
			if b := decode(t, w); b.Error != tc.want {
				t.Errorf("error = %q, want %q", b.Error, tc.want)
			}
		})
	}
}

// TestSDKAgainstSandbox runs the Go SDK against the sandbox over real HTTP
// with the real clock: every grant, then the resource server's verifier with
// the service's HTTP introspection client, so the binding is proven end to
// end.
func TestSDKAgainstSandbox(t *testing.T) {
	for _, alg := range []sdk.Algorithm{sdk.ES256, sdk.EdDSA, sdk.PS256} {
		t.Run(string(alg), func(t *testing.T) {
			ts := httptest.NewUnstartedServer(nil)
			base := "http://" + ts.Listener.Addr().String()
			tokens := NewTokens(nil)
			store, err := security.NewMemoryReplayStore()
			if err != nil {
				t.Fatal(err)
			}
			asVerifier, err := security.NewVerifier(security.Config{PublicURL: base, ReplayStore: store, Introspector: tokens})
			if err != nil {
				t.Fatal(err)
			}
			consents := newFakeConsents()
			srv, err := New(Config{Verifier: asVerifier, Consents: consents, Tokens: tokens})
			if err != nil {
				t.Fatal(err)
			}
			e := echo.New()
			srv.Register(e)
			ts.Config.Handler = e
			ts.Start()
			t.Cleanup(ts.Close)

			ctx := context.Background()
			key := testKey(t, alg)
			tc, err := sdk.NewTokenClient(sdk.TokenConfig{BaseURL: base, ClientID: "sandbox-tpp", ClientSecret: "sandbox-secret", Key: key})
			if err != nil {
				t.Fatal(err)
			}
			cc, err := tc.ClientCredentials(ctx, "payments")
			if err != nil {
				t.Fatalf("ClientCredentials = %v", err)
			}
			pkce, err := sdk.NewPKCE()
			if err != nil {
				t.Fatal(err)
			}
			req := sdk.AuthorizeRequest{RedirectURI: "http://localhost/cb", Scope: "payments", PKCE: pkce,
				ConsentID: "pay-1", PSU: "alice", DebtorAccount: "acc-alice", State: "s1"}
			code, err := tc.SandboxAuthorize(ctx, req)
			if err != nil {
				t.Fatalf("SandboxAuthorize = %v", err)
			}
			psu, err := tc.Exchange(ctx, code, req.RedirectURI, pkce)
			if err != nil {
				t.Fatalf("Exchange = %v", err)
			}
			renewed, err := tc.Refresh(ctx, psu.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh = %v", err)
			}
			post, err := sdk.NewTokenClient(sdk.TokenConfig{BaseURL: base, ClientID: "sandbox-tpp-2", ClientSecret: "sandbox-secret-2",
				Key: key, SecretInBody: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := post.ClientCredentials(ctx); err != nil {
				t.Fatalf("ClientCredentials with client_secret_post = %v", err)
			}

			// The resource server side, introspecting over HTTP.
			intro, err := security.NewHTTPIntrospector(security.IntrospectionConfig{
				URL: base + "/oauth2/introspect", ClientID: ResourceServerClientID, ClientSecret: ResourceServerClientSecret,
				CacheTTL: -1,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(intro.Close)
			rsStore, err := security.NewMemoryReplayStore()
			if err != nil {
				t.Fatal(err)
			}
			rs, err := security.NewVerifier(security.Config{PublicURL: base, NonceMode: security.NonceOff,
				ReplayStore: rsStore, Introspector: intro})
			if err != nil {
				t.Fatal(err)
			}
			resource := base + "/open-banking/v3.1/pisp/domestic-payments"
			for _, tok := range []*sdk.Token{cc, psu, renewed} {
				proof, err := key.Proof(sdk.ProofRequest{Method: "POST", URL: resource, AccessToken: tok.AccessToken})
				if err != nil {
					t.Fatal(err)
				}
				p, _, err := rs.Verify(ctx, security.Request{Method: "POST", URL: resource,
					Authorization: []string{"DPoP " + tok.AccessToken}, DPoP: []string{proof}})
				if err != nil {
					t.Fatalf("resource Verify(%s token) = %v", tok.Scope, err)
				}
				if p.JKT != key.Thumbprint() || p.ClientID != "sandbox-tpp" {
					t.Errorf("principal = %+v", p)
				}
			}
			// The original PSU token was replaced by the refresh, but stays valid
			// until it expires; its subject and consent come through.
			info, err := intro.Introspect(ctx, renewed.AccessToken)
			if err != nil || info.Subject != "alice" || info.ConsentID != "pay-1" || info.Exp-info.Iat != 300 {
				t.Errorf("introspect(renewed) = %+v, %v", info, err)
			}
			// A token stolen without its key is useless.
			thief := otherKey(t, alg)
			proof, _ := thief.Proof(sdk.ProofRequest{Method: "POST", URL: resource, AccessToken: psu.AccessToken})
			_, _, err = rs.Verify(ctx, security.Request{Method: "POST", URL: resource,
				Authorization: []string{"DPoP " + psu.AccessToken}, DPoP: []string{proof}})
			var se *security.Error
			if !errors.As(err, &se) || se.Code != security.CodeInvalidToken {
				t.Errorf("Verify with the thief's key = %v, want invalid_token", err)
			}
			if diff := cmp.Diff([]authoriseCall{{"pay-1", "alice", "acc-alice"}}, consents.calls, cmp.AllowUnexported(authoriseCall{})); diff != "" {
				t.Errorf("AuthoriseConsent calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIntrospectAnswerRoundTrips checks that the JSON the endpoint writes
// reads back into the same security.Introspection.
func TestIntrospectAnswerRoundTrips(t *testing.T) {
	f := newFixture(t)
	tok := f.mustToken(exchangeForm(f.code(authorizeQuery())))
	w := f.post("/oauth2/introspect", url.Values{"token": {tok.AccessToken}},
		withHeader("Authorization", basic(ResourceServerClientID, ResourceServerClientSecret)))
	var got security.Introspection
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.introspect(tok.AccessToken), got); diff != "" {
		t.Errorf("HTTP answer differs from Introspect (-in-process +HTTP):\n%s", diff)
	}
}
