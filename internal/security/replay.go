package security

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
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

// FairReplayStore is a ReplayStore that shares its room between the clients
// whose proofs it records, so that one client cannot fill it and lock the
// others out. The verifier records through SeenFor when its store has it,
// naming the proof key's thumbprint (jkt) as the owner.
type FairReplayStore interface {
	ReplayStore
	// SeenFor is Seen for a key recorded on behalf of owner: the same single
	// atomic check-and-record, which may also refuse a new key because the
	// store is under pressure and owner holds more than its fair share.
	SeenFor(ctx context.Context, owner, key string, until time.Time) (bool, error)
}

// seenFor records key for owner in one call: through SeenFor when s shares
// its room by owner, else through Seen.
func seenFor(ctx context.Context, s ReplayStore, owner, key string, until time.Time) (bool, error) {
	if f, ok := s.(FairReplayStore); ok {
		return f.SeenFor(ctx, owner, key, until)
	}
	return s.Seen(ctx, key, until)
}

// ErrReplayStoreFull is returned by the memory store when it has no room for a
// new key: it refuses rather than evicting a live entry, which would let that
// proof be replayed.
var ErrReplayStoreFull = errors.New("security: replay store full")

// ErrReplayShareExceeded is returned by the memory store when it is above its
// high-water mark and the key's owner already holds its fair share (see
// MemoryReplayStore). Like ErrReplayStoreFull it means "not recorded": the
// caller refuses the request.
var ErrReplayShareExceeded = errors.New("security: replay store share exceeded")

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
	o := replayOptions{maxEntries: DefaultReplayEntries, now: time.Now, prefix: "payments:dpop:jti:"}
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

// Limits of the memory store. DefaultReplayEntries is its default capacity;
// a shard at or above ReplayHighWaterPercent of its room is under pressure,
// and then applies the fair share (see MemoryReplayStore).
const (
	DefaultReplayEntries   = 1_000_000
	ReplayHighWaterPercent = 80
)

const (
	replayShards = 64
	// replayWheelSlots is the number of one-second slots of each shard's
	// expiry wheel (a power of two). An entry that lives longer waits in its
	// slot for further turns.
	replayWheelSlots = 128
)

// MemoryReplayStore is an exact, per-process replay store, safe for
// concurrent use. Keys are spread by hash over 64 shards, each a map under its
// own mutex, so check-and-record is atomic; each shard holds 1/64 of the
// capacity.
//
// Expiry: every entry is also filed under the second it expires in (a wheel of
// one-second slots), and the first call to a shard in a new second removes the
// entries of the seconds that have passed. Entries are therefore dropped, and
// their owner's count goes down, within a second of their expiry (a lookup
// compares the exact expiry, so a proof is never accepted twice in its window).
// A shard that sees no calls keeps its expired entries until the next one;
// they cost memory only, within the capacity.
//
// Fairness: each entry is counted against its owner (SeenFor; the verifier
// names the proof key's thumbprint). Below the high-water mark (80% of a
// shard's room) anyone may record, so one client alone may use the store up
// to the mark (800,000 live entries by default: more than 11,000 proofs/s for
// their 70 s lifetime). At or above the mark, a new key is recorded only when
// its owner holds fewer entries in the shard than the shard has free: that is
// the fair share. At the mark it is the last 20% of the room; as the store
// fills it shrinks, so the owner holding the most is refused first
// (ErrReplayShareExceeded), and each owner can take at most half of what was
// free when it started, so that neither one client nor two can fill the
// store. Because keys are hashes, an owner's entries spread evenly over the
// shards, and the rule reads the same for the whole store. Only when it is
// full anyway does a shard refuse everyone (ErrReplayStoreFull). Per-owner
// counts cost one map update per recorded key and are bounded by the entries:
// an owner without live entries is forgotten.
type MemoryReplayStore struct {
	seed      maphash.Seed
	perShard  int
	highWater int // entries at which a shard is under pressure
	now       func() time.Time
	shards    [replayShards]replayShard
}

type replayShard struct {
	mu      sync.Mutex
	entries map[string]replayEntry
	owners  map[string]*replayOwner // owners with live entries in this shard
	// wheel[s % replayWheelSlots] lists the keys expiring in second s (and
	// in later turns of the wheel); next is the first second not swept yet.
	wheel [replayWheelSlots][]string
	next  int64
}

type replayEntry struct {
	exp   int64 // Unix nanoseconds
	owner *replayOwner
}

type replayOwner struct {
	name string
	n    int // live entries in the shard
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
	per := o.maxEntries / replayShards
	s := &MemoryReplayStore{
		seed:      maphash.MakeSeed(),
		perShard:  per,
		highWater: max(1, per*ReplayHighWaterPercent/100),
		now:       o.now,
	}
	for i := range s.shards {
		s.shards[i].entries = make(map[string]replayEntry)
		s.shards[i].owners = make(map[string]*replayOwner)
	}
	return s, nil
}

// Len returns the number of proofs the store holds, expired ones not yet
// swept included; Cap is the most it may hold. For a fill-level gauge: Len
// takes each shard's lock in turn.
func (s *MemoryReplayStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}

// Cap returns the most proofs the store may hold.
func (s *MemoryReplayStore) Cap() int { return s.perShard * replayShards }

// Seen implements ReplayStore: it is SeenFor with the empty owner, so every
// key recorded through Seen counts against that one owner.
func (s *MemoryReplayStore) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	return s.SeenFor(ctx, "", key, until)
}

// SeenFor implements FairReplayStore. It returns ErrReplayStoreFull when the
// key's shard has no room, and ErrReplayShareExceeded when the shard is at or
// above its high-water mark and owner already holds at least as many entries
// there as are free. A key already recorded is reported as seen whatever the
// pressure.
func (s *MemoryReplayStore) SeenFor(_ context.Context, owner, key string, until time.Time) (bool, error) {
	sh := &s.shards[maphash.String(s.seed, key)%replayShards]
	now := s.now().UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.expire(now)
	if e, ok := sh.entries[key]; ok {
		if now < e.exp {
			return true, nil
		}
		sh.remove(key, e) // expired this second; recorded afresh below
	}
	n := len(sh.entries)
	if n >= s.perShard {
		return false, ErrReplayStoreFull
	}
	o := sh.owners[owner]
	if n >= s.highWater && o != nil && o.n >= s.perShard-n {
		return false, ErrReplayShareExceeded
	}
	if o == nil {
		o = &replayOwner{name: owner}
		sh.owners[owner] = o
	}
	sh.add(key, until.UnixNano(), o)
	return false, nil
}

// expire removes the entries whose expiry second has passed at now (Unix
// nanoseconds), sweeping each slot of the seconds since the last call once.
func (sh *replayShard) expire(now int64) {
	sec := now / int64(time.Second)
	if sh.next == 0 {
		sh.next = sec
	}
	if sec <= sh.next {
		return
	}
	from := max(sh.next, sec-replayWheelSlots)
	for s := from; s < sec; s++ {
		sh.sweep(s)
	}
	sh.next = sec
}

// sweep removes the entries of slot sec that expired in or before second sec.
// It drops references to keys that are gone or that were recorded again (and
// filed elsewhere), and keeps those that expire in a later turn of the wheel.
func (sh *replayShard) sweep(sec int64) {
	i := sec & (replayWheelSlots - 1)
	keys := sh.wheel[i]
	keep := keys[:0]
	for _, k := range keys {
		e, ok := sh.entries[k]
		switch {
		case !ok:
		case e.exp/int64(time.Second) <= sec:
			sh.remove(k, e)
		case (e.exp/int64(time.Second))&(replayWheelSlots-1) == i:
			keep = append(keep, k)
		}
	}
	clear(keys[len(keep):]) // let the dropped key strings go
	sh.wheel[i] = keep
}

// add records key until exp (Unix nanoseconds) for o and files it in the
// wheel; an expiry already in the past is filed under the current second.
func (sh *replayShard) add(key string, exp int64, o *replayOwner) {
	sh.entries[key] = replayEntry{exp: exp, owner: o}
	o.n++
	i := max(exp/int64(time.Second), sh.next) & (replayWheelSlots - 1)
	sh.wheel[i] = append(sh.wheel[i], key)
}

// remove drops key's entry e and forgets its owner once it holds nothing.
func (sh *replayShard) remove(key string, e replayEntry) {
	delete(sh.entries, key)
	e.owner.n--
	if e.owner.n == 0 {
		delete(sh.owners, e.owner.name)
	}
}

// Bounds of the Redis replay store's calls. A proof is checked on the
// request's path, so a Redis that is down or slow must cost a request
// milliseconds, not seconds: each call has redisCallTimeout, and after
// redisTripAfter failures in a row the store stops calling Redis for
// redisCooldown (the circuit is open: Seen fails at once), then lets one call
// through to try again. Either way the request is refused (fail closed).
const (
	redisCallTimeout = 500 * time.Millisecond
	redisDialTimeout = 500 * time.Millisecond
	redisTripAfter   = 3
	redisCooldown    = time.Second
)

// ErrReplayStoreDown is returned by the Redis store while its circuit is
// open: recent calls failed and Redis is not asked again yet.
var ErrReplayStoreDown = errors.New("security: replay store down (recent calls failed)")

// RedisReplayStore shares replay state between nodes with one
// "SET key 1 NX PX ttl" per proof, which is atomic in Redis. Every Redis error
// is returned, so callers fail closed. Calls are bounded and a circuit stops
// calling a Redis that keeps failing (see redisCallTimeout).
type RedisReplayStore struct {
	client *redis.Client
	owned  bool
	prefix string
	now    func() time.Time

	failures  atomic.Int32 // calls failed in a row
	openUntil atomic.Int64 // Unix nanoseconds until which Redis is not called
}

// NewRedisReplayStore connects to the Redis server at url (redis://host:port/db).
// The connection does not wait for a slow or absent Redis: unless the URL
// says otherwise (dial_timeout, read_timeout, write_timeout, max_retries),
// dials and reads time out after 500ms and a failed call is not retried (a
// SET NX retried after its answer was lost would report its own proof as a
// replay).
func NewRedisReplayStore(url string, opts ...ReplayOption) (*RedisReplayStore, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("security: replay store URL: %w", err)
	}
	if ro.MaxRetries == 0 {
		ro.MaxRetries = -1
	}
	if ro.DialTimeout == 0 {
		ro.DialTimeout = redisDialTimeout
	}
	if ro.DialerRetries == 0 {
		ro.DialerRetries = 1
	}
	if ro.ReadTimeout == 0 {
		ro.ReadTimeout = redisCallTimeout
	}
	if ro.WriteTimeout == 0 {
		ro.WriteTimeout = redisCallTimeout
	}
	ro.ContextTimeoutEnabled = true
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

// Seen implements ReplayStore. While the circuit is open it returns
// ErrReplayStoreDown without calling Redis.
func (s *RedisReplayStore) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	if !s.allow() {
		return false, ErrReplayStoreDown
	}
	ttl := until.Sub(s.now())
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	cctx, cancel := context.WithTimeout(ctx, redisCallTimeout)
	defer cancel()
	set, err := s.client.SetNX(cctx, s.prefix+key, 1, ttl).Result()
	if err != nil {
		if ctx.Err() == nil { // not the caller giving up
			s.failed()
		}
		return false, fmt.Errorf("security: replay store: %w", err)
	}
	s.succeeded()
	return !set, nil
}

// Ping reports whether Redis answers within the call timeout (or ctx's
// deadline, if sooner), whatever the circuit's state; an answer closes the
// circuit. Readiness calls it.
func (s *RedisReplayStore) Ping(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, redisCallTimeout)
	defer cancel()
	if err := s.client.Ping(cctx).Err(); err != nil {
		return fmt.Errorf("security: replay store: %w", err)
	}
	s.succeeded()
	return nil
}

// allow reports whether a call may go to Redis: the circuit is closed, or its
// cooldown is over and this call is the one that tries again (the others
// still fail at once until it answers).
func (s *RedisReplayStore) allow() bool {
	until := s.openUntil.Load()
	if until == 0 {
		return true
	}
	now := time.Now().UnixNano()
	if now < until {
		return false
	}
	return s.openUntil.CompareAndSwap(until, now+int64(redisCooldown))
}

func (s *RedisReplayStore) failed() {
	if s.failures.Add(1) >= redisTripAfter {
		s.openUntil.Store(time.Now().Add(redisCooldown).UnixNano())
	}
}

func (s *RedisReplayStore) succeeded() {
	s.failures.Store(0)
	s.openUntil.Store(0)
}

// Close closes the client when the store opened it.
func (s *RedisReplayStore) Close() error {
	if s.owned {
		return s.client.Close()
	}
	return nil
}
