package security

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
)

func cacheKey(i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprint("token-", i)))
	return string(sum[:])
}

func TestTokenCache(t *testing.T) {
	c := newTokenCache(tokenShards * 2) // two entries a shard
	a := cachedAnswer{res: Introspection{Active: true, ClientID: "tpp"}, until: 100}
	c.put(cacheKey(1), a, 10)
	if got, ok := c.get(cacheKey(1), 99); !ok || got.ClientID != "tpp" {
		t.Fatalf("get before expiry = %+v, %v", got, ok)
	}
	if _, ok := c.get(cacheKey(1), 100); ok {
		t.Fatal("get at expiry found the token")
	}

	// Fill one shard with live entries: a further token is not kept, and
	// the shard is not swept again before its earliest entry expires.
	var same []string
	for i := 0; len(same) < 3; i++ {
		if k := cacheKey(1000 + i); k[0]%tokenShards == cacheKey(1)[0]%tokenShards && k != cacheKey(1) {
			same = append(same, k)
		}
	}
	c.put(same[0], cachedAnswer{until: 200}, 10) // the shard now holds key 1 (until 100) and same[0]
	c.put(same[1], cachedAnswer{until: 300}, 50)
	if _, ok := c.get(same[1], 50); ok {
		t.Fatal("a full shard of live entries kept one more")
	}
	if s := c.shard(same[1]); s.nextSweep != 100 {
		t.Errorf("nextSweep = %d, want 100 (the earliest expiry)", s.nextSweep)
	}
	// Once key 1 has expired, its room is reused.
	c.put(same[2], cachedAnswer{res: Introspection{Active: true}, until: 400}, 150)
	if _, ok := c.get(same[2], 150); !ok {
		t.Fatal("the room of an expired entry was not reused")
	}
	if n := len(c.shard(same[2]).m); n > 2 {
		t.Errorf("shard holds %d entries, bound 2", n)
	}
}

func TestTokenCacheConcurrent(t *testing.T) {
	c := newTokenCache(1000)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := cacheKey(w*10000 + i)
				c.put(k, cachedAnswer{until: int64(i + 10)}, int64(i))
				c.get(k, int64(i))
			}
		}()
	}
	wg.Wait()
	total := 0
	for i := range c.shards {
		total += len(c.shards[i].m)
	}
	if total > 1000 {
		t.Errorf("cache holds %d entries, bound 1000", total)
	}
}
