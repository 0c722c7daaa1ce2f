package client

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// Algorithm names a DPoP proof signing algorithm (a JWS "alg" value).
type Algorithm string

// The proof algorithms the service accepts (the FAPI 2.0 set).
const (
	// ES256 is ECDSA on P-256 with SHA-256: small keys, fast, the default.
	ES256 Algorithm = "ES256"
	// EdDSA is Ed25519. Proofs carry "alg":"EdDSA"; the service also accepts the RFC 9864 name "Ed25519".
	EdDSA Algorithm = "EdDSA"
	// PS256 is RSASSA-PSS with SHA-256 on a 2048-bit (or larger) RSA key.
	PS256 Algorithm = "PS256"
)

// minRSABits is the smallest RSA modulus the service accepts in a proof.
const minRSABits = 2048

// ErrUnsupportedAlgorithm means the algorithm is not one of ES256, EdDSA (Ed25519) or PS256.
var ErrUnsupportedAlgorithm = errors.New("dpop: unsupported algorithm")

// ErrInvalidKey means a key could not be used for DPoP: not a private key, an unsupported key type
// or curve, an RSA modulus under 2048 bits, or malformed JWK/PEM data.
var ErrInvalidKey = errors.New("dpop: invalid key")

// ParseAlgorithm maps a name to an Algorithm. It accepts "ES256", "PS256", "EdDSA" and "Ed25519"
// (both name Ed25519). It returns ErrUnsupportedAlgorithm for anything else.
func ParseAlgorithm(name string) (Algorithm, error) {
	switch name {
	case "ES256":
		return ES256, nil
	case "EdDSA", "Ed25519":
		return EdDSA, nil
	case "PS256":
		return PS256, nil
	}
	return "", fmt.Errorf("%q: %w", name, ErrUnsupportedAlgorithm)
}

// Key is a DPoP key pair: the private key that signs proofs and its public JWK, which every
// proof embeds and whose RFC 7638 thumbprint the authorization server binds tokens to.
//
// A Key is immutable and safe for concurrent use. Its String and LogValue methods never reveal
// the private key. Use one key per authorization server (RFC 9449 §11.4 and FAPI 2.0 advise it)
// and keep it as long as the tokens bound to it live: a token only works with its own key.
type Key struct {
	alg    Algorithm
	signer crypto.Signer // *ecdsa.PrivateKey, ed25519.PrivateKey or *rsa.PrivateKey
	public jsonWebKey    // the public JWK embedded in proofs
	jkt    string        // RFC 7638 thumbprint of public
	header string        // base64url of the proofs' protected header, the same for every proof
}

// GenerateKey makes a new random key for alg: a P-256 key for ES256, an Ed25519 key for EdDSA,
// a 2048-bit RSA key for PS256. It returns ErrUnsupportedAlgorithm for any other algorithm.
func GenerateKey(alg Algorithm) (*Key, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA, "Ed25519":
		alg = EdDSA
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	case PS256:
		signer, err = rsa.GenerateKey(rand.Reader, minRSABits)
	default:
		return nil, fmt.Errorf("generate key %q: %w", alg, ErrUnsupportedAlgorithm)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %v", alg, err)
	}
	return newKey(signer, alg)
}

// NewKey wraps an existing private key: *ecdsa.PrivateKey on P-256 (ES256), ed25519.PrivateKey
// (EdDSA) or *rsa.PrivateKey of at least 2048 bits (PS256). It returns ErrInvalidKey for any
// other key.
func NewKey(private crypto.Signer) (*Key, error) {
	alg, err := algorithmFor(private)
	if err != nil {
		return nil, err
	}
	return newKey(private, alg)
}

// ParseKey reads a private key from a JWK (a JSON object with the private members) or from PEM
// (PKCS #8 "PRIVATE KEY", SEC 1 "EC PRIVATE KEY" or PKCS #1 "RSA PRIVATE KEY"). The algorithm
// follows the key type: P-256 gives ES256, Ed25519 gives EdDSA, RSA gives PS256. It returns
// ErrInvalidKey when the data holds no usable private key.
func ParseKey(data []byte) (*Key, error) {
	data = bytes.TrimSpace(data)
	if bytes.HasPrefix(data, []byte("-----BEGIN")) {
		return parsePEM(data)
	}
	return parseJWK(data)
}

// LoadKey reads a key file written by MarshalJWK or MarshalPEM (see ParseKey). It returns
// ErrInvalidKey when the file holds no usable private key, and the file system error otherwise.
func LoadKey(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func parsePEM(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM block: %w", ErrInvalidKey)
	}
	var raw any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		raw, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		raw, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		raw, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key: %w", block.Type, ErrInvalidKey)
	}
	if err != nil {
		return nil, fmt.Errorf("parse PEM %s: %v: %w", block.Type, err, ErrInvalidKey)
	}
	signer, err := asSigner(raw)
	if err != nil {
		return nil, err
	}
	return NewKey(signer)
}

func asSigner(raw any) (crypto.Signer, error) {
	switch k := raw.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	case *ed25519.PrivateKey:
		return *k, nil
	}
	return nil, fmt.Errorf("key type %T: %w", raw, ErrInvalidKey)
}

// algorithmFor binds the key type to its one algorithm, as the service does (RFC 7518 §3.4,
// FAPI 2.0 §5.4.1): P-256 only for ES256, RSA of 2048 bits or more for PS256, Ed25519 for EdDSA.
func algorithmFor(private crypto.Signer) (Algorithm, error) {
	switch k := private.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("EC curve %s (want P-256): %w", k.Curve.Params().Name, ErrInvalidKey)
		}
		return ES256, nil
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return "", fmt.Errorf("Ed25519 key of %d bytes: %w", len(k), ErrInvalidKey)
		}
		return EdDSA, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits (want at least %d): %w", k.N.BitLen(), minRSABits, ErrInvalidKey)
		}
		return PS256, nil
	}
	return "", fmt.Errorf("key type %T: %w", private, ErrInvalidKey)
}

func newKey(signer crypto.Signer, alg Algorithm) (*Key, error) {
	public, err := publicJWK(signer)
	if err != nil {
		return nil, err
	}
	header, err := json.Marshal(struct {
		Type      string     `json:"typ"`
		Algorithm Algorithm  `json:"alg"`
		JWK       jsonWebKey `json:"jwk"`
	}{"dpop+jwt", alg, public})
	if err != nil {
		return nil, fmt.Errorf("proof header: %v", err)
	}
	return &Key{
		alg:    alg,
		signer: signer,
		public: public,
		jkt:    public.thumbprint(),
		header: base64.RawURLEncoding.EncodeToString(header),
	}, nil
}

// Algorithm returns the algorithm the key signs proofs with.
func (k *Key) Algorithm() Algorithm { return k.alg }

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of the public key, base64url without
// padding: the `jkt` the authorization server puts in the token's `cnf` claim, and the value of
// the `dpop_jkt` authorization request parameter (RFC 9449 §10).
func (k *Key) Thumbprint() string { return k.jkt }

// PublicJWK returns the public key as a JWK JSON object, as proofs embed it.
func (k *Key) PublicJWK() []byte {
	b, _ := json.Marshal(k.public) // a struct of strings always marshals
	return b
}

// MarshalJWK returns the private key as a JWK JSON object (RFC 7517, RFC 7518 §6), with "alg"
// and "kid" (the thumbprint) set. Keep the result secret: whoever holds it can use the tokens
// bound to the key.
func (k *Key) MarshalJWK() ([]byte, error) {
	private, err := privateJWK(k.signer)
	if err != nil {
		return nil, err
	}
	private.Algorithm = string(k.alg)
	private.KeyID = k.jkt
	return json.MarshalIndent(private, "", "  ")
}

// MarshalPEM returns the private key as a PKCS #8 "PRIVATE KEY" PEM block. Keep the result secret.
func (k *Key) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, fmt.Errorf("PKCS #8: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// String describes the key without revealing it: its algorithm and thumbprint.
func (k *Key) String() string { return fmt.Sprintf("DPoP key %s jkt=%s", k.alg, k.jkt) }

// LogValue logs the key as its algorithm and thumbprint only, never the private key.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("alg", string(k.alg)), slog.String("jkt", k.jkt))
}
