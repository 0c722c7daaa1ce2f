package devauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/security"
)

// Dynamic client registration bounds: registration is open, so the registry
// is small, and registrations end.
const (
	maxRegistered        = 1_000
	registrationLifetime = 24 * time.Hour
	maxRegisterBytes     = 32 << 10
	maxRedirectURIs      = 10
	maxClientKeys        = 5
	maxClientName        = 200
	// registeredPrefix starts every registered client's id, so that other
	// ids are refused without a store lookup.
	registeredPrefix = "dyn-"
)

// registrationRequest is the client metadata of RFC 7591 §2 the sandbox
// understands; other members are ignored (§2).
type registrationRequest struct {
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	ClientName              string          `json:"client_name"`
	Scope                   *string         `json:"scope"`
	JWKS                    json.RawMessage `json:"jwks"`
	JWKSURI                 string          `json:"jwks_uri"`
}

// registrationAnswer is the client information response (RFC 7591 §3.2.1).
type registrationAnswer struct {
	ClientID                string          `json:"client_id"`
	ClientSecret            string          `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64           `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64          `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string        `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	ClientName              string          `json:"client_name,omitempty"`
	Scope                   string          `json:"scope"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
}

// RFC 7591 §3.2.2 error codes.
const (
	errInvalidClientMetadata = "invalid_client_metadata"
	errInvalidRedirectURI    = "invalid_redirect_uri"
)

// register serves POST /oauth2/register (RFC 7591 §3): open registration
// of an aggregator client, kept in the Store for 24 hours (at most 1,000 at a
// time). The client may ask for the authorization_code (with refresh_token)
// and client_credentials grants and the scopes accounts and payments, with
// loopback redirect URIs only, and authenticates with private_key_jwt (its
// keys given inline as jwks; jwks_uri is not fetched) or a secret the answer
// returns once.
func (s *Server) register(c echo.Context) error {
	r := c.Request()
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return s.refuse(c, "register", "", badRequest(errInvalidRequest, "Body must be application/json", "content_type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRegisterBytes+1))
	if err != nil || len(body) > maxRegisterBytes {
		return s.refuse(c, "register", "", badRequest(errInvalidRequest, "Body unreadable or too large", "body_too_large"))
	}
	var req registrationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return s.refuse(c, "register", "", badRequest(errInvalidClientMetadata, "Client metadata must be a JSON object of the RFC 7591 members", "metadata_malformed"))
	}
	cl, ans, e := s.newClient(req)
	if e != nil {
		return s.refuse(c, "register", "", e)
	}
	now := s.now()
	if err := s.tokens.store.PutRegistration(r.Context(), registration(cl, ans, now), now, maxRegistered); err != nil {
		return s.refuse(c, "register", "", storeError(err))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "client registered",
		slog.String("client_id", cl.id), slog.String("method", ans.TokenEndpointAuthMethod))
	noStore(c)
	return c.JSON(http.StatusCreated, ans)
}

// newClient checks the metadata and makes the client and its answer.
func (s *Server) newClient(req registrationRequest) (*client, registrationAnswer, *oauthError) {
	bad := func(desc, reason string) (*client, registrationAnswer, *oauthError) {
		return nil, registrationAnswer{}, badRequest(errInvalidClientMetadata, desc, reason)
	}
	if models.CheckText(req.ClientName) != nil || len(req.ClientName) > maxClientName {
		return bad("client_name must be text of at most 200 bytes", "client_name")
	}
	grants := req.GrantTypes
	if len(grants) == 0 {
		grants = []string{"authorization_code"} // RFC 7591 §2
	}
	cl := &client{noClientCredentials: true}
	for _, g := range grants {
		switch g {
		case "authorization_code":
			cl.codeGrant = true
		case "refresh_token":
		case "client_credentials":
			cl.noClientCredentials = false
		default:
			return bad("grant_types may hold authorization_code, refresh_token and client_credentials", "grant_type")
		}
	}
	responses := req.ResponseTypes
	if len(responses) == 0 {
		responses = []string{"code"}
	}
	if len(responses) != 1 || responses[0] != "code" {
		return bad(`response_types must be ["code"]`, "response_type")
	}
	if cl.codeGrant {
		if len(req.RedirectURIs) == 0 || len(req.RedirectURIs) > maxRedirectURIs {
			return nil, registrationAnswer{}, badRequest(errInvalidRedirectURI, "redirect_uris must list 1 to 10 URIs", "redirect_uris_count")
		}
		for _, u := range req.RedirectURIs {
			if _, ok := loopbackRedirect(u); !ok {
				return nil, registrationAnswer{}, badRequest(errInvalidRedirectURI, "redirect_uris must be http URLs on 127.0.0.1 or localhost", "redirect_uri_invalid")
			}
		}
		cl.redirectURIs = append([]string(nil), req.RedirectURIs...)
	} else if len(req.RedirectURIs) > 0 {
		return nil, registrationAnswer{}, badRequest(errInvalidRedirectURI, "redirect_uris need the authorization_code grant", "redirect_uris_without_code")
	}
	cl.scopes = []string{ScopeAccounts, ScopePayments}
	if req.Scope != nil {
		scopes, ok := parseScope(*req.Scope)
		if !ok || !scopeSubset(scopes, cl.scopes) {
			return bad("scope may hold accounts and payments", "scope")
		}
		cl.scopes = scopes
	}
	id, _, err := newSecret()
	if err != nil {
		return nil, registrationAnswer{}, serverError("client_id")
	}
	cl.id = registeredPrefix + id[:22]
	ans := registrationAnswer{
		ClientID: cl.id, ClientIDIssuedAt: s.now().Unix(), RedirectURIs: cl.redirectURIs, GrantTypes: grants,
		ResponseTypes: responses, ClientName: req.ClientName, Scope: joinScopes(cl.scopes),
	}
	method := req.TokenEndpointAuthMethod
	if method == "" {
		method = security.AuthClientSecretBasic // RFC 7591 §2
	}
	ans.TokenEndpointAuthMethod = method
	switch method {
	case security.AuthPrivateKeyJWT:
		if req.JWKSURI != "" {
			return bad("jwks_uri is not supported: give the keys inline as jwks", "jwks_uri")
		}
		keys, err := parseClientKeys(req.JWKS)
		if err != nil {
			return bad("jwks must be a JWK set of 1 to 5 EC P-256, RSA (2048 bits or more) or Ed25519 public keys", "jwks")
		}
		cl.keys, ans.JWKS = keys, req.JWKS
	case security.AuthClientSecretBasic, security.AuthClientSecretPost:
		if len(req.JWKS) > 0 || req.JWKSURI != "" {
			return bad("jwks and jwks_uri are for private_key_jwt", "jwks_with_secret")
		}
		secret, _, err := newSecret()
		if err != nil {
			return nil, registrationAnswer{}, serverError("client_secret")
		}
		cl.hasSecret, cl.secretHash = true, hashOf(secret)
		never := int64(0)
		ans.ClientSecret, ans.ClientSecretExpiresAt = secret, &never
	default:
		return bad("token_endpoint_auth_method must be private_key_jwt, client_secret_basic or client_secret_post", "auth_method")
	}
	return cl, ans, nil
}

// parseClientKeys reads an inline JWK set of 1 to maxClientKeys usable
// public keys; a private key in it is refused.
func parseClientKeys(raw json.RawMessage) ([]clientKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 || len(set.Keys) > maxClientKeys {
		return nil, errors.New("devauth: jwks: 1 to 5 keys")
	}
	keys := make([]clientKey, 0, len(set.Keys))
	for _, k := range set.Keys {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(k, &members); err != nil {
			return nil, err
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := members[private]; ok {
				return nil, errors.New("devauth: jwks: private key material")
			}
		}
		ck, err := parseClientKey(k)
		if err != nil {
			return nil, err
		}
		keys = append(keys, ck)
	}
	return keys, nil
}

// registration is how cl, registered with the answer ans at now, is kept in
// the Store.
func registration(cl *client, ans registrationAnswer, now time.Time) Registration {
	r := Registration{ClientID: cl.id, JWKS: ans.JWKS, AuthMethod: ans.TokenEndpointAuthMethod,
		RedirectURIs: cl.redirectURIs, GrantTypes: ans.GrantTypes, Scope: ans.Scope, ClientName: ans.ClientName,
		IssuedAt: now, Expires: now.Add(registrationLifetime)}
	if cl.hasSecret {
		r.SecretHash = append([]byte(nil), cl.secretHash[:]...)
	}
	return r
}

// registeredClient is the client a stored registration describes.
func registeredClient(r Registration) (*client, error) {
	cl := &client{id: r.ClientID, scopes: strings.Fields(r.Scope), noClientCredentials: true,
		redirectURIs: r.RedirectURIs}
	for _, g := range r.GrantTypes {
		switch g {
		case "authorization_code":
			cl.codeGrant = true
		case "client_credentials":
			cl.noClientCredentials = false
		}
	}
	if len(r.SecretHash) > 0 {
		if len(r.SecretHash) != len(cl.secretHash) {
			return nil, errors.New("devauth: stored registration: malformed secret hash")
		}
		cl.hasSecret = true
		copy(cl.secretHash[:], r.SecretHash)
	}
	if len(r.JWKS) > 0 {
		keys, err := parseClientKeys(r.JWKS)
		if err != nil {
			return nil, fmt.Errorf("devauth: stored registration: %v", err)
		}
		cl.keys = keys
	}
	return cl, nil
}
