package security

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"time"
)

// Client authentication methods for the introspection endpoint (RFC 7662
// §2.1 requires the resource server to authenticate; the names are those of
// the OAuth "token_endpoint_auth_method" registry, RFC 7591 §2).
const (
	// AuthClientSecretBasic sends the client id and secret with HTTP Basic
	// (RFC 6749 §2.3.1).
	AuthClientSecretBasic = "client_secret_basic"
	// AuthClientSecretPost sends them as form parameters (RFC 6749 §2.3.1).
	AuthClientSecretPost = "client_secret_post"
	// AuthPrivateKeyJWT sends a JWT signed with the client's private key
	// (RFC 7523 §2.2, OpenID Connect Core §9).
	AuthPrivateKeyJWT = "private_key_jwt"
)

// ClientAssertionType is the client_assertion_type of RFC 7523 §2.2, as a
// client sends it and as an authorization server checks it.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientAssertionLifetime is exp - iat of every assertion: short, since each
// one is made for a single call (FAPI 2.0 Security Profile asks the AS to
// refuse assertions with a long lifetime).
const clientAssertionLifetime = 60 * time.Second

// clientAuthConfig is what clientAuth needs; IntrospectionConfig carries it.
type clientAuthConfig struct {
	method       string // "" means AuthClientSecretBasic
	clientID     string
	clientSecret string        // the secret methods only
	key          crypto.Signer // AuthPrivateKeyJWT only
	keyID        string        // AuthPrivateKeyJWT: the header kid; "" omits it
	audience     string        // AuthPrivateKeyJWT: the aud claim, the AS's issuer
	now          func() time.Time
	rand         io.Reader // nil means crypto/rand
}

// clientAuth adds the resource server's client authentication to an outgoing
// introspection request. It holds secrets: it logs as its method and client
// id only. It is safe for concurrent use.
type clientAuth struct {
	method   string
	clientID string
	basic    string // AuthClientSecretBasic: the whole Authorization value
	secret   string // AuthClientSecretPost
	key      crypto.Signer
	alg      string
	header   string // AuthPrivateKeyJWT: the encoded JOSE header
	audience string
	now      func() time.Time
	rand     io.Reader
}

// newClientAuth validates cfg: a known method, a client id, and the secret or
// the key and audience that the method needs.
func newClientAuth(cfg clientAuthConfig) (*clientAuth, error) {
	a := &clientAuth{method: cfg.method, clientID: cfg.clientID, now: cfg.now, rand: cfg.rand}
	if a.method == "" {
		a.method = AuthClientSecretBasic
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.rand == nil {
		a.rand = rand.Reader
	}
	if cfg.clientID == "" {
		return nil, errors.New("security: introspection client id is required")
	}
	switch a.method {
	case AuthClientSecretBasic, AuthClientSecretPost:
		if cfg.clientSecret == "" {
			return nil, fmt.Errorf("security: introspection client secret is required with %s", a.method)
		}
		// RFC 6749 §2.3.1: id and secret are form-urlencoded (Appendix B)
		// before Base64, so "rs:client" travels as "rs%3Aclient".
		a.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cfg.clientID)+":"+url.QueryEscape(cfg.clientSecret)))
		a.secret = cfg.clientSecret
	case AuthPrivateKeyJWT:
		if cfg.key == nil {
			return nil, errors.New("security: private_key_jwt needs a private key")
		}
		alg, err := ClientAssertionAlg(cfg.key)
		if err != nil {
			return nil, err
		}
		if cfg.audience == "" {
			return nil, errors.New("security: private_key_jwt needs the issuer as audience")
		}
		hdr := struct {
			Alg string `json:"alg"`
			Kid string `json:"kid,omitempty"`
		}{alg, cfg.keyID}
		b, err := json.Marshal(hdr)
		if err != nil {
			return nil, fmt.Errorf("security: client assertion header: %v", err)
		}
		a.key, a.alg, a.audience = cfg.key, alg, cfg.audience
		a.header = base64.RawURLEncoding.EncodeToString(b)
	default:
		return nil, fmt.Errorf("security: unknown client authentication method %q (want %s, %s or %s)",
			a.method, AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT)
	}
	return a, nil
}

// ClientAssertionAlg returns the JWS algorithm of the private_key_jwt
// assertions signed with key: ES256 for an EC P-256 key (RFC 7518 §3.4), PS256
// for an RSA key of at least 2048 bits (RFC 7518 §3.5), EdDSA for an Ed25519
// key (RFC 8037 §3.1), the FAPI 2.0 set. Any other key is an error.
func ClientAssertionAlg(key crypto.Signer) (string, error) {
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return "", fmt.Errorf("security: EC key on %s, want P-256 (ES256)", pub.Curve.Params().Name)
		}
		return algES256, nil
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < minRSABits {
			return "", fmt.Errorf("security: RSA key of %d bits, want at least %d (PS256)", n, minRSABits)
		}
		return algPS256, nil
	case ed25519.PublicKey:
		return algEdDSA, nil
	default:
		return "", fmt.Errorf("security: unsupported key type %T (want EC P-256, RSA or Ed25519)", pub)
	}
}

// apply adds the credentials to an introspection request: the Authorization
// header for client_secret_basic, form parameters for the others. A
// private_key_jwt assertion is new for every call (its own jti), so an
// assertion seen by the AS is never sent again. The error (signing failed)
// never quotes the key.
func (a *clientAuth) apply(h http.Header, form url.Values) error {
	switch a.method {
	case AuthClientSecretBasic:
		h.Set("Authorization", a.basic)
	case AuthClientSecretPost:
		// RFC 6749 §2.3.1: client_id and client_secret in the body.
		form.Set("client_id", a.clientID)
		form.Set("client_secret", a.secret)
	case AuthPrivateKeyJWT:
		jwt, err := a.assertion()
		if err != nil {
			return err
		}
		// RFC 7523 §2.2 and RFC 7521 §4.2: client_id may accompany the
		// assertion; some servers look the client up by it.
		form.Set("client_id", a.clientID)
		form.Set("client_assertion_type", ClientAssertionType)
		form.Set("client_assertion", jwt)
	}
	return nil
}

// assertionClaims are the claims of RFC 7523 §3.
type assertionClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	JWTID    string `json:"jti"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
}

// assertion makes and signs one client assertion.
func (a *clientAuth) assertion() (string, error) {
	var id [16]byte
	if _, err := io.ReadFull(a.rand, id[:]); err != nil {
		return "", fmt.Errorf("security: client assertion jti: %w", err)
	}
	now := a.now()
	claims := assertionClaims{
		// RFC 7523 §3 (1), (2): iss and sub are the client id.
		Issuer:  a.clientID,
		Subject: a.clientID,
		// RFC 7523 §3 (3); FAPI 2.0 Security Profile §5.3.2.1: the
		// issuer identifier as a single string, the sole audience.
		Audience: a.audience,
		// RFC 7523 §3 (7): a unique id, 128 random bits, so the AS can
		// refuse a replayed assertion.
		JWTID:    base64.RawURLEncoding.EncodeToString(id[:]),
		IssuedAt: now.Unix(),
		// RFC 7523 §3 (4): an expiry, 60 s after iat.
		Expiry: now.Add(clientAssertionLifetime).Unix(),
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("security: client assertion claims: %v", err)
	}
	input := a.header + "." + base64.RawURLEncoding.EncodeToString(body)
	sig, err := a.sign([]byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// sign signs the JWS signing input under a.alg (RFC 7515 §5.1).
func (a *clientAuth) sign(input []byte) ([]byte, error) {
	switch a.alg {
	case algES256:
		sum := sha256.Sum256(input)
		der, err := a.key.Sign(a.rand, sum[:], crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("security: client assertion signature: %w", err)
		}
		// RFC 7518 §3.4: R || S, each 32 octets, not the DER that
		// crypto.Signer returns.
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 ||
			rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
			return nil, errors.New("security: client assertion signature: malformed ECDSA signature")
		}
		sig := make([]byte, 64)
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
		return sig, nil
	case algPS256:
		sum := sha256.Sum256(input)
		// RFC 7518 §3.5: the salt is as long as the hash.
		sig, err := a.key.Sign(a.rand, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
		if err != nil {
			return nil, fmt.Errorf("security: client assertion signature: %w", err)
		}
		return sig, nil
	default: // algEdDSA: RFC 8037 §3.1 signs the message itself.
		sig, err := a.key.Sign(a.rand, input, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("security: client assertion signature: %w", err)
		}
		return sig, nil
	}
}

// LogValue logs the method and the client id, never the secret or the key.
func (a *clientAuth) LogValue() slog.Value {
	return slog.GroupValue(slog.String("method", a.method), slog.String("client_id", a.clientID))
}
