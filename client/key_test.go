package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeyRoundTrips(t *testing.T) {
	for _, alg := range []Algorithm{ES256, EdDSA, PS256} {
		key := mustKey(t, alg)
		jwkBytes, err := key.MarshalJWK()
		if err != nil {
			t.Fatal(err)
		}
		pemBytes, err := key.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			format string
			data   []byte
		}{{"JWK", jwkBytes}, {"PEM", pemBytes}} {
			t.Run(string(alg)+" as "+tc.format, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "key")
				if err := os.WriteFile(path, tc.data, 0o600); err != nil {
					t.Fatal(err)
				}
				back, err := LoadKey(path)
				if err != nil {
					t.Fatalf("LoadKey = %v", err)
				}
				if back.Thumbprint() != key.Thumbprint() || back.Algorithm() != alg {
					t.Errorf("loaded %s %s, want %s %s", back.Algorithm(), back.Thumbprint(), alg, key.Thumbprint())
				}
				proof, err := back.Proof(ProofRequest{Method: "GET", URL: "https://api.example/x"})
				if err != nil {
					t.Fatal(err)
				}
				d, err := verifyProof(proof)
				if err != nil {
					t.Fatalf("proof of the loaded key: %v", err)
				}
				if d.JWK.thumbprint() != key.Thumbprint() {
					t.Errorf("proof jwk thumbprint %s, want %s", d.JWK.thumbprint(), key.Thumbprint())
				}
			})
		}
	}
}

func TestParseKeyRefuses(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsa1024DER := x509.MarshalPKCS1PrivateKey(rsa1024)
	es := mustKey(t, ES256)
	esJWK, _ := es.MarshalJWK()
	other := mustKey(t, ES256)
	otherJWK, _ := other.MarshalJWK()
	// the private d of one key with the public x and y of another
	mixed := strings.Replace(string(esJWK), jsonMember(t, esJWK, "d"), jsonMember(t, otherJWK, "d"), 1)
	tests := []struct {
		name string
		data string
	}{
		{"public JWK", string(es.PublicJWK())},
		{"JWK of a P-384 key", `{"kty":"EC","crv":"P-384","d":"AAAA","x":"AAAA","y":"AAAA"}`},
		{"symmetric JWK", `{"kty":"oct","k":"c2VjcmV0"}`},
		{"JWK whose public part is another key's", mixed},
		{"JWK whose alg does not fit its key", strings.Replace(string(esJWK), `"ES256"`, `"PS256"`, 1)},
		{"not JSON", `{"kty":`},
		{"PEM P-384 key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER}))},
		{"PEM RSA-1024 key", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: rsa1024DER}))},
		{"PEM public key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
		{"broken PEM", "-----BEGIN PRIVATE KEY-----\nnot base64\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseKey([]byte(tc.data)); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("ParseKey = %v, want ErrInvalidKey", err)
			}
		})
	}
}

func TestAlgorithms(t *testing.T) {
	tests := []struct {
		name    string
		want    Algorithm
		wantErr error
	}{
		{"ES256", ES256, nil},
		{"EdDSA", EdDSA, nil},
		{"Ed25519", EdDSA, nil},
		{"PS256", PS256, nil},
		{"RS256", "", ErrUnsupportedAlgorithm},
		{"HS256", "", ErrUnsupportedAlgorithm},
		{"none", "", ErrUnsupportedAlgorithm},
		{"es256", "", ErrUnsupportedAlgorithm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAlgorithm(tc.name)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("ParseAlgorithm(%q) = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.wantErr)
			}
			_, err = GenerateKey(Algorithm(tc.name))
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("GenerateKey(%q) = %v, want %v", tc.name, err, tc.wantErr)
			}
		})
	}
}

// RFC 7638 §3.1 and RFC 9449 §6.1 vectors.
func TestThumbprintVectors(t *testing.T) {
	tests := []struct {
		name string
		jwk  jsonWebKey
		want string
	}{
		{"RFC 9449 EC key", jsonWebKey{KeyType: "EC", Curve: "P-256", X: "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", Y: "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
		{"RFC 7638 RSA key", jsonWebKey{KeyType: "RSA", Exponent: "AQAB", Modulus: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.jwk.thumbprint(); got != tc.want {
				t.Errorf("thumbprint = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestProofClaims(t *testing.T) {
	key := mustKey(t, ES256)
	iat := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name    string
		req     ProofRequest
		want    proofClaims
		wantErr error
	}{
		{
			name: "token request without token or nonce",
			req:  ProofRequest{Method: "POST", URL: "http://localhost:8080/oauth2/token", IssuedAt: iat},
			want: proofClaims{Method: "POST", URL: "http://localhost:8080/oauth2/token", IssuedAt: iat.Unix()},
		},
		{
			name: "resource request with token and nonce, query and fragment dropped",
			req:  ProofRequest{Method: "GET", URL: "HTTPS://Bank.example:8443/open-banking/v3.1/aisp/accounts?fromBookingDateTime=x#frag", AccessToken: "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU", Nonce: "n-1", IssuedAt: iat},
			want: proofClaims{Method: "GET", URL: "https://Bank.example:8443/open-banking/v3.1/aisp/accounts", IssuedAt: iat.Unix(), AccessTokenHash: "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo", Nonce: "n-1"},
		},
		{
			name: "empty path becomes /, user info dropped",
			req:  ProofRequest{Method: "GET", URL: "https://user:pw@api.example", IssuedAt: iat},
			want: proofClaims{Method: "GET", URL: "https://api.example/", IssuedAt: iat.Unix()},
		},
		{
			name: "escaped path kept as sent",
			req:  ProofRequest{Method: "GET", URL: "https://api.example/a%2Fb/c", IssuedAt: iat},
			want: proofClaims{Method: "GET", URL: "https://api.example/a%2Fb/c", IssuedAt: iat.Unix()},
		},
		{name: "relative URL", req: ProofRequest{Method: "GET", URL: "/x"}, wantErr: ErrInvalidURL},
		{name: "other scheme", req: ProofRequest{Method: "GET", URL: "ftp://api.example/x"}, wantErr: ErrInvalidURL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proof, err := key.Proof(tc.req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("Proof = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := verifyProof(proof)
			if err != nil {
				t.Fatal(err)
			}
			if d.Type != "dpop+jwt" || d.Alg != "ES256" {
				t.Errorf("header typ %q alg %q", d.Type, d.Alg)
			}
			jti, err := b64.DecodeString(d.Claims.ID)
			if err != nil || len(jti)*8 < 96 {
				t.Errorf("jti %q carries %d bits, want at least 96", d.Claims.ID, len(jti)*8)
			}
			got := d.Claims
			got.ID = ""
			if got != tc.want {
				t.Errorf("claims = %+v, want %+v", got, tc.want)
			}
			if _, ok := d.Raw["ath"]; ok != (tc.req.AccessToken != "") {
				t.Errorf("ath present = %v, want %v", ok, tc.req.AccessToken != "")
			}
		})
	}
}

func TestProofsAreNeverRepeated(t *testing.T) {
	key := mustKey(t, EdDSA)
	seen := map[string]bool{}
	req := ProofRequest{Method: "POST", URL: "https://api.example/p", IssuedAt: time.Unix(1_700_000_000, 0)}
	for range 1000 {
		p, err := key.Proof(req)
		if err != nil {
			t.Fatal(err)
		}
		d, err := verifyProof(p)
		if err != nil {
			t.Fatal(err)
		}
		if seen[d.Claims.ID] {
			t.Fatalf("jti %s repeated", d.Claims.ID)
		}
		seen[d.Claims.ID] = true
	}
}

func TestKeyNeverPrintsItsSecret(t *testing.T) {
	key := mustKey(t, ES256)
	jwkBytes, _ := key.MarshalJWK()
	d := jsonMember(t, jwkBytes, "d")
	for _, s := range []string{key.String(), key.LogValue().String()} {
		if strings.Contains(s, d) || !strings.Contains(s, key.Thumbprint()) {
			t.Errorf("%q: want the thumbprint and not the private key", s)
		}
	}
}

// jsonMember returns the string value of a top-level member of a JSON object.
func jsonMember(t *testing.T, obj []byte, name string) string {
	t.Helper()
	var m map[string]any
	if err := decodeJSON(obj, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[name].(string)
	if s == "" {
		t.Fatalf("no member %q", name)
	}
	return s
}
