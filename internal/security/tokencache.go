package security

import "sync"

// tokenShards is the number of independently locked parts of a tokenCache.
const tokenShards = 64

// tokenCache keeps verified JWT access tokens, keyed by the SHA-256 of the
// token, until the time each answer may be reused (never past the token's
// exp). It is bounded: each shard holds at most its share of the entries. A
// full shard first drops its expired entries; when none have expired it does
// not look again before its earliest entry expires, and the new token is
// simply not kept (it costs a verification next time, never a wrong answer).
// A put is a map write under a shard lock: no goroutine hand-off on the path
// of a request, unlike a general-purpose cache with asynchronous writes. It is
// safe for concurrent use.
type tokenCache struct {
	perShard int
	shards   [tokenShards]tokenShard
}

type tokenShard struct {
	mu        sync.Mutex
	m         map[string]cachedAnswer
	nextSweep int64 // Unix ns before which a full shard is not swept again
}

// newTokenCache returns a cache of about entries tokens (at least one per
// shard).
func newTokenCache(entries int) *tokenCache {
	c := &tokenCache{perShard: max(1, entries/tokenShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cachedAnswer)
	}
	return c
}

func (c *tokenCache) shard(key string) *tokenShard {
	return &c.shards[key[0]%tokenShards] // key is a SHA-256 digest: uniform
}

// get returns the answer kept for key while it is still valid at now (Unix ns).
func (c *tokenCache) get(key string, now int64) (Introspection, bool) {
	s := c.shard(key)
	s.mu.Lock()
	a, ok := s.m[key]
	s.mu.Unlock()
	if !ok || now >= a.until {
		return Introspection{}, false
	}
	return a.res, true
}

// put keeps a for key, if there is room at now (Unix ns).
func (c *tokenCache) put(key string, a cachedAnswer, now int64) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok && len(s.m) >= c.perShard {
		if now < s.nextSweep {
			return
		}
		earliest := int64(0)
		for k, e := range s.m {
			switch {
			case now >= e.until:
				delete(s.m, k)
			case earliest == 0 || e.until < earliest:
				earliest = e.until
			}
		}
		if len(s.m) >= c.perShard {
			s.nextSweep = earliest
			return
		}
	}
	s.m[key] = a
}
