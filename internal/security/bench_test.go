package security

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkVerify compares, per algorithm, the raw standard-library check of
// a proof's signature ("raw": hash and verify with a parsed key) with the
// whole local verification ("full": size and syntax checks, header, key and
// thumbprint (cached by header bytes), signature, claims, htm, htu, nonce,
// iat, ath, a stub introspector and the memory replay store). Each iteration
// uses its own proof, signed before the timer starts.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		b.Run(alg+"/raw", func(b *testing.B) {
			k := sharedKey(b, "client-"+alg, alg)
			f := newFixture(b, alg, nil)
			f.key = k
			var edPub ed25519.PublicKey
			if ed, ok := k.priv.(ed25519.PrivateKey); ok {
				edPub = ed.Public().(ed25519.PublicKey)
			}
			inputs, sigs := make([]string, b.N), make([][]byte, b.N)
			rs, ss := make([]*big.Int, b.N), make([]*big.Int, b.N)
			for i := range b.N {
				p := f.proof()
				cut := strings.LastIndexByte(p, '.')
				inputs[i] = p[:cut]
				sigs[i], _ = base64.RawURLEncoding.DecodeString(p[cut+1:])
				if alg == "ES256" {
					rs[i] = new(big.Int).SetBytes(sigs[i][:32])
					ss[i] = new(big.Int).SetBytes(sigs[i][32:])
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				var ok bool
				switch priv := k.priv.(type) {
				case *ecdsa.PrivateKey:
					d := sha256.Sum256([]byte(inputs[i]))
					ok = ecdsa.Verify(&priv.PublicKey, d[:], rs[i], ss[i])
				case ed25519.PrivateKey:
					ok = ed25519.Verify(edPub, []byte(inputs[i]), sigs[i])
				case *rsa.PrivateKey:
					d := sha256.Sum256([]byte(inputs[i]))
					ok = rsa.VerifyPSS(&priv.PublicKey, crypto.SHA256, d[:], sigs[i], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
				}
				if !ok {
					b.Fatal("raw verification failed")
				}
			}
		})
		b.Run(alg+"/full", func(b *testing.B) {
			f := newFixture(b, alg, nil)
			reqs := make([]Request, b.N)
			for i := range b.N {
				reqs[i] = f.request(f.key.sign(b, f.key.header(), f.claims(http.MethodPost, testURL)))
			}
			// Warm-up proof: the first sight of a client key fills the key cache.
			if _, _, err := f.v.Verify(context.Background(), f.request(f.proof())); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, _, err := f.v.Verify(ctx, reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
