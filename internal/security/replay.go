package security

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ReplayStore records DPoP proofs that were accepted, so that each (jkt, jti)
// pair is accepted once while its proof could still pass the iat check
// (RFC 9449 §11.1).
type ReplayStore interface {
	// Seen atomically checks whether key was recorded and records it until the
	// given time if it was not: it returns false exactly once per key and
	// window, true afterwards. An error means the store could not record the
	// key; callers must then refuse the request (fail closed).
	Seen(ctx context.Context, key string, until time.Time) (bool, error)
}

// ErrReplayStoreFull is returned by the memory store when it has no room for a
// new key: it refuses rather than evicting a live entry, which would let that
// proof be replayed.
var ErrReplayStoreFull = errors.New("security: replay store full")

// ReplayOption tunes a replay store.
type ReplayOption func(*replayOptions)

type replayOptions struct {
	maxEntries int
	now        func() time.Time
	prefix     string
}

// WithMaxEntries bounds the memory store (default 1,000,000 entries).
func WithMaxEntries(n int) ReplayOption { return func(o *replayOptions) { o.maxEntries = n } }

// WithReplayClock sets the clock the store uses to expire entries; give it the
// verifier's clock (default time.Now).
func WithReplayClock(now func() time.Time) ReplayOption {
	return func(o *replayOptions) { o.now = now }
}

// WithKeyPrefix sets the Redis key prefix (default "payments:dpop:jti:").
func WithKeyPrefix(p string) ReplayOption { return func(o *replayOptions) { o.prefix = p } }

func buildReplayOptions(opts []ReplayOption) replayOptions {
	o := replayOptions{maxEntries: 1_000_000, now: time.Now, prefix: "payments:dpop:jti:"}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// OpenReplayStore builds the store named by spec (PAYMENTS_REPLAY_STORE):
// "memory" or a "redis://" / "rediss://" URL. The returned function releases
// it.
func OpenReplayStore(spec string, opts ...ReplayOption) (ReplayStore, func() error, error) {
	switch {
	case spec == "" || spec == "memory":
		s, err := NewMemoryReplayStore(opts...)
		if err != nil {
			return nil, nil, err
		}
		return s, func() error { return nil }, nil
	case strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://"):
		s, err := NewRedisReplayStore(spec, opts...)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	default:
		return nil, nil, errors.New(`security: replay store must be "memory" or a redis:// URL`)
	}
}

const replayShards = 64

// MemoryReplayStore is an exact, per-process replay store: a sharded map of
// keys to their expiry under one mutex per shard, so check-and-record is
// atomic. Expired entries are swept when a shard fills up; if a shard is still
// full after sweeping, Seen fails with ErrReplayStoreFull. It is safe for
// concurrent use.
type MemoryReplayStore struct {
	seed     maphash.Seed
	perShard int
	now      func() time.Time
	shards   [replayShards]replayShard
}

type replayShard struct {
	mu      sync.Mutex
	entries map[string]int64 // key -> expiry, Unix nanoseconds
	// earliest is a lower bound of the entries' expiries: before it, a sweep
	// cannot free anything, so a full shard answers at once instead of
	// scanning every entry on every request.
	earliest int64
}

// NewMemoryReplayStore returns an empty memory store (options: WithMaxEntries,
// WithReplayClock).
func NewMemoryReplayStore(opts ...ReplayOption) (*MemoryReplayStore, error) {
	o := buildReplayOptions(opts)
	if o.maxEntries < replayShards {
		return nil, fmt.Errorf("security: replay store needs at least %d entries", replayShards)
	}
	if o.now == nil {
		return nil, errors.New("security: replay store clock is nil")
	}
	s := &MemoryReplayStore{seed: maphash.MakeSeed(), perShard: o.maxEntries / replayShards, now: o.now}
	for i := range s.shards {
		s.shards[i].entries = make(map[string]int64)
	}
	return s, nil
}

// Seen implements ReplayStore. It returns ErrReplayStoreFull when the key's
// shard has no room.
func (s *MemoryReplayStore) Seen(_ context.Context, key string, until time.Time) (bool, error) {
	sh := &s.shards[maphash.String(s.seed, key)%replayShards]
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if exp, ok := sh.entries[key]; ok && now < exp {
		return true, nil
	}
	if len(sh.entries) >= s.perShard {
		if now < sh.earliest {
			return false, ErrReplayStoreFull
		}
		earliest := int64(math.MaxInt64)
		for k, exp := range sh.entries {
			if now >= exp {
				delete(sh.entries, k)
			} else if exp < earliest {
				earliest = exp
			}
		}
		sh.earliest = earliest
		if len(sh.entries) >= s.perShard {
			return false, ErrReplayStoreFull
		}
	}
	exp := until.UnixNano()
	sh.entries[key] = exp
	if len(sh.entries) == 1 || exp < sh.earliest {
		sh.earliest = exp
	}
	return false, nil
}

// RedisReplayStore shares replay state between nodes with one
// "SET key 1 NX PX ttl" per proof, which is atomic in Redis. Every Redis error
// is returned, so callers fail closed.
type RedisReplayStore struct {
	client *redis.Client
	owned  bool
	prefix string
	now    func() time.Time
}

// NewRedisReplayStore connects to the Redis server at url (redis://host:port/db).
func NewRedisReplayStore(url string, opts ...ReplayOption) (*RedisReplayStore, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("security: replay store URL: %w", err)
	}
	s := NewRedisReplayStoreClient(redis.NewClient(ro), opts...)
	s.owned = true
	return s, nil
}

// NewRedisReplayStoreClient uses an existing client, which the caller keeps
// owning (Close does not close it).
func NewRedisReplayStoreClient(c *redis.Client, opts ...ReplayOption) *RedisReplayStore {
	o := buildReplayOptions(opts)
	return &RedisReplayStore{client: c, prefix: o.prefix, now: o.now}
}

// Seen implements ReplayStore.
func (s *RedisReplayStore) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	ttl := until.Sub(s.now())
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	set, err := s.client.SetNX(ctx, s.prefix+key, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("security: replay store: %w", err)
	}
	return !set, nil
}

// Close closes the client when the store opened it.
func (s *RedisReplayStore) Close() error {
	if s.owned {
		return s.client.Close()
	}
	return nil
}
