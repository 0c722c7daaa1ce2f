package authstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/obpay/payments/internal/devauth"
	"github.com/obpay/payments/internal/postgres/authstore"
	"github.com/obpay/payments/internal/testdb"
)

var t0 = time.Unix(1_800_000_000, 0).UTC()

func newStore(t *testing.T) *authstore.Store {
	t.Helper()
	s, err := authstore.New(testdb.Open(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hash(s string) devauth.Hash { return sha256.Sum256([]byte(s)) }

func accessToken(name, client string, exp time.Time) devauth.Grant {
	return devauth.Grant{Hash: hash(name), Kind: devauth.KindAccess, ClientID: client, Scope: "payments",
		JKT: "jkt-" + client, IssuedAt: t0, Expires: exp}
}

func TestTokenRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	g := devauth.Grant{Hash: hash("t1"), Kind: devauth.KindRefresh, ClientID: "c1", Subject: "alice", Scope: "payments",
		ConsentID: "pay-1", JKT: "jkt-1", IssuedAt: t0, Expires: t0.Add(time.Hour), Family: hash("code-1")}
	if err := s.PutToken(ctx, g, t0, 10); err != nil {
		t.Fatal(err)
	}
	got, err := s.Token(ctx, devauth.KindRefresh, g.Hash, t0)
	if err != nil {
		t.Fatalf("Token = %v", err)
	}
	if d := cmp.Diff(g, got); d != "" {
		t.Errorf("Token (-put +got):\n%s", d)
	}
	if _, err := s.Token(ctx, devauth.KindAccess, g.Hash, t0); !errors.Is(err, devauth.ErrNotFound) {
		t.Errorf("Token of the other kind = %v, want ErrNotFound", err)
	}
	// Expired rows are never honoured, purged or not.
	if _, err := s.Token(ctx, devauth.KindRefresh, g.Hash, t0.Add(time.Hour)); !errors.Is(err, devauth.ErrNotFound) {
		t.Errorf("Token after expiry = %v, want ErrNotFound", err)
	}
}

func TestTokenCapPerClient(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i := 0; i < 3; i++ {
		if err := s.PutToken(ctx, accessToken(fmt.Sprint("a", i), "a", t0.Add(time.Minute)), t0, 3); err != nil {
			t.Fatalf("token %d = %v", i, err)
		}
	}
	if err := s.PutToken(ctx, accessToken("a3", "a", t0.Add(time.Minute)), t0, 3); !errors.Is(err, devauth.ErrClientAtCap) {
		t.Fatalf("token past the cap = %v, want ErrClientAtCap", err)
	}
	// Another client is not affected, nor the same client's refresh tokens.
	if err := s.PutToken(ctx, accessToken("b0", "b", t0.Add(time.Minute)), t0, 3); err != nil {
		t.Errorf("other client's token = %v", err)
	}
	rt := accessToken("a-refresh", "a", t0.Add(time.Hour))
	rt.Kind = devauth.KindRefresh
	if err := s.PutToken(ctx, rt, t0, 3); err != nil {
		t.Errorf("refresh token = %v", err)
	}
	// Expired tokens do not count, purged or not.
	if err := s.PutToken(ctx, accessToken("a4", "a", t0.Add(2*time.Minute)), t0.Add(time.Minute), 3); err != nil {
		t.Errorf("token once the others expired = %v", err)
	}
}

func TestCodeCapPerClient(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	code := func(name, client string) devauth.Code {
		return devauth.Code{Hash: hash(name), ClientID: client, Expires: t0.Add(time.Minute)}
	}
	if err := s.PutCode(ctx, code("c0", "a"), t0, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCode(ctx, code("c1", "a"), t0, 1); !errors.Is(err, devauth.ErrClientAtCap) {
		t.Errorf("code past the cap = %v, want ErrClientAtCap", err)
	}
	if err := s.PutCode(ctx, code("c2", "b"), t0, 1); err != nil {
		t.Errorf("other client's code = %v", err)
	}
}

func TestRedeemCode(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := devauth.Code{Hash: hash("code"), ClientID: "a", RedirectURI: "http://127.0.0.1/cb", Challenge: "ch",
		DPoPJKT: "jkt", Scope: "payments", ConsentID: "pay-1", PSU: "alice", Expires: t0.Add(time.Minute)}
	if err := s.PutCode(ctx, c, t0, 10); err != nil {
		t.Fatal(err)
	}
	got, err := s.RedeemCode(ctx, c.Hash, t0)
	if err != nil {
		t.Fatalf("RedeemCode = %v", err)
	}
	if d := cmp.Diff(c, got); d != "" {
		t.Errorf("RedeemCode (-put +got):\n%s", d)
	}
	g := accessToken("from-code", "a", t0.Add(time.Minute))
	g.Family = c.Hash
	if err := s.PutToken(ctx, g, t0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemCode(ctx, c.Hash, t0); !errors.Is(err, devauth.ErrCodeReused) {
		t.Fatalf("second RedeemCode = %v, want ErrCodeReused", err)
	}
	if _, err := s.Token(ctx, devauth.KindAccess, g.Hash, t0); !errors.Is(err, devauth.ErrNotFound) {
		t.Errorf("token of a reused code = %v, want ErrNotFound (revoked)", err)
	}
	late := accessToken("late", "a", t0.Add(time.Minute))
	late.Family = c.Hash
	if err := s.PutToken(ctx, late, t0, 10); !errors.Is(err, devauth.ErrCodeReused) {
		t.Errorf("token issued from a reused code = %v, want ErrCodeReused", err)
	}
	if _, err := s.RedeemCode(ctx, hash("unknown"), t0); !errors.Is(err, devauth.ErrNotFound) {
		t.Errorf("unknown code = %v, want ErrNotFound", err)
	}
	dropped := devauth.Code{Hash: hash("dropped"), ClientID: "a", Expires: t0.Add(time.Minute)}
	if err := s.PutCode(ctx, dropped, t0, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCode(ctx, dropped.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemCode(ctx, dropped.Hash, t0); !errors.Is(err, devauth.ErrNotFound) {
		t.Errorf("deleted code = %v, want ErrNotFound", err)
	}
}

// TestRedeemCodeConcurrently: of concurrent exchanges of one code, exactly
// one gets it.
func TestRedeemCodeConcurrently(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for round := 0; round < 5; round++ {
		h := hash(fmt.Sprint("code-", round))
		if err := s.PutCode(ctx, devauth.Code{Hash: h, ClientID: "a", Expires: t0.Add(time.Minute)}, t0, 100); err != nil {
			t.Fatal(err)
		}
		const n = 4
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			won     int
			reused  int
			unknown []error
		)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.RedeemCode(ctx, h, t0)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, devauth.ErrCodeReused):
					reused++
				default:
					unknown = append(unknown, err)
				}
			}()
		}
		wg.Wait()
		if won != 1 || reused != n-1 || len(unknown) > 0 {
			t.Fatalf("round %d: %d won, %d refused as reused, other errors %v; want 1 and %d", round, won, reused, unknown, n-1)
		}
	}
}

func TestPushedRequests(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	r := devauth.PushedRequest{Hash: hash("uri"), ClientID: "a", Request: json.RawMessage(`{"consent_id": "pay-1"}`),
		Expires: t0.Add(time.Minute)}
	if err := s.PutRequest(ctx, r, t0, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRequest(ctx, devauth.PushedRequest{Hash: hash("uri-2"), ClientID: "a", Request: json.RawMessage(`{}`),
		Expires: t0.Add(time.Minute)}, t0, 1); !errors.Is(err, devauth.ErrClientAtCap) {
		t.Errorf("request past the cap = %v, want ErrClientAtCap", err)
	}
	if _, err := s.TakeRequest(ctx, r.Hash, "b", t0); !errors.Is(err, devauth.ErrNotFound) {
		t.Errorf("another client's TakeRequest = %v, want ErrNotFound", err)
	}
	got, err := s.TakeRequest(ctx, r.Hash, "a", t0)
	if err != nil {
		t.Fatalf("TakeRequest = %v", err)
	}
	var v map[string]string
	if err := json.Unmarshal(got.Request, &v); err != nil || v["consent_id"] != "pay-1" {
		t.Errorf("request = %s, %v", got.Request, err)
	}
	if _, err := s.TakeRequest(ctx, r.Hash, "a", t0); !errors.Is(err, devauth.ErrNotFound) {
		t.Errorf("second TakeRequest = %v, want ErrNotFound", err)
	}
}

func TestRegistrations(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	secret := hash("secret")
	r := devauth.Registration{ClientID: "dyn-1", SecretHash: secret[:], AuthMethod: "client_secret_basic",
		RedirectURIs: []string{"http://127.0.0.1/cb", "http://localhost/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		Scope: "accounts payments", ClientName: "app", IssuedAt: t0, Expires: t0.Add(time.Hour)}
	k := devauth.Registration{ClientID: "dyn-2", JWKS: json.RawMessage(`{"keys": [{"kty": "OKP"}]}`),
		AuthMethod: "private_key_jwt", GrantTypes: []string{"client_credentials"}, Scope: "accounts",
		IssuedAt: t0, Expires: t0.Add(time.Hour)}
	for _, reg := range []devauth.Registration{r, k} {
		if err := s.PutRegistration(ctx, reg, t0, 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutRegistration(ctx, devauth.Registration{ClientID: "dyn-3", SecretHash: secret[:], IssuedAt: t0,
		Expires: t0.Add(time.Hour)}, t0, 2); !errors.Is(err, devauth.ErrFull) {
		t.Errorf("registration past the cap = %v, want ErrFull", err)
	}
	got, err := s.Registration(ctx, "dyn-1", t0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, got); d != "" {
		t.Errorf("Registration (-put +got):\n%s", d)
	}
	got, err = s.Registration(ctx, "dyn-2", t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.SecretHash != nil || got.AuthMethod != "private_key_jwt" || len(got.RedirectURIs) != 0 {
		t.Errorf("key client's registration = %+v", got)
	}
	var keys map[string]any
	if err := json.Unmarshal(got.JWKS, &keys); err != nil || keys["keys"] == nil {
		t.Errorf("jwks = %s, %v", got.JWKS, err)
	}
	if _, err := s.Registration(ctx, "dyn-1", t0.Add(time.Hour)); !errors.Is(err, devauth.ErrNotFound) {
		t.Errorf("expired registration = %v, want ErrNotFound", err)
	}
}

func TestSeenAssertion(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, tc := range []struct {
		name string
		now  time.Time
		want bool
	}{
		{"first use", t0, false},
		{"replay", t0.Add(30 * time.Second), true},
		{"after its exp", t0.Add(time.Minute), false},
		{"replay of the new one", t0.Add(time.Minute), true},
	} {
		seen, err := s.SeenAssertion(ctx, "k", tc.now.Add(time.Minute), tc.now)
		if err != nil || seen != tc.want {
			t.Errorf("%s: SeenAssertion = %v, %v; want %v", tc.name, seen, err, tc.want)
		}
	}
}

// TestPurge: expired rows go, in batches of the limit; live ones stay.
func TestPurge(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i := 0; i < 3; i++ {
		if err := s.PutToken(ctx, accessToken(fmt.Sprint("old", i), "a", t0.Add(time.Minute)), t0, 100); err != nil {
			t.Fatal(err)
		}
	}
	live := accessToken("live", "a", t0.Add(time.Hour))
	if err := s.PutToken(ctx, live, t0, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCode(ctx, devauth.Code{Hash: hash("code"), ClientID: "a", Expires: t0.Add(time.Minute)}, t0, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRequest(ctx, devauth.PushedRequest{Hash: hash("uri"), ClientID: "a", Request: json.RawMessage(`{}`),
		Expires: t0.Add(time.Minute)}, t0, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRegistration(ctx, devauth.Registration{ClientID: "dyn-1", SecretHash: live.Hash[:], IssuedAt: t0,
		Expires: t0.Add(time.Minute)}, t0, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeenAssertion(ctx, "k", t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx, t0, 100); err != nil || n != 0 {
		t.Fatalf("Purge before expiry = %d, %v; want 0", n, err)
	}
	later := t0.Add(time.Minute)
	// A batch of 2 takes 2 tokens and the one row of each other table.
	if n, err := s.Purge(ctx, later, 2); err != nil || n != 6 {
		t.Fatalf("first Purge = %d, %v; want 6", n, err)
	}
	if n, err := s.Purge(ctx, later, 2); err != nil || n != 1 {
		t.Fatalf("second Purge = %d, %v; want 1", n, err)
	}
	if n, err := s.Purge(ctx, later, 2); err != nil || n != 0 {
		t.Fatalf("third Purge = %d, %v; want 0", n, err)
	}
	if _, err := s.Token(ctx, devauth.KindAccess, live.Hash, later); err != nil {
		t.Errorf("live token after the purge = %v", err)
	}
}

// BenchmarkIntrospect measures the in-process introspection of a live
// token: one indexed lookup by hash on PostgreSQL, against the memory store.
func BenchmarkIntrospect(b *testing.B) {
	ctx := context.Background()
	db := testdb.Open(b)
	pg, err := authstore.New(db)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		store devauth.Store
	}{{"postgres", pg}, {"memory", devauth.NewMemoryStore()}} {
		tokens, err := devauth.NewStoredTokens(devauth.TokensConfig{Store: bc.store})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		g := devauth.Grant{Hash: hash("bench-token"), Kind: devauth.KindAccess, ClientID: "c", Scope: "payments",
			JKT: "jkt", IssuedAt: now, Expires: now.Add(time.Hour)}
		if err := bc.store.PutToken(ctx, g, now, 10); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if info, err := tokens.Introspect(ctx, "bench-token"); err != nil || !info.Active {
					b.Fatalf("Introspect = %+v, %v", info, err)
				}
			}
		})
	}
}

// BenchmarkPutToken measures an issuance, whose statement counts the
// client's live tokens, for a client that holds none and one that holds
// 9,999 (the default cap's worth).
func BenchmarkPutToken(b *testing.B) {
	ctx := context.Background()
	s, err := authstore.New(testdb.Open(b))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < 9_999; i++ {
		g := devauth.Grant{Hash: hash(fmt.Sprint("busy-", i)), Kind: devauth.KindAccess, ClientID: "busy",
			IssuedAt: now, Expires: now.Add(time.Hour)}
		if err := s.PutToken(ctx, g, now, devauth.DefaultMaxPerClient); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	for _, client := range []string{"idle", "busy"} {
		b.Run(client, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				n++
				g := devauth.Grant{Hash: hash(fmt.Sprint("bench-", n)), Kind: devauth.KindAccess, ClientID: client,
					IssuedAt: now, Expires: now.Add(time.Hour)}
				// No cap in the way: each insert of the busy client
				// counts its 9,999 (and more) live tokens.
				if err := s.PutToken(ctx, g, now, 1<<30); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
