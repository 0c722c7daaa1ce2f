package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/obpay/payments/internal/security"
)

// decodedProof is a proof whose signature checked out against its embedded key.
type decodedProof struct {
	Type, Alg string
	JWK       jsonWebKey
	Claims    proofClaims
	Raw       map[string]any
}

// verifyProof checks a proof's structure and signature with the standard library only, so the
// SDK's signing is tested independently of the service's verifier.
func verifyProof(proof string) (decodedProof, error) {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return decodedProof{}, fmt.Errorf("%d segments, want 3", len(parts))
	}
	var d decodedProof
	var header struct {
		Type string     `json:"typ"`
		Alg  string     `json:"alg"`
		JWK  jsonWebKey `json:"jwk"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return d, fmt.Errorf("header: %v", err)
	}
	d.Type, d.Alg, d.JWK = header.Type, header.Alg, header.JWK
	if d.JWK.D != "" || d.JWK.P != "" {
		return d, fmt.Errorf("header jwk has private members")
	}
	if err := decodeSegment(parts[1], &d.Claims); err != nil {
		return d, fmt.Errorf("claims: %v", err)
	}
	if err := decodeSegment(parts[1], &d.Raw); err != nil {
		return d, fmt.Errorf("claims: %v", err)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return d, fmt.Errorf("signature: %v", err)
	}
	input := []byte(parts[0] + "." + parts[1])
	digest := sha256.Sum256(input)
	ok := false
	switch d.Alg {
	case "ES256":
		x, _ := b64.DecodeString(d.JWK.X)
		y, _ := b64.DecodeString(d.JWK.Y)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil || len(sig) != 64 {
			return d, fmt.Errorf("ES256 key or signature size: %v", err)
		}
		ok = ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case "EdDSA":
		x, _ := b64.DecodeString(d.JWK.X)
		ok = len(x) == ed25519.PublicKeySize && ed25519.Verify(ed25519.PublicKey(x), input, sig)
	case "PS256":
		n, _ := b64.DecodeString(d.JWK.Modulus)
		e, _ := b64.DecodeString(d.JWK.Exponent)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		ok = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	default:
		return d, fmt.Errorf("alg %q", d.Alg)
	}
	if !ok {
		return d, fmt.Errorf("bad %s signature", d.Alg)
	}
	return d, nil
}

func decodeSegment(seg string, v any) error {
	b, err := b64.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// tokenTable is a fake introspector: the tokens the fake authorization server issued.
type tokenTable struct {
	mu     sync.Mutex
	tokens map[string]security.Introspection
}

func (tt *tokenTable) add(token, jkt string) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if tt.tokens == nil {
		tt.tokens = map[string]security.Introspection{}
	}
	tt.tokens[token] = security.Introspection{Active: true, Scope: "payments", ClientID: "tpp", TokenType: "DPoP", CnfJKT: jkt, Exp: time.Now().Add(time.Hour).Unix()}
}

func (tt *tokenTable) Introspect(_ context.Context, token string) (security.Introspection, error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.tokens[token], nil // unknown tokens are inactive
}

// writeSecurityError answers a rejected request the way the service's error handler does.
func writeSecurityError(w http.ResponseWriter, err error) {
	var se *security.Error
	if !errors.As(err, &se) {
		http.Error(w, "internal", http.StatusInternalServerError)
		return
	}
	if c := se.WWWAuthenticate(); c != "" {
		w.Header().Set("WWW-Authenticate", c)
	}
	if se.Nonce != "" {
		w.Header().Set("DPoP-Nonce", se.Nonce)
		w.Header().Set("Cache-Control", "no-store")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(se.Status)
	fmt.Fprintf(w, `{"Code":"%d","Message":%q}`, se.Status, se.Description)
}

func decodeJSON(b []byte, v any) error { return json.Unmarshal(b, v) }
