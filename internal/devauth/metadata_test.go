package devauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jwa"
)

func TestMetadata(t *testing.T) {
	f := newFixture(t)
	var docs []map[string]any
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		w := httptest.NewRecorder()
		f.e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s = %d %s", path, w.Code, w.Header().Get("Content-Type"))
		}
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, m)
	}
	if diff := cmp.Diff(docs[0], docs[1]); diff != "" {
		t.Errorf("the two documents differ:\n%s", diff)
	}
	m := docs[0]
	want := map[string]any{
		"issuer":                                           testPublicURL,
		"authorization_endpoint":                           testPublicURL + "/oauth2/authorize",
		"token_endpoint":                                   testPublicURL + "/oauth2/token",
		"introspection_endpoint":                           testPublicURL + "/oauth2/introspect",
		"pushed_authorization_request_endpoint":            testPublicURL + "/oauth2/par",
		"require_pushed_authorization_requests":            false,
		"response_types_supported":                         []any{"code"},
		"grant_types_supported":                            []any{"authorization_code", "refresh_token", "client_credentials"},
		"code_challenge_methods_supported":                 []any{"S256"},
		"token_endpoint_auth_methods_supported":            []any{"private_key_jwt", "client_secret_basic", "client_secret_post"},
		"token_endpoint_auth_signing_alg_values_supported": []any{"ES256", "PS256", "EdDSA"},
		"authorization_response_iss_parameter_supported":   true,
		"authorization_details_types_supported":            []any{"openbanking_intent"},
	}
	for k, v := range want {
		if diff := cmp.Diff(v, m[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	if algs, _ := m["dpop_signing_alg_values_supported"].([]any); len(algs) == 0 {
		t.Error("no dpop_signing_alg_values_supported")
	}
	// No signing keys: no jwks_uri.
	if _, ok := m["jwks_uri"]; ok {
		t.Error("jwks_uri announced")
	}
}

func TestPrivateKeyJWTAtIntrospection(t *testing.T) {
	f := newFixture(t)
	claims := f.assertionClaims()
	claims["aud"] = testPublicURL + "/oauth2/introspect"
	// sandbox-tpp-fapi authenticates, but is no resource server.
	w := f.post("/oauth2/introspect", withAssertion(url.Values{"token": {"x"}}, sign(t, fapiKey(t), jwa.ES256, claims)))
	if b := decode(t, w); w.Code != http.StatusForbidden || b.Error != "unauthorized_client" {
		t.Errorf("introspect = %d %s, want 403 unauthorized_client", w.Code, b.Error)
	}
	w = f.post("/oauth2/introspect", withAssertion(url.Values{"token": {"x"}}, sign(t, strangerKey(t), jwa.ES256, f.assertionClaims())))
	if b := decode(t, w); w.Code != http.StatusUnauthorized || b.Error != "invalid_client" {
		t.Errorf("introspect with an unregistered key = %d %s, want 401 invalid_client", w.Code, b.Error)
	}
}
