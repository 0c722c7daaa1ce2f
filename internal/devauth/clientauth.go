package devauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/obpay/payments/internal/security"
)

// Client authentication methods the sandbox accepts, in the order its
// metadata lists them: private_key_jwt is the FAPI 2.0 method; the secret
// methods are sandbox conveniences.
var authMethods = []string{security.AuthPrivateKeyJWT, security.AuthClientSecretBasic, security.AuthClientSecretPost}

// assertionAlgs are the client assertion algorithms (FAPI 2.0 Security
// Profile §5.4: PS256, ES256, EdDSA); anything else, none and HS* above all,
// is refused before a key is looked at.
var assertionAlgs = map[string]jwa.SignatureAlgorithm{
	"ES256": jwa.ES256,
	"PS256": jwa.PS256,
	"EdDSA": jwa.EdDSA,
}

// assertionAlgNames lists assertionAlgs for the metadata, FAPI's order.
var assertionAlgNames = []string{"ES256", "PS256", "EdDSA"}

// Client assertion bounds (RFC 7523 §3).
const (
	maxAssertionBytes    = 8 << 10
	maxAssertionLifetime = 60 * time.Second // exp at most this far ahead
	assertionSkew        = 10 * time.Second // iat and nbf at most this far ahead
	maxJTIBytes          = 256
)

// clientKey is a public key registered for private_key_jwt.
type clientKey struct {
	kid string
	alg string // the algorithm the key signs with
	pub any    // *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey
}

// parseClientKey reads a public JWK (a private one is reduced to its public
// part) of a type the client assertions can use.
func parseClientKey(raw []byte) (clientKey, error) {
	k, err := jwk.ParseKey(raw)
	if err != nil {
		return clientKey{}, fmt.Errorf("devauth: client key: %w", err)
	}
	pub, err := jwk.PublicRawKeyOf(k)
	if err != nil {
		return clientKey{}, fmt.Errorf("devauth: client key: %w", err)
	}
	ck := clientKey{kid: k.KeyID(), pub: pub}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return clientKey{}, errors.New("devauth: client key: EC keys must be P-256")
		}
		ck.alg = "ES256"
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return clientKey{}, errors.New("devauth: client key: RSA keys must have at least 2048 bits")
		}
		ck.alg = "PS256"
	case ed25519.PublicKey:
		ck.alg = "EdDSA"
	default:
		return clientKey{}, fmt.Errorf("devauth: client key: unsupported type %T", pub)
	}
	if a := k.Algorithm(); a != nil && a.String() != "" && a.String() != ck.alg {
		return clientKey{}, fmt.Errorf("devauth: client key: alg %s does not fit the key", a)
	}
	return ck, nil
}

// dummySecret is compared against when the client is unknown, so that an
// unknown id costs the same time as a wrong secret.
var dummySecret = hashOf("no such client")

// credentialParams are the form parameters that carry client credentials.
var credentialParams = []string{"client_id", "client_secret", "client_assertion", "client_assertion_type"}

// authenticate identifies the client before anything else of the request is
// judged: by a client assertion (private_key_jwt, RFC 7523 §2.2) whose aud
// is the issuer or endpoint, by HTTP Basic (client_secret_basic, with id and
// secret form-urlencoded before Base64, RFC 6749 §2.3.1), or by the
// client_id and client_secret form fields (client_secret_post). Using two
// methods is refused (§2.3). Secrets are compared as SHA-256 hashes in
// constant time. Every failure to authenticate is 401 invalid_client.
func (s *Server) authenticate(r *http.Request, form url.Values, endpoint string) (*client, *oauthError) {
	auth := r.Header.Values("Authorization")
	if len(auth) > 1 {
		return nil, badRequest(errInvalidRequest, "Authorization header repeated", "authorization_repeated")
	}
	for _, p := range credentialParams {
		if len(form[p]) > 1 {
			return nil, invalidClient("credential_repeated")
		}
	}
	var id, secret string
	basic := false
	if len(auth) == 1 {
		scheme, rest, _ := strings.Cut(auth[0], " ")
		// Equal byte lengths keep the folding to ASCII: a non-ASCII rune that
		// folds to a letter ("ſ" to "s") is longer than one byte.
		if len(scheme) == len("Basic") && strings.EqualFold(scheme, "Basic") {
			basic = true
			var ok bool
			if id, secret, ok = decodeBasic(strings.TrimSpace(rest)); !ok {
				return nil, invalidClient("basic_malformed")
			}
		}
	}
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		if basic || form.Has("client_secret") {
			return nil, badRequest(errInvalidRequest, "Use one client authentication method", "client_auth_twice")
		}
		return s.assertionClient(r.Context(), form, endpoint)
	}
	if basic {
		if form.Has("client_secret") || (form.Has("client_id") && form.Get("client_id") != id) {
			return nil, badRequest(errInvalidRequest, "Use one client authentication method", "client_auth_twice")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
		if id == "" || secret == "" {
			return nil, invalidClient("client_auth_missing")
		}
	}
	cl, err := s.client(r.Context(), id)
	if err != nil {
		return nil, storeError(err)
	}
	want := dummySecret
	if cl != nil && cl.hasSecret {
		want = cl.secretHash
	}
	got := hashOf(secret)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || cl == nil || !cl.hasSecret {
		return nil, invalidClient("client_auth_failed")
	}
	return cl, nil
}

// assertionClaims are the claims of a client assertion (RFC 7523 §3); aud
// may be a string or an array (RFC 7519 §4.1.3).
type assertionClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud"`
	JWTID     string          `json:"jti"`
	Expiry    *json.Number    `json:"exp"`
	IssuedAt  *json.Number    `json:"iat"`
	NotBefore *json.Number    `json:"nbf"`
}

// assertionClient checks a private_key_jwt client assertion, cheap checks
// first: the assertion type, its size and compact form, the algorithm, the
// client named by iss (and client_id, when sent), a signature by one of that
// client's registered keys, then the claims (sub = iss, aud, exp at most 60 s
// ahead, iat and nbf), and last its jti, recorded once until exp so that
// only valid assertions take room in the store.
func (s *Server) assertionClient(ctx context.Context, form url.Values, endpoint string) (*client, *oauthError) {
	if form.Get("client_assertion_type") != security.ClientAssertionType {
		return nil, invalidClient("assertion_type")
	}
	a := form.Get("client_assertion")
	if a == "" || len(a) > maxAssertionBytes || strings.Count(a, ".") != 2 {
		return nil, invalidClient("assertion_malformed")
	}
	msg, err := jws.Parse([]byte(a))
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, invalidClient("assertion_malformed")
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg, ok := assertionAlgs[hdr.Algorithm().String()]
	if !ok {
		return nil, invalidClient("assertion_alg")
	}
	// RFC 7515 §4.1.11: no extension is understood.
	if len(hdr.Critical()) > 0 {
		return nil, invalidClient("assertion_crit")
	}
	var claims assertionClaims
	if err := json.Unmarshal(msg.Payload(), &claims); err != nil {
		return nil, invalidClient("assertion_claims_malformed")
	}
	cl, err := s.client(ctx, claims.Issuer)
	if err != nil {
		return nil, storeError(err)
	}
	if cl == nil || len(cl.keys) == 0 || (form.Has("client_id") && form.Get("client_id") != claims.Issuer) {
		return nil, invalidClient("assertion_client_unknown")
	}
	verified := false
	for _, k := range cl.keys {
		if k.alg != alg.String() || (hdr.KeyID() != "" && k.kid != "" && hdr.KeyID() != k.kid) {
			continue
		}
		if _, err := jws.Verify([]byte(a), jws.WithKey(alg, k.pub)); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, invalidClient("assertion_signature")
	}
	now := s.now()
	exp, expOK := unixTime(claims.Expiry)
	iat, iatOK := unixTime(claims.IssuedAt)
	nbf, nbfOK := unixTime(claims.NotBefore)
	switch {
	case claims.Subject != claims.Issuer:
		return nil, invalidClient("assertion_sub")
	case !s.assertionAudience(claims.Audience, endpoint):
		return nil, invalidClient("assertion_aud")
	case !expOK || !now.Before(exp):
		return nil, invalidClient("assertion_expired")
	case exp.After(now.Add(maxAssertionLifetime)):
		return nil, invalidClient("assertion_lifetime")
	case claims.IssuedAt != nil && (!iatOK || iat.After(now.Add(assertionSkew))):
		return nil, invalidClient("assertion_iat")
	case claims.NotBefore != nil && (!nbfOK || nbf.After(now.Add(assertionSkew))):
		return nil, invalidClient("assertion_nbf")
	case claims.JWTID == "" || len(claims.JWTID) > maxJTIBytes:
		return nil, invalidClient("assertion_jti")
	}
	// RFC 7523 §3 (7): each assertion is accepted once.
	seen, err := s.recordJTI(ctx, cl.id, claims.JWTID, exp)
	switch {
	case err != nil:
		return nil, unavailable("assertion_store_unavailable")
	case seen:
		return nil, invalidClient("assertion_replayed")
	}
	return cl, nil
}

// recordJTI records a client's assertion id until exp: false the first time.
func (s *Server) recordJTI(ctx context.Context, clientID, jti string, exp time.Time) (bool, error) {
	key := "client_assertion:" + base64.RawURLEncoding.EncodeToString([]byte(clientID)) + ":" + jti
	if s.jtis == nil {
		return s.tokens.store.SeenAssertion(ctx, key, exp, s.now())
	}
	if f, ok := s.jtis.(security.FairReplayStore); ok {
		return f.SeenFor(ctx, clientID, key, exp)
	}
	return s.jtis.Seen(ctx, key, exp)
}

// assertionAudience accepts an aud that is, or contains, the issuer (FAPI
// 2.0's choice) or the URL of the endpoint called (RFC 7523 §3 (3)).
func (s *Server) assertionAudience(raw json.RawMessage, endpoint string) bool {
	var list []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		list = []string{one}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return false
	}
	for _, a := range list {
		if a == s.issuer || a == endpoint {
			return true
		}
	}
	return false
}

// unixTime reads a NumericDate (RFC 7519 §2); false when absent or not a
// finite number of seconds.
func unixTime(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

func invalidClient(reason string) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, code: errInvalidClient,
		description: "Client authentication failed", reason: reason}
}

// decodeBasic splits a Basic credential and form-decodes both halves
// (RFC 6749 §2.3.1, so "sandbox%2Dtpp" is "sandbox-tpp").
func decodeBasic(cred string) (id, secret string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", "", false
	}
	rawID, rawSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", false
	}
	return id, secret, id != ""
}
