package security

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"testing"
	"time"
)

// fuzzWorld is a verifier and the one request it must accept. The
// originals are the same in every fuzz worker process (the RFC 9449 Fig.13
// request, and an Ed25519 proof from a fixed seed: Ed25519 signatures are
// deterministic), so a mutation of a seed is compared with the original that
// the worker's verifier actually accepts, and can get past the signature to
// the claims, the binding and the replay store.
type fuzzWorld struct {
	name          string
	proof, token  string
	method, url   string
	newVerifier   func(ReplayStore) (*Verifier, error)
	replayStoreAt time.Time
	// rejects are proofs signed by the world's key for its request that
	// must be refused all the same (seeds for the rules a signature
	// cannot catch).
	rejects []string
}

func fuzzWorlds(t testing.TB) []fuzzWorld {
	t.Helper()
	rfcAt := time.Unix(1562262620, 0)
	rfc := fuzzWorld{
		name: "RFC 9449 Fig.13", proof: rfcRSProof, token: testToken,
		method: http.MethodGet, url: "https://resource.example.org/protectedresource", replayStoreAt: rfcAt,
		newVerifier: func(store ReplayStore) (*Verifier, error) {
			return NewVerifier(Config{
				PublicURL: "https://resource.example.org", NonceMode: NonceOff, ReplayStore: store,
				Introspector: &fakeIntrospector{res: Introspection{
					Active: true, Subject: "someone@example.com", Nbf: 1562262611, Exp: 1562266216, CnfJKT: rfcJKT,
				}},
				Now: func() time.Time { return rfcAt },
			})
		},
	}

	seed := sha256.Sum256([]byte("verify fuzz key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	x := base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	ed := &testKey{alg: "EdDSA", priv: priv, jwk: map[string]any{"kty": "OKP", "crv": "Ed25519", "x": x}}
	jktSum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	edJKT := base64.RawURLEncoding.EncodeToString(jktSum[:])
	nonces := nonceIssuer{secret: testSecret, window: 5 * time.Minute}
	edClaims := map[string]any{
		"jti": "fuzz-jti-1", "htm": http.MethodPost, "htu": testURL, "iat": testNow.Unix(),
		"ath": athOf(testToken), "nonce": nonces.issue(testNow),
	}
	edProof := ed.sign(t, ed.header(), edClaims)
	// RFC 7515 §5.2 step 3, RFC 7519 §7.2 steps 4 and 10, RFC 8259 §8.1.
	edRejects := []string{
		ed.signedRaw(t, spliced(t, ed.header(), "", `"kid":"`+"\xff"+`"`), spliced(t, edClaims, "", "")),
		ed.signedRaw(t, spliced(t, ed.header(), "\xef\xbb\xbf", ""), spliced(t, edClaims, "", "")),
		ed.signedRaw(t, spliced(t, ed.header(), "", ""), spliced(t, edClaims, "", `"note":"`+"\xed\xa0\x80"+`"`)),
		ed.signedRaw(t, spliced(t, ed.header(), "", ""), spliced(t, edClaims, "\xef\xbb\xbf", "")),
	}
	edWorld := fuzzWorld{
		name: "Ed25519 with nonce", proof: edProof, token: testToken,
		method: http.MethodPost, url: testURL, replayStoreAt: testNow, rejects: edRejects,
		newVerifier: func(store ReplayStore) (*Verifier, error) {
			return NewVerifier(Config{
				PublicURL: testPublicURL, NonceSecret: testSecret, ReplayStore: store,
				Introspector: &fakeIntrospector{res: Introspection{
					Active: true, Scope: "payments", ClientID: "tpp-1", Exp: testNow.Unix() + 300,
					TokenType: "DPoP", CnfJKT: edJKT,
				}},
				Now: func() time.Time { return testNow },
			})
		},
	}
	return []fuzzWorld{rfc, edWorld}
}

// FuzzVerify mutates valid proofs and tokens: Verify must never panic, must
// answer with a *Error of status 400, 401 or 503 on failure, and must accept
// nothing but the exact original request of each world.
func FuzzVerify(f *testing.F) {
	worlds := fuzzWorlds(f)
	for _, w := range worlds {
		f.Add(w.proof, w.token)
		f.Add(w.proof+"==", w.token)
		f.Add(w.proof, w.token+"=")
		for _, p := range w.rejects {
			f.Add(p, w.token)
		}
	}
	f.Add("", "")
	f.Add("a.b.c", "x")

	f.Fuzz(func(t *testing.T, proof, token string) {
		for _, w := range worlds {
			store, err := NewMemoryReplayStore(WithMaxEntries(1024), WithReplayClock(func() time.Time { return w.replayStoreAt }))
			if err != nil {
				t.Fatal(err)
			}
			v, err := w.newVerifier(store)
			if err != nil {
				t.Fatal(err)
			}
			req := Request{Method: w.method, URL: w.url, Authorization: []string{"DPoP " + token}, DPoP: []string{proof}}
			_, _, err = v.Verify(context.Background(), req)
			if err == nil {
				if proof != w.proof || token != w.token {
					t.Fatalf("%s: accepted a mutated request: proof %q token %q", w.name, proof, token)
				}
				// The original is accepted once only.
				if _, _, err := v.Verify(context.Background(), req); err == nil {
					t.Fatalf("%s: accepted the same proof twice", w.name)
				}
				continue
			}
			e := errorOf(t, err)
			if e.Status != 400 && e.Status != 401 && e.Status != 503 {
				t.Fatalf("%s: status %d for proof %q", w.name, e.Status, proof)
			}
		}
	})
}

// TestFuzzOriginalsAreAccepted guards the fuzz target: if its originals
// stopped verifying, fuzzing would only ever explore rejections.
func TestFuzzOriginalsAreAccepted(t *testing.T) {
	for _, w := range fuzzWorlds(t) {
		store, err := NewMemoryReplayStore(WithReplayClock(func() time.Time { return w.replayStoreAt }))
		if err != nil {
			t.Fatal(err)
		}
		v, err := w.newVerifier(store)
		if err != nil {
			t.Fatal(err)
		}
		req := Request{Method: w.method, URL: w.url, Authorization: []string{"DPoP " + w.token}, DPoP: []string{w.proof}}
		if _, _, err := v.Verify(context.Background(), req); err != nil {
			t.Errorf("%s: Verify(original) = %v, want success", w.name, err)
		}
	}
}
