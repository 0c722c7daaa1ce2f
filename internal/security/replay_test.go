package security

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/obpay/payments/internal/testdb"
)

func redisStore(t *testing.T, now func() time.Time) *RedisReplayStore {
	t.Helper()
	opt, err := redis.ParseURL(testdb.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	prefix := make([]byte, 8)
	_, _ = rand.Read(prefix)
	return NewRedisReplayStoreClient(c, WithKeyPrefix("test:"+hex.EncodeToString(prefix)+":"), WithReplayClock(now))
}

func TestReplayStores(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	mem, err := NewMemoryReplayStore(WithReplayClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]ReplayStore{"memory": mem, "redis": redisStore(t, clock)}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			until := now.Add(70 * time.Second)
			if seen, err := s.Seen(ctx, "k1", until); err != nil || seen {
				t.Fatalf("first Seen = %v, %v; want false, nil", seen, err)
			}
			if seen, err := s.Seen(ctx, "k1", until); err != nil || !seen {
				t.Fatalf("second Seen = %v, %v; want true, nil", seen, err)
			}
			if seen, err := s.Seen(ctx, "k2", until); err != nil || seen {
				t.Fatalf("other key Seen = %v, %v; want false, nil", seen, err)
			}
		})
		t.Run(name+"/100 goroutines, one winner", func(t *testing.T) {
			var wins atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					seen, err := s.Seen(context.Background(), "race", now.Add(time.Minute))
					if err != nil {
						t.Error(err)
					}
					if !seen {
						wins.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if wins.Load() != 1 {
				t.Errorf("%d goroutines recorded the key first, want 1", wins.Load())
			}
		})
	}
}

func TestMemoryReplayStoreExpiresAndFailsClosed(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := NewMemoryReplayStore(WithMaxEntries(replayShards), WithReplayClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// One entry per shard: fill until some shard refuses.
	var full bool
	var recorded []string
	for i := 0; i < 10*replayShards && !full; i++ {
		k := "key-" + time.Duration(i).String()
		_, err := s.Seen(ctx, k, now.Add(time.Minute))
		switch {
		case errors.Is(err, ErrReplayStoreFull):
			full = true
		case err != nil:
			t.Fatal(err)
		default:
			recorded = append(recorded, k)
		}
	}
	if !full {
		t.Fatal("store never reported full")
	}
	// Live entries are never evicted to make room.
	for _, k := range recorded {
		if seen, err := s.Seen(ctx, k, now.Add(time.Minute)); err != nil || !seen {
			t.Fatalf("recorded key %s: Seen = %v, %v; want true", k, seen, err)
		}
	}
	// Once the window has passed, the sweep frees room and old keys are new.
	now = now.Add(2 * time.Minute)
	if seen, err := s.Seen(ctx, recorded[0], now.Add(time.Minute)); err != nil || seen {
		t.Errorf("expired key: Seen = %v, %v; want false, nil", seen, err)
	}
	if _, err := NewMemoryReplayStore(WithMaxEntries(1)); err == nil {
		t.Error("store with 1 entry accepted")
	}
}

func TestRedisReplayStoreFailsClosed(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	s := NewRedisReplayStoreClient(c)
	if _, err := s.Seen(context.Background(), "k", time.Now().Add(time.Minute)); err == nil {
		t.Error("Seen against a dead Redis succeeded")
	}
}

func TestOpenReplayStore(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr bool
	}{
		{"memory", false},
		{"", false},
		{testdb.RedisURL(t), false},
		{"postgres://x", true},
		{"redis://[::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s, closeFn, err := OpenReplayStore(tt.spec)
			if (err != nil) != tt.wantErr {
				t.Fatalf("OpenReplayStore(%q) error = %v, want error %v", tt.spec, err, tt.wantErr)
			}
			if err == nil {
				if s == nil {
					t.Fatal("nil store")
				}
				if err := closeFn(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestConcurrentSameProof sends one valid proof from 100 goroutines: exactly
// one request is accepted, with the memory store and with Redis.
func TestConcurrentSameProof(t *testing.T) {
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, "ES256", func(c *Config) {
				if name == "redis" {
					c.ReplayStore = redisStore(t, func() time.Time { return testNow })
				}
			})
			req := f.request(f.proof())
			var ok, replays atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, _, err := f.v.Verify(context.Background(), req)
					if err == nil {
						ok.Add(1)
						return
					}
					if e := errorOf(t, err); e.Reason == "replay" {
						replays.Add(1)
					} else {
						t.Errorf("Verify = %v, want success or replay", e)
					}
				}()
			}
			close(start)
			wg.Wait()
			if ok.Load() != 1 || replays.Load() != 99 {
				t.Errorf("accepted %d, replays %d; want 1 and 99", ok.Load(), replays.Load())
			}
		})
	}
}

// TestTwoNodes runs two verifiers with the same nonce secret and one Redis:
// each accepts the other's nonces, and a proof used on one is a replay on
// the other.
func TestTwoNodes(t *testing.T) {
	shared := redisStore(t, func() time.Time { return testNow })
	a := newFixture(t, "ES256", func(c *Config) { c.ReplayStore = shared })
	b := newFixture(t, "ES256", func(c *Config) { c.ReplayStore = shared })
	b.intro.res = a.intro.res

	// A nonce issued by node a, carried in a proof sent to node b.
	claims := a.claims(http.MethodPost, testURL)
	claims["nonce"] = a.v.nonces.issue(testNow)
	proof := a.key.sign(t, a.key.header(), claims)
	if _, _, err := b.v.Verify(context.Background(), b.request(proof)); err != nil {
		t.Fatalf("node b rejected node a's nonce: %v", err)
	}
	_, _, err := a.v.Verify(context.Background(), a.request(proof))
	if e := errorOf(t, err); e.Reason != "replay" {
		t.Errorf("node a on a proof used at node b = %v, want replay", e)
	}

	// And the other way round: a nonce issued by node b, sent to node a.
	claims = b.claims(http.MethodPost, testURL)
	claims["nonce"] = b.v.nonces.issue(testNow)
	if _, _, err := a.v.Verify(context.Background(), a.request(a.key.sign(t, a.key.header(), claims))); err != nil {
		t.Fatalf("node a rejected node b's nonce: %v", err)
	}

	// A third node with another secret refuses the nonce.
	c := newFixture(t, "ES256", func(c *Config) {
		c.ReplayStore = shared
		c.NonceSecret = []byte("a different secret, also 32 bytes or more")
	})
	claims = a.claims(http.MethodPost, testURL)
	_, _, err = c.v.Verify(context.Background(), c.request(a.key.sign(t, a.key.header(), claims)))
	if e := errorOf(t, err); e.Code != CodeUseNonce || e.Nonce == "" {
		t.Errorf("node with another secret = %v, want use_dpop_nonce with a fresh nonce", e)
	}
}

func TestMemoryReplayStoreFullShardSweepsOnlyWhenSomethingExpired(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := NewMemoryReplayStore(WithMaxEntries(2*replayShards), WithReplayClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	// Three keys of one shard; the shard holds two.
	var keys []string
	shard := maphash.String(s.seed, "k0") % replayShards
	for i := 0; len(keys) < 3; i++ {
		k := fmt.Sprintf("k%d", i)
		if maphash.String(s.seed, k)%replayShards == shard {
			keys = append(keys, k)
		}
	}
	ctx := context.Background()
	seen := func(k string, until time.Time) error {
		t.Helper()
		dup, err := s.Seen(ctx, k, until)
		if dup {
			t.Fatalf("Seen(%s) reported a replay", k)
		}
		return err
	}
	if err := seen(keys[0], now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Recorded after a longer-lived entry, but expires first.
	if err := seen(keys[1], now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := seen(keys[2], now.Add(5*time.Minute)); !errors.Is(err, ErrReplayStoreFull) {
		t.Fatalf("full shard: err = %v, want ErrReplayStoreFull", err)
	}
	// Still nothing expired: refused again (without freeing a live entry).
	now = now.Add(30 * time.Second)
	if err := seen(keys[2], now.Add(5*time.Minute)); !errors.Is(err, ErrReplayStoreFull) {
		t.Fatalf("full shard, nothing expired: err = %v, want ErrReplayStoreFull", err)
	}
	// Once the short-lived entry has expired, the sweep makes room.
	now = now.Add(time.Minute)
	if err := seen(keys[2], now.Add(5*time.Minute)); err != nil {
		t.Fatalf("after the earliest entry expired: err = %v, want room", err)
	}
	if dup, err := s.Seen(ctx, keys[0], now.Add(time.Minute)); err != nil || !dup {
		t.Fatalf("live entry: Seen = %v, %v; want a replay", dup, err)
	}
}
