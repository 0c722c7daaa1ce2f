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

// keysInShard returns n distinct keys, prefixed with prefix, that s files in
// shard.
func keysInShard(s *MemoryReplayStore, shard uint64, prefix string, n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		if maphash.String(s.seed, k)%replayShards == shard {
			keys = append(keys, k)
		}
	}
	return keys
}

// liveEntries sweeps every shard as a call at now would, then counts the
// entries and those of owner.
func liveEntries(s *MemoryReplayStore, now time.Time, owner string) (all, owned int) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.expire(now.UnixNano())
		all += len(sh.entries)
		if o := sh.owners[owner]; o != nil {
			owned += o.n
		}
		sh.mu.Unlock()
	}
	return all, owned
}

func TestMemoryReplayStoreFullShardRefusesUntilAnEntryExpires(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := NewMemoryReplayStore(WithMaxEntries(2*replayShards), WithReplayClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	// Three keys of one shard, each of its own owner (so that no share
	// applies); the shard holds two.
	keys := keysInShard(s, 0, "k", 3)
	ctx := context.Background()
	seen := func(i int, until time.Time) error {
		t.Helper()
		dup, err := s.SeenFor(ctx, fmt.Sprint("owner", i), keys[i], until)
		if dup {
			t.Fatalf("Seen(%s) reported a replay", keys[i])
		}
		return err
	}
	if err := seen(0, now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Recorded after a longer-lived entry, but expires first.
	if err := seen(1, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := seen(2, now.Add(5*time.Minute)); !errors.Is(err, ErrReplayStoreFull) {
		t.Fatalf("full shard: err = %v, want ErrReplayStoreFull", err)
	}
	// Still nothing expired: refused again (without freeing a live entry).
	now = now.Add(30 * time.Second)
	if err := seen(2, now.Add(5*time.Minute)); !errors.Is(err, ErrReplayStoreFull) {
		t.Fatalf("full shard, nothing expired: err = %v, want ErrReplayStoreFull", err)
	}
	// Once the short-lived entry has expired, the sweep makes room.
	now = now.Add(time.Minute)
	if err := seen(2, now.Add(5*time.Minute)); err != nil {
		t.Fatalf("after the earliest entry expired: err = %v, want room", err)
	}
	if dup, err := s.Seen(ctx, keys[0], now.Add(time.Minute)); err != nil || !dup {
		t.Fatalf("live entry: Seen = %v, %v; want a replay", dup, err)
	}
}

// TestMemoryReplayStoreFairShare walks one shard of 10 entries (high-water
// mark 8) through its limits: one owner alone records up to the mark, is then
// refused while others still get in, a replay is still a replay, and the
// heavy owner gets in again once its entries have expired.
func TestMemoryReplayStoreFairShare(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := NewMemoryReplayStore(WithMaxEntries(10*replayShards), WithReplayClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	heavy := keysInShard(s, 7, "heavy-", 9)
	others := keysInShard(s, 7, "other-", 4)
	short, long := now.Add(time.Minute), now.Add(5*time.Minute)
	ctx := context.Background()
	for i, k := range heavy[:8] {
		if dup, err := s.SeenFor(ctx, "heavy", k, short); err != nil || dup {
			t.Fatalf("below the mark, heavy key %d: SeenFor = %v, %v; want false, nil", i, dup, err)
		}
	}
	steps := []struct {
		name     string
		owner    string
		key      string
		wantSeen bool
		wantErr  error
	}{
		// 8 of 10 entries: at the mark; heavy holds 8, 2 are free.
		{"refuses the owner over its share at the mark", "heavy", heavy[8], false, ErrReplayShareExceeded},
		{"still reports a replay of the refused owner", "heavy", heavy[0], true, nil},
		{"records another owner at the mark", "light", others[0], false, nil},
		// 9 entries: light holds 1, 1 is free.
		{"refuses a newcomer past half of what was free", "light", others[1], false, ErrReplayShareExceeded},
		{"records a third owner", "third", others[2], false, nil},
		{"refuses everyone when full", "fourth", others[3], false, ErrReplayStoreFull},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			dup, err := s.SeenFor(ctx, st.owner, st.key, long)
			if dup != st.wantSeen || !errors.Is(err, st.wantErr) {
				t.Errorf("SeenFor(%s) = %v, %v; want %v, %v", st.owner, dup, err, st.wantSeen, st.wantErr)
			}
		})
	}

	// Heavy's entries expire: they are dropped, its count goes, and it may
	// record again.
	now = short.Add(time.Second)
	if all, owned := liveEntries(s, now, "heavy"); all != 2 || owned != 0 {
		t.Errorf("after heavy's entries expired: %d entries, %d of heavy; want 2 and 0", all, owned)
	}
	if dup, err := s.SeenFor(ctx, "heavy", heavy[8], long); err != nil || dup {
		t.Errorf("heavy after expiry: SeenFor = %v, %v; want false, nil", dup, err)
	}
}

// TestMemoryReplayStoreOneBusyClient drives the default store with one proof
// key at 6,000 proofs/s, each entry living 71 s (MaxAge + Skew + 1 s, iat up
// to 2 s behind the clock), for 160 s of an injected clock: about 426,000
// live entries, far below the high-water mark (800,000), so no proof is ever
// refused, and the live count stays at what the last 71 s recorded. Were
// expired entries kept, the store would pass the mark after 133 s.
func TestMemoryReplayStoreOneBusyClient(t *testing.T) {
	if testing.Short() {
		t.Skip("960,000 calls")
	}
	const rate, seconds = 6000, 160
	lifetime := 71 * time.Second
	now := time.Unix(1_800_000_000, 0)
	s, err := NewMemoryReplayStore(WithReplayClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const owner = "busy-client-jkt"
	var key [32]byte
	for sec := range seconds {
		for i := range rate {
			now = now.Add(time.Second / rate)
			n := sec*rate + i
			key[0], key[1], key[2], key[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
			iat := now.Add(-time.Duration(n%3) * time.Second)
			if _, err := s.SeenFor(ctx, owner, string(key[:]), iat.Add(lifetime)); err != nil {
				t.Fatalf("second %d, proof %d: SeenFor = %v; want no refusal", sec, i, err)
			}
		}
		if sec < 80 {
			continue
		}
		// Everything recorded in the last 69 s is live; nothing older than
		// 72 s may be left.
		all, owned := liveEntries(s, now, owner)
		if all != owned || all < 69*rate || all > 72*rate {
			t.Fatalf("second %d: %d live entries (%d of the client); want %d to %d, all of the client",
				sec, all, owned, 69*rate, 72*rate)
		}
	}
}

// TestMemoryReplayStoreExpiry records entries expiring over 270 s (more than
// one turn of the wheel), some already in the past, some recorded again after
// expiry, and checks each second that exactly the entries whose second has
// passed are gone, that the owner's count matches, and that a lookup is exact.
func TestMemoryReplayStoreExpiry(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	now := start
	s, err := NewMemoryReplayStore(WithMaxEntries(64_000), WithReplayClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp := map[string]time.Time{}
	record := func(k string, until time.Time) {
		t.Helper()
		if dup, err := s.SeenFor(ctx, "o", k, until); err != nil || dup {
			t.Fatalf("SeenFor(%s) = %v, %v; want false, nil", k, dup, err)
		}
		exp[k] = until
	}
	for i := range 800 {
		record(fmt.Sprint("k", i), start.Add(time.Duration(i)*337*time.Millisecond-2*time.Second))
	}
	for sec := 1; sec <= 300; sec++ {
		// Half a second into each second, so that some entries have expired
		// in this second and are not swept yet.
		now = start.Add(time.Duration(sec)*time.Second + 500*time.Millisecond)
		if sec == 30 {
			// Expired entries, swept or not, are new again; recorded anew,
			// some for more than a turn of the wheel.
			for i := range 100 {
				k := fmt.Sprint("k", i)
				if exp[k].After(now) {
					continue
				}
				record(k, now.Add(time.Duration(i)*2*time.Second))
			}
		}
		// A lookup compares the exact expiry: an entry of this second that
		// has not expired yet is still a replay.
		for k, e := range exp {
			if e.Unix() == now.Unix() && e.After(now) {
				if dup, err := s.SeenFor(ctx, "o", k, e); err != nil || !dup {
					t.Fatalf("at +%ds, live key %s: SeenFor = %v, %v; want true, nil", sec, k, dup, err)
				}
			}
		}
		want := 0
		for _, e := range exp {
			if e.Unix() >= now.Unix() {
				want++
			}
		}
		all, owned := liveEntries(s, now, "o")
		if all != want || owned != want {
			t.Fatalf("at +%ds: %d entries, %d of the owner; want %d", sec, all, owned, want)
		}
	}
	// Everything has expired: the owner is forgotten and nothing is left in
	// the wheel.
	for i := range s.shards {
		sh := &s.shards[i]
		if len(sh.owners) != 0 {
			t.Errorf("shard %d still counts %d owners", i, len(sh.owners))
		}
		for j, keys := range sh.wheel {
			if len(keys) != 0 {
				t.Errorf("shard %d, slot %d still lists %d keys", i, j, len(keys))
			}
		}
	}
}

// TestVerifyRefusesKeyOverItsShare fills a small store to its high-water mark
// with one client's proofs: that client's next proof gets 503 (fail closed,
// reason replay_share_exceeded), while another client's proof is accepted.
func TestVerifyRefusesKeyOverItsShare(t *testing.T) {
	store, err := NewMemoryReplayStore(WithMaxEntries(10*replayShards), WithReplayClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "ES256", func(c *Config) { c.ReplayStore = store })
	ctx := context.Background()
	for shard := range uint64(replayShards) {
		for _, k := range keysInShard(store, shard, "fill-", 8) {
			if _, err := store.SeenFor(ctx, f.key.jkt, k, testNow.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, _, err = f.v.Verify(ctx, f.request(f.proof()))
	if e := errorOf(t, err); e.Status != http.StatusServiceUnavailable || e.RetryAfter <= 0 || e.Reason != "replay_share_exceeded" {
		t.Errorf("Verify(key over its share) = %+v, want 503 replay_share_exceeded with Retry-After", e)
	}

	other := newTestKey(t, "ES256")
	f.key = other
	f.intro.res.CnfJKT = other.jkt
	if _, _, err := f.v.Verify(ctx, f.request(f.proof())); err != nil {
		t.Errorf("Verify(another key at the mark) = %v, want success", err)
	}
}

func TestMemoryReplayStoreFillLevel(t *testing.T) {
	s, err := NewMemoryReplayStore(WithMaxEntries(6400))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || s.Cap() != 6400 {
		t.Fatalf("empty store: Len %d, Cap %d", s.Len(), s.Cap())
	}
	for i := range 10 {
		if _, err := s.Seen(context.Background(), fmt.Sprint("jti-", i), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 10 {
		t.Fatalf("Len = %d after 10 proofs", s.Len())
	}
}
