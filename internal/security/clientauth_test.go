package security

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	caIssuer       = "https://as.bank.example/realms/obpay"
	caClientID     = "payments-rs"
	caClientSecret = "s&c:ret +%é"
)

// applyAuth runs one clientAuth.apply on an empty header and a form that
// already holds the token, as ask() does.
func applyAuth(t *testing.T, a *clientAuth) (http.Header, url.Values) {
	t.Helper()
	h := http.Header{}
	form := url.Values{"token": {"tok"}}
	if err := a.apply(h, form); err != nil {
		t.Fatalf("apply = %v", err)
	}
	return h, form
}

func TestClientAuthSecretBasic(t *testing.T) {
	for _, method := range []string{"", AuthClientSecretBasic} {
		t.Run("method "+method, func(t *testing.T) {
			a, err := newClientAuth(clientAuthConfig{method: method, clientID: "rs:client é", clientSecret: caClientSecret})
			if err != nil {
				t.Fatal(err)
			}
			h, form := applyAuth(t, a)
			// RFC 6749 §2.3.1: form-urlencoded, then Base64.
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte("rs%3Aclient+%C3%A9:s%26c%3Aret+%2B%25%C3%A9"))
			if got := h.Get("Authorization"); got != want {
				t.Errorf("Authorization = %q, want %q", got, want)
			}
			r := &http.Request{Header: h}
			id, secret, ok := r.BasicAuth()
			if !ok {
				t.Fatal("not HTTP Basic")
			}
			if id, _ = url.QueryUnescape(id); id != "rs:client é" {
				t.Errorf("decoded id = %q", id)
			}
			if secret, _ = url.QueryUnescape(secret); secret != caClientSecret {
				t.Errorf("decoded secret differs")
			}
			if len(form) != 1 {
				t.Errorf("form = %v, want the token only", form)
			}
		})
	}
}

func TestClientAuthSecretPost(t *testing.T) {
	a, err := newClientAuth(clientAuthConfig{method: AuthClientSecretPost, clientID: "rs:client", clientSecret: caClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	h, form := applyAuth(t, a)
	if len(h) != 0 {
		t.Errorf("headers = %v, want none", h)
	}
	// RFC 6749 §2.3.1: the form encoding escapes them once, on the wire.
	want := url.Values{"token": {"tok"}, "client_id": {"rs:client"}, "client_secret": {caClientSecret}}
	if form.Encode() != want.Encode() {
		t.Errorf("form = %v, want %v", form, want)
	}
}

// parsedAssertion is a client assertion checked with the public key.
type parsedAssertion struct {
	header map[string]any
	claims map[string]json.RawMessage
}

func (p parsedAssertion) str(t *testing.T, name string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(p.claims[name], &s); err != nil {
		t.Fatalf("claim %s = %s, want a string", name, p.claims[name])
	}
	return s
}

func (p parsedAssertion) num(t *testing.T, name string) int64 {
	t.Helper()
	var n int64
	if err := json.Unmarshal(p.claims[name], &n); err != nil {
		t.Fatalf("claim %s = %s, want an integer", name, p.claims[name])
	}
	return n
}

// verifyAssertion checks a compact JWS with pub, with the standard library
// only (RFC 7515 §5.2; RFC 7518 §3.4, §3.5; RFC 8037 §3.1), and decodes it.
func verifyAssertion(pub crypto.PublicKey, jws string) (parsedAssertion, error) {
	var p parsedAssertion
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return p, errors.New("not a compact JWS")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return p, err
	}
	if err := json.Unmarshal(hb, &p.header); err != nil {
		return p, err
	}
	if err := json.Unmarshal(cb, &p.claims); err != nil {
		return p, err
	}
	input := []byte(parts[0] + "." + parts[1])
	sum := sha256.Sum256(input)
	ok := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		ok = p.header["alg"] == "ES256" && len(sig) == 64 &&
			ecdsa.Verify(k, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case *rsa.PublicKey:
		ok = p.header["alg"] == "PS256" &&
			rsa.VerifyPSS(k, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case ed25519.PublicKey:
		ok = p.header["alg"] == "EdDSA" && ed25519.Verify(k, input, sig)
	}
	if !ok {
		return p, errors.New("bad signature or alg")
	}
	return p, nil
}

func TestClientAuthPrivateKeyJWT(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name, alg, keyID string
	}{
		{"EC P-256 with kid", "ES256", "rs-key-1"},
		{"RSA 2048 with kid", "PS256", "rs-key-2"},
		{"Ed25519 with kid", "EdDSA", "rs-key-3"},
		{"EC P-256 without kid", "ES256", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := sharedKey(t, "clientauth-"+tc.alg, tc.alg).priv
			a, err := newClientAuth(clientAuthConfig{
				method: AuthPrivateKeyJWT, clientID: caClientID, key: key, keyID: tc.keyID,
				audience: caIssuer, now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for range 2 {
				h, form := applyAuth(t, a)
				if len(h) != 0 {
					t.Errorf("headers = %v, want none", h)
				}
				for name, want := range map[string]string{
					"token":                 "tok",
					"client_id":             caClientID,
					"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
				} {
					if got := form.Get(name); got != want {
						t.Errorf("form %s = %q, want %q", name, got, want)
					}
				}
				if form.Has("client_secret") {
					t.Error("form has client_secret")
				}
				p, err := verifyAssertion(key.Public(), form.Get("client_assertion"))
				if err != nil {
					t.Fatalf("verifyAssertion = %v", err)
				}
				if p.header["alg"] != tc.alg {
					t.Errorf("alg = %v, want %s", p.header["alg"], tc.alg)
				}
				if kid, ok := p.header["kid"]; tc.keyID == "" && ok || tc.keyID != "" && kid != tc.keyID {
					t.Errorf("kid = %v, want %q", kid, tc.keyID)
				}
				if typ, ok := p.header["typ"]; ok && typ != "JWT" {
					t.Errorf("typ = %v, want none or JWT", typ)
				}
				if iss, sub := p.str(t, "iss"), p.str(t, "sub"); iss != caClientID || sub != caClientID {
					t.Errorf("iss, sub = %q, %q, want the client id", iss, sub)
				}
				// FAPI 2.0 Security Profile §5.3.2.1: the issuer, a string.
				if aud := p.str(t, "aud"); aud != caIssuer {
					t.Errorf("aud = %q, want %q", aud, caIssuer)
				}
				iat, exp := p.num(t, "iat"), p.num(t, "exp")
				if iat != now.Unix() || exp <= iat || exp-iat > 60 {
					t.Errorf("iat, exp = %d, %d, want iat = %d and 0 < exp - iat <= 60", iat, exp, now.Unix())
				}
				jti := p.str(t, "jti")
				if raw, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(raw) < 16 {
					t.Errorf("jti = %q, want 128 random bits or more", jti)
				}
				if seen[jti] {
					t.Errorf("jti %q sent twice", jti)
				}
				seen[jti] = true
			}
		})
	}
}

func TestNewClientAuthRejectsBadConfig(t *testing.T) {
	ec := sharedKey(t, "clientauth-ES256", "ES256").priv
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024 := sharedKey(t, "clientauth-RS1024", "RS1024").priv
	for name, cfg := range map[string]clientAuthConfig{
		"unknown method":                {method: "tls_client_auth", clientID: "a", clientSecret: "b"},
		"method in capitals":            {method: "CLIENT_SECRET_BASIC", clientID: "a", clientSecret: "b"},
		"basic without client id":       {clientSecret: "b"},
		"basic without secret":          {method: AuthClientSecretBasic, clientID: "a"},
		"post without secret":           {method: AuthClientSecretPost, clientID: "a"},
		"private_key_jwt without id":    {method: AuthPrivateKeyJWT, key: ec, audience: caIssuer},
		"private_key_jwt without key":   {method: AuthPrivateKeyJWT, clientID: "a", audience: caIssuer},
		"private_key_jwt without aud":   {method: AuthPrivateKeyJWT, clientID: "a", key: ec},
		"private_key_jwt with P-384":    {method: AuthPrivateKeyJWT, clientID: "a", key: p384, audience: caIssuer},
		"private_key_jwt with RSA 1024": {method: AuthPrivateKeyJWT, clientID: "a", key: rsa1024, audience: caIssuer},
	} {
		t.Run(name, func(t *testing.T) {
			if a, err := newClientAuth(cfg); err == nil {
				t.Errorf("newClientAuth = %v, want an error", a)
			}
		})
	}
}

func TestClientAssertionAlg(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		want string // "" means refused
	}{
		{"EC P-256", sharedKey(t, "clientauth-ES256", "ES256").priv, "ES256"},
		{"RSA 2048", sharedKey(t, "clientauth-PS256", "PS256").priv, "PS256"},
		{"Ed25519", sharedKey(t, "clientauth-EdDSA", "EdDSA").priv, "EdDSA"},
		{"EC P-384", p384, ""},
		{"RSA 1024", sharedKey(t, "clientauth-RS1024", "RS1024").priv, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ClientAssertionAlg(tc.key)
			if tc.want == "" {
				if err == nil {
					t.Errorf("ClientAssertionAlg = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ClientAssertionAlg = %q, %v, want %s", got, err, tc.want)
			}
		})
	}
}

func TestClientAuthLogsNoSecret(t *testing.T) {
	a, err := newClientAuth(clientAuthConfig{method: AuthClientSecretPost, clientID: caClientID, clientSecret: caClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	if s := a.LogValue().String(); strings.Contains(s, "s&c") || !strings.Contains(s, caClientID) {
		t.Errorf("LogValue = %s, want the client id and no secret", s)
	}
}

// failingSigner is a key whose signatures fail (an HSM that is down).
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("hsm unavailable")
}

// TestIntrospectionAuthFailureMakesNoCall: when no assertion can be made
// (the key cannot sign, or no randomness for the jti), introspection fails
// (503 at the edge) and the authorization server is not called.
func TestIntrospectionAuthFailureMakesNoCall(t *testing.T) {
	as := &authServer{answer: jsonAnswer(`{"active":true}`)}
	hs := httptest.NewServer(as)
	defer hs.Close()
	ec := sharedKey(t, "clientauth-ES256", "ES256").priv
	for name, key := range map[string]crypto.Signer{
		"signature fails": failingSigner{ec},
	} {
		t.Run(name, func(t *testing.T) {
			in, err := NewHTTPIntrospector(IntrospectionConfig{
				URL: hs.URL, ClientID: caClientID, AuthMethod: AuthPrivateKeyJWT, PrivateKey: key, AssertionAudience: caIssuer,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			if res, err := in.Introspect(context.Background(), "tok"); err == nil {
				t.Errorf("Introspect = %+v, want an error", res)
			}
			if n := as.calls.Load(); n != 0 {
				t.Errorf("calls = %d, want 0", n)
			}
		})
	}
	t.Run("no randomness for the jti", func(t *testing.T) {
		a, err := newClientAuth(clientAuthConfig{method: AuthPrivateKeyJWT, clientID: caClientID, key: ec, audience: caIssuer,
			rand: strings.NewReader("short")})
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{}
		if err := a.apply(http.Header{}, form); err == nil || form.Has("client_assertion") {
			t.Errorf("apply = %v, form %v, want an error and no assertion", err, form)
		}
	})
}

func TestNewHTTPIntrospectorRejectsBadClientAuth(t *testing.T) {
	const u = "https://as.example/introspect"
	ec := sharedKey(t, "clientauth-ES256", "ES256").priv
	for name, cfg := range map[string]IntrospectionConfig{
		"unknown method":              {URL: u, ClientID: "a", ClientSecret: "b", AuthMethod: "none"},
		"post without secret":         {URL: u, ClientID: "a", AuthMethod: AuthClientSecretPost},
		"private_key_jwt without key": {URL: u, ClientID: "a", AuthMethod: AuthPrivateKeyJWT, AssertionAudience: caIssuer},
		"private_key_jwt without aud": {URL: u, ClientID: "a", AuthMethod: AuthPrivateKeyJWT, PrivateKey: ec},
	} {
		t.Run(name, func(t *testing.T) {
			if in, err := NewHTTPIntrospector(cfg); err == nil {
				in.Close()
				t.Error("accepted")
			}
		})
	}
}

// assertionServer is an RFC 7662 endpoint that authenticates its client by
// private_key_jwt as an authorization server must (RFC 7523 §3): signature
// with the registered key, iss = sub = client_id, aud = its issuer, exp in
// the future, jti never seen before.
type assertionServer struct {
	pub crypto.PublicKey
	now func() time.Time

	mu   sync.Mutex
	jtis map[string]bool
}

func (s *assertionServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.authenticate(r); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":"invalid_client","error_description":%q}`, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"active":true,"client_id":"tpp","scope":"payments","token_type":"DPoP","exp":%d,"cnf":{"jkt":"x"}}`,
		s.now().Add(time.Hour).Unix())
}

func (s *assertionServer) authenticate(r *http.Request) error {
	if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("token") == "" {
		return errors.New("bad request")
	}
	if _, _, ok := r.BasicAuth(); ok || r.PostForm.Has("client_secret") {
		return errors.New("a second authentication method")
	}
	if r.PostForm.Get("client_assertion_type") != ClientAssertionType {
		return errors.New("client_assertion_type")
	}
	p, err := verifyAssertion(s.pub, r.PostForm.Get("client_assertion"))
	if err != nil {
		return err
	}
	var c struct {
		Iss, Sub, Aud, Jti string
		Iat, Exp           int64
	}
	b, _ := json.Marshal(p.claims)
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("claims: %v", err)
	}
	now := s.now().Unix()
	switch {
	case c.Iss != caClientID || c.Sub != caClientID || r.PostForm.Get("client_id") != caClientID:
		return errors.New("iss, sub or client_id")
	case c.Aud != caIssuer:
		return errors.New("aud")
	case c.Exp <= now || c.Exp-c.Iat > 60:
		return errors.New("exp")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Jti == "" || s.jtis[c.Jti] {
		return errors.New("jti replayed")
	}
	s.jtis[c.Jti] = true
	return nil
}

// TestHTTPIntrospectorPrivateKeyJWT runs the introspector against an
// authorization server that verifies every assertion, for each key type.
func TestHTTPIntrospectorPrivateKeyJWT(t *testing.T) {
	for _, alg := range []string{"ES256", "PS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			key := sharedKey(t, "clientauth-"+alg, alg).priv
			as := &assertionServer{pub: key.Public(), now: time.Now, jtis: map[string]bool{}}
			hs := httptest.NewServer(as)
			defer hs.Close()
			in, err := NewHTTPIntrospector(IntrospectionConfig{
				URL: hs.URL, ClientID: caClientID, AuthMethod: AuthPrivateKeyJWT,
				PrivateKey: key, KeyID: "rs-1", AssertionAudience: caIssuer,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			for _, token := range []string{"token-1", "token-2"} {
				res, err := in.Introspect(context.Background(), token)
				if err != nil || !res.Active || res.ClientID != "tpp" {
					t.Fatalf("Introspect(%s) = %+v, %v, want active", token, res, err)
				}
			}
			if n := len(as.jtis); n != 2 {
				t.Errorf("distinct assertions = %d, want 2", n)
			}
		})
	}

	t.Run("wrong key", func(t *testing.T) {
		as := &assertionServer{pub: sharedKey(t, "clientauth-EdDSA", "EdDSA").priv.Public(), now: time.Now, jtis: map[string]bool{}}
		hs := httptest.NewServer(as)
		defer hs.Close()
		in, err := NewHTTPIntrospector(IntrospectionConfig{
			URL: hs.URL, ClientID: caClientID, AuthMethod: AuthPrivateKeyJWT,
			PrivateKey: sharedKey(t, "clientauth-ES256", "ES256").priv, AssertionAudience: caIssuer,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if res, err := in.Introspect(context.Background(), "token-1"); err == nil {
			t.Errorf("Introspect = %+v, want an error (our credentials refused)", res)
		}
	})
}

// TestHTTPIntrospectorSecretPost: client_secret_post sends the credentials in
// the body and no Authorization header.
func TestHTTPIntrospectorSecretPost(t *testing.T) {
	var got url.Values
	var authz string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got, authz = r.PostForm, r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"active":false}`)
	}))
	defer hs.Close()
	in, err := NewHTTPIntrospector(IntrospectionConfig{URL: hs.URL, ClientID: "rs:client", ClientSecret: caClientSecret, AuthMethod: AuthClientSecretPost})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := in.Introspect(context.Background(), "tok"); err != nil {
		t.Fatal(err)
	}
	if authz != "" || got.Get("client_id") != "rs:client" || got.Get("client_secret") != caClientSecret || got.Get("token") != "tok" {
		t.Errorf("Authorization %q, form client_id %q, token %q: want no header, the id, the secret and the token",
			authz, got.Get("client_id"), got.Get("token"))
	}
}
