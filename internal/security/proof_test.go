package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testTokenEndpoint = testPublicURL + "/oauth2/token"
	// rfcRefreshProof is RFC 9449 Fig.7: the Fig.2 key and jti, 2680 s later.
	rfcRefreshProof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5QsGSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA"
)

// tokenClaims returns valid token-request claims: no ath, no nonce.
func (f *fixture) tokenClaims() map[string]any {
	return map[string]any{"jti": freshJTI(), "htm": http.MethodPost, "htu": testTokenEndpoint, "iat": f.now.Unix()}
}

// tokenProof signs a token-request proof with k after applying the changes.
func (f *fixture) tokenProof(k *testKey, hdr, cl func(map[string]any)) string {
	h, c := k.header(), f.tokenClaims()
	if hdr != nil {
		hdr(h)
	}
	if cl != nil {
		cl(c)
	}
	return k.sign(f.t, h, c)
}

func tokenRequest(proofs ...string) ProofRequest {
	return ProofRequest{Method: http.MethodPost, URL: testTokenEndpoint, DPoP: proofs}
}

func TestVerifyProofAccepts(t *testing.T) {
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	cases := []struct {
		name string
		alg  string // key algorithm
		hdr  func(map[string]any)
		cl   func(map[string]any)
	}{
		{name: "ES256", alg: "ES256"},
		{name: "EdDSA", alg: "EdDSA"},
		{name: "Ed25519 under its RFC 9864 name", alg: "Ed25519"},
		{name: "Ed25519 key with EdDSA header", alg: "Ed25519", hdr: set("alg", "EdDSA")},
		{name: "PS256", alg: "PS256"},
		{name: "nonce claim from the resource server", alg: "ES256", cl: set("nonce", "any-nonce-value")},
		{name: "stale nonce claim", alg: "ES256", cl: set("nonce", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")},
		{name: "ath claim is ignored", alg: "ES256", cl: set("ath", "not-a-hash")},
		{name: "extra claims and header members", alg: "ES256",
			hdr: set("tx_id", "abc"), cl: set("client_note", map[string]any{"x": 1})},
		{name: "kid and x5c are ignored", alg: "ES256", hdr: func(m map[string]any) { m["kid"] = "k1"; m["x5c"] = []string{"AAAA"} }},
		{name: "htu with query and fragment", alg: "ES256", cl: set("htu", testTokenEndpoint+"?a=b#frag")},
		{name: "upper-case scheme and host", alg: "ES256", cl: set("htu", "HTTPS://API.BANK.EXAMPLE/oauth2/token")},
		{name: "explicit default port", alg: "ES256", cl: set("htu", "https://api.bank.example:443/oauth2/token")},
		{name: "iat 8 s ahead", alg: "ES256", cl: set("iat", testNow.Unix()+8)},
		{name: "iat 10 s old", alg: "ES256", cl: set("iat", testNow.Unix()-10)},
		{name: "fractional iat", alg: "ES256", cl: set("iat", float64(testNow.Unix())+0.5)},
		{name: "nbf and exp within the window", alg: "ES256", cl: func(m map[string]any) {
			m["nbf"] = testNow.Unix()
			m["exp"] = testNow.Unix() + 300
		}},
		{name: "application/dpop+jwt typ", alg: "ES256", hdr: set("typ", "application/dpop+jwt")},
		{name: "non-ASCII UTF-8 in ignored members", alg: "ES256",
			hdr: set("kid", "clé-€-\U0001F511"), cl: set("note", "naïve ✓ \U0010FFFF")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "ES256", nil)
			k := sharedKey(t, "token-"+tc.alg, tc.alg)
			res, err := f.v.VerifyProof(context.Background(), tokenRequest(f.tokenProof(k, tc.hdr, tc.cl)))
			if err != nil {
				t.Fatalf("VerifyProof = %v, want success", err)
			}
			if res.JKT != k.jkt {
				t.Errorf("JKT = %q, want %q", res.JKT, k.jkt)
			}
		})
	}
}

func TestVerifyProofRejects(t *testing.T) {
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }
	setJWK := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) {
			jwk := map[string]any{}
			for n, x := range m["jwk"].(map[string]any) {
				jwk[n] = x
			}
			jwk[k] = v
			m["jwk"] = jwk
		}
	}
	p384 := func(m map[string]any) {
		priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			panic(err)
		}
		raw, _ := priv.PublicKey.Bytes()
		enc := base64.RawURLEncoding.EncodeToString
		m["jwk"] = map[string]any{"kty": "EC", "crv": "P-384", "x": enc(raw[1:49]), "y": enc(raw[49:])}
	}

	type proofCase struct {
		name   string
		mutate func(*Config)
		build  func(f *fixture) ProofRequest
		reason string
	}
	signed := func(alg string, hdr, cl func(map[string]any)) func(f *fixture) ProofRequest {
		return func(f *fixture) ProofRequest {
			return tokenRequest(f.tokenProof(sharedKey(f.t, "token-"+alg, alg), hdr, cl))
		}
	}
	es := func(hdr, cl func(map[string]any)) func(f *fixture) ProofRequest { return signed("ES256", hdr, cl) }
	raw := func(s func(f *fixture) string) func(f *fixture) ProofRequest {
		return func(f *fixture) ProofRequest { return tokenRequest(s(f)) }
	}
	valid := func(f *fixture) string { return f.tokenProof(f.key, nil, nil) }
	// rawSigned signs a valid token-request proof whose header and claims get a
	// raw prefix and a raw first member, after cl changes the claims.
	rawSigned := func(hdrPrefix, hdrMember, clPrefix, clMember string, cl func(map[string]any)) func(f *fixture) ProofRequest {
		return func(f *fixture) ProofRequest {
			c := f.tokenClaims()
			if cl != nil {
				cl(c)
			}
			h := spliced(f.t, f.key.header(), hdrPrefix, hdrMember)
			return tokenRequest(f.key.signedRaw(f.t, h, spliced(f.t, c, clPrefix, clMember)))
		}
	}

	cases := []proofCase{
		// P7, RFC 9449 §4.3 (1)
		{name: "no DPoP header", build: func(*fixture) ProofRequest { return tokenRequest() }, reason: "proof_missing"},
		{name: "two DPoP headers", build: func(f *fixture) ProofRequest { return tokenRequest(valid(f), valid(f)) },
			reason: "proof_repeated"},
		// P8, §4.3 (2)
		{name: "proof over 8 KiB", build: es(set("pad", strings.Repeat("x", 8200)), nil), reason: "proof_too_large"},
		{name: "JSON serialization", build: raw(func(f *fixture) string {
			h, p, s := cutHeaderPayload(valid(f))
			return `{"protected":"` + h + `","payload":"` + p + `","signature":"` + s + `"}`
		}), reason: "proof_not_compact"},
		{name: "two segments", build: raw(func(f *fixture) string {
			h, p, _ := cutHeaderPayload(valid(f))
			return h + "." + p
		}), reason: "proof_not_compact"},
		{name: "padded signature", build: raw(func(f *fixture) string { return valid(f) + "==" }),
			reason: "proof_not_compact"},
		{name: "header not JSON", build: raw(func(f *fixture) string {
			_, p, s := cutHeaderPayload(valid(f))
			return base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + p + "." + s
		}), reason: "header_not_object"},
		// RFC 7515 §5.2 step 3, RFC 7519 §7.2 steps 4 and 10, RFC 8259 §8.1:
		// UTF-8 JSON without a byte order mark, ignored members included.
		{name: "header with invalid UTF-8 in an ignored member", build: rawSigned("", `"kid":"`+"\xff"+`"`, "", "", nil),
			reason: "header_not_utf8"},
		{name: "header with an encoded surrogate", build: rawSigned("", `"x":"`+"\xed\xa0\x80"+`"`, "", "", nil),
			reason: "header_not_utf8"},
		{name: "header with a byte order mark", build: rawSigned("\xef\xbb\xbf", "", "", "", nil), reason: "header_bom"},
		{name: "claims with invalid UTF-8 in an ignored claim", build: rawSigned("", "", "", `"note":"`+"\xc3("+`"`, nil),
			reason: "payload_not_utf8"},
		{name: "claims with invalid UTF-8 in jti", build: rawSigned("", "", "", `"jti":"`+"\xfe"+`"`, del("jti")),
			reason: "payload_not_utf8"},
		{name: "claims with a byte order mark", build: rawSigned("", "", "\xef\xbb\xbf", "", nil), reason: "payload_bom"},
		// P9, §4.3 (4)
		{name: "typ JWT", build: es(set("typ", "JWT"), nil), reason: "typ"},
		{name: "typ missing", build: es(del("typ"), nil), reason: "typ"},
		// P10, §4.3 (5)
		{name: "alg none", build: es(set("alg", "none"), nil), reason: "alg_not_allowed"},
		{name: "alg HS256", build: es(set("alg", "HS256"), nil), reason: "alg_not_allowed"},
		{name: "alg lower-case es256", build: es(set("alg", "es256"), nil), reason: "alg_not_allowed"},
		{name: "EdDSA off the configured list", mutate: func(c *Config) { c.Algs = []string{"ES256"} },
			build: signed("EdDSA", nil, nil), reason: "alg_not_allowed"},
		// P11, §4.3 (7)
		{name: "jwk missing", build: es(del("jwk"), nil), reason: "jwk_missing"},
		{name: "jwk not an object", build: es(set("jwk", "abc"), nil), reason: "jwk_missing"},
		{name: "private jwk", build: es(setJWK("d", "AAAA"), nil), reason: "jwk_private"},
		{name: "symmetric jwk", build: es(set("jwk", map[string]any{"kty": "oct", "k": "AAAA"}), nil), reason: "jwk_private"},
		// P12, RFC 7518 §3.4, §6; FAPI 2.0 §5.4.1
		{name: "ES256 with a P-384 key", build: es(p384, nil), reason: "jwk_curve"},
		{name: "EdDSA header with an EC key", build: es(set("alg", "EdDSA"), nil), reason: "alg_key_mismatch"},
		{name: "short EC coordinate", build: es(setJWK("x", base64.RawURLEncoding.EncodeToString(make([]byte, 31))), nil),
			reason: "jwk_coordinates"},
		{name: "EC point not on the curve", build: es(setJWK("y", base64.RawURLEncoding.EncodeToString(make([]byte, 32))), nil),
			reason: "jwk_not_on_curve"},
		{name: "RSA 1024 bits", build: signed("RS1024", nil, nil), reason: "jwk_rsa_size"},
		// P13, RFC 7515 §4.1.11; RFC 8725 §3.10
		{name: "crit", build: es(set("crit", []string{"exp"}), nil), reason: "crit"},
		{name: "jku", build: es(set("jku", "https://attacker.example/jwks"), nil), reason: "jku"},
		{name: "x5u", build: es(set("x5u", "https://attacker.example/cert"), nil), reason: "x5u"},
		// P14, §4.3 (6)
		{name: "signature by another key", build: raw(func(f *fixture) string {
			other := sharedKey(f.t, "token-other", "ES256")
			h, p, _ := cutHeaderPayload(valid(f))
			_, _, s := cutHeaderPayload(other.sign(f.t, f.key.header(), f.tokenClaims()))
			return h + "." + p + "." + s
		}), reason: "signature"},
		{name: "claims changed after signing", build: raw(func(f *fixture) string {
			h, _, s := cutHeaderPayload(valid(f))
			return h + "." + encodeSegment(f.t, f.tokenClaims()) + "." + s
		}), reason: "signature"},
		// P15, §4.2, §4.3 (3)
		{name: "jti missing", build: es(nil, del("jti")), reason: "claim_jti"},
		{name: "jti empty", build: es(nil, set("jti", "")), reason: "claim_jti"},
		{name: "jti over 256 characters", build: es(nil, set("jti", strings.Repeat("j", 257))), reason: "claim_jti"},
		{name: "htm missing", build: es(nil, del("htm")), reason: "claim_htm"},
		{name: "htu missing", build: es(nil, del("htu")), reason: "claim_htu"},
		{name: "iat missing", build: es(nil, del("iat")), reason: "claim_iat"},
		{name: "iat as a string", build: es(nil, set("iat", "1800000000")), reason: "claim_iat"},
		{name: "nonce not a string", build: es(nil, set("nonce", 5)), reason: "claim_nonce"},
		{name: "exp in the past", build: es(nil, set("exp", testNow.Unix()-60)), reason: "claim_exp"},
		{name: "nbf in the future", build: es(nil, set("nbf", testNow.Unix()+60)), reason: "claim_nbf"},
		// P16, §4.3 (8)
		{name: "htm lower-case", build: es(nil, set("htm", "post")), reason: "htm_mismatch"},
		{name: "htm GET", build: es(nil, set("htm", "GET")), reason: "htm_mismatch"},
		// P17, §4.3 (9)
		{name: "htu of the resource server", build: es(nil, set("htu", testURL)), reason: "htu_mismatch"},
		{name: "htu on another host", build: es(nil, set("htu", "https://as.attacker.example/oauth2/token")), reason: "htu_mismatch"},
		{name: "htu over http", build: es(nil, set("htu", "http://api.bank.example/oauth2/token")), reason: "htu_mismatch"},
		{name: "htu with a trailing slash", build: es(nil, set("htu", testTokenEndpoint+"/")), reason: "htu_mismatch"},
		// P19, §4.3 (11)
		{name: "iat 61 s old", build: es(nil, set("iat", testNow.Unix()-61)), reason: "iat_too_old"},
		{name: "iat 11 s ahead", build: es(nil, set("iat", testNow.Unix()+11)), reason: "iat_in_future"},
		{name: "iat in milliseconds", build: es(nil, set("iat", testNow.UnixMilli())), reason: "iat_in_future"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "ES256", tc.mutate)
			_, err := f.v.VerifyProof(context.Background(), tc.build(f))
			e := errorOf(t, err)
			if e.Status != http.StatusBadRequest || e.Code != CodeInvalidProof || e.Reason != tc.reason {
				t.Errorf("VerifyProof = %d %s (%s), want 400 %s (%s)", e.Status, e.Code, e.Reason, CodeInvalidProof, tc.reason)
			}
		})
	}
}

func TestVerifyProofReplay(t *testing.T) {
	t.Run("same proof twice", func(t *testing.T) {
		f := newFixture(t, "ES256", nil)
		proof := f.tokenProof(f.key, nil, nil)
		if _, err := f.v.VerifyProof(context.Background(), tokenRequest(proof)); err != nil {
			t.Fatalf("first VerifyProof = %v, want success", err)
		}
		_, err := f.v.VerifyProof(context.Background(), tokenRequest(proof))
		if e := errorOf(t, err); e.Status != 400 || e.Reason != "replay" {
			t.Errorf("second VerifyProof = %v, want 400 replay", e)
		}
	})
	t.Run("invalid proof does not burn its jti", func(t *testing.T) {
		f := newFixture(t, "ES256", nil)
		claims := f.tokenClaims()
		wrong := map[string]any{}
		for k, v := range claims {
			wrong[k] = v
		}
		wrong["htm"] = "GET"
		if _, err := f.v.VerifyProof(context.Background(), tokenRequest(f.key.sign(t, f.key.header(), wrong))); err == nil {
			t.Fatal("VerifyProof(htm GET) succeeded")
		}
		if _, err := f.v.VerifyProof(context.Background(), tokenRequest(f.key.sign(t, f.key.header(), claims))); err != nil {
			t.Errorf("VerifyProof after a rejected proof with the same jti = %v, want success", err)
		}
	})
	t.Run("replay store down fails closed", func(t *testing.T) {
		f := newFixture(t, "ES256", func(c *Config) { c.ReplayStore = failingStore{} })
		_, err := f.v.VerifyProof(context.Background(), tokenRequest(f.tokenProof(f.key, nil, nil)))
		if e := errorOf(t, err); e.Status != http.StatusServiceUnavailable || e.RetryAfter <= 0 || e.Reason != "replay_store_unavailable" {
			t.Errorf("VerifyProof = %d (%s) retry %v, want 503 with Retry-After", e.Status, e.Reason, e.RetryAfter)
		}
	})
	t.Run("100 concurrent uses of one proof", func(t *testing.T) {
		f := newFixture(t, "ES256", nil)
		proof := f.tokenProof(f.key, nil, nil)
		var ok, replay atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := f.v.VerifyProof(context.Background(), tokenRequest(proof))
				if err == nil {
					ok.Add(1)
				} else if e := errorOf(t, err); e.Reason == "replay" {
					replay.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || replay.Load() != 99 {
			t.Errorf("accepted %d, replays %d; want 1 and 99", ok.Load(), replay.Load())
		}
	})
}

// TestVerifyProofRFCVectors checks RFC 9449 Fig.2 and Fig.7 (token and
// refresh requests with one key and one jti, 2680 s apart) at the RFC's
// points in time.
func TestVerifyProofRFCVectors(t *testing.T) {
	clock := time.Unix(1562262620, 0)
	store, err := NewMemoryReplayStore(WithReplayClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Config{
		PublicURL: "https://server.example.com", ReplayStore: store,
		Introspector: &fakeIntrospector{}, Now: func() time.Time { return clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	req := ProofRequest{Method: http.MethodPost, URL: "https://server.example.com/token", DPoP: []string{rfcTokenProof}}
	res, err := v.VerifyProof(context.Background(), req)
	if err != nil {
		t.Fatalf("VerifyProof(Fig.2) = %v, want success", err)
	}
	if res.JKT != rfcJKT {
		t.Errorf("JKT = %q, want %q", res.JKT, rfcJKT)
	}
	_, err = v.VerifyProof(context.Background(), req)
	if e := errorOf(t, err); e.Reason != "replay" {
		t.Errorf("VerifyProof(Fig.2 again) = %v, want replay", e)
	}

	// Fig.7 reuses the jti once the first proof's window has closed.
	clock = time.Unix(1562265300, 0)
	req.DPoP = []string{rfcRefreshProof}
	if _, err := v.VerifyProof(context.Background(), req); err != nil {
		t.Errorf("VerifyProof(Fig.7) = %v, want success", err)
	}

	// The resource request proof of Fig.13 is for GET elsewhere.
	req.DPoP = []string{rfcRSProof}
	_, err = v.VerifyProof(context.Background(), req)
	if e := errorOf(t, err); e.Reason != "htm_mismatch" {
		t.Errorf("VerifyProof(Fig.13) = %v, want htm_mismatch", e)
	}

	clock = time.Now()
	req.DPoP = []string{rfcTokenProof}
	_, err = v.VerifyProof(context.Background(), req)
	if e := errorOf(t, err); e.Reason != "iat_too_old" {
		t.Errorf("VerifyProof(Fig.2 today) = %v, want iat_too_old", e)
	}
}

// FuzzVerifyProof mutates valid token-request proofs: VerifyProof must never
// panic, must answer with a *Error on failure, and must accept nothing but
// the exact originals. The originals are the same in every fuzz worker
// process: RFC 9449 Fig.2 and an Ed25519 proof from a fixed seed (Ed25519
// signatures are deterministic), both checked at the RFC's point in time.
func FuzzVerifyProof(f *testing.F) {
	at := time.Unix(1562262620, 0)
	seed := sha256.Sum256([]byte("devauth fuzz key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	x := base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	ed := &testKey{alg: "EdDSA", priv: priv, jwk: map[string]any{"kty": "OKP", "crv": "Ed25519", "x": x}}
	edClaims := map[string]any{
		"jti": "fuzz-jti-1", "htm": "POST", "htu": "https://server.example.com/token", "iat": at.Unix(),
	}
	validEd := ed.sign(f, ed.header(), edClaims)
	f.Add(rfcTokenProof)
	f.Add(validEd)
	// Signed, but not UTF-8 JSON or with a byte order mark (RFC 7515 §5.2
	// step 3, RFC 7519 §7.2 steps 4 and 10, RFC 8259 §8.1).
	f.Add(ed.signedRaw(f, spliced(f, ed.header(), "", `"x5t":"`+"\xc0\x80"+`"`), spliced(f, edClaims, "", "")))
	f.Add(ed.signedRaw(f, spliced(f, ed.header(), "\xef\xbb\xbf", ""), spliced(f, edClaims, "", "")))
	f.Add(ed.signedRaw(f, spliced(f, ed.header(), "", ""), spliced(f, edClaims, "", `"note":"`+"\xf8\x88\x80\x80\x80"+`"`)))
	f.Add(ed.signedRaw(f, spliced(f, ed.header(), "", ""), spliced(f, edClaims, "\xef\xbb\xbf", "")))
	f.Add("")
	f.Add("a.b.c")
	f.Add(rfcTokenProof + "==")

	f.Fuzz(func(t *testing.T, proof string) {
		store, err := NewMemoryReplayStore(WithMaxEntries(1024), WithReplayClock(func() time.Time { return at }))
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewVerifier(Config{
			PublicURL: "https://server.example.com", NonceSecret: testSecret, ReplayStore: store,
			Introspector: &fakeIntrospector{}, Now: func() time.Time { return at },
		})
		if err != nil {
			t.Fatal(err)
		}
		req := ProofRequest{Method: http.MethodPost, URL: "https://server.example.com/token", DPoP: []string{proof}}
		_, err = v.VerifyProof(context.Background(), req)
		if err == nil {
			if proof != rfcTokenProof && proof != validEd {
				t.Fatalf("accepted a mutated proof %q", proof)
			}
			return
		}
		if e := errorOf(t, err); e.Status != 400 && e.Status != 503 {
			t.Fatalf("status %d for proof %q", e.Status, proof)
		}
	})
}

// ExampleVerifier_VerifyProof checks the token request proof of RFC 9449
// Fig.2 at the RFC's point in time, as a token endpoint does, and prints the
// thumbprint the issued token is bound to.
func ExampleVerifier_VerifyProof() {
	at := time.Unix(1562262620, 0)
	store, err := NewMemoryReplayStore(WithReplayClock(func() time.Time { return at }))
	if err != nil {
		panic(err)
	}
	v, err := NewVerifier(Config{
		PublicURL:    "https://server.example.com",
		NonceSecret:  []byte("a secret of at least thirty-two bytes"),
		ReplayStore:  store,
		Introspector: &fakeIntrospector{},
		Now:          func() time.Time { return at },
	})
	if err != nil {
		panic(err)
	}
	req := ProofRequest{Method: "POST", URL: v.PublicURL() + "/token", DPoP: []string{rfcTokenProof}}
	res, err := v.VerifyProof(context.Background(), req)
	fmt.Println(res.JKT, err)

	_, err = v.VerifyProof(context.Background(), req)
	var e *Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code)
	}
	// Output:
	// 0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I <nil>
	// 400 invalid_dpop_proof
}

// BenchmarkVerifyProof measures the token-endpoint check per algorithm
// (syntax, header and key, cached by header bytes, signature, claims, htm,
// htu, iat and the memory replay store); compare it with the
// BenchmarkVerify/<alg>/raw figures. Each iteration uses its own proof.
func BenchmarkVerifyProof(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		b.Run(alg+"/full", func(b *testing.B) {
			f := newFixture(b, alg, nil)
			reqs := make([]ProofRequest, b.N)
			for i := range b.N {
				reqs[i] = tokenRequest(f.tokenProof(f.key, nil, nil))
			}
			ctx := context.Background()
			if _, err := f.v.VerifyProof(ctx, tokenRequest(f.tokenProof(f.key, nil, nil))); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := f.v.VerifyProof(ctx, reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
