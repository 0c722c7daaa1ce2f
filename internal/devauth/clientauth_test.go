package devauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/obpay/payments/internal/security"
)

// fapiKey is the published test key of sandbox-tpp-fapi, private part
// included, read from the docs.
func fapiKey(t *testing.T) jwk.Key {
	t.Helper()
	b, err := os.ReadFile("../../docs/sandbox-tpp-fapi.jwk")
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.ParseKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// strangerKey is a P-256 key registered for no client.
func strangerKey(t *testing.T) jwk.Key {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, "sandbox-tpp-fapi-1")
	return k
}

// assertionClaims returns valid claims of a sandbox-tpp-fapi assertion for
// the fixture's time.
func (f *fixture) assertionClaims() map[string]any {
	return map[string]any{
		"iss": FAPIClientID, "sub": FAPIClientID, "aud": testPublicURL,
		"jti": randomJTI(f.t), "iat": f.now.Unix(), "exp": f.now.Add(60 * time.Second).Unix(),
	}
}

func randomJTI(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return url.QueryEscape(string(b))
}

// sign makes a compact JWS of claims with key under alg.
func sign(t *testing.T, key jwk.Key, alg jwa.SignatureAlgorithm, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	if key.KeyID() != "" {
		_ = h.Set(jws.KeyIDKey, key.KeyID())
	}
	out, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// withAssertion adds a client assertion to a form.
func withAssertion(form url.Values, assertion string) url.Values {
	form.Set("client_assertion_type", security.ClientAssertionType)
	form.Set("client_assertion", assertion)
	return form
}

func TestPrivateKeyJWTAtTokenEndpoint(t *testing.T) {
	cc := func() url.Values { return url.Values{"grant_type": {"client_credentials"}, "scope": {"payments"}} }
	t.Run("the published test key authenticates sandbox-tpp-fapi", func(t *testing.T) {
		f := newFixture(t)
		form := withAssertion(cc(), sign(t, fapiKey(t), jwa.ES256, f.assertionClaims()))
		b := f.mustToken(form, withoutHeader("Authorization"))
		if info := f.introspect(b.AccessToken); !info.Active || info.ClientID != FAPIClientID {
			t.Errorf("token = %+v, want one of sandbox-tpp-fapi", info)
		}
	})
	t.Run("aud may be the token endpoint, in an array", func(t *testing.T) {
		f := newFixture(t)
		claims := f.assertionClaims()
		claims["aud"] = []string{testTokenURL}
		f.mustToken(withAssertion(cc(), sign(t, fapiKey(t), jwa.ES256, claims)), withoutHeader("Authorization"))
	})
	t.Run("with client_id naming the same client", func(t *testing.T) {
		f := newFixture(t)
		form := withAssertion(cc(), sign(t, fapiKey(t), jwa.ES256, f.assertionClaims()))
		form.Set("client_id", FAPIClientID)
		f.mustToken(form, withoutHeader("Authorization"))
	})

	claim := func(k string, v any) func(f *fixture, m map[string]any) {
		return func(_ *fixture, m map[string]any) {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
	}
	cases := []struct {
		name   string
		key    func(t *testing.T) jwk.Key
		alg    jwa.SignatureAlgorithm
		claims func(f *fixture, m map[string]any)
		form   func(form url.Values)
		opts   []func(*http.Request)
		status int
		code   string
	}{
		{name: "a key not registered for the client", key: strangerKey, status: 401, code: "invalid_client"},
		{name: "iss another client", claims: claim("iss", "sandbox-tpp"), status: 401, code: "invalid_client"},
		{name: "iss unknown", claims: claim("iss", "nobody"), status: 401, code: "invalid_client"},
		{name: "sub not iss", claims: claim("sub", "sandbox-tpp"), status: 401, code: "invalid_client"},
		{name: "aud another server", claims: claim("aud", "https://other.example"), status: 401, code: "invalid_client"},
		{name: "aud the PAR endpoint", claims: claim("aud", testPublicURL+"/oauth2/par"), status: 401, code: "invalid_client"},
		{name: "no aud", claims: claim("aud", nil), status: 401, code: "invalid_client"},
		{name: "no exp", claims: claim("exp", nil), status: 401, code: "invalid_client"},
		{name: "expired", claims: func(f *fixture, m map[string]any) { m["exp"] = f.now.Unix() }, status: 401, code: "invalid_client"},
		{name: "exp more than 60 s ahead", claims: func(f *fixture, m map[string]any) { m["exp"] = f.now.Unix() + 61 }, status: 401, code: "invalid_client"},
		{name: "iat in the future", claims: func(f *fixture, m map[string]any) { m["iat"] = f.now.Unix() + 30 }, status: 401, code: "invalid_client"},
		{name: "nbf in the future", claims: func(f *fixture, m map[string]any) { m["nbf"] = f.now.Unix() + 30 }, status: 401, code: "invalid_client"},
		{name: "no jti", claims: claim("jti", nil), status: 401, code: "invalid_client"},
		{name: "HS256 with the public key as secret", alg: jwa.HS256, status: 401, code: "invalid_client"},
		{name: "wrong assertion type", form: func(form url.Values) { form.Set("client_assertion_type", "urn:x") }, status: 401, code: "invalid_client"},
		{name: "not a JWS", form: func(form url.Values) { form.Set("client_assertion", "a.b.c") }, status: 401, code: "invalid_client"},
		{name: "client_id names another client", form: func(form url.Values) { form.Set("client_id", "sandbox-tpp") }, status: 401, code: "invalid_client"},
		{name: "assertion repeated", form: func(form url.Values) { form.Add("client_assertion", form.Get("client_assertion")) }, status: 401, code: "invalid_client"},
		{name: "with a secret too", form: func(form url.Values) { form.Set("client_secret", "x") }, status: 400, code: "invalid_request"},
		{name: "with Basic too", opts: []func(*http.Request){withHeader("Authorization", basic("sandbox-tpp", "sandbox-secret"))}, status: 400, code: "invalid_request"},
		{name: "the secret methods", form: func(form url.Values) {
			form.Del("client_assertion")
			form.Del("client_assertion_type")
			form.Set("client_id", FAPIClientID)
			form.Set("client_secret", "")
		}, status: 401, code: "invalid_client"},
	}
	for _, tc := range cases {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			f := newFixture(t)
			key := fapiKey(t)
			if tc.key != nil {
				key = tc.key(t)
			}
			alg := jwa.ES256
			if tc.alg != "" {
				alg = tc.alg
			}
			claims := f.assertionClaims()
			if tc.claims != nil {
				tc.claims(f, claims)
			}
			var assertion string
			if alg == jwa.HS256 {
				pub, err := key.PublicKey()
				if err != nil {
					t.Fatal(err)
				}
				secret, _ := json.Marshal(pub)
				sym, err := jwk.FromRaw(secret)
				if err != nil {
					t.Fatal(err)
				}
				assertion = sign(t, sym, alg, claims)
			} else {
				assertion = sign(t, key, alg, claims)
			}
			form := withAssertion(cc(), assertion)
			if tc.form != nil {
				tc.form(form)
			}
			opts := append([]func(*http.Request){withoutHeader("Authorization")}, tc.opts...)
			w := f.tokenRequest(form, opts...)
			if b := decode(t, w); w.Code != tc.status || b.Error != tc.code || b.AccessToken != "" {
				t.Fatalf("token = %d %s (%s), want %d %s", w.Code, b.Error, b.ErrorDescription, tc.status, tc.code)
			}
			if access, _, _ := f.tokens.size(); access != 0 {
				t.Errorf("%d tokens issued, want none", access)
			}
		})
	}

	t.Run("refuses a replayed assertion", func(t *testing.T) {
		f := newFixture(t)
		a := sign(t, fapiKey(t), jwa.ES256, f.assertionClaims())
		f.mustToken(withAssertion(cc(), a), withoutHeader("Authorization"))
		w := f.tokenRequest(withAssertion(cc(), a), withoutHeader("Authorization"))
		if b := decode(t, w); w.Code != 401 || b.Error != "invalid_client" {
			t.Fatalf("replayed assertion = %d %s, want 401 invalid_client", w.Code, b.Error)
		}
	})
	t.Run("a refused assertion does not take room", func(t *testing.T) {
		f := newFixture(t)
		claims := f.assertionClaims()
		claims["sub"] = "x"
		bad := sign(t, fapiKey(t), jwa.ES256, claims)
		if w := f.tokenRequest(withAssertion(cc(), bad), withoutHeader("Authorization")); w.Code != 401 {
			t.Fatalf("bad assertion = %d, want 401", w.Code)
		}
		claims["sub"] = FAPIClientID
		f.mustToken(withAssertion(cc(), sign(t, fapiKey(t), jwa.ES256, claims)), withoutHeader("Authorization"))
	})
}

func TestParseClientKey(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_ = pub
	k, err := jwk.FromRaw(priv)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(k)
	if ck, err := parseClientKey(b); err != nil || ck.alg != "EdDSA" {
		t.Errorf("Ed25519 key = %+v, %v; want EdDSA", ck, err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k, _ = jwk.FromRaw(&p384.PublicKey)
	b, _ = json.Marshal(k)
	if _, err := parseClientKey(b); err == nil {
		t.Error("a P-384 key was accepted")
	}
	// The registered key is the public part of the published one.
	want, err := fapiKey(t).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jwk.ParseKey([]byte(fapiClientKey))
	if err != nil {
		t.Fatal(err)
	}
	if tp, _ := got.Thumbprint(crypto.SHA256); string(tp) != string(want) || got.KeyID() != fapiKey(t).KeyID() {
		t.Error("the registered key is not the public part of docs/sandbox-tpp-fapi.jwk")
	}
}
