package security

import (
	"sync"
	"testing"
	"time"
)

func TestNonceWindows(t *testing.T) {
	n := nonceIssuer{secret: testSecret, window: 5 * time.Minute}
	now := time.Unix(1_800_000_000, 0)
	issued := n.issue(now)
	tests := []struct {
		name             string
		nonce            string
		at               time.Time
		wantOK, wantPrev bool
	}{
		{"same window", issued, now, true, false},
		{"next window", issued, now.Add(5 * time.Minute), true, true},
		{"two windows later", issued, now.Add(10 * time.Minute), false, false},
		{"from the future", n.issue(now.Add(5 * time.Minute)), now, false, false},
		{"tampered tag", issued[:len(issued)-2] + "AA", now, false, false},
		{"too short", issued[:10], now, false, false},
		{"not base64url", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", now, false, false},
		{"empty", "", now, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, prev := n.check(tt.nonce, tt.at)
			if ok != tt.wantOK || prev != tt.wantPrev {
				t.Errorf("check = %v, %v; want %v, %v", ok, prev, tt.wantOK, tt.wantPrev)
			}
		})
	}
	other := nonceIssuer{secret: []byte("another secret that is long enough!!"), window: 5 * time.Minute}
	if ok, _ := other.check(issued, now); ok {
		t.Error("a nonce was accepted under another secret")
	}
	for i := 0; i < len(issued); i++ {
		c := issued[i]
		if !(isAlnum(c) || c == '-' || c == '_') {
			t.Fatalf("nonce %q has a character outside NQCHAR-safe base64url", issued)
		}
	}
}

func TestNonceOff(t *testing.T) {
	f := newFixture(t, "ES256", func(c *Config) { c.NonceMode = NonceOff })
	claims := f.claims("POST", testURL)
	if _, ok := claims["nonce"]; ok {
		t.Fatal("fixture put a nonce in a proof with nonces off")
	}
	if _, res, err := f.v.Verify(t.Context(), f.request(f.key.sign(t, f.key.header(), claims))); err != nil || res.Nonce != "" {
		t.Errorf("Verify with nonces off = %v, %q; want success, no nonce", err, res.Nonce)
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	store, _ := NewMemoryReplayStore()
	base := func() Config {
		return Config{PublicURL: testPublicURL, ReplayStore: store, Introspector: &fakeIntrospector{}}
	}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"unknown alg", func(c *Config) { c.Algs = []string{"HS256"} }},
		{"alg none", func(c *Config) { c.Algs = []string{"none"} }},
		{"public URL with query", func(c *Config) { c.PublicURL = "https://x.example/?a" }},
		{"public URL relative", func(c *Config) { c.PublicURL = "/x" }},
		{"public URL missing", func(c *Config) { c.PublicURL = "" }},
		{"short nonce secret", func(c *Config) { c.NonceSecret = []byte("short") }},
		{"unknown nonce mode", func(c *Config) { c.NonceMode = "sometimes" }},
		{"skew over 60s", func(c *Config) { c.Skew = 61 * time.Second }},
		{"negative max age", func(c *Config) { c.MaxAge = -time.Second }},
		{"no replay store", func(c *Config) { c.ReplayStore = nil }},
		{"no introspector", func(c *Config) { c.Introspector = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.mod(&cfg)
			if _, err := NewVerifier(cfg); err == nil {
				t.Errorf("NewVerifier accepted %s", tt.name)
			}
		})
	}
	if _, err := NewVerifier(base()); err != nil {
		t.Errorf("NewVerifier(defaults) = %v", err)
	}
}

// TestNonceTagCache checks that the cached window tags equal a fresh HMAC
// for every window, whatever order windows are asked for in, and that the
// cache never serves one window's tag for another, also under concurrent
// use while the clock moves on.
func TestNonceTagCache(t *testing.T) {
	window := 5 * time.Minute
	cached := nonceIssuer{secret: testSecret, window: window}
	start := time.Unix(1_800_000_000, 0)
	for _, step := range []int{0, 1, 1, 0, 2, 5, 3, 4, 4, 6, 0, 7} {
		at := start.Add(time.Duration(step) * window)
		fresh := nonceIssuer{secret: testSecret, window: window} // empty cache
		if got, want := cached.issue(at), fresh.issue(at); got != want {
			t.Fatalf("window +%d: cached issuer gave %q, fresh one %q", step, got, want)
		}
	}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				at := start.Add(time.Duration(i/10) * window)
				cur := cached.issue(at)
				prev := cached.issue(at.Add(-window))
				if ok, p := cached.check(cur, at); !ok || p {
					t.Errorf("goroutine %d: current nonce = %v, %v", g, ok, p)
					return
				}
				if ok, p := cached.check(prev, at); !ok || !p {
					t.Errorf("goroutine %d: previous nonce = %v, %v", g, ok, p)
					return
				}
				if ok, _ := cached.check(cached.issue(at.Add(-2*window)), at); ok {
					t.Errorf("goroutine %d: nonce two windows old accepted", g)
					return
				}
			}
		}()
	}
	wg.Wait()
}
