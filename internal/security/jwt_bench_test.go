package security

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
)

// BenchmarkVerifyJWT compares the raw standard-library check of one ES256
// signature ("raw") with a whole DPoP request (ES256 proof) carrying an ES256
// JWT access token validated locally: a token seen for the first time
// ("first": two signatures, the claims, the cache insert) and the same token
// again ("again": the proof's signature and a cache hit). The JWKS is fetched
// before the timer starts.
func BenchmarkVerifyJWT(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		k := sharedKey(b, "as-ES256", "ES256")
		priv := k.priv.(*ecdsa.PrivateKey)
		inputs := make([]string, b.N)
		rs, ss := make([]*big.Int, b.N), make([]*big.Int, b.N)
		for i := range b.N {
			p := k.sign(b, map[string]any{"typ": "at+jwt", "alg": "ES256"}, map[string]any{"jti": freshJTI()})
			cut := strings.LastIndexByte(p, '.')
			inputs[i] = p[:cut]
			sig, _ := base64.RawURLEncoding.DecodeString(p[cut+1:])
			rs[i], ss[i] = new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			d := sha256.Sum256([]byte(inputs[i]))
			if !ecdsa.Verify(&priv.PublicKey, d[:], rs[i], ss[i]) {
				b.Fatal("raw verification failed")
			}
		}
	})
	b.Run("first", func(b *testing.B) {
		jf := newJWTFixture(b, nil)
		warm(b, jf)
		reqs := make([]Request, b.N)
		for i := range b.N {
			jf.token = jf.asKey.sign(b, jf.headerJWT(), jf.claimsJWT())
			reqs[i] = jf.request(jf.proof())
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, _, err := jf.v.Verify(ctx, reqs[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("again", func(b *testing.B) {
		jf := newJWTFixture(b, nil)
		warm(b, jf)
		reqs := make([]Request, b.N)
		for i := range b.N {
			reqs[i] = jf.request(jf.proof())
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, _, err := jf.v.Verify(ctx, reqs[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// warm verifies one token so that the JWKS, the proof key and (for the token
// kept in jf.token) the token cache are filled.
func warm(b *testing.B, jf *jwtFixture) {
	jf.token = jf.asKey.sign(b, jf.headerJWT(), jf.claimsJWT())
	if _, _, err := jf.v.Verify(context.Background(), jf.request(jf.proof())); err != nil {
		b.Fatal(err)
	}
}
