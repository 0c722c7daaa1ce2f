package security

import (
	"container/list"
	"hash/maphash"
	"sync"
	"time"
)

// inactiveWindow is the period over which a proof key's inactive
// introspection answers are counted.
const inactiveWindow = time.Second

// inactiveShards is the number of independently locked parts of the table.
const inactiveShards = 16

// inactiveLimiter counts, per proof key (its RFC 7638 thumbprint), the
// introspection calls that came back inactive, so that one key with validly
// signed proofs cannot make the authorization server check an unbounded
// stream of junk tokens. A key whose count reaches limit within
// inactiveWindow is blocked for block: blocked reports true for it until
// then. Active answers and failed calls are never counted, so a client that
// presents valid tokens is never blocked, however many it presents.
//
// Memory is bounded: each shard keeps at most its share of maxKeys keys in
// least-recently-counted order and forgets the oldest when full. A key not
// counted within the last window and not blocked holds no state worth
// keeping, so under normal load only idle keys are forgotten; under a flood
// of distinct keys a blocked key may be forgotten early, which costs at most
// another limit calls for that key. It is safe for concurrent use.
type inactiveLimiter struct {
	limit  int
	block  time.Duration
	seed   maphash.Seed
	shards [inactiveShards]inactiveShard
}

type inactiveShard struct {
	mu    sync.Mutex
	max   int
	order list.List // of *keyCount, the most recently counted first
	keys  map[string]*list.Element
}

// keyCount is the state of one proof key.
type keyCount struct {
	jkt          string
	windowStart  time.Time
	count        int
	blockedUntil time.Time
}

// newInactiveLimiter returns a limiter that blocks a key for block once limit
// of its calls came back inactive within inactiveWindow, tracking at most
// about maxKeys keys (at least one per shard).
func newInactiveLimiter(limit int, block time.Duration, maxKeys int) *inactiveLimiter {
	l := &inactiveLimiter{limit: limit, block: block, seed: maphash.MakeSeed()}
	per := max(1, maxKeys/inactiveShards)
	for i := range l.shards {
		l.shards[i].max = per
		l.shards[i].keys = make(map[string]*list.Element)
	}
	return l
}

func (l *inactiveLimiter) shard(jkt string) *inactiveShard {
	return &l.shards[maphash.String(l.seed, jkt)%inactiveShards]
}

// blocked reports whether a token of jkt that is not cached must be refused
// at now without asking the authorization server.
func (l *inactiveLimiter) blocked(jkt string, now time.Time) bool {
	s := l.shard(jkt)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.keys[jkt]
	return ok && now.Before(e.Value.(*keyCount).blockedUntil)
}

// inactive counts one call for jkt that came back inactive at now, and blocks
// the key when that makes limit within the window.
func (l *inactiveLimiter) inactive(jkt string, now time.Time) {
	s := l.shard(jkt)
	s.mu.Lock()
	defer s.mu.Unlock()
	var k *keyCount
	if e, ok := s.keys[jkt]; ok {
		s.order.MoveToFront(e)
		k = e.Value.(*keyCount)
	} else {
		if s.order.Len() >= s.max {
			oldest := s.order.Back()
			s.order.Remove(oldest)
			delete(s.keys, oldest.Value.(*keyCount).jkt)
		}
		k = &keyCount{jkt: jkt, windowStart: now}
		s.keys[jkt] = s.order.PushFront(k)
	}
	// A call that started before the window did but answered after it is
	// counted in the window (now - windowStart < 0).
	if now.Sub(k.windowStart) >= inactiveWindow {
		k.windowStart, k.count = now, 0
	}
	k.count++
	if k.count >= l.limit {
		k.blockedUntil = now.Add(l.block)
	}
}

// size returns the number of keys tracked.
func (l *inactiveLimiter) size() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.order.Len()
		s.mu.Unlock()
	}
	return n
}
