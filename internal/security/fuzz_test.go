package security

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// FuzzVerify mutates a valid proof and token: Verify must never panic, must
// answer with a *Error on failure, and must accept nothing but the exact
// original pair.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f, "ES256", nil)
	ed := sharedKey(f, "client-EdDSA", "EdDSA")
	validES := fx.proof()
	claims := fx.claims(http.MethodPost, testURL)
	validEd := ed.sign(f, ed.header(), claims)
	f.Add(validES, testToken)
	f.Add(validEd, testToken)
	f.Add(rfcRSProof, testToken)
	f.Add("", "")
	f.Add("a.b.c", "x")
	f.Add(validES+"==", testToken)

	f.Fuzz(func(t *testing.T, proof, token string) {
		store, err := NewMemoryReplayStore(WithMaxEntries(1024), WithReplayClock(func() time.Time { return testNow }))
		if err != nil {
			t.Fatal(err)
		}
		intro := &fakeIntrospector{res: fx.intro.res}
		keys := []string{fx.key.jkt, ed.jkt}
		for _, jkt := range keys {
			intro.res.CnfJKT = jkt
			v, err := NewVerifier(Config{
				PublicURL: testPublicURL, NonceSecret: testSecret, ReplayStore: store,
				Introspector: intro, Now: func() time.Time { return testNow },
			})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = v.Verify(context.Background(), Request{
				Method: http.MethodPost, URL: testURL,
				Authorization: []string{"DPoP " + token}, DPoP: []string{proof},
			})
			if err == nil {
				if token != testToken || (proof != validES && proof != validEd) {
					t.Fatalf("accepted a mutated request: proof %q token %q", proof, token)
				}
				continue
			}
			e := errorOf(t, err)
			if e.Status != 400 && e.Status != 401 && e.Status != 503 {
				t.Fatalf("status %d for proof %q", e.Status, proof)
			}
		}
	})
}
