package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"
)

// ErrInvalidURL means a proof was asked for a URL that is not absolute http(s).
var ErrInvalidURL = errors.New("dpop: proof URL must be an absolute http or https URL")

// jtiBytes is the size of a proof's random jti: 128 bits, above the 96 RFC 9449 §11.1 suggests.
const jtiBytes = 16

// ProofRequest describes the one HTTP request a proof is for.
type ProofRequest struct {
	// Method is the HTTP method, exactly as sent ("POST"): the proof's `htm`. Required.
	Method string
	// URL is the request URL. The proof's `htu` keeps its scheme, host and path and drops the
	// query and the fragment (RFC 9449 §4.2). Required.
	URL string
	// AccessToken is the access token sent with the request, if any; the proof then carries
	// `ath`, the base64url SHA-256 of the token (RFC 9449 §4.2). Empty for token requests.
	AccessToken string
	// Nonce is the server's latest `DPoP-Nonce` for this origin, if known; empty means none.
	Nonce string
	// IssuedAt is the proof's `iat`; the zero value means now.
	IssuedAt time.Time
}

// proofClaims is the payload of a DPoP proof (RFC 9449 §4.2).
type proofClaims struct {
	ID              string `json:"jti"`
	Method          string `json:"htm"`
	URL             string `json:"htu"`
	IssuedAt        int64  `json:"iat"`
	AccessTokenHash string `json:"ath,omitempty"`
	Nonce           string `json:"nonce,omitempty"`
}

// Proof signs a new DPoP proof for r: a compact JWS with `typ` "dpop+jwt", the key's `alg`, the
// public `jwk`, and the claims `jti` (128 random bits, new for every proof), `htm`, `htu`, `iat`,
// and `ath` and `nonce` when r has them. Put it in the request's `DPoP` header. Every call
// returns a different proof; never send one twice.
//
// It returns ErrInvalidURL when r.URL is not an absolute http(s) URL, and an error when
// r.Method is empty.
func (k *Key) Proof(r ProofRequest) (string, error) {
	if r.Method == "" {
		return "", errors.New("dpop: proof without a method")
	}
	htu, err := TargetURI(r.URL)
	if err != nil {
		return "", err
	}
	jti := make([]byte, jtiBytes)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("dpop: jti: %v", err)
	}
	iat := r.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	claims := proofClaims{
		ID:       base64.RawURLEncoding.EncodeToString(jti),
		Method:   r.Method,
		URL:      htu,
		IssuedAt: iat.Unix(),
		Nonce:    r.Nonce,
	}
	if r.AccessToken != "" {
		claims.AccessTokenHash = AccessTokenHash(r.AccessToken)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("dpop: claims: %v", err)
	}
	signingInput := k.header + "." + b64.EncodeToString(payload)
	sig, err := k.sign([]byte(signingInput))
	if err != nil {
		return "", fmt.Errorf("dpop: sign: %v", err)
	}
	return signingInput + "." + b64.EncodeToString(sig), nil
}

// sign returns the JWS signature of input (RFC 7515 §5.1) under the key's algorithm: for ES256
// the 64-byte R || S of RFC 7518 §3.4 (not ASN.1), for EdDSA the Ed25519 signature of the input
// itself (RFC 8037 §3.1), for PS256 RSASSA-PSS with SHA-256 and a 32-byte salt (RFC 7518 §3.5).
func (k *Key) sign(input []byte) ([]byte, error) {
	switch s := k.signer.(type) {
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256(input)
		der, err := ecdsa.SignASN1(rand.Reader, s, digest[:])
		if err != nil {
			return nil, err
		}
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			return nil, err
		}
		sig := make([]byte, 64)
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
		return sig, nil
	case ed25519.PrivateKey:
		return ed25519.Sign(s, input), nil
	case *rsa.PrivateKey:
		digest := sha256.Sum256(input)
		return rsa.SignPSS(rand.Reader, s, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return nil, fmt.Errorf("key type %T: %w", k.signer, ErrInvalidKey)
}

// TargetURI returns the `htu` value for a request URL: the scheme (lower case), the host and
// port as given, the path as sent ("/" when empty), and no user info, query or fragment
// (RFC 9449 §4.2). It returns ErrInvalidURL when rawURL is not an absolute http(s) URL.
func TargetURI(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	return targetURI(u)
}

func targetURI(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" {
		return "", ErrInvalidURL
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + u.Host + path, nil
}

// AccessTokenHash returns the proof's `ath` for an access token: base64url (no padding) of the
// SHA-256 of the token's ASCII bytes, exactly as sent (RFC 9449 §4.2).
func AccessTokenHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
