// Package authstore is devauth.Store on PostgreSQL: the sandbox
// authorization server's clients, codes, pushed requests, tokens and client
// assertion ids, in the devauth_* tables of
// internal/postgres/migrations/00007_devauth.sql. It is a package of its own,
// beside internal/postgres, because devauth's tests use internal/postgres and
// a store importing devauth there would make an import cycle.
//
// Each method is one statement (RedeemCode's refusal of a reused code is
// three), so a lookup is one round trip. Tokens, codes and request_uris are
// keyed by their SHA-256; expired rows are never returned and Purge deletes
// them in bounded batches. A per-client cap is counted in the statement that
// inserts, without a lock: concurrent issuances of one client may each see
// room, so a client can exceed its cap by the requests it has in flight, and
// never by more.
package authstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/obpay/payments/internal/devauth"
	"github.com/obpay/payments/internal/postgres"
)

// Store is devauth.Store on a migrated database. It is safe for concurrent
// use.
type Store struct {
	db *gorm.DB
}

var _ devauth.Store = (*Store)(nil)

// New returns the store on db, whose schema must be migrated
// (postgres.Migrate).
func New(db *gorm.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("authstore: New(nil database)")
	}
	return &Store{db: db}, nil
}

// storeError translates a database error: the context's error when ctx is
// done, devauth.ErrUnavailable when the database cannot be reached, and an
// opaque error otherwise. No gorm or pgx error escapes.
func storeError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("authstore: %w", ctxErr)
	}
	if postgres.IsUnavailable(ctx, err) {
		return fmt.Errorf("%w: %v", devauth.ErrUnavailable, err)
	}
	return fmt.Errorf("authstore: %v", err)
}

// family is the family column's value: NULL for client credentials.
func family(h devauth.Hash) any {
	if h == (devauth.Hash{}) {
		return nil
	}
	return h[:]
}

// PutToken implements devauth.Store: the count of the client's live tokens,
// the check of the code the token descends from (locked FOR SHARE, so that a
// concurrent reuse of the code waits for this insert and then deletes it)
// and the insert are one statement.
func (s *Store) PutToken(ctx context.Context, g devauth.Grant, now time.Time, max int) error {
	var out struct {
		Live     int
		Revoked  bool
		Inserted int
	}
	err := s.db.WithContext(ctx).Raw(`WITH live AS (
			SELECT count(*) AS n FROM devauth_tokens
			 WHERE client_id = @client AND kind = @kind AND expires_at > @now),
		code AS (SELECT revoked FROM devauth_codes WHERE hash = @family FOR SHARE),
		ins AS (
			INSERT INTO devauth_tokens (hash, kind, client_id, subject, scope, consent_id, jkt, issued_at, expires_at, family)
			SELECT @hash, @kind, @client, @subject, @scope, @consent, @jkt, @iat, @exp, @family
			  FROM live WHERE live.n < @max AND NOT coalesce((SELECT revoked FROM code), false)
			RETURNING 1)
		SELECT (SELECT n FROM live) AS live, coalesce((SELECT revoked FROM code), false) AS revoked,
		       (SELECT count(*) FROM ins) AS inserted`,
		map[string]any{
			"hash": g.Hash[:], "kind": string(g.Kind), "client": g.ClientID, "subject": g.Subject, "scope": g.Scope,
			"consent": g.ConsentID, "jkt": g.JKT, "iat": g.IssuedAt, "exp": g.Expires, "family": family(g.Family),
			"now": now, "max": max,
		}).Scan(&out).Error
	switch {
	case err != nil:
		return storeError(ctx, err)
	case out.Inserted == 1:
		return nil
	case out.Revoked:
		return devauth.ErrCodeReused
	}
	return devauth.ErrClientAtCap
}

type tokenRow struct {
	Kind      string
	ClientID  string
	Subject   string
	Scope     string
	ConsentID string
	JKT       string `gorm:"column:jkt"`
	IssuedAt  time.Time
	ExpiresAt time.Time
	Family    []byte
}

// Token implements devauth.Store: one indexed lookup by hash.
func (s *Store) Token(ctx context.Context, kind devauth.TokenKind, h devauth.Hash, now time.Time) (devauth.Grant, error) {
	var rows []tokenRow
	err := s.db.WithContext(ctx).Raw(`SELECT kind, client_id, subject, scope, consent_id, jkt, issued_at, expires_at, family
		FROM devauth_tokens WHERE hash = ? AND kind = ? AND expires_at > ?`, h[:], string(kind), now).Scan(&rows).Error
	if err != nil {
		return devauth.Grant{}, storeError(ctx, err)
	}
	if len(rows) != 1 {
		return devauth.Grant{}, devauth.ErrNotFound
	}
	r := rows[0]
	g := devauth.Grant{Hash: h, Kind: devauth.TokenKind(r.Kind), ClientID: r.ClientID, Subject: r.Subject, Scope: r.Scope,
		ConsentID: r.ConsentID, JKT: r.JKT, IssuedAt: r.IssuedAt, Expires: r.ExpiresAt}
	if len(r.Family) == len(g.Family) {
		copy(g.Family[:], r.Family)
	}
	return g, nil
}

// PutCode implements devauth.Store.
func (s *Store) PutCode(ctx context.Context, c devauth.Code, now time.Time, max int) error {
	res := s.db.WithContext(ctx).Exec(`INSERT INTO devauth_codes
			(hash, client_id, redirect_uri, challenge, dpop_jkt, scope, consent_id, psu, expires_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
		 WHERE (SELECT count(*) FROM devauth_codes WHERE client_id = ? AND expires_at > ?) < ?`,
		c.Hash[:], c.ClientID, c.RedirectURI, c.Challenge, c.DPoPJKT, c.Scope, c.ConsentID, c.PSU, c.Expires,
		c.ClientID, now, max)
	return guarded(ctx, res, devauth.ErrClientAtCap)
}

// DeleteCode implements devauth.Store.
func (s *Store) DeleteCode(ctx context.Context, h devauth.Hash) error {
	if err := s.db.WithContext(ctx).Exec(`DELETE FROM devauth_codes WHERE hash = ?`, h[:]).Error; err != nil {
		return storeError(ctx, err)
	}
	return nil
}

type codeRow struct {
	ClientID    string
	RedirectURI string
	Challenge   string
	DPoPJKT     string `gorm:"column:dpop_jkt"`
	Scope       string
	ConsentID   string
	PSU         string `gorm:"column:psu"`
	ExpiresAt   time.Time
}

// RedeemCode implements devauth.Store. The UPDATE that spends the code
// locks its row: a concurrent second exchange waits, then finds it used.
// The refusal of a used code marks it revoked (which waits for a token
// insert holding the code FOR SHARE) and then deletes its family, in a
// second statement that sees that insert.
func (s *Store) RedeemCode(ctx context.Context, h devauth.Hash, now time.Time) (devauth.Code, error) {
	db := s.db.WithContext(ctx)
	var rows []codeRow
	err := db.Raw(`UPDATE devauth_codes SET used_at = ?
		 WHERE hash = ? AND expires_at > ? AND used_at IS NULL
		RETURNING client_id, redirect_uri, challenge, dpop_jkt, scope, consent_id, psu, expires_at`,
		now, h[:], now).Scan(&rows).Error
	if err != nil {
		return devauth.Code{}, storeError(ctx, err)
	}
	if len(rows) == 1 {
		r := rows[0]
		return devauth.Code{Hash: h, ClientID: r.ClientID, RedirectURI: r.RedirectURI, Challenge: r.Challenge,
			DPoPJKT: r.DPoPJKT, Scope: r.Scope, ConsentID: r.ConsentID, PSU: r.PSU, Expires: r.ExpiresAt}, nil
	}
	// RFC 6749 §4.1.2: a second presentation revokes what the first got.
	res := db.Exec(`UPDATE devauth_codes SET revoked = true
		WHERE hash = ? AND expires_at > ? AND used_at IS NOT NULL`, h[:], now)
	if res.Error != nil {
		return devauth.Code{}, storeError(ctx, res.Error)
	}
	if res.RowsAffected == 0 {
		return devauth.Code{}, devauth.ErrNotFound
	}
	if err := db.Exec(`DELETE FROM devauth_tokens WHERE family = ?`, h[:]).Error; err != nil {
		return devauth.Code{}, storeError(ctx, err)
	}
	return devauth.Code{}, devauth.ErrCodeReused
}

// PutRequest implements devauth.Store.
func (s *Store) PutRequest(ctx context.Context, r devauth.PushedRequest, now time.Time, max int) error {
	res := s.db.WithContext(ctx).Exec(`INSERT INTO devauth_requests (hash, client_id, request, expires_at)
		SELECT ?, ?, ?::jsonb, ?
		 WHERE (SELECT count(*) FROM devauth_requests WHERE client_id = ? AND expires_at > ?) < ?`,
		r.Hash[:], r.ClientID, string(r.Request), r.Expires, r.ClientID, now, max)
	return guarded(ctx, res, devauth.ErrClientAtCap)
}

// TakeRequest implements devauth.Store: the DELETE that returns the row
// spends it, so two concurrent uses get it once.
func (s *Store) TakeRequest(ctx context.Context, h devauth.Hash, clientID string, now time.Time) (devauth.PushedRequest, error) {
	var rows []struct {
		Request   string
		ExpiresAt time.Time
	}
	err := s.db.WithContext(ctx).Raw(`DELETE FROM devauth_requests WHERE hash = ? AND client_id = ?
		RETURNING request::text AS request, expires_at`, h[:], clientID).Scan(&rows).Error
	if err != nil {
		return devauth.PushedRequest{}, storeError(ctx, err)
	}
	if len(rows) != 1 || !now.Before(rows[0].ExpiresAt) {
		return devauth.PushedRequest{}, devauth.ErrNotFound
	}
	return devauth.PushedRequest{Hash: h, ClientID: clientID, Request: json.RawMessage(rows[0].Request),
		Expires: rows[0].ExpiresAt}, nil
}

// PutRegistration implements devauth.Store.
func (s *Store) PutRegistration(ctx context.Context, r devauth.Registration, now time.Time, max int) error {
	redirects, err := json.Marshal(nonNil(r.RedirectURIs))
	if err != nil {
		return err
	}
	grants, err := json.Marshal(nonNil(r.GrantTypes))
	if err != nil {
		return err
	}
	var jwks any
	if len(r.JWKS) > 0 {
		jwks = string(r.JWKS)
	}
	var secret any
	if len(r.SecretHash) > 0 {
		secret = r.SecretHash
	}
	res := s.db.WithContext(ctx).Exec(`INSERT INTO devauth_clients (client_id, secret_hash, jwks, auth_method,
			redirect_uris, grant_types, scope, client_name, issued_at, expires_at)
		SELECT ?, ?, ?::jsonb, ?,
		       ARRAY(SELECT jsonb_array_elements_text(?::jsonb)), ARRAY(SELECT jsonb_array_elements_text(?::jsonb)),
		       ?, ?, ?, ?
		 WHERE (SELECT count(*) FROM devauth_clients WHERE expires_at > ?) < ?`,
		r.ClientID, secret, jwks, r.AuthMethod, string(redirects), string(grants), r.Scope, r.ClientName,
		r.IssuedAt, r.Expires, now, max)
	return guarded(ctx, res, devauth.ErrFull)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Registration implements devauth.Store.
func (s *Store) Registration(ctx context.Context, clientID string, now time.Time) (devauth.Registration, error) {
	var rows []struct {
		SecretHash   []byte
		JWKS         *string `gorm:"column:jwks"`
		AuthMethod   string
		RedirectURIs string `gorm:"column:redirect_uris"`
		GrantTypes   string
		Scope        string
		ClientName   string
		IssuedAt     time.Time
		ExpiresAt    time.Time
	}
	err := s.db.WithContext(ctx).Raw(`SELECT secret_hash, jwks::text AS jwks, auth_method,
			to_jsonb(redirect_uris)::text AS redirect_uris, to_jsonb(grant_types)::text AS grant_types,
			scope, client_name, issued_at, expires_at
		FROM devauth_clients WHERE client_id = ? AND expires_at > ?`, clientID, now).Scan(&rows).Error
	if err != nil {
		return devauth.Registration{}, storeError(ctx, err)
	}
	if len(rows) != 1 {
		return devauth.Registration{}, devauth.ErrNotFound
	}
	row := rows[0]
	r := devauth.Registration{ClientID: clientID, SecretHash: row.SecretHash, AuthMethod: row.AuthMethod,
		Scope: row.Scope, ClientName: row.ClientName, IssuedAt: row.IssuedAt, Expires: row.ExpiresAt}
	if row.JWKS != nil {
		r.JWKS = json.RawMessage(*row.JWKS)
	}
	if err := json.Unmarshal([]byte(row.RedirectURIs), &r.RedirectURIs); err != nil {
		return devauth.Registration{}, fmt.Errorf("authstore: redirect_uris: %v", err)
	}
	if err := json.Unmarshal([]byte(row.GrantTypes), &r.GrantTypes); err != nil {
		return devauth.Registration{}, fmt.Errorf("authstore: grant_types: %v", err)
	}
	return r, nil
}

// SeenAssertion implements devauth.Store: one INSERT that also takes over
// an expired row of the same key; it inserts (or takes over) only the first
// time.
func (s *Store) SeenAssertion(ctx context.Context, key string, until, now time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`INSERT INTO devauth_assertions (key, expires_at) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at
		 WHERE devauth_assertions.expires_at <= ?`, key, until, now)
	if res.Error != nil {
		return false, storeError(ctx, res.Error)
	}
	return res.RowsAffected == 0, nil
}

// purgeTables are the tables Purge empties of expired rows. A used code
// stays until it expires, to recognise its reuse.
var purgeTables = []string{"devauth_tokens", "devauth_codes", "devauth_requests", "devauth_clients", "devauth_assertions"}

// Purge implements devauth.Store: one bounded DELETE per table, skipping
// rows another transaction holds.
func (s *Store) Purge(ctx context.Context, now time.Time, limit int) (int, error) {
	total := 0
	for _, t := range purgeTables {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM `+t+` WHERE ctid = ANY(ARRAY(
				SELECT ctid FROM `+t+` WHERE expires_at <= ? LIMIT ? FOR UPDATE SKIP LOCKED))
			AND expires_at <= ?`, now, limit, now)
		if res.Error != nil {
			return total, storeError(ctx, res.Error)
		}
		total += int(res.RowsAffected)
	}
	return total, nil
}

// guarded reads the result of an INSERT ... SELECT ... WHERE guard: the
// store's error, or refused when the guard (a cap) kept the row out.
func guarded(ctx context.Context, res *gorm.DB, refused error) error {
	switch {
	case res.Error != nil:
		return storeError(ctx, res.Error)
	case res.RowsAffected == 0:
		return refused
	}
	return nil
}
