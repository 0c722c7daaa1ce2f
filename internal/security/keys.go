package security

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sync"
)

// b64 is strict unpadded base64url (RFC 7515 §2): no padding, no non-zero
// trailing bits, so every value has exactly one accepted spelling.
var b64 = base64.RawURLEncoding.Strict()

// Supported JOSE algorithm names for proofs.
const (
	algES256   = "ES256"
	algPS256   = "PS256"
	algEdDSA   = "EdDSA"
	algEd25519 = "Ed25519" // RFC 9864 fully-specified name for EdDSA over Ed25519
)

// DefaultAlgs is the proof algorithm allow-list used when Config.Algs is empty:
// the FAPI 2.0 set, with Ed25519 under both of its JOSE names.
var DefaultAlgs = []string{algES256, algEdDSA, algEd25519, algPS256}

const (
	minRSABits = 2048
	maxRSABits = 8192
)

// proofKey is the verdict on one protected header: the allow-listed algorithm,
// the embedded public key and its RFC 7638 thumbprint. It depends only on the
// header bytes and the allow-list, so it can be cached by those bytes.
type proofKey struct {
	alg string
	jkt string
	ec  *ecdsa.PublicKey
	ed  ed25519.PublicKey
	rsa *rsa.PublicKey
}

// verify checks sig over the JWS signing input with the key under its
// allow-listed algorithm (RFC 9449 §4.3 (6), RFC 7518 §3.4, §3.5, RFC 8037 §3.1).
func (k *proofKey) verify(signingInput string, sig []byte) bool {
	switch k.alg {
	case algES256:
		// RFC 7518 §3.4: R || S, each 32 octets, never DER.
		if len(sig) != 64 {
			return false
		}
		der, ok := ecdsaDER(sig)
		if !ok {
			return false
		}
		digest := sha256.Sum256([]byte(signingInput))
		return ecdsa.VerifyASN1(k.ec, digest[:], der)
	case algEdDSA, algEd25519:
		if len(sig) != ed25519.SignatureSize {
			return false
		}
		return ed25519.Verify(k.ed, []byte(signingInput), sig)
	case algPS256:
		if len(sig) != k.rsa.Size() {
			return false
		}
		digest := sha256.Sum256([]byte(signingInput))
		// RFC 7518 §3.5: the salt is as long as the hash output.
		opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
		return rsa.VerifyPSS(k.rsa, crypto.SHA256, digest[:], sig, opts) == nil
	}
	return false
}

// ecdsaDER turns a JWS ECDSA signature R || S (RFC 7518 §3.4) into the
// ASN.1 DER form crypto/ecdsa verifies, without big.Int round trips. It
// refuses R or S equal to zero, as ecdsa.Verify does.
func ecdsaDER(sig []byte) ([]byte, bool) {
	half := len(sig) / 2
	var buf [2 + 2*(2+1+32)]byte
	out := append(buf[:0], 0x30, 0)
	for _, v := range [][]byte{sig[:half], sig[half:]} {
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) == 0 {
			return nil, false
		}
		n := len(v)
		if v[0]&0x80 != 0 {
			n++ // a leading zero keeps the INTEGER positive
		}
		out = append(out, 0x02, byte(n))
		if n > len(v) {
			out = append(out, 0)
		}
		out = append(out, v...)
	}
	out[1] = byte(len(out) - 2)
	return out, true
}

// privateMembers are the JWK members that only private or symmetric keys carry
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// parseJWK checks the embedded key against the header's algorithm and returns
// it with its thumbprint. The reason names the failed rule.
//
// RFC 9449 §4.3 (7): the key must be public. RFC 7518 §3.4 and §6.2.1.2: ES256
// means P-256 with full-length coordinates on the curve. RFC 8037 §2: OKP keys
// for EdDSA must be Ed25519. FAPI 2.0 §5.4.1: RSA at least 2048 bits (we cap at
// 8192 to bound the work).
func parseJWK(raw json.RawMessage, alg string) (*proofKey, string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, "jwk_not_object"
	}
	for _, name := range privateMembers {
		if _, ok := m[name]; ok {
			return nil, "jwk_private"
		}
	}
	kty, ok := jsonString(m, "kty")
	if !ok {
		return nil, "jwk_kty"
	}
	k := &proofKey{alg: alg}
	switch kty {
	case "EC":
		if alg != algES256 {
			return nil, "alg_key_mismatch"
		}
		if crv, _ := jsonString(m, "crv"); crv != "P-256" {
			return nil, "jwk_curve"
		}
		x, okx := jsonBytes(m, "x")
		y, oky := jsonBytes(m, "y")
		if !okx || !oky || len(x) != 32 || len(y) != 32 {
			return nil, "jwk_coordinates"
		}
		point := make([]byte, 0, 65)
		point = append(point, 4)
		point = append(point, x...)
		point = append(point, y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil {
			return nil, "jwk_not_on_curve"
		}
		k.ec = pub
		k.jkt = thumbprint(`{"crv":"P-256","kty":"EC","x":"` + b64.EncodeToString(x) + `","y":"` + b64.EncodeToString(y) + `"}`)
	case "OKP":
		if alg != algEdDSA && alg != algEd25519 {
			return nil, "alg_key_mismatch"
		}
		if crv, _ := jsonString(m, "crv"); crv != "Ed25519" {
			return nil, "jwk_curve"
		}
		x, okx := jsonBytes(m, "x")
		if !okx || len(x) != ed25519.PublicKeySize {
			return nil, "jwk_coordinates"
		}
		k.ed = ed25519.PublicKey(x)
		k.jkt = thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(x) + `"}`)
	case "RSA":
		if alg != algPS256 {
			return nil, "alg_key_mismatch"
		}
		nb, okn := jsonBytes(m, "n")
		eb, oke := jsonBytes(m, "e")
		if !okn || !oke || len(eb) == 0 || len(eb) > 4 {
			return nil, "jwk_rsa_params"
		}
		n := new(big.Int).SetBytes(nb)
		if bits := n.BitLen(); bits < minRSABits || bits > maxRSABits || n.Bit(0) == 0 {
			return nil, "jwk_rsa_size"
		}
		e := new(big.Int).SetBytes(eb)
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, "jwk_rsa_exponent"
		}
		k.rsa = &rsa.PublicKey{N: n, E: int(e.Int64())}
		// RFC 7638 §3.2 with the minimal (no leading zero) encodings.
		k.jkt = thumbprint(`{"e":"` + b64.EncodeToString(e.Bytes()) + `","kty":"RSA","n":"` + b64.EncodeToString(n.Bytes()) + `"}`)
	default:
		return nil, "jwk_kty"
	}
	return k, ""
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of a canonical JWK, base64url.
func thumbprint(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return b64.EncodeToString(sum[:])
}

// jsonString returns the member as a string; ok is false when it is absent or
// not a JSON string.
func jsonString(m map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := m[name]
	if !ok || len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	// Fast path: the value came out of a successful JSON parse, so a quoted
	// run without backslashes is the string itself.
	if simple := raw[1 : len(raw)-1]; bytes.IndexByte(simple, '\\') < 0 {
		return string(simple), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// jsonBytes returns a base64url string member decoded.
func jsonBytes(m map[string]json.RawMessage, name string) ([]byte, bool) {
	s, ok := jsonString(m, name)
	if !ok {
		return nil, false
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}

// keyCache remembers the verdict on recently seen protected headers, keyed by
// the header segment exactly as received. A client reuses one key for many
// requests, so the second request skips JSON parsing, key validation and the
// thumbprint. Only accepted headers are stored; the size is bounded and a
// random entry makes room when it is full.
type keyCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]*proofKey
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, entries: make(map[string]*proofKey, max)}
}

func (c *keyCache) get(header string) (*proofKey, bool) {
	c.mu.RLock()
	k, ok := c.entries[header]
	c.mu.RUnlock()
	return k, ok
}

func (c *keyCache) put(header string, k *proofKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for victim := range c.entries {
			delete(c.entries, victim)
			break
		}
	}
	c.entries[header] = k
}
