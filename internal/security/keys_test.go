package security

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"testing"
)

// TestECDSADER compares ecdsaDER with encoding/asn1 (which writes minimal
// DER INTEGERs) on R and S with leading zeros, the high bit set, one byte
// only, and zero, which must be refused as ecdsa.Verify refuses it.
func TestECDSADER(t *testing.T) {
	half := func(first byte, zeros int) []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = 0x5a
		}
		for i := 0; i < zeros; i++ {
			b[i] = 0
		}
		if zeros < 32 {
			b[zeros] = first
		}
		return b
	}
	cases := []struct {
		name string
		r, s []byte
		ok   bool
	}{
		{"plain", half(0x12, 0), half(0x34, 0), true},
		{"high bit in R", half(0x80, 0), half(0x34, 0), true},
		{"high bit in both", half(0xff, 0), half(0x90, 0), true},
		{"leading zero in R", half(0x12, 1), half(0x34, 0), true},
		{"leading zero then high bit in S", half(0x12, 0), half(0xc0, 3), true},
		{"one byte R", half(0x07, 31), half(0x34, 0), true},
		{"R zero", half(0, 32), half(0x34, 0), false},
		{"S zero", half(0x12, 0), half(0, 32), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ecdsaDER(append(append([]byte{}, tc.r...), tc.s...))
			if ok != tc.ok {
				t.Fatalf("ecdsaDER ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(tc.r), new(big.Int).SetBytes(tc.s)})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ecdsaDER = %x, want %x", got, want)
			}
		})
	}
}

// TestES256VerifyMatchesBigIntVerify checks the DER path against
// ecdsa.Verify on real signatures, tampered ones and the high-S twin
// (r, n-s), which both accept (the replay key is the jti, not the
// signature, so the twin cannot be replayed).
func TestES256VerifyMatchesBigIntVerify(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &proofKey{alg: algES256, ec: &priv.PublicKey}
	n := elliptic.P256().Params().N
	for i := range 64 {
		input := "header.payload-" + string(rune('a'+i%26))
		d := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, priv, d[:])
		if err != nil {
			t.Fatal(err)
		}
		variants := map[string][2]*big.Int{
			"signature":       {r, s},
			"high-S twin":     {r, new(big.Int).Sub(n, s)},
			"S plus one":      {r, new(big.Int).Add(s, big.NewInt(1))},
			"R and S swapped": {s, r},
		}
		for name, v := range variants {
			sig := make([]byte, 64)
			v[0].FillBytes(sig[:32])
			v[1].FillBytes(sig[32:])
			if got, want := k.verify(input, sig), ecdsa.Verify(&priv.PublicKey, d[:], v[0], v[1]); got != want {
				t.Fatalf("%s: verify = %v, ecdsa.Verify = %v", name, got, want)
			}
		}
	}
}
