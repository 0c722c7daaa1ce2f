package security

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

const (
	testAudience = "https://api.bank.example"
	asKID        = "as-es256"
	asRSAKID     = "as-ps256"
)

// testAS is an authorization server serving RFC 8414 metadata and a JWKS.
type testAS struct {
	srv       *httptest.Server
	issuer    string
	jwksHits  atomic.Int64
	jwksDown  atomic.Bool
	metaDown  atomic.Bool
	mu        sync.Mutex
	jwksBody  []byte
	metaPaths map[string]bool // paths that serve the metadata
	metaIss   string          // issuer written in the metadata; "" means issuer
}

func newTestAS(t testing.TB, path string, keys ...*testKey) *testAS {
	t.Helper()
	as := &testAS{metaPaths: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		as.mu.Lock()
		serve := as.metaPaths[r.URL.Path]
		iss := as.metaIss
		as.mu.Unlock()
		if !serve || as.metaDown.Load() {
			http.NotFound(w, r)
			return
		}
		if iss == "" {
			iss = as.issuer
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer":                 iss,
			"jwks_uri":               as.srv.URL + "/jwks",
			"introspection_endpoint": as.srv.URL + "/introspect",
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		as.jwksHits.Add(1)
		if as.jwksDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		as.mu.Lock()
		body := as.jwksBody
		as.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	as.issuer = as.srv.URL + path
	as.metaPaths["/.well-known/oauth-authorization-server"+path] = true
	as.setKeys(t, keys...)
	return as
}

// setKeys publishes keys, each with the kid asKID (ES256) or asRSAKID.
func (as *testAS) setKeys(t testing.TB, keys ...*testKey) {
	t.Helper()
	byKID := map[string]*testKey{}
	for _, k := range keys {
		kid := asKID
		if k.alg == "PS256" {
			kid = asRSAKID
		}
		byKID[kid] = k
	}
	as.publish(t, byKID)
}

// publish serves a JWKS with the public keys under their kids.
func (as *testAS) publish(t testing.TB, byKID map[string]*testKey) {
	t.Helper()
	set := jwk.NewSet()
	for kid, k := range byKID {
		key, err := jwk.FromRaw(k.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		_ = key.Set(jwk.KeyIDKey, kid)
		_ = set.AddKey(key)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	as.mu.Lock()
	as.jwksBody = b
	as.mu.Unlock()
}

// jwtFixture is a verifier whose introspector is a TokenResolver for testAS.
type jwtFixture struct {
	*fixture
	as     *testAS
	asKey  *testKey
	disc   *Discovery
	r      *TokenResolver
	opaque *fakeIntrospector
}

func newJWTFixture(t testing.TB, mutate func(*TokenResolverConfig)) *jwtFixture {
	t.Helper()
	asKey := sharedKey(t, "as-ES256", "ES256")
	as := newTestAS(t, "", asKey)
	disc, err := NewDiscovery(DiscoveryConfig{Issuer: as.issuer})
	if err != nil {
		t.Fatal(err)
	}
	if err := disc.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	jf := &jwtFixture{as: as, asKey: asKey, disc: disc}
	var f *fixture
	cfg := TokenResolverConfig{
		Discovery: disc,
		Audience:  testAudience,
		Now:       func() time.Time { return f.now },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	if cfg.Introspector == nil && cfg.Mode != AccessTokensJWT {
		jf.opaque = &fakeIntrospector{}
		cfg.Introspector = jf.opaque
	}
	r, err := NewTokenResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	jf.r = r
	f = newFixture(t, "ES256", func(c *Config) { c.Introspector = r })
	jf.fixture = f
	if jf.opaque != nil {
		jf.opaque.res = f.intro.res
	}
	return jf
}

// claimsJWT returns valid access token claims bound to the client key.
func (jf *jwtFixture) claimsJWT() map[string]any {
	return map[string]any{
		"iss":        jf.as.issuer,
		"aud":        testAudience,
		"sub":        "psu-1",
		"client_id":  "tpp-1",
		"scope":      "payments accounts",
		"exp":        jf.now.Unix() + 300,
		"iat":        jf.now.Unix() - 5,
		"jti":        freshJTI(),
		"cnf":        map[string]any{"jkt": jf.key.jkt},
		"consent_id": "consent-1",
	}
}

func (jf *jwtFixture) headerJWT() map[string]any {
	return map[string]any{"typ": "at+jwt", "alg": "ES256", "kid": asKID}
}

// verifyJWT sends token with a fresh proof.
func (jf *jwtFixture) verifyJWT(token string) (Principal, error) {
	jf.token = token
	p, _, err := jf.v.Verify(context.Background(), jf.request(jf.proof()))
	return p, err
}

func hs256(t testing.TB, header, claims map[string]any, secret []byte) string {
	t.Helper()
	input := encodeSegment(t, header) + "." + encodeSegment(t, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestTokenResolverAcceptsJWT(t *testing.T) {
	jf := newJWTFixture(t, nil)
	for _, typ := range []string{"at+jwt", "application/AT+JWT"} {
		h := jf.headerJWT()
		h["typ"] = typ
		p, err := jf.verifyJWT(jf.asKey.sign(t, h, jf.claimsJWT()))
		if err != nil {
			t.Fatalf("Verify(JWT typ %s) = %v, want nil", typ, err)
		}
		if p.ClientID != "tpp-1" || p.Subject != "psu-1" || p.ConsentID != "consent-1" || len(p.Scopes) != 2 {
			t.Errorf("principal = %+v", p)
		}
	}
	if n := jf.opaque.calls.Load(); n != 0 {
		t.Errorf("introspection calls = %d, want 0", n)
	}
	if n := jf.as.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetches = %d, want 1", n)
	}
}

func TestTokenResolverAcceptsPS256(t *testing.T) {
	jf := newJWTFixture(t, nil)
	rsaKey := sharedKey(t, "as-PS256", "PS256")
	jf.as.setKeys(t, jf.asKey, rsaKey)
	h := map[string]any{"typ": "at+jwt", "alg": "PS256", "kid": asRSAKID}
	if _, err := jf.verifyJWT(rsaKey.sign(t, h, jf.claimsJWT())); err != nil {
		t.Fatalf("Verify(PS256 JWT) = %v, want nil", err)
	}
}

func TestTokenResolverRefusesJWT(t *testing.T) {
	other := sharedKey(t, "other-ES256", "ES256")
	edKey := sharedKey(t, "as-EdDSA", "EdDSA")
	pubJWK, _ := json.Marshal(sharedKey(t, "as-ES256", "ES256").jwk)
	cases := []struct {
		name   string
		token  func(jf *jwtFixture) string
		reason string
	}{
		{"wrong iss", func(jf *jwtFixture) string {
			c := jf.claimsJWT()
			c["iss"] = jf.as.issuer + "/other"
			return jf.asKey.sign(t, jf.headerJWT(), c)
		}, "jwt_issuer"},
		{"wrong aud", func(jf *jwtFixture) string {
			c := jf.claimsJWT()
			c["aud"] = []string{"https://other.example"}
			return jf.asKey.sign(t, jf.headerJWT(), c)
		}, "jwt_audience"},
		{"expired", func(jf *jwtFixture) string {
			c := jf.claimsJWT()
			c["exp"] = jf.now.Unix()
			return jf.asKey.sign(t, jf.headerJWT(), c)
		}, "jwt_expired"},
		{"exp missing", func(jf *jwtFixture) string {
			c := jf.claimsJWT()
			delete(c, "exp")
			return jf.asKey.sign(t, jf.headerJWT(), c)
		}, "jwt_exp_missing"},
		{"nbf in the future", func(jf *jwtFixture) string {
			c := jf.claimsJWT()
			c["nbf"] = jf.now.Unix() + 11
			return jf.asKey.sign(t, jf.headerJWT(), c)
		}, "jwt_not_yet_valid"},
		{"iat in the future", func(jf *jwtFixture) string {
			c := jf.claimsJWT()
			c["iat"] = jf.now.Unix() + 11
			return jf.asKey.sign(t, jf.headerJWT(), c)
		}, "jwt_issued_in_future"},
		{"unknown kid", func(jf *jwtFixture) string {
			h := jf.headerJWT()
			h["kid"] = "rotated-away"
			return other.sign(t, h, jf.claimsJWT())
		}, "jwt_unknown_key"},
		{"signed by another key", func(jf *jwtFixture) string {
			return other.sign(t, jf.headerJWT(), jf.claimsJWT())
		}, "jwt_signature"},
		{"alg none", func(jf *jwtFixture) string {
			h := jf.headerJWT()
			h["alg"] = "none"
			return encodeSegment(t, h) + "." + encodeSegment(t, jf.claimsJWT()) + ".AA"
		}, "jwt_alg"},
		{"HS256 with the public key as secret", func(jf *jwtFixture) string {
			h := jf.headerJWT()
			h["alg"] = "HS256"
			return hs256(t, h, jf.claimsJWT(), pubJWK)
		}, "jwt_alg"},
		{"alg of another key type", func(jf *jwtFixture) string {
			h := jf.headerJWT()
			h["alg"] = "EdDSA"
			return edKey.sign(t, h, jf.claimsJWT())
		}, "jwt_key_mismatch"},
		{"crit", func(jf *jwtFixture) string {
			h := jf.headerJWT()
			h["crit"] = []string{"exp"}
			return jf.asKey.sign(t, h, jf.claimsJWT())
		}, "jwt_crit"},
		{"missing cnf", func(jf *jwtFixture) string {
			c := jf.claimsJWT()
			delete(c, "cnf")
			return jf.asKey.sign(t, jf.headerJWT(), c)
		}, "jwt_not_bound"},
		{"missing client_id", func(jf *jwtFixture) string {
			c := jf.claimsJWT()
			delete(c, "client_id")
			return jf.asKey.sign(t, jf.headerJWT(), c)
		}, "jwt_client_id_missing"},
		{"active claim", func(jf *jwtFixture) string {
			c := jf.claimsJWT()
			c["active"] = true
			return jf.asKey.sign(t, jf.headerJWT(), c)
		}, "jwt_malformed"},
		{"wrong cnf.jkt", func(jf *jwtFixture) string {
			c := jf.claimsJWT()
			c["cnf"] = map[string]any{"jkt": other.jkt}
			return jf.asKey.sign(t, jf.headerJWT(), c)
		}, "key_binding_mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			jf := newJWTFixture(t, nil)
			_, err := jf.verifyJWT(tc.token(jf))
			e := errorOf(t, err)
			if e.Status != http.StatusUnauthorized || e.Code != CodeInvalidToken || e.Reason != tc.reason {
				t.Errorf("Verify = %d %s %s, want 401 invalid_token %s", e.Status, e.Code, e.Reason, tc.reason)
			}
			if n := jf.opaque.calls.Load(); n != 0 {
				t.Errorf("introspection calls = %d, want 0", n)
			}
		})
	}
}

func TestTokenResolverUnknownKIDRefreshesOnce(t *testing.T) {
	jf := newJWTFixture(t, nil)
	other := sharedKey(t, "other-ES256", "ES256")
	if _, err := jf.verifyJWT(jf.asKey.sign(t, jf.headerJWT(), jf.claimsJWT())); err != nil {
		t.Fatal(err)
	}
	jf.now = jf.now.Add(2 * time.Minute)
	for _, kid := range []string{"new-1", "new-2"} {
		h := jf.headerJWT()
		h["kid"] = kid
		_, err := jf.verifyJWT(other.sign(t, h, jf.claimsJWT()))
		if e := errorOf(t, err); e.Reason != "jwt_unknown_key" {
			t.Fatalf("Verify(kid %s) reason = %s, want jwt_unknown_key", kid, e.Reason)
		}
		jf.now = jf.now.Add(30 * time.Second)
	}
	if n := jf.as.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetches = %d, want 2 (the first, one refresh for two unknown kids)", n)
	}
	// Once the rotated key is published, the next refresh finds it.
	jf.as.publish(t, map[string]*testKey{asKID: jf.asKey, "new-2": other})
	jf.now = jf.now.Add(time.Minute)
	h := jf.headerJWT()
	h["kid"] = "new-2"
	if _, err := jf.verifyJWT(other.sign(t, h, jf.claimsJWT())); err != nil {
		t.Fatalf("Verify(rotated kid) = %v", err)
	}
	if n := jf.as.jwksHits.Load(); n != 3 {
		t.Errorf("JWKS fetches = %d, want 3", n)
	}
}

func TestTokenResolverJWKSDown(t *testing.T) {
	jf := newJWTFixture(t, nil)
	jf.as.jwksDown.Store(true)
	for range 2 {
		_, err := jf.verifyJWT(jf.asKey.sign(t, jf.headerJWT(), jf.claimsJWT()))
		if e := errorOf(t, err); e.Status != http.StatusServiceUnavailable {
			t.Fatalf("Verify with JWKS down = %d %s, want 503", e.Status, e.Reason)
		}
	}
	if n := jf.as.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetches = %d, want 1 (requests do not fetch more than once a minute)", n)
	}
	// With no set yet, a request may try again after 5s, not a minute.
	jf.as.jwksDown.Store(false)
	jf.now = jf.now.Add(5 * time.Second)
	if _, err := jf.verifyJWT(jf.asKey.sign(t, jf.headerJWT(), jf.claimsJWT())); err != nil {
		t.Fatalf("Verify after JWKS recovery = %v", err)
	}
	if n := jf.as.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetches = %d, want 2", n)
	}
}

func TestTokenResolverCachesVerifiedJWT(t *testing.T) {
	jf := newJWTFixture(t, nil)
	token := jf.asKey.sign(t, jf.headerJWT(), jf.claimsJWT())
	if _, err := jf.verifyJWT(token); err != nil {
		t.Fatal(err)
	}
	// The JWKS is gone: only the cache can answer.
	jf.as.jwksDown.Store(true)
	jf.now = jf.now.Add(2 * time.Minute)
	if _, err := jf.verifyJWT(token); err != nil {
		t.Fatalf("Verify(same token) = %v, want the cached answer", err)
	}
	// Past exp the cache answers no more.
	jf.now = jf.now.Add(4 * time.Minute)
	_, err := jf.verifyJWT(token)
	if e := errorOf(t, err); e.Code != CodeInvalidToken || e.Reason != "token_expired" && e.Reason != "jwt_expired" {
		t.Errorf("Verify(expired cached token) = %s %s, want invalid_token", e.Code, e.Reason)
	}
}

func TestTokenResolverModes(t *testing.T) {
	t.Run("typ missing goes to introspection", func(t *testing.T) {
		jf := newJWTFixture(t, nil)
		h := jf.headerJWT()
		delete(h, "typ")
		if _, err := jf.verifyJWT(jf.asKey.sign(t, h, jf.claimsJWT())); err != nil {
			t.Fatal(err)
		}
		if n := jf.opaque.calls.Load(); n != 1 {
			t.Errorf("introspection calls = %d, want 1", n)
		}
	})
	t.Run("opaque token goes to introspection", func(t *testing.T) {
		jf := newJWTFixture(t, nil)
		if _, err := jf.verifyJWT(testToken); err != nil {
			t.Fatal(err)
		}
		if n := jf.opaque.calls.Load(); n != 1 {
			t.Errorf("introspection calls = %d, want 1", n)
		}
	})
	t.Run("introspect mode introspects JWTs", func(t *testing.T) {
		jf := newJWTFixture(t, func(c *TokenResolverConfig) { c.Mode = AccessTokensIntrospect })
		if _, err := jf.verifyJWT(jf.asKey.sign(t, jf.headerJWT(), jf.claimsJWT())); err != nil {
			t.Fatal(err)
		}
		if n := jf.opaque.calls.Load(); n != 1 {
			t.Errorf("introspection calls = %d, want 1", n)
		}
		if n := jf.as.jwksHits.Load(); n != 0 {
			t.Errorf("JWKS fetches = %d, want 0", n)
		}
	})
	t.Run("jwt mode refuses an opaque token", func(t *testing.T) {
		jf := newJWTFixture(t, func(c *TokenResolverConfig) { c.Mode = AccessTokensJWT })
		_, err := jf.verifyJWT(testToken)
		if e := errorOf(t, err); e.Status != http.StatusUnauthorized || e.Code != CodeInvalidToken || e.Reason != "jwt_required" {
			t.Errorf("Verify(opaque) = %d %s %s, want 401 invalid_token jwt_required", e.Status, e.Code, e.Reason)
		}
		if _, err := jf.verifyJWT(jf.asKey.sign(t, jf.headerJWT(), jf.claimsJWT())); err != nil {
			t.Errorf("Verify(JWT) = %v", err)
		}
	})
	t.Run("metadata unknown answers 503", func(t *testing.T) {
		asKey := sharedKey(t, "as-ES256", "ES256")
		as := newTestAS(t, "", asKey)
		as.metaDown.Store(true)
		disc, err := NewDiscovery(DiscoveryConfig{Issuer: as.issuer})
		if err != nil {
			t.Fatal(err)
		}
		if err := disc.Fetch(context.Background()); err == nil {
			t.Fatal("Fetch with the AS down = nil")
		}
		r, err := NewTokenResolver(TokenResolverConfig{Discovery: disc, Introspector: &fakeIntrospector{}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		k := sharedKey(t, "client-ES256", "ES256")
		tok := asKey.sign(t, map[string]any{"typ": "at+jwt", "alg": "ES256"}, map[string]any{"iss": as.issuer})
		if _, err := r.IntrospectKey(context.Background(), tok, k.jkt); !errors.Is(err, ErrAuthServerUnavailable) {
			t.Errorf("IntrospectKey = %v, want ErrAuthServerUnavailable", err)
		}
	})
}

func TestNewTokenResolverConfig(t *testing.T) {
	disc, err := NewDiscovery(DiscoveryConfig{Issuer: "https://as.example"})
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]TokenResolverConfig{
		"no discovery":          {Introspector: &fakeIntrospector{}},
		"no introspector":       {Discovery: disc},
		"unknown mode":          {Discovery: disc, Introspector: &fakeIntrospector{}, Mode: "both"},
		"skew above a minute":   {Discovery: disc, Introspector: &fakeIntrospector{}, Skew: 2 * time.Minute},
		"refresh below minute":  {Discovery: disc, Introspector: &fakeIntrospector{}, JWKSRefresh: time.Second},
		"negative key interval": {Discovery: disc, Introspector: &fakeIntrospector{}, UnknownKeyInterval: -1},
	} {
		if r, err := NewTokenResolver(cfg); err == nil {
			r.Close()
			t.Errorf("NewTokenResolver(%s) = nil error", name)
		}
	}
}

// FuzzTokenResolverJWT: no token text makes the resolver panic, and none but
// the signed original is accepted.
func FuzzTokenResolverJWT(f *testing.F) {
	jf := newJWTFixture(f, nil)
	valid := jf.asKey.sign(f, jf.headerJWT(), jf.claimsJWT())
	f.Add(valid)
	f.Add(valid + "A")
	f.Add(valid[:len(valid)-1] + "B")
	f.Add("eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		res, err := jf.r.IntrospectKey(context.Background(), token, jf.key.jkt)
		if err == nil && res.Active && token != valid && jf.opaque.calls.Load() == 0 {
			t.Fatalf("accepted a mutated token %q", token)
		}
		jf.opaque.calls.Store(0)
	})
}

// The claims decode like an introspection answer: the consent id sources and
// the sub rule are the same.
func TestTokenResolverConsentRules(t *testing.T) {
	t.Run("openbanking_intent_id", func(t *testing.T) {
		jf := newJWTFixture(t, nil)
		c := jf.claimsJWT()
		delete(c, "consent_id")
		c["openbanking_intent_id"] = "intent-7"
		p, err := jf.verifyJWT(jf.asKey.sign(t, jf.headerJWT(), c))
		if err != nil {
			t.Fatal(err)
		}
		if p.ConsentID != "intent-7" || p.Subject != "psu-1" {
			t.Errorf("principal = %+v, want consent intent-7 for psu-1", p)
		}
	})
	t.Run("client token whatever its sub", func(t *testing.T) {
		jf := newJWTFixture(t, nil)
		c := jf.claimsJWT()
		delete(c, "consent_id")
		c["sub"] = "tpp-1"
		p, err := jf.verifyJWT(jf.asKey.sign(t, jf.headerJWT(), c))
		if err != nil {
			t.Fatal(err)
		}
		if p.Subject != "" || p.ConsentID != "" {
			t.Errorf("principal = %+v, want a client principal", p)
		}
	})
	t.Run("two consent ids", func(t *testing.T) {
		jf := newJWTFixture(t, nil)
		c := jf.claimsJWT()
		c["openbanking_intent_id"] = "intent-7"
		_, err := jf.verifyJWT(jf.asKey.sign(t, jf.headerJWT(), c))
		if e := errorOf(t, err); e.Status != http.StatusUnauthorized || e.Code != CodeInvalidToken {
			t.Errorf("Verify = %d %s, want 401 invalid_token", e.Status, e.Code)
		}
	})
}
