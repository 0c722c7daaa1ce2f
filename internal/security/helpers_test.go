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
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// testNow is the fixed clock of most tests.
var testNow = time.Unix(1_800_000_000, 0)

const (
	testPublicURL = "https://api.bank.example"
	testPath      = "/open-banking/v3.1/pisp/domestic-payments"
	testURL       = testPublicURL + testPath
	testToken     = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// testKey is a proof signing key with its public JWK and thumbprint.
type testKey struct {
	alg  string // algorithm written in the header
	priv crypto.Signer
	jwk  map[string]any
	jkt  string
}

var (
	keyMu    sync.Mutex
	testKeys = map[string]*testKey{}
)

// sharedKey returns one key per name so slow RSA generation happens once.
func sharedKey(t testing.TB, name, alg string) *testKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := testKeys[name]; ok {
		return k
	}
	k := newTestKey(t, alg)
	testKeys[name] = k
	return k
}

func newTestKey(t testing.TB, alg string) *testKey {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	k := &testKey{alg: alg}
	var canonical string
	switch alg {
	case "ES256":
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := priv.PublicKey.Bytes()
		x, y := enc(raw[1:33]), enc(raw[33:])
		k.priv = priv
		k.jwk = map[string]any{"kty": "EC", "crv": "P-256", "x": x, "y": y}
		canonical = `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
	case "EdDSA", "Ed25519":
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.priv = priv
		k.jwk = map[string]any{"kty": "OKP", "crv": "Ed25519", "x": enc(pub)}
		canonical = `{"crv":"Ed25519","kty":"OKP","x":"` + enc(pub) + `"}`
	case "PS256", "RS1024":
		bits := 2048
		if alg == "RS1024" {
			bits, k.alg = 1024, "PS256"
		}
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		n, e := enc(priv.N.Bytes()), enc(big.NewInt(int64(priv.E)).Bytes())
		k.priv = priv
		k.jwk = map[string]any{"kty": "RSA", "n": n, "e": e}
		canonical = `{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`
	default:
		t.Fatalf("unknown alg %s", alg)
	}
	sum := sha256.Sum256([]byte(canonical))
	k.jkt = enc(sum[:])
	return k
}

// signRaw signs the signing input the way the header's algorithm says.
func (k *testKey) signRaw(t testing.TB, input string) []byte {
	t.Helper()
	switch p := k.priv.(type) {
	case *ecdsa.PrivateKey:
		d := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, p, d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	case ed25519.PrivateKey:
		return ed25519.Sign(p, []byte(input))
	case *rsa.PrivateKey:
		d := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPSS(rand.Reader, p, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	t.Fatal("unknown key type")
	return nil
}

// header returns the default protected header for k.
func (k *testKey) header() map[string]any {
	return map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.jwk}
}

// sign builds a compact JWS from a header and claims.
func (k *testKey) sign(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	input := encodeSegment(t, header) + "." + encodeSegment(t, claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(k.signRaw(t, input))
}

func encodeSegment(t testing.TB, v any) string {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var jtiCounter atomic.Int64

func freshJTI() string {
	return "jti-" + big.NewInt(jtiCounter.Add(1)).String() + "-" + base64.RawURLEncoding.EncodeToString(randBytes(12))
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// fakeIntrospector answers with a fixed result and counts the calls.
type fakeIntrospector struct {
	mu    sync.Mutex
	res   Introspection
	err   error
	calls atomic.Int64
}

func (f *fakeIntrospector) Introspect(_ context.Context, token string) (Introspection, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.res, f.err
}

// failingStore is a replay store that cannot record anything.
type failingStore struct{}

func (failingStore) Seen(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("store down")
}

// fixture is one verifier with one client key and one token bound to it.
type fixture struct {
	t     testing.TB
	now   time.Time
	key   *testKey
	token string
	intro *fakeIntrospector
	store ReplayStore
	v     *Verifier
}

func newFixture(t testing.TB, alg string, mutate func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, now: testNow, key: sharedKey(t, "client-"+alg, alg), token: testToken}
	f.intro = &fakeIntrospector{res: Introspection{
		Active: true, Scope: "payments accounts", ClientID: "tpp-1", Subject: "psu-1",
		Exp: testNow.Unix() + 300, Iat: testNow.Unix() - 10, TokenType: "DPoP", CnfJKT: f.key.jkt,
		ConsentID: "consent-1",
	}}
	store, err := NewMemoryReplayStore(WithReplayClock(func() time.Time { return f.now }))
	if err != nil {
		t.Fatal(err)
	}
	f.store = store
	cfg := Config{
		PublicURL:    testPublicURL,
		NonceSecret:  testSecret,
		ReplayStore:  store,
		Introspector: f.intro,
		Now:          func() time.Time { return f.now },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	if f.v, err = NewVerifier(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// claims returns valid claims for method and url with a current nonce.
func (f *fixture) claims(method, url string) map[string]any {
	c := map[string]any{
		"jti": freshJTI(),
		"htm": method,
		"htu": url,
		"iat": f.now.Unix(),
		"ath": athOf(f.token),
	}
	if n := f.v.nonces.issue(f.now); n != "" {
		c["nonce"] = n
	}
	return c
}

// proof signs a valid proof for POST testURL.
func (f *fixture) proof() string {
	return f.key.sign(f.t, f.key.header(), f.claims(http.MethodPost, testURL))
}

// request returns valid request facts for POST testURL with proof.
func (f *fixture) request(proof string) Request {
	return Request{
		Method:        http.MethodPost,
		URL:           testURL,
		Authorization: []string{"DPoP " + f.token},
		DPoP:          []string{proof},
	}
}

// testErrorHandler renders errors the way the server's handler does.
func testErrorHandler(err error, c echo.Context) {
	var e *Error
	if errors.As(err, &e) {
		h := c.Response().Header()
		if w := e.WWWAuthenticate(); w != "" {
			h.Set("WWW-Authenticate", w)
		}
		if e.Nonce != "" {
			h.Set("DPoP-Nonce", e.Nonce)
			h.Set("Cache-Control", "no-store")
		}
		if ra := e.RetryAfterSeconds(); ra != "" {
			h.Set("Retry-After", ra)
		}
		msg := e.Description
		if e.Detail != "" {
			msg = e.Detail
		}
		_ = c.JSON(e.Status, map[string]string{"Code": e.Code, "Message": msg})
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		_ = c.JSON(he.Code, map[string]any{"Message": he.Message})
		return
	}
	_ = c.JSON(http.StatusInternalServerError, map[string]string{"Message": "internal error"})
}

// errorOf returns the *Error inside err, failing the test when there is none.
func errorOf(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *security.Error", err)
	}
	return e
}

func cutHeaderPayload(proof string) (string, string, string) {
	parts := strings.Split(proof, ".")
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2]
}

// spliced returns the JSON text of v with the raw text prefix in front of it
// and the raw member ("name":value) first in the object, so that a test can
// put bytes in a proof that json.Marshal would never write (invalid UTF-8, a
// byte order mark). v must not be empty when member is set.
func spliced(t testing.TB, v map[string]any, prefix, member string) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if member != "" {
		b = append([]byte("{"+member+","), b[1:]...)
	}
	return append([]byte(prefix), b...)
}

// signedRaw signs the header and claims texts exactly as given with k.
func (k *testKey) signedRaw(t testing.TB, header, claims []byte) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(k.signRaw(t, input))
}
