package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// server wires the middleware the way routes.go does and counts handler runs.
type server struct {
	e       *echo.Echo
	handled atomic.Int64
	lastErr *Error
}

func newServer(t testing.TB, f *fixture) *server {
	t.Helper()
	s := &server{e: echo.New()}
	s.e.HTTPErrorHandler = func(err error, c echo.Context) {
		s.lastErr = nil
		var e *Error
		if errors.As(err, &e) {
			s.lastErr = e
		}
		testErrorHandler(err, c)
	}
	dpop, err := NewMiddleware(MiddlewareConfig{Verifier: f.v})
	if err != nil {
		t.Fatal(err)
	}
	h := func(c echo.Context) error {
		s.handled.Add(1)
		p, ok := PrincipalFrom(c.Request().Context())
		if !ok {
			return c.String(http.StatusInternalServerError, "no principal")
		}
		return c.JSON(http.StatusOK, p)
	}
	pay := s.e.Group("/open-banking/v3.1/pisp", dpop, RequireScope("payments"))
	pay.POST("/domestic-payments", h)
	pay.GET("/domestic-payments", h)
	pay.GET("/domestic-payments/:DomesticPaymentId", h)
	admin := s.e.Group("/internal/v1", dpop, RequireScope("ledger:admin"))
	admin.POST("/accounts", h)
	return s
}

func (s *server) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.e.ServeHTTP(w, r)
	return w
}

// signed returns a proof for POST testURL after applying the modifications.
func (f *fixture) signed(hdr func(map[string]any), cl func(map[string]any)) string {
	h := f.key.header()
	c := f.claims(http.MethodPost, testURL)
	if hdr != nil {
		hdr(h)
	}
	if cl != nil {
		cl(c)
	}
	return f.key.sign(f.t, h, c)
}

// httpReq builds a request with the given Authorization and DPoP values.
func httpReq(method, target string, auth, dpop []string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for _, a := range auth {
		r.Header.Add("Authorization", a)
	}
	for _, d := range dpop {
		r.Header.Add("DPoP", d)
	}
	return r
}

// post is a request to the protected payment route with one proof.
func (f *fixture) post(proof string) *http.Request {
	return httpReq(http.MethodPost, testPath, []string{"DPoP " + f.token}, []string{proof})
}

// unsignedProof assembles a proof with a garbage signature.
func unsignedProof(t testing.TB, header, claims any) string {
	return encodeSegment(t, header) + "." + encodeSegment(t, claims) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
}

type wireCase struct {
	name   string
	alg    string                       // key algorithm; "" means ES256
	cfg    func(*Config)                // verifier configuration changes
	setup  func(*fixture)               // fixture changes (introspection answer ...)
	build  func(*fixture) *http.Request // the request
	status int                          // expected status
	code   string                       // expected error code; "" is the bare challenge
	reason string                       // expected Error.Reason
	desc   string                       // expected description; "" means wantDescriptions[reason]
	remote bool                         // introspection may have been called
	check  func(*testing.T, *httptest.ResponseRecorder)
}

// TestMiddlewareRejects drives one bad input per rule through the echo
// middleware and checks the status, the challenge, that the handler did not
// run and that local failures never reached the introspection endpoint.
func TestMiddlewareRejects(t *testing.T) {
	bad := func(hdr func(map[string]any), cl func(map[string]any)) func(*fixture) *http.Request {
		return func(f *fixture) *http.Request { return f.post(f.signed(hdr, cl)) }
	}
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }
	// rawHeader and rawClaims sign a valid proof whose header or claims get
	// a raw prefix and a raw first member (after cl changes the claims).
	rawHeader := func(prefix, member string) func(*fixture) *http.Request {
		return func(f *fixture) *http.Request {
			claims := spliced(f.t, f.claims(http.MethodPost, testURL), "", "")
			return f.post(f.key.signedRaw(f.t, spliced(f.t, f.key.header(), prefix, member), claims))
		}
	}
	rawClaims := func(prefix, member string, cl func(map[string]any)) func(*fixture) *http.Request {
		return func(f *fixture) *http.Request {
			c := f.claims(http.MethodPost, testURL)
			if cl != nil {
				cl(c)
			}
			return f.post(f.key.signedRaw(f.t, spliced(f.t, f.key.header(), "", ""), spliced(f.t, c, prefix, member)))
		}
	}

	cases := []wireCase{
		// P2
		{name: "token in query and header", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath+"?access_token=x", []string{"DPoP " + f.token}, []string{f.proof()})
		}, status: 400, code: CodeInvalidRequest, reason: "token_in_header_and_parameter"},
		{name: "token in form body and header", build: func(f *fixture) *http.Request {
			r := httptest.NewRequest(http.MethodPost, testPath, strings.NewReader("a=1&access_token="+f.token))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Authorization", "DPoP "+f.token)
			r.Header.Set("DPoP", f.proof())
			return r
		}, status: 400, code: CodeInvalidRequest, reason: "token_in_header_and_parameter"},
		{name: "token only in query", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath+"?access_token="+f.token, nil, []string{f.proof()})
		}, status: 401, code: "", reason: "token_in_parameter_only"},
		// P3
		{name: "two Authorization headers", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"DPoP " + f.token, "DPoP " + f.token}, []string{f.proof()})
		}, status: 400, code: CodeInvalidRequest, reason: "authorization_repeated"},
		// P4
		{name: "no Authorization header", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, nil, []string{f.proof()})
		}, status: 401, code: "", reason: "no_authorization", check: func(t *testing.T, w *httptest.ResponseRecorder) {
			if got, want := w.Header().Get("WWW-Authenticate"), `DPoP algs="ES256 EdDSA Ed25519 PS256"`; got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
		}},
		// P5
		{name: "Bearer scheme with a DPoP-bound token", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"Bearer " + f.token}, []string{f.proof()})
		}, status: 401, code: "", reason: "scheme_not_dpop"},
		{name: "Basic scheme", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"Basic dHBwOnNlY3JldA=="}, []string{f.proof()})
		}, status: 401, code: "", reason: "scheme_not_dpop"},
		{name: "DPoP scheme without token", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"DPoP"}, []string{f.proof()})
		}, status: 401, code: CodeInvalidToken, reason: "token_malformed"},
		{name: "token with a comma", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"DPoP abc,def"}, []string{f.proof()})
		}, status: 401, code: CodeInvalidToken, reason: "token_malformed"},
		{name: "token with inner padding", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"DPoP ab=c"}, []string{f.proof()})
		}, status: 401, code: CodeInvalidToken, reason: "token_malformed"},
		// P6
		{name: "token over 4 KiB", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"DPoP " + strings.Repeat("a", 4097)}, []string{f.proof()})
		}, status: 401, code: CodeInvalidToken, reason: "token_too_long"},
		// P7
		{name: "no DPoP header", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"DPoP " + f.token}, nil)
		}, status: 401, code: CodeInvalidProof, reason: "proof_missing", check: func(t *testing.T, w *httptest.ResponseRecorder) {
			want := `DPoP error="invalid_dpop_proof", error_description="DPoP proof missing: send exactly one DPoP header", algs="ES256 EdDSA Ed25519 PS256"`
			if got := w.Header().Get("WWW-Authenticate"); got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
		}},
		{name: "two DPoP headers", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"DPoP " + f.token}, []string{f.proof(), f.proof()})
		}, status: 401, code: CodeInvalidProof, reason: "proof_repeated"},
		// P8
		{name: "proof over 8 KiB", build: bad(set("pad", strings.Repeat("x", 8200)), nil),
			status: 401, code: CodeInvalidProof, reason: "proof_too_large"},
		{name: "JSON serialization", build: func(f *fixture) *http.Request {
			h, p, s := cutHeaderPayload(f.proof())
			js := `{"protected":"` + h + `","payload":"` + p + `","signature":"` + s + `"}`
			return f.post(js)
		}, status: 401, code: CodeInvalidProof, reason: "proof_not_compact"},
		{name: "two segments", build: func(f *fixture) *http.Request {
			h, p, _ := cutHeaderPayload(f.proof())
			return f.post(h + "." + p)
		}, status: 401, code: CodeInvalidProof, reason: "proof_not_compact"},
		{name: "empty signature", build: func(f *fixture) *http.Request {
			h, p, _ := cutHeaderPayload(f.proof())
			return f.post(h + "." + p + ".")
		}, status: 401, code: CodeInvalidProof, reason: "proof_not_compact"},
		{name: "four segments", build: func(f *fixture) *http.Request { return f.post(f.proof() + ".AAAA") },
			status: 401, code: CodeInvalidProof, reason: "proof_not_compact"},
		{name: "padded signature", build: func(f *fixture) *http.Request { return f.post(f.proof() + "==") },
			status: 401, code: CodeInvalidProof, reason: "proof_not_compact"},
		{name: "standard base64 characters", build: func(f *fixture) *http.Request {
			h, p, sig := cutHeaderPayload(f.proof())
			return f.post(h + "." + p + "." + strings.NewReplacer("-", "+", "_", "/").Replace(sig) + "+/")
		}, status: 401, code: CodeInvalidProof, reason: "proof_not_compact"},
		{name: "header not base64url", build: func(f *fixture) *http.Request {
			_, p, s := cutHeaderPayload(f.proof())
			return f.post("e" + "." + p + "." + s)
		}, status: 401, code: CodeInvalidProof, reason: "header_encoding"},
		{name: "header not a JSON object", build: func(f *fixture) *http.Request {
			return f.post(unsignedProof(t, `["dpop+jwt"]`, map[string]any{}))
		}, status: 401, code: CodeInvalidProof, reason: "header_not_object"},
		// P9, RFC 7515 §5.2 step 3, RFC 7519 §7.2 step 4, RFC 8259 §8.1:
		// the header is UTF-8 JSON without a byte order mark, members we
		// ignore included. Each proof is validly signed.
		{name: "header with invalid UTF-8 in an ignored member", build: rawHeader("", `"kid":"k`+"\xff"+`"`),
			status: 401, code: CodeInvalidProof, reason: "header_not_utf8"},
		{name: "header with invalid UTF-8 in a member name", build: rawHeader("", `"x`+"\xc3"+`":1`),
			status: 401, code: CodeInvalidProof, reason: "header_not_utf8"},
		{name: "header with an overlong encoding", build: rawHeader("", `"kid":"`+"\xc0\xaf"+`"`),
			status: 401, code: CodeInvalidProof, reason: "header_not_utf8"},
		{name: "header with an encoded surrogate", build: rawHeader("", `"kid":"`+"\xed\xa0\x80"+`"`),
			status: 401, code: CodeInvalidProof, reason: "header_not_utf8"},
		{name: "header with a truncated sequence", build: rawHeader("", `"kid":"`+"\xe2\x82"+`"`),
			status: 401, code: CodeInvalidProof, reason: "header_not_utf8"},
		{name: "header with a byte order mark", build: rawHeader("\xef\xbb\xbf", ""),
			status: 401, code: CodeInvalidProof, reason: "header_bom"},
		// P9
		{name: "typ missing", build: bad(del("typ"), nil), status: 401, code: CodeInvalidProof, reason: "typ"},
		{name: "typ jwt", build: bad(set("typ", "jwt"), nil), status: 401, code: CodeInvalidProof, reason: "typ"},
		{name: "typ as number", build: bad(set("typ", 1), nil), status: 401, code: CodeInvalidProof, reason: "typ"},
		{name: "header member names are case-sensitive", build: bad(func(m map[string]any) { m["TYP"] = m["typ"]; delete(m, "typ") }, nil),
			status: 401, code: CodeInvalidProof, reason: "typ"},
		// P10
		{name: "alg none", build: bad(set("alg", "none"), nil), status: 401, code: CodeInvalidProof, reason: "alg_not_allowed"},
		{name: "alg HS256 with a symmetric key", build: func(f *fixture) *http.Request {
			h := map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}
			return f.post(unsignedProof(t, h, f.claims(http.MethodPost, testURL)))
		}, status: 401, code: CodeInvalidProof, reason: "alg_not_allowed"},
		{name: "alg RS256", build: bad(set("alg", "RS256"), nil), status: 401, code: CodeInvalidProof, reason: "alg_not_allowed"},
		{name: "alg in lower case", build: bad(set("alg", "es256"), nil), status: 401, code: CodeInvalidProof, reason: "alg_not_allowed"},
		{name: "alg missing", build: bad(del("alg"), nil), status: 401, code: CodeInvalidProof, reason: "alg_not_allowed"},
		{name: "alg valid but not configured", alg: "EdDSA", cfg: func(c *Config) { c.Algs = []string{"ES256", "PS256"} },
			build: bad(nil, nil), status: 401, code: CodeInvalidProof, reason: "alg_not_allowed",
			desc: "DPoP proof alg not allowed: use one of ES256 PS256",
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if got := w.Header().Get("WWW-Authenticate"); !strings.HasSuffix(got, `algs="ES256 PS256"`) {
					t.Errorf("WWW-Authenticate = %q, want the configured algs", got)
				}
			}},
		// P11
		{name: "jwk missing", build: bad(del("jwk"), nil), status: 401, code: CodeInvalidProof, reason: "jwk_missing"},
		{name: "jwk as a string", build: bad(set("jwk", "key"), nil), status: 401, code: CodeInvalidProof, reason: "jwk_missing"},
		{name: "jwk of an unknown kty", build: bad(set("jwk", map[string]any{"kty": "XYZ", "x": "AAAA"}), nil),
			status: 401, code: CodeInvalidProof, reason: "jwk_kty"},
		{name: "jwk without kty", build: bad(set("jwk", map[string]any{"crv": "P-256"}), nil),
			status: 401, code: CodeInvalidProof, reason: "jwk_kty"},
		{name: "kid instead of jwk", build: bad(func(m map[string]any) { delete(m, "jwk"); m["kid"] = "k1" }, nil),
			status: 401, code: CodeInvalidProof, reason: "jwk_missing"},
		{name: "private EC key in jwk", build: func(f *fixture) *http.Request {
			priv := f.key.priv.(*ecdsa.PrivateKey)
			jwk := map[string]any{}
			for k, v := range f.key.jwk {
				jwk[k] = v
			}
			d, err := priv.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			jwk["d"] = base64.RawURLEncoding.EncodeToString(d)
			return f.post(f.signed(set("jwk", jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_private"},
		// P12
		{name: "ES256 with a P-384 key", build: func(f *fixture) *http.Request {
			k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			raw, _ := k.PublicKey.Bytes()
			jwk := map[string]any{"kty": "EC", "crv": "P-384", "x": base64.RawURLEncoding.EncodeToString(raw[1:49]), "y": base64.RawURLEncoding.EncodeToString(raw[49:])}
			return f.post(unsignedProof(t, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}, f.claims(http.MethodPost, testURL)))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_curve"},
		{name: "ES256 with an RSA key", build: func(f *fixture) *http.Request {
			rk := sharedKey(t, "client-PS256", "PS256")
			return f.post(f.signed(set("jwk", rk.jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "alg_key_mismatch"},
		{name: "EdDSA with an EC key", build: bad(set("alg", "EdDSA"), nil), status: 401, code: CodeInvalidProof, reason: "alg_key_mismatch"},
		{name: "OKP key on X25519", alg: "EdDSA", build: bad(func(m map[string]any) {
			m["jwk"] = map[string]any{"kty": "OKP", "crv": "X25519", "x": base64.RawURLEncoding.EncodeToString(make([]byte, 32))}
		}, nil), status: 401, code: CodeInvalidProof, reason: "jwk_curve"},
		{name: "RSA key of 1024 bits", build: func(f *fixture) *http.Request {
			weak := sharedKey(t, "weak-rsa", "RS1024")
			return f.post(weak.sign(t, weak.header(), f.claims(http.MethodPost, testURL)))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_rsa_size"},
		{name: "RSA key over 8192 bits", alg: "PS256", build: func(f *fixture) *http.Request {
			n := append([]byte{0x01}, make([]byte, 1024)...) // 8193 bits
			n[len(n)-1] = 1
			jwk := map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(n), "e": "AQAB"}
			return f.post(unsignedProof(t, map[string]any{"typ": "dpop+jwt", "alg": "PS256", "jwk": jwk}, f.claims(http.MethodPost, testURL)))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_rsa_size"},
		{name: "RSA even modulus", alg: "PS256", build: func(f *fixture) *http.Request {
			n, _ := base64.RawURLEncoding.DecodeString(f.key.jwk["n"].(string))
			n[len(n)-1] &^= 1
			jwk := map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(n), "e": "AQAB"}
			return f.post(f.signed(set("jwk", jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_rsa_size"},
		{name: "RSA key without e", alg: "PS256", build: func(f *fixture) *http.Request {
			jwk := map[string]any{"kty": "RSA", "n": f.key.jwk["n"]}
			return f.post(f.signed(set("jwk", jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_rsa_params"},
		{name: "RSA exponent 1", alg: "PS256", build: func(f *fixture) *http.Request {
			jwk := map[string]any{"kty": "RSA", "n": f.key.jwk["n"], "e": "AQ"}
			return f.post(f.signed(set("jwk", jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_rsa_exponent"},
		{name: "private RSA key in jwk", alg: "PS256", build: func(f *fixture) *http.Request {
			jwk := map[string]any{"kty": "RSA", "n": f.key.jwk["n"], "e": f.key.jwk["e"], "p": "AQAB"}
			return f.post(f.signed(set("jwk", jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_private"},
		{name: "private OKP key in jwk", alg: "EdDSA", build: func(f *fixture) *http.Request {
			jwk := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": f.key.jwk["x"], "d": base64.RawURLEncoding.EncodeToString(make([]byte, 32))}
			return f.post(f.signed(set("jwk", jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_private"},
		{name: "Ed25519 key of 31 bytes", alg: "Ed25519", build: func(f *fixture) *http.Request {
			jwk := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(make([]byte, 31))}
			return f.post(f.signed(set("jwk", jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_coordinates"},
		{name: "PS256 with an EC key", alg: "PS256", build: func(f *fixture) *http.Request {
			ec := sharedKey(t, "client-ES256", "ES256")
			return f.post(f.signed(set("jwk", ec.jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "alg_key_mismatch"},
		{name: "EC coordinate of 31 bytes", build: func(f *fixture) *http.Request {
			jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": base64.RawURLEncoding.EncodeToString(make([]byte, 31)), "y": f.key.jwk["y"]}
			return f.post(f.signed(set("jwk", jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_coordinates"},
		{name: "EC point not on the curve", build: func(f *fixture) *http.Request {
			y, _ := base64.RawURLEncoding.DecodeString(f.key.jwk["y"].(string))
			y[31] ^= 1
			jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": f.key.jwk["x"], "y": base64.RawURLEncoding.EncodeToString(y)}
			return f.post(f.signed(set("jwk", jwk), nil))
		}, status: 401, code: CodeInvalidProof, reason: "jwk_not_on_curve"},
		// P13
		{name: "crit header", build: bad(set("crit", []string{"exp"}), nil), status: 401, code: CodeInvalidProof, reason: "crit"},
		{name: "b64 false", build: bad(set("b64", false), nil), status: 401, code: CodeInvalidProof, reason: "b64"},
		{name: "jku header", build: bad(set("jku", "https://attacker.example/jwks"), nil), status: 401, code: CodeInvalidProof, reason: "jku"},
		{name: "x5u header", build: bad(set("x5u", "https://attacker.example/cert"), nil), status: 401, code: CodeInvalidProof, reason: "x5u"},
		// P14
		{name: "signed by another key", build: func(f *fixture) *http.Request {
			other := newTestKey(t, "ES256")
			return f.post(other.sign(t, f.key.header(), f.claims(http.MethodPost, testURL)))
		}, status: 401, code: CodeInvalidProof, reason: "signature"},
		{name: "payload changed after signing", build: func(f *fixture) *http.Request {
			h, _, s := cutHeaderPayload(f.proof())
			c := f.claims(http.MethodPost, testURL)
			return f.post(h + "." + encodeSegment(t, c) + "." + s)
		}, status: 401, code: CodeInvalidProof, reason: "signature"},
		{name: "DER-encoded ES256 signature", build: func(f *fixture) *http.Request {
			h, p, _ := cutHeaderPayload(f.proof())
			return f.post(h + "." + p + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 72)))
		}, status: 401, code: CodeInvalidProof, reason: "signature"},
		// P15
		{name: "payload not base64url", build: func(f *fixture) *http.Request {
			input := encodeSegment(t, f.key.header()) + ".e"
			return f.post(input + "." + base64.RawURLEncoding.EncodeToString(f.key.signRaw(t, input)))
		}, status: 401, code: CodeInvalidProof, reason: "payload_encoding"},
		{name: "payload not JSON", build: func(f *fixture) *http.Request {
			input := encodeSegment(t, f.key.header()) + "." + encodeSegment(t, "not json")
			return f.post(input + "." + base64.RawURLEncoding.EncodeToString(f.key.signRaw(t, input)))
		}, status: 401, code: CodeInvalidProof, reason: "payload_not_object"},
		// P15, RFC 7519 §7.2 step 10, RFC 8259 §8.1: the claims are UTF-8
		// JSON without a byte order mark, claims we ignore included.
		{name: "claims with invalid UTF-8 in an ignored claim", build: rawClaims("", `"note":"`+"\xff"+`"`, nil),
			status: 401, code: CodeInvalidProof, reason: "payload_not_utf8"},
		{name: "claims with invalid UTF-8 in jti", build: rawClaims("", `"jti":"j`+"\x80"+`"`, del("jti")),
			status: 401, code: CodeInvalidProof, reason: "payload_not_utf8"},
		{name: "claims with an encoded surrogate in htu", build: rawClaims("", `"htu":"`+testURL+"\xed\xbf\xbf"+`"`, del("htu")),
			status: 401, code: CodeInvalidProof, reason: "payload_not_utf8"},
		{name: "claims with a code point past U+10FFFF", build: rawClaims("", `"note":"`+"\xf4\x90\x80\x80"+`"`, nil),
			status: 401, code: CodeInvalidProof, reason: "payload_not_utf8"},
		{name: "claims with a byte order mark", build: rawClaims("\xef\xbb\xbf", "", nil),
			status: 401, code: CodeInvalidProof, reason: "payload_bom"},
		{name: "jti missing", build: bad(nil, del("jti")), status: 401, code: CodeInvalidProof, reason: "claim_jti"},
		{name: "jti empty", build: bad(nil, set("jti", "")), status: 401, code: CodeInvalidProof, reason: "claim_jti"},
		{name: "jti over 256 characters", build: bad(nil, set("jti", strings.Repeat("j", 257))), status: 401, code: CodeInvalidProof, reason: "claim_jti"},
		{name: "jti as number", build: bad(nil, set("jti", 42)), status: 401, code: CodeInvalidProof, reason: "claim_jti"},
		{name: "htm missing", build: bad(nil, del("htm")), status: 401, code: CodeInvalidProof, reason: "claim_htm"},
		{name: "htm in upper case member name", build: bad(nil, func(m map[string]any) { m["HTM"] = m["htm"]; delete(m, "htm") }),
			status: 401, code: CodeInvalidProof, reason: "claim_htm"},
		{name: "htu missing", build: bad(nil, del("htu")), status: 401, code: CodeInvalidProof, reason: "claim_htu"},
		{name: "iat missing", build: bad(nil, del("iat")), status: 401, code: CodeInvalidProof, reason: "claim_iat"},
		{name: "iat as string", build: bad(nil, func(m map[string]any) { m["iat"] = "1800000000" }), status: 401, code: CodeInvalidProof, reason: "claim_iat"},
		{name: "iat null", build: bad(nil, set("iat", nil)), status: 401, code: CodeInvalidProof, reason: "claim_iat"},
		{name: "ath missing", build: bad(nil, del("ath")), status: 401, code: CodeInvalidProof, reason: "claim_ath"},
		{name: "nonce as number", build: bad(nil, set("nonce", 7)), status: 401, code: CodeInvalidProof, reason: "claim_nonce"},
		{name: "exp in the past", build: bad(nil, set("exp", testNow.Unix()-11)), status: 401, code: CodeInvalidProof, reason: "claim_exp"},
		{name: "nbf in the future", build: bad(nil, set("nbf", testNow.Unix()+11)), status: 401, code: CodeInvalidProof, reason: "claim_nbf"},
		// P16
		{name: "htm in lower case", build: bad(nil, set("htm", "post")), status: 401, code: CodeInvalidProof, reason: "htm_mismatch"},
		{name: "htm for another method", build: bad(nil, set("htm", "GET")), status: 401, code: CodeInvalidProof, reason: "htm_mismatch"},
		{name: "htm of a POST on a GET", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodGet, testPath, []string{"DPoP " + f.token}, []string{f.proof()})
		}, status: 401, code: CodeInvalidProof, reason: "htm_mismatch", desc: "htm does not match this request: expected GET"},
		// P17
		{name: "htu of another host", build: bad(nil, set("htu", "https://attacker.example"+testPath)), status: 401, code: CodeInvalidProof, reason: "htu_mismatch"},
		{name: "htu of another path", build: bad(nil, set("htu", testPublicURL+"/open-banking/v3.1/pisp/domestic-payment-consents")), status: 401, code: CodeInvalidProof, reason: "htu_mismatch"},
		{name: "htu with a trailing slash", build: bad(nil, set("htu", testURL+"/")), status: 401, code: CodeInvalidProof, reason: "htu_mismatch"},
		{name: "htu with http instead of https", build: bad(nil, set("htu", "http://api.bank.example"+testPath)), status: 401, code: CodeInvalidProof, reason: "htu_mismatch"},
		{name: "htu path in other case", build: bad(nil, set("htu", testPublicURL+strings.ToUpper(testPath))), status: 401, code: CodeInvalidProof, reason: "htu_mismatch"},
		{name: "htu host with the Kelvin sign", build: bad(nil, set("htu", "https://api.ban\u212a.example"+testPath)), status: 401, code: CodeInvalidProof, reason: "htu_mismatch"},
		{name: "htu with an encoded slash", build: bad(nil, set("htu", testPublicURL+"/open-banking%2Fv3.1/pisp/domestic-payments")), status: 401, code: CodeInvalidProof, reason: "htu_mismatch"},
		{name: "htu with userinfo", build: bad(nil, set("htu", "https://user@api.bank.example"+testPath)), status: 401, code: CodeInvalidProof, reason: "htu_mismatch"},
		{name: "htu with another port", build: bad(nil, set("htu", "https://api.bank.example:8443"+testPath)), status: 401, code: CodeInvalidProof, reason: "htu_mismatch"},
		{name: "htu of 127.0.0.1 for a localhost public URL", cfg: func(c *Config) { c.PublicURL = "http://localhost:8080" },
			build: bad(nil, set("htu", "http://127.0.0.1:8080"+testPath)), status: 401, code: CodeInvalidProof, reason: "htu_mismatch",
			desc: "htu does not match this request: expected http://localhost:8080" + testPath},
		{name: "htu of a request with a query", build: func(f *fixture) *http.Request {
			p := f.signed(nil, set("htu", "https://api.bank.example:8443"+testPath))
			return httpReq(http.MethodPost, testPath+"?x=%22y%22", []string{"DPoP " + f.token}, []string{p})
		}, status: 401, code: CodeInvalidProof, reason: "htu_mismatch"},
		// P18
		{name: "nonce missing", build: bad(nil, del("nonce")), status: 401, code: CodeUseNonce, reason: "nonce_missing",
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				want := `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`
				if got := w.Header().Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				if n := w.Header().Values("DPoP-Nonce"); len(n) != 1 || n[0] == "" {
					t.Errorf("DPoP-Nonce = %q, want exactly one nonce", n)
				}
				if got := w.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", got)
				}
			}},
		{name: "nonce not ours", build: bad(nil, set("nonce", "eyJ7S_zG.eyJH0-Z.HX4w-7v")), status: 401, code: CodeUseNonce, reason: "nonce_invalid"},
		{name: "nonce two windows old", build: func(f *fixture) *http.Request {
			old := f.v.nonces.issue(f.now.Add(-10 * time.Minute))
			return f.post(f.signed(nil, set("nonce", old)))
		}, status: 401, code: CodeUseNonce, reason: "nonce_invalid"},
		{name: "nonce from another secret", build: func(f *fixture) *http.Request {
			other := nonceIssuer{secret: []byte("another secret of at least 32 bytes!!"), window: 5 * time.Minute}
			return f.post(f.signed(nil, set("nonce", other.issue(f.now))))
		}, status: 401, code: CodeUseNonce, reason: "nonce_invalid"},
		// P19
		{name: "iat 11 s ahead", build: bad(nil, set("iat", testNow.Unix()+11)), status: 401, code: CodeInvalidProof, reason: "iat_in_future"},
		{name: "iat 61 s old", build: bad(nil, set("iat", testNow.Unix()-61)), status: 401, code: CodeInvalidProof, reason: "iat_too_old"},
		{name: "iat in milliseconds", build: bad(nil, set("iat", testNow.UnixMilli())), status: 401, code: CodeInvalidProof, reason: "iat_in_future"},
		{name: "iat older than the configured max age", cfg: func(c *Config) { c.MaxAge = 30 * time.Second },
			build: bad(nil, set("iat", testNow.Unix()-31)), status: 401, code: CodeInvalidProof, reason: "iat_too_old",
			desc: "DPoP proof iat too old: a proof may be at most 30s old, so sign a new one for every request and check the client clock"},
		{name: "iat further ahead than the configured skew", cfg: func(c *Config) { c.Skew = 5 * time.Second },
			build: bad(nil, set("iat", testNow.Unix()+6)), status: 401, code: CodeInvalidProof, reason: "iat_in_future",
			desc: "DPoP proof iat in the future: at most 5s ahead of the server clock is allowed, so check the client clock"},
		// P20
		{name: "ath in standard base64", build: bad(nil, func(c map[string]any) {
			sum := sha256.Sum256([]byte(testToken))
			c["ath"] = base64.StdEncoding.EncodeToString(sum[:])
		}), status: 401, code: CodeInvalidProof, reason: "ath_mismatch"},
		{name: "ath of another token", build: bad(nil, set("ath", athOf("other-token"))), status: 401, code: CodeInvalidProof, reason: "ath_mismatch"},
		{name: "ath over scheme and token", build: bad(nil, set("ath", athOf("DPoP "+testToken))), status: 401, code: CodeInvalidProof, reason: "ath_mismatch"},
		// P21
		{name: "inactive token", setup: func(f *fixture) { f.intro.res = Introspection{Active: false} },
			build: bad(nil, nil), status: 401, code: CodeInvalidToken, reason: "token_inactive", remote: true},
		{name: "token type Bearer", setup: func(f *fixture) { f.intro.res.TokenType = "Bearer" },
			build: bad(nil, nil), status: 401, code: CodeInvalidToken, reason: "token_type", remote: true},
		{name: "expired token", setup: func(f *fixture) { f.intro.res.Exp = testNow.Unix() },
			build: bad(nil, nil), status: 401, code: CodeInvalidToken, reason: "token_expired", remote: true},
		{name: "token not yet valid", setup: func(f *fixture) { f.intro.res.Nbf = testNow.Unix() + 60 },
			build: bad(nil, nil), status: 401, code: CodeInvalidToken, reason: "token_not_yet_valid", remote: true},
		{name: "token for another audience", cfg: func(c *Config) { c.Audience = "https://api.bank.example" },
			setup: func(f *fixture) { f.intro.res.Aud = []string{"https://other.example"} },
			build: bad(nil, nil), status: 401, code: CodeInvalidToken, reason: "token_audience", remote: true},
		{name: "token not bound to a key", setup: func(f *fixture) { f.intro.res.CnfJKT = "" },
			build: bad(nil, nil), status: 401, code: CodeInvalidToken, reason: "token_not_bound", remote: true},
		{name: "introspection unreachable", setup: func(f *fixture) { f.intro.err = errors.New("connection refused") },
			build: bad(nil, nil), status: 503, code: "", reason: "introspection_unavailable", remote: true,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if got := w.Header().Get("Retry-After"); got != "5" {
					t.Errorf("Retry-After = %q, want 5", got)
				}
				if got := w.Header().Get("WWW-Authenticate"); got != "" {
					t.Errorf("WWW-Authenticate = %q, want none on 503", got)
				}
			}},
		// P22
		{name: "token bound to another key", setup: func(f *fixture) { f.intro.res.CnfJKT = rfcJKT },
			build: bad(nil, nil), status: 401, code: CodeInvalidToken, reason: "key_binding_mismatch", remote: true,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				want := `DPoP error="invalid_token", error_description="DPoP key does not match the token's cnf.jkt", algs="ES256 EdDSA Ed25519 PS256"`
				if got := w.Header().Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			}},
		// P23
		{name: "proof used twice", build: func(f *fixture) *http.Request {
			proof := f.proof()
			if _, _, err := f.v.Verify(context.Background(), f.request(proof)); err != nil {
				f.t.Fatalf("first use of the proof: %v", err)
			}
			return f.post(proof)
		}, status: 401, code: CodeInvalidProof, reason: "replay", remote: true},
		{name: "same jti and key in a new proof", build: func(f *fixture) *http.Request {
			c := f.claims(http.MethodPost, testURL)
			first := f.key.sign(f.t, f.key.header(), c)
			if _, _, err := f.v.Verify(context.Background(), f.request(first)); err != nil {
				f.t.Fatalf("first use of the jti: %v", err)
			}
			c["iat"] = testNow.Unix() - 1 // another proof, same (jkt, jti)
			return f.post(f.key.sign(f.t, f.key.header(), c))
		}, status: 401, code: CodeInvalidProof, reason: "replay", remote: true},
		{name: "replay store down", cfg: func(c *Config) { c.ReplayStore = failingStore{} },
			build: bad(nil, nil), status: 503, code: "", reason: "replay_store_unavailable", remote: true},
		// P24
		{name: "token without the route's scope", build: func(f *fixture) *http.Request {
			url := testPublicURL + "/internal/v1/accounts"
			p := f.key.sign(t, f.key.header(), f.claims(http.MethodPost, url))
			return httpReq(http.MethodPost, "/internal/v1/accounts", []string{"DPoP " + f.token}, []string{p})
		}, status: 403, code: CodeInsufficientScope, reason: "insufficient_scope", remote: true,
			check: func(t *testing.T, w *httptest.ResponseRecorder) {
				if got, want := w.Header().Get("WWW-Authenticate"), `DPoP error="insufficient_scope", scope="ledger:admin"`; got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			alg := tc.alg
			if alg == "" {
				alg = "ES256"
			}
			f := newFixture(t, alg, tc.cfg)
			if tc.setup != nil {
				tc.setup(f)
			}
			s := newServer(t, f)
			w := s.do(tc.build(f))
			if w.Code != tc.status {
				t.Errorf("status = %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			if s.lastErr == nil {
				t.Fatalf("no *security.Error rendered")
			}
			if s.lastErr.Code != tc.code || s.lastErr.Reason != tc.reason {
				t.Errorf("error = %s/%s, want %s/%s", s.lastErr.Code, s.lastErr.Reason, tc.code, tc.reason)
			}
			// The failed check, in the server's words: the description,
			// the challenge and the body's message.
			desc, ok := tc.desc, tc.desc != ""
			if !ok {
				desc, ok = wantDescriptions[tc.reason]
			}
			if !ok {
				t.Fatalf("no expected description for reason %q", tc.reason)
			}
			if s.lastErr.Description != desc {
				t.Errorf("description = %q, want %q", s.lastErr.Description, desc)
			}
			scope := "payments"
			if strings.HasPrefix(tc.name, "token without") {
				scope = "ledger:admin"
			}
			if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(tc.status, tc.code, desc, f.v.Algs(), scope); got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
			message := desc
			if d, ok := wantNonceDetails[tc.reason]; ok {
				message = d
			}
			var body struct{ Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Message != message {
				t.Errorf("body message = %q (%v), want %q", body.Message, err, message)
			}
			wa := w.Header().Get("WWW-Authenticate")
			switch {
			case tc.status == 503:
			case tc.code == "" && strings.Contains(wa, "error="):
				t.Errorf("WWW-Authenticate = %q, want the bare challenge", wa)
			case tc.code != "" && !strings.HasPrefix(wa, `DPoP error="`+tc.code+`"`):
				t.Errorf("WWW-Authenticate = %q, want error %q", wa, tc.code)
			}
			if n := s.handled.Load(); n != 0 {
				t.Errorf("protected handler ran %d times", n)
			}
			if calls := f.intro.calls.Load(); !tc.remote && calls != 0 {
				t.Errorf("introspection called %d times for a local failure", calls)
			}
			if tc.check != nil {
				tc.check(t, w)
			}
		})
	}
}

// TestMiddlewareAccepts checks the positive controls of the conformance suite
// and of our contract.
func TestMiddlewareAccepts(t *testing.T) {
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	cases := []struct {
		name  string
		alg   string
		build func(*fixture) *http.Request
		cfg   func(*Config)
		setup func(*fixture)
	}{
		{"plain ES256", "ES256", func(f *fixture) *http.Request { return f.post(f.proof()) }, nil, nil},
		{"EdDSA header name", "EdDSA", func(f *fixture) *http.Request { return f.post(f.proof()) }, nil, nil},
		{"Ed25519 header name", "Ed25519", func(f *fixture) *http.Request { return f.post(f.proof()) }, nil, nil},
		{"PS256", "PS256", func(f *fixture) *http.Request { return f.post(f.proof()) }, nil, nil},
		{"scheme dpOp", "ES256", func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"dpOp " + f.token}, []string{f.proof()})
		}, nil, nil},
		{"several spaces after the scheme", "ES256", func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"DPoP   " + f.token}, []string{f.proof()})
		}, nil, nil},
		{"header name DPOP", "ES256", func(f *fixture) *http.Request {
			r := httptest.NewRequest(http.MethodPost, testPath, nil)
			r.Header["Authorization"] = []string{"DPoP " + f.token}
			r.Header["DPOP"] = []string{f.proof()} // as a raw, non-canonical key
			r.Header = cloneCanonical(r.Header)
			return r
		}, nil, nil},
		{"htu with query and fragment", "ES256", func(f *fixture) *http.Request {
			return f.post(f.signed(nil, set("htu", testURL+"?allthedoorsonthisspaceshiphavebeen#programmedtohaveacheeryandsunnydisposition")))
		}, nil, nil},
		{"request with a query", "ES256", func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath+"?page=2", []string{"DPoP " + f.token}, []string{f.proof()})
		}, nil, nil},
		{"upper-case scheme and host", "ES256", func(f *fixture) *http.Request {
			return f.post(f.signed(nil, set("htu", "HTTPS://API.BANK.EXAMPLE"+testPath)))
		}, nil, nil},
		{"explicit port 443", "ES256", func(f *fixture) *http.Request {
			return f.post(f.signed(nil, set("htu", "https://api.bank.example:443"+testPath)))
		}, nil, nil},
		{"percent-encoded unreserved characters", "ES256", func(f *fixture) *http.Request {
			return f.post(f.signed(nil, set("htu", testPublicURL+"/open-banking/v3%2E1/pisp/domestic%2Dpayments")))
		}, nil, nil},
		{"iat 8 s ahead", "ES256", func(f *fixture) *http.Request { return f.post(f.signed(nil, set("iat", testNow.Unix()+8))) }, nil, nil},
		{"iat 10 s old", "ES256", func(f *fixture) *http.Request { return f.post(f.signed(nil, set("iat", testNow.Unix()-10))) }, nil, nil},
		{"fractional iat", "ES256", func(f *fixture) *http.Request { return f.post(f.signed(nil, set("iat", float64(testNow.Unix())-0.5))) }, nil, nil},
		{"extra claims and header members", "ES256", func(f *fixture) *http.Request {
			return f.post(f.signed(func(h map[string]any) { h["kid"] = "k1"; h["tx_id"] = "x"; h["x5c"] = []string{"MIIB"} },
				func(c map[string]any) { c["tx"] = map[string]any{"a": 1}; c["client_id"] = "tpp-1" }))
		}, nil, nil},
		{"non-ASCII UTF-8 in ignored members", "ES256", func(f *fixture) *http.Request {
			return f.post(f.key.signedRaw(f.t,
				spliced(f.t, f.key.header(), "", `"kid":"clé-€-`+"\U0001F511"+`"`),
				spliced(f.t, f.claims(http.MethodPost, testURL), "", `"note":"naïve ✓ `+"\U0010FFFF"+`"`)))
		}, nil, nil},
		{"nbf and exp within the window", "ES256", func(f *fixture) *http.Request {
			return f.post(f.signed(nil, func(c map[string]any) { c["nbf"] = testNow.Unix(); c["exp"] = testNow.Unix() + 300 }))
		}, nil, nil},
		{"typ with media type prefix", "ES256", func(f *fixture) *http.Request {
			return f.post(f.signed(set("typ", "application/DPoP+JWT"), nil))
		}, nil, nil},
		{"Ed25519 key with the EdDSA name", "Ed25519", func(f *fixture) *http.Request {
			return f.post(f.signed(set("alg", "EdDSA"), nil))
		}, nil, nil},
		{"Ed25519 key with the Ed25519 name", "EdDSA", func(f *fixture) *http.Request {
			return f.post(f.signed(set("alg", "Ed25519"), nil))
		}, nil, nil},
		{"explicit port 80 on an http public URL", "ES256", func(f *fixture) *http.Request {
			return f.post(f.signed(nil, set("htu", "HTTP://API.BANK.EXAMPLE:80"+testPath)))
		}, func(c *Config) { c.PublicURL = "http://api.bank.example" }, nil},
		{"public URL with a path prefix", "ES256", func(f *fixture) *http.Request {
			return f.post(f.signed(nil, set("htu", "https://api.bank.example/gw/"+testPath[1:])))
		}, func(c *Config) { c.PublicURL = "https://api.bank.example/gw/" }, nil},
		{"nonces off and no nonce claim", "ES256", func(f *fixture) *http.Request {
			return f.post(f.signed(nil, func(c map[string]any) { delete(c, "nonce") }))
		}, func(c *Config) { c.NonceMode = NonceOff }, nil},
		{"token_type in lower case", "ES256", func(f *fixture) *http.Request { return f.post(f.proof()) },
			nil, func(f *fixture) { f.intro.res.TokenType = "dpop" }},
		{"token_type absent and audience matching", "ES256", func(f *fixture) *http.Request { return f.post(f.proof()) },
			func(c *Config) { c.Audience = "https://api.bank.example" }, func(f *fixture) {
				f.intro.res.TokenType = ""
				f.intro.res.Aud = []string{"https://other.example", "https://api.bank.example"}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.alg, tc.cfg)
			if tc.setup != nil {
				tc.setup(f)
			}
			s := newServer(t, f)
			w := s.do(tc.build(f))
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200 (%v, body %s)", w.Code, s.lastErr, w.Body)
			}
			if s.handled.Load() != 1 {
				t.Errorf("handler ran %d times, want 1", s.handled.Load())
			}
			var p Principal
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			want := Principal{ClientID: "tpp-1", Subject: "psu-1", Scopes: []string{"payments", "accounts"}, ConsentID: "consent-1", JKT: f.key.jkt}
			if p.ClientID != want.ClientID || p.Subject != want.Subject || p.ConsentID != want.ConsentID || p.JKT != want.JKT || len(p.Scopes) != 2 {
				t.Errorf("principal = %+v, want %+v", p, want)
			}
			if w.Header().Get("DPoP-Nonce") != "" {
				t.Errorf("DPoP-Nonce sent with a current nonce")
			}
		})
	}
}

func cloneCanonical(h http.Header) http.Header {
	out := http.Header{}
	for k, vs := range h {
		for _, v := range vs {
			out.Add(k, v)
		}
	}
	return out
}

func TestMiddlewareRotatesNonceOnSuccess(t *testing.T) {
	f := newFixture(t, "ES256", nil)
	s := newServer(t, f)
	old := f.v.nonces.issue(f.now.Add(-5 * time.Minute))
	w := s.do(f.post(f.signed(nil, func(c map[string]any) { c["nonce"] = old })))
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200 (%v)", w.Code, s.lastErr)
	}
	fresh := w.Header().Get("DPoP-Nonce")
	if fresh == "" || fresh == old {
		t.Fatalf("DPoP-Nonce = %q, want a fresh nonce", fresh)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if ok, prev := f.v.nonces.check(fresh, f.now); !ok || prev {
		t.Errorf("fresh nonce check = %v, %v; want current window", ok, prev)
	}
}

// TestMiddlewareUsesDispatchedPath shows that Host and X-Forwarded-* do not
// change the expected htu.
func TestMiddlewareUsesDispatchedPath(t *testing.T) {
	f := newFixture(t, "ES256", nil)
	s := newServer(t, f)
	proof := f.signed(nil, func(c map[string]any) { c["htu"] = "https://evil.example" + testPath })
	r := f.post(proof)
	r.Host = "evil.example"
	r.Header.Set("X-Forwarded-Host", "evil.example")
	r.Header.Set("X-Forwarded-Proto", "https")
	w := s.do(r)
	if w.Code != http.StatusUnauthorized || s.lastErr == nil || s.lastErr.Reason != "htu_mismatch" {
		t.Errorf("status = %d (%v), want 401 htu_mismatch", w.Code, s.lastErr)
	}
}

func TestMiddlewareSkipperAndConfig(t *testing.T) {
	if _, err := NewMiddleware(MiddlewareConfig{}); err == nil {
		t.Error("NewMiddleware without verifier succeeded")
	}
	f := newFixture(t, "ES256", nil)
	if _, err := NewMiddleware(MiddlewareConfig{Verifier: f.v, PublicURL: "https://x.example/?q"}); err == nil {
		t.Error("NewMiddleware with a query in the public URL succeeded")
	}
	mw, err := NewMiddleware(MiddlewareConfig{Verifier: f.v, Skipper: func(echo.Context) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	ran := false
	e.GET("/x", func(c echo.Context) error { ran = true; return c.NoContent(204) }, mw)
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
	if !ran || w.Code != 204 {
		t.Errorf("skipped request: ran=%v status=%d", ran, w.Code)
	}
}

func TestRequireScopeWithoutPrincipal(t *testing.T) {
	e := echo.New()
	var got *Error
	e.HTTPErrorHandler = func(err error, c echo.Context) { errors.As(err, &got); testErrorHandler(err, c) }
	e.GET("/x", func(c echo.Context) error { return c.NoContent(204) }, RequireScope("payments"))
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil))
	if w.Code != 401 || got == nil || got.Reason != "no_principal" {
		t.Errorf("status = %d (%v), want 401 no_principal", w.Code, got)
	}
	ctx := WithPrincipal(context.Background(), Principal{Scopes: []string{"payments"}})
	if e := CheckScope(ctx, "payments"); e != nil {
		t.Errorf("CheckScope(payments) = %v, want nil", e)
	}
	if e := CheckScope(ctx, "accounts"); e == nil || e.Status != 403 {
		t.Errorf("CheckScope(accounts) = %v, want 403", e)
	}
}

// An htu refusal on a route with a parameter names the route's URL with a
// placeholder: what the request put in the path is not repeated, in the
// challenge or in the body.
func TestHTURefusalDoesNotEchoThePath(t *testing.T) {
	f := newFixture(t, "ES256", nil)
	s := newServer(t, f)
	const marker = "injected-by-the-client"
	path := "/open-banking/v3.1/pisp/domestic-payments/" + marker
	h := f.key.header()
	c := f.claims(http.MethodGet, testPublicURL+"/somewhere-else")
	w := s.do(httpReq(http.MethodGet, path, []string{"DPoP " + f.token}, []string{f.key.sign(t, h, c)}))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401; body %s", w.Code, w.Body)
	}
	want := "htu does not match this request: expected " + testPublicURL + "/open-banking/v3.1/pisp/domestic-payments/{DomesticPaymentId}"
	if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, `error_description="`+want+`"`) {
		t.Errorf("WWW-Authenticate = %q, want the description %q", got, want)
	}
	if strings.Contains(w.Header().Get("WWW-Authenticate"), marker) || strings.Contains(w.Body.String(), marker) {
		t.Errorf("the refusal repeats the request's path: %q / %s", w.Header().Get("WWW-Authenticate"), w.Body)
	}
	if s.handled.Load() != 0 {
		t.Error("the handler ran")
	}
}
