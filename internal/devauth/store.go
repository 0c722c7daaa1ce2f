package devauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"time"
)

// Hash is the SHA-256 of a token, code or request_uri: the store keys them
// by it and never holds the values, so that reading the store hands out no
// live credential.
type Hash = [sha256.Size]byte

// TokenKind tells access tokens from refresh tokens in a Store.
type TokenKind string

// Token kinds.
const (
	KindAccess  TokenKind = "access"
	KindRefresh TokenKind = "refresh"
)

// Grant is one stored access or refresh token: what it stands for, bound to
// its client and DPoP key (RFC 9449 §6.1: cnf.jkt).
type Grant struct {
	Hash      Hash
	Kind      TokenKind
	ClientID  string
	Subject   string // the PSU; "" for client credentials
	Scope     string // space-separated (RFC 6749 §3.3)
	ConsentID string // "" for client credentials
	JKT       string
	IssuedAt  time.Time
	Expires   time.Time
	// Family is the Hash of the authorization code the token descends
	// from, zero for client credentials: a reused code revokes its family
	// (RFC 6749 §4.1.2).
	Family Hash
}

// Code is one stored authorization code and its bindings (RFC 6749 §4.1.2,
// RFC 7636 §4.4, RFC 9449 §10).
type Code struct {
	Hash        Hash
	ClientID    string
	RedirectURI string
	Challenge   string // base64url SHA-256 of the PKCE verifier (S256)
	DPoPJKT     string // "" when the client sent no dpop_jkt
	Scope       string
	ConsentID   string
	PSU         string
	Expires     time.Time
}

// PushedRequest is one stored pushed authorization request (RFC 9126),
// under the Hash of its request_uri. Request is devauth's own encoding of
// the checked request; a store keeps it as it is.
type PushedRequest struct {
	Hash     Hash
	ClientID string
	Request  json.RawMessage
	Expires  time.Time
}

// Registration is one client registered at /oauth2/register (RFC 7591).
type Registration struct {
	ClientID string
	// SecretHash is the SHA-256 of the client secret; nil for
	// private_key_jwt clients.
	SecretHash []byte
	// JWKS is the client's public keys (RFC 7591 §2 jwks) for
	// private_key_jwt; nil for secret clients.
	JWKS         json.RawMessage
	AuthMethod   string // token_endpoint_auth_method
	RedirectURIs []string
	GrantTypes   []string
	Scope        string // space-separated
	ClientName   string
	IssuedAt     time.Time
	Expires      time.Time
}

// Errors of a Store.
var (
	// ErrNotFound: no live entry under that key (unknown, expired, used or
	// revoked).
	ErrNotFound = errors.New("devauth: not found")
	// ErrCodeReused: the authorization code was presented before; the
	// tokens issued from it are revoked, and none may be issued from it
	// any more.
	ErrCodeReused = errors.New("devauth: authorization code used twice")
	// ErrClientAtCap: the client already holds as many live entries of
	// that kind as it may; other clients are not affected.
	ErrClientAtCap = errors.New("devauth: client holds as many live entries as allowed")
	// ErrFull: the registry holds as many live registrations as it may.
	ErrFull = errors.New("devauth: registry full")
	// ErrUnavailable: the store cannot be reached now; the endpoints
	// answer 503 and the caller may try again.
	ErrUnavailable = errors.New("devauth: store unavailable")
)

// Store keeps what the sandbox authorization server must not lose on a
// restart: tokens, codes, pushed requests, registered clients and the ids
// of accepted client assertions. Lookups take the time now and never return
// an entry whose Expires is not after it, whether or not Purge removed it
// yet. Besides the errors listed, a method may return ErrUnavailable or
// another error for a failure of its own. Implementations are safe for
// concurrent use; the service's is internal/postgres's DevAuthStore, and
// NewMemoryStore's serves tests and the example.
type Store interface {
	// PutToken stores g; ErrClientAtCap when g.ClientID holds max live
	// tokens of g.Kind at now; ErrCodeReused when g.Family is a code that
	// was reused (its tokens were revoked, so none is added to them).
	PutToken(ctx context.Context, g Grant, now time.Time, max int) error
	// Token returns the live token of kind under h; ErrNotFound.
	Token(ctx context.Context, kind TokenKind, h Hash, now time.Time) (Grant, error)
	// PutCode stores c; ErrClientAtCap when c.ClientID holds max live
	// codes at now.
	PutCode(ctx context.Context, c Code, now time.Time, max int) error
	// DeleteCode deletes the code under h, if there is one.
	DeleteCode(ctx context.Context, h Hash) error
	// RedeemCode spends the live code under h and returns it: of two
	// concurrent calls exactly one succeeds. A code already spent gives
	// ErrCodeReused and revokes every token of its family; an unknown or
	// expired one ErrNotFound.
	RedeemCode(ctx context.Context, h Hash, now time.Time) (Code, error)
	// PutRequest stores r; ErrClientAtCap when r.ClientID holds max live
	// requests at now.
	PutRequest(ctx context.Context, r PushedRequest, now time.Time, max int) error
	// TakeRequest removes and returns clientID's request under h, once;
	// ErrNotFound when there is none, it expired, or it is another
	// client's (left in place, so that no one spends it for its owner).
	TakeRequest(ctx context.Context, h Hash, clientID string, now time.Time) (PushedRequest, error)
	// PutRegistration stores r; ErrFull when max live registrations exist
	// at now.
	PutRegistration(ctx context.Context, r Registration, now time.Time, max int) error
	// Registration returns the live registration of clientID; ErrNotFound.
	Registration(ctx context.Context, clientID string, now time.Time) (Registration, error)
	// SeenAssertion records key (a client assertion's client and jti) until
	// until, in one atomic step: false the first time, true while it is
	// recorded (RFC 7523 §3 (7)).
	SeenAssertion(ctx context.Context, key string, until, now time.Time) (bool, error)
	// Purge deletes at most limit expired entries of each kind and returns
	// how many it deleted in all.
	Purge(ctx context.Context, now time.Time, limit int) (int, error)
}
