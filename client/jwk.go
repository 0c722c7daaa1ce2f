package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
)

// jsonWebKey is the JSON form of a key (RFC 7517) for the three key types DPoP uses here:
// EC P-256, OKP Ed25519 and RSA (RFC 7518 §6, RFC 8037 §2). Binary members are base64url
// without padding.
type jsonWebKey struct {
	KeyType   string `json:"kty"`
	Curve     string `json:"crv,omitempty"`
	X         string `json:"x,omitempty"`
	Y         string `json:"y,omitempty"`
	Modulus   string `json:"n,omitempty"`
	Exponent  string `json:"e,omitempty"`
	D         string `json:"d,omitempty"`
	P         string `json:"p,omitempty"`
	Q         string `json:"q,omitempty"`
	DP        string `json:"dp,omitempty"`
	DQ        string `json:"dq,omitempty"`
	QI        string `json:"qi,omitempty"`
	Algorithm string `json:"alg,omitempty"`
	KeyID     string `json:"kid,omitempty"`
}

var b64 = base64.RawURLEncoding

// publicJWK returns the public half of a supported private key as a JWK.
func publicJWK(signer crypto.Signer) (jsonWebKey, error) {
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		point, err := k.PublicKey.Bytes() // 0x04 || X || Y, 32 bytes each on P-256
		if err != nil || len(point) != 65 {
			return jsonWebKey{}, fmt.Errorf("EC public key: %w", ErrInvalidKey)
		}
		return jsonWebKey{KeyType: "EC", Curve: "P-256", X: b64.EncodeToString(point[1:33]), Y: b64.EncodeToString(point[33:])}, nil
	case ed25519.PrivateKey:
		return jsonWebKey{KeyType: "OKP", Curve: "Ed25519", X: b64.EncodeToString(k.Public().(ed25519.PublicKey))}, nil
	case *rsa.PrivateKey:
		return jsonWebKey{KeyType: "RSA", Modulus: b64.EncodeToString(k.N.Bytes()), Exponent: b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}, nil
	}
	return jsonWebKey{}, fmt.Errorf("key type %T: %w", signer, ErrInvalidKey)
}

// privateJWK returns a supported private key as a JWK with its private members.
func privateJWK(signer crypto.Signer) (jsonWebKey, error) {
	j, err := publicJWK(signer)
	if err != nil {
		return j, err
	}
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		d, err := k.Bytes()
		if err != nil {
			return j, fmt.Errorf("EC private key: %w", ErrInvalidKey)
		}
		j.D = b64.EncodeToString(d)
	case ed25519.PrivateKey:
		j.D = b64.EncodeToString(k.Seed()) // RFC 8037 §2: d is the 32-byte seed
	case *rsa.PrivateKey:
		if len(k.Primes) != 2 {
			return j, fmt.Errorf("RSA key with %d primes: %w", len(k.Primes), ErrInvalidKey)
		}
		p, q, one := k.Primes[0], k.Primes[1], big.NewInt(1)
		dp := new(big.Int).Mod(k.D, new(big.Int).Sub(p, one))
		dq := new(big.Int).Mod(k.D, new(big.Int).Sub(q, one))
		qi := new(big.Int).ModInverse(q, p)
		if qi == nil {
			return j, fmt.Errorf("RSA key primes: %w", ErrInvalidKey)
		}
		j.D = b64.EncodeToString(k.D.Bytes())
		j.P = b64.EncodeToString(p.Bytes())
		j.Q = b64.EncodeToString(q.Bytes())
		j.DP = b64.EncodeToString(dp.Bytes())
		j.DQ = b64.EncodeToString(dq.Bytes())
		j.QI = b64.EncodeToString(qi.Bytes())
	}
	return j, nil
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint: the required members in lexicographic
// order, no white space (§3.2), hashed and base64url-encoded. Every member value here is
// base64url or a fixed name, so no JSON escaping is needed.
func (j jsonWebKey) thumbprint() string {
	var canonical string
	switch j.KeyType {
	case "EC":
		canonical = `{"crv":"` + j.Curve + `","kty":"EC","x":"` + j.X + `","y":"` + j.Y + `"}`
	case "OKP":
		canonical = `{"crv":"` + j.Curve + `","kty":"OKP","x":"` + j.X + `"}`
	case "RSA":
		canonical = `{"e":"` + j.Exponent + `","kty":"RSA","n":"` + j.Modulus + `"}`
	}
	sum := sha256.Sum256([]byte(canonical))
	return b64.EncodeToString(sum[:])
}

// parseJWK reads a private JWK and checks that its public members, when present, belong to
// its private key.
func parseJWK(data []byte) (*Key, error) {
	var j jsonWebKey
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("parse JWK: %v: %w", err, ErrInvalidKey)
	}
	if j.D == "" {
		return nil, fmt.Errorf("JWK has no private part: %w", ErrInvalidKey)
	}
	var signer crypto.Signer
	switch {
	case j.KeyType == "EC" && j.Curve == "P-256":
		d, err := b64.DecodeString(j.D)
		if err != nil {
			return nil, fmt.Errorf("JWK d: %v: %w", err, ErrInvalidKey)
		}
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		if err != nil {
			return nil, fmt.Errorf("JWK EC key: %v: %w", err, ErrInvalidKey)
		}
		signer = k
	case j.KeyType == "OKP" && j.Curve == "Ed25519":
		seed, err := b64.DecodeString(j.D)
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("JWK Ed25519 d must be a 32-byte seed: %w", ErrInvalidKey)
		}
		signer = ed25519.NewKeyFromSeed(seed)
	case j.KeyType == "RSA":
		k, err := rsaFromJWK(j)
		if err != nil {
			return nil, err
		}
		signer = k
	default:
		return nil, fmt.Errorf("JWK kty %q crv %q (want EC P-256, OKP Ed25519 or RSA): %w", j.KeyType, j.Curve, ErrInvalidKey)
	}
	got, err := publicJWK(signer)
	if err != nil {
		return nil, err
	}
	if !samePublic(j, got) {
		return nil, fmt.Errorf("JWK public members do not match its private key: %w", ErrInvalidKey)
	}
	key, err := NewKey(signer)
	if err != nil {
		return nil, err
	}
	if j.Algorithm != "" {
		alg, err := ParseAlgorithm(j.Algorithm)
		if err != nil || alg != key.alg {
			return nil, fmt.Errorf("JWK alg %q does not fit a %s key: %w", j.Algorithm, j.KeyType, ErrInvalidKey)
		}
	}
	return key, nil
}

// samePublic compares the public members of a parsed JWK, where present, with those derived
// from its private key.
func samePublic(parsed, derived jsonWebKey) bool {
	same := func(a, b string) bool { return a == "" || subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	return same(parsed.X, derived.X) && same(parsed.Y, derived.Y) && same(parsed.Modulus, derived.Modulus) && same(parsed.Exponent, derived.Exponent)
}

func rsaFromJWK(j jsonWebKey) (*rsa.PrivateKey, error) {
	ints := make([]*big.Int, 5)
	for i, v := range []string{j.Modulus, j.Exponent, j.D, j.P, j.Q} {
		b, err := b64.DecodeString(v)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("JWK RSA key needs n, e, d, p and q: %w", ErrInvalidKey)
		}
		ints[i] = new(big.Int).SetBytes(b)
	}
	if !ints[1].IsInt64() || ints[1].Int64() > 1<<31-1 {
		return nil, fmt.Errorf("JWK RSA exponent too large: %w", ErrInvalidKey)
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: ints[0], E: int(ints[1].Int64())},
		D:         ints[2],
		Primes:    []*big.Int{ints[3], ints[4]},
	}
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("JWK RSA key: %v: %w", err, ErrInvalidKey)
	}
	k.Precompute()
	return k, nil
}
