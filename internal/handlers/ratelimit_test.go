package handlers

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newTestLimiter(t *testing.T, cfg RateLimitConfig) (*RateLimiter, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Now = clock.now
	l, err := NewRateLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

// TestRateLimitAnswers429 sends a burst through the routes: past the burst
// the client gets 429 with Retry-After and the OB error body, another client
// is unaffected, and the first is let through again once a token is back.
func TestRateLimitAnswers429(t *testing.T) {
	reg := prometheus.NewRegistry()
	l, clock := newTestLimiter(t, RateLimitConfig{Rate: 0.5, Burst: 3, Registerer: reg})
	limit := l.Middleware()
	a := newAPIWith(t, func(next echo.HandlerFunc) echo.HandlerFunc { return fakeDPoP(limit(next)) })
	busy := tpp("busy-tpp", "ledger:admin")
	other := tpp("other-tpp", "ledger:admin")
	const path = "/internal/v1/ledger/reconcile"

	for i := 0; i < 3; i++ {
		if rec := a.do(http.MethodGet, path, "", busy); rec.Code != http.StatusOK {
			t.Fatalf("request %d of the burst: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	rec := a.do(http.MethodGet, path, "", busy.with("x-fapi-interaction-id", "93bac548-d2de-4546-b106-880a5018460d"))
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("request past the burst: %d %s, want 429", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Retry-After"); got != "2" { // one token at 0.5/s
		t.Errorf("Retry-After = %q, want 2", got)
	}
	var body ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if body.Code != "429 Too Many Requests" || body.ID != "93bac548-d2de-4546-b106-880a5018460d" ||
		len(body.Errors) != 1 || body.Errors[0].ErrorCode != CodeTooManyRequests || body.Errors[0].Message == "" {
		t.Errorf("body = %+v, want the OB error body with %s", body, CodeTooManyRequests)
	}
	if rec := a.do(http.MethodGet, path, "", other); rec.Code != http.StatusOK {
		t.Errorf("another client: %d %s, want 200", rec.Code, rec.Body)
	}
	if n := testutil.ToFloat64(l.refused); n != 1 {
		t.Errorf("payments_rate_limited_total = %v, want 1", n)
	}

	clock.advance(1 * time.Second) // half a token: still refused, 1s to wait
	rec = a.do(http.MethodGet, path, "", busy)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("after 1s: %d Retry-After %q, want 429 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	clock.advance(1 * time.Second)
	if rec := a.do(http.MethodGet, path, "", busy); rec.Code != http.StatusOK {
		t.Errorf("after 2s: %d %s, want 200", rec.Code, rec.Body)
	}

	// An unauthenticated request is the DPoP middleware's: 401, not 429.
	if rec := a.do(http.MethodGet, path, "", hdr{hClient: ""}); rec.Code != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", rec.Code)
	}
}

// TestRateLimitBoundedTracking: the table never holds more than MaxClients,
// idle buckets (full again) are dropped, and a busy client keeps its state
// while idle ones come and go.
func TestRateLimitBoundedTracking(t *testing.T) {
	l, clock := newTestLimiter(t, RateLimitConfig{Rate: 10, Burst: 20, MaxClients: 50})
	// idle time: 20/10 = 2s
	for i := 0; i < 20; i++ {
		if _, ok := l.allow("busy"); !ok {
			t.Fatalf("busy request %d refused within the burst", i+1)
		}
	}
	for i := 0; i < 1000; i++ {
		l.allow("client-" + strconv.Itoa(i))
		if n := l.Tracked(); n > 50 {
			t.Fatalf("%d clients tracked, more than MaxClients 50", n)
		}
	}
	clock.advance(3 * time.Second)
	l.allow("late")
	if n := l.Tracked(); n != 1 {
		t.Errorf("%d clients tracked after all were idle for longer than a full refill, want 1", n)
	}

	// A client with an empty bucket that keeps coming is not dropped by
	// the sweep: it stays refused.
	l2, clock2 := newTestLimiter(t, RateLimitConfig{Rate: 1, Burst: 2, MaxClients: 10})
	l2.allow("hot")
	l2.allow("hot")
	for i := 0; i < 5; i++ {
		clock2.advance(500 * time.Millisecond)
		if _, ok := l2.allow("hot"); ok && i%2 == 0 {
			t.Errorf("step %d: hot client allowed with half a token", i)
		}
		l2.allow("newcomer-" + strconv.Itoa(i)) // inserts trigger sweeps
	}
}

func TestRateLimitConfig(t *testing.T) {
	for _, cfg := range []RateLimitConfig{{Rate: 0, Burst: 1}, {Rate: 1, Burst: 0}, {Rate: -1, Burst: 1}, {Rate: 1, Burst: 1, MaxClients: -1}} {
		if _, err := NewRateLimiter(cfg); err == nil {
			t.Errorf("NewRateLimiter(%+v) accepted", cfg)
		}
	}
}

// BenchmarkRateLimiter is the hot path: one map lookup and one token bucket
// per request, from many goroutines over a few hundred clients.
func BenchmarkRateLimiter(b *testing.B) {
	l, err := NewRateLimiter(RateLimitConfig{Rate: 1e9, Burst: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	clients := make([]string, 256)
	for i := range clients {
		clients[i] = "client-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.allow(clients[i%len(clients)])
			i++
		}
	})
}
