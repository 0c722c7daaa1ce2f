package devauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obpay/payments/internal/security"
)

// countingStore counts the token lookups that reach the store.
type countingStore struct {
	*MemoryStore
	lookups atomic.Int64
}

func (c *countingStore) Token(ctx context.Context, kind TokenKind, h Hash, now time.Time) (Grant, error) {
	c.lookups.Add(1)
	return c.MemoryStore.Token(ctx, kind, h, now)
}

func TestIntrospectionCache(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	store := &countingStore{MemoryStore: NewMemoryStore()}
	ts, err := NewStoredTokens(TokensConfig{Store: store, Now: func() time.Time { return now }, CacheTTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	active := func(token string) bool {
		t.Helper()
		info, err := ts.Introspect(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		return info.Active
	}
	code, err := ts.putCode(ctx, authCode{clientID: "c", expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	_, family, err := ts.redeemCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	long, err := ts.issueAccess(ctx, grant{clientID: "c", jkt: "k", issuedAt: now, expires: now.Add(5 * time.Minute), family: family})
	if err != nil {
		t.Fatal(err)
	}
	short, err := ts.issueAccess(ctx, grant{clientID: "c", jkt: "k", issuedAt: now, expires: now.Add(10 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}

	// Issued here, so cached from the start: its first use costs no lookup.
	first, second := active(long), active(long)
	if !first || !second || store.lookups.Load() != 0 {
		t.Fatalf("two introspections of a token issued here within CacheTTL: %d store lookups, want 0", store.lookups.Load())
	}
	// Another node (another Tokens on the same store) asks the store once.
	other, err := NewStoredTokens(TokensConfig{Store: store, Now: func() time.Time { return now }, CacheTTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if info, err := other.Introspect(ctx, long); err != nil || !info.Active {
			t.Fatalf("other node: %+v, %v, want active", info, err)
		}
	}
	if store.lookups.Load() != 1 {
		t.Fatalf("two introspections on another node: %d store lookups, want 1", store.lookups.Load())
	}
	// Never past exp.
	if !active(short) {
		t.Fatal("short token inactive before its exp")
	}
	now = now.Add(10 * time.Second)
	if active(short) {
		t.Error("short token active past its exp")
	}
	lookups := store.lookups.Load()
	now = now.Add(20 * time.Second)
	if !active(long) || store.lookups.Load() != lookups+1 {
		t.Errorf("introspection at CacheTTL: %d store lookups, want %d", store.lookups.Load(), lookups+1)
	}
	// A reused code revokes its tokens, in this process at once.
	if !active(long) {
		t.Fatal("long token inactive")
	}
	if _, _, err := ts.redeemCode(ctx, code); !errors.Is(err, ErrCodeReused) {
		t.Fatalf("second redeemCode = %v, want ErrCodeReused", err)
	}
	if active(long) {
		t.Error("token of a reused code still active from the cache")
	}
}

// unreachableStore is a store that cannot be reached.
type unreachableStore struct{ *MemoryStore }

func (unreachableStore) PutToken(context.Context, Grant, time.Time, int) error { return ErrUnavailable }

func (unreachableStore) Token(context.Context, TokenKind, Hash, time.Time) (Grant, error) {
	return Grant{}, ErrUnavailable
}

// TestStoreUnavailable: a store that cannot be reached gives 503 with
// Retry-After at the token endpoint, and an introspection error (never an
// inactive answer, which would read as a bad token).
func TestStoreUnavailable(t *testing.T) {
	f := newFixture(t, func(_ *security.Config, c *Config) {
		tokens, err := NewStoredTokens(TokensConfig{Store: unreachableStore{NewMemoryStore()}, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		c.Tokens = tokens
	})
	w := f.tokenRequest(url.Values{"grant_type": {"client_credentials"}})
	b := decode(t, w)
	if w.Code != http.StatusServiceUnavailable || b.Error != "temporarily_unavailable" || w.Header().Get("Retry-After") == "" {
		t.Errorf("token with the store down = %d %s, Retry-After %q; want 503 temporarily_unavailable with Retry-After",
			w.Code, b.Error, w.Header().Get("Retry-After"))
	}
	if _, err := f.srv.Introspect(context.Background(), "some-token"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Introspect with the store down = %v, want ErrUnavailable", err)
	}
}

// TestCodeCapPerClient: a client holding as many live codes as it may is
// refused before its consent is authorised; another client is not.
func TestCodeCapPerClient(t *testing.T) {
	f := newFixture(t)
	f.tokens.maxPerClient = 1
	f.code(authorizeQuery())
	q := authorizeQuery()
	q.Set("consent_id", "acc-1")
	q.Set("scope", "accounts")
	q.Del("debtor_account")
	w := f.authorize(q, true)
	if b := decode(t, w); w.Code != http.StatusTooManyRequests || b.Error != "temporarily_unavailable" {
		t.Fatalf("authorize past the code cap = %d %s, want 429 temporarily_unavailable", w.Code, b.Error)
	}
	if n := f.consents.callCount(); n != 1 {
		t.Errorf("%d consents authorised, want 1: the refused one must stay awaiting", n)
	}
	q = authorizeQuery()
	q.Set("client_id", "sandbox-tpp-2")
	q.Set("consent_id", "pay-2")
	f.code(q)
}
