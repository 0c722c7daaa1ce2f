package security

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tokenAS is a fake RFC 7662 endpoint: the tokens in active are active and
// bound to their key; every other token is unknown; while down is set it
// answers 500. It counts the calls per token.
type tokenAS struct {
	*authServer
	mu     sync.Mutex
	active map[string]string // token -> cnf.jkt
	down   atomic.Bool
	asked  map[string]int
}

func newTokenAS(t *testing.T) (*tokenAS, *httptest.Server) {
	a := &tokenAS{authServer: &authServer{}, active: map[string]string{}, asked: map[string]int{}}
	a.answer = func(w http.ResponseWriter, token string) {
		if a.down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		a.mu.Lock()
		a.asked[token]++
		jkt, ok := a.active[token]
		a.mu.Unlock()
		if !ok {
			jsonAnswer(`{"active":false}`)(w, token)
			return
		}
		jsonAnswer(fmt.Sprintf(`{"active":true,"scope":"payments","client_id":"tpp-1","sub":"psu-1",`+
			`"exp":%d,"token_type":"DPoP","consent_id":"consent-1","cnf":{"jkt":%q}}`, testNow.Unix()+300, jkt))(w, token)
	}
	hs := httptest.NewServer(a)
	t.Cleanup(hs.Close)
	return a, hs
}

// issue makes token an active token bound to k.
func (a *tokenAS) issue(token string, k *testKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.active[token] = k.jkt
}

func (a *tokenAS) askedAbout(token string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked[token]
}

// amplification is a verifier behind the middleware that introspects with
// the real HTTPIntrospector against tokenAS, all on the fixture's clock.
type amplification struct {
	*fixture
	as  *tokenAS
	in  *HTTPIntrospector
	srv *server
}

func newAmplification(t *testing.T, cfg IntrospectionConfig) *amplification {
	t.Helper()
	as, hs := newTokenAS(t)
	a := &amplification{as: as}
	cfg.URL, cfg.ClientID, cfg.ClientSecret = hs.URL, "rs:client", "s&cret"
	cfg.Now = func() time.Time { return a.now } // a.fixture is set before any call
	in, err := NewHTTPIntrospector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	a.in = in
	a.fixture = newFixture(t, "ES256", func(c *Config) { c.Introspector = in })
	a.srv = newServer(t, a.fixture)
	return a
}

// send presents token with a fresh proof by k and returns the answer.
func (a *amplification) send(k *testKey, token string) *httptest.ResponseRecorder {
	a.t.Helper()
	c := a.claims(http.MethodPost, testURL)
	c["ath"] = athOf(token)
	r := httpReq(http.MethodPost, testPath, []string{"DPoP " + token}, []string{k.sign(a.t, k.header(), c)})
	return a.srv.do(r)
}

// wait lets ristretto apply the writes of the answers so far (its writes
// are asynchronous).
func (a *amplification) wait() {
	a.in.cache.Wait()
	a.in.negative.Wait()
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, status int, what string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("%s: status %d, want %d (body %s)", what, w.Code, status, w.Body)
	}
}

func wantInvalidToken(t *testing.T, w *httptest.ResponseRecorder, what string) {
	t.Helper()
	wantStatus(t, w, http.StatusUnauthorized, what)
	want := `DPoP error="invalid_token", error_description="Invalid access token", algs="ES256 EdDSA Ed25519 PS256"`
	if got := w.Header().Get("WWW-Authenticate"); got != want {
		t.Fatalf("%s: WWW-Authenticate = %q, want %q", what, got, want)
	}
}

// flood sends n distinct unknown tokens with k and checks that each gets 401
// invalid_token.
func (a *amplification) flood(t *testing.T, k *testKey, prefix string, n int) {
	t.Helper()
	for i := range n {
		wantInvalidToken(t, a.send(k, prefix+strconv.Itoa(i)), "unknown token")
	}
}

// TestInactiveTokensCannotAmplify: one key with validly signed proofs and
// many unknown tokens makes at most InactivePerKey (10) introspection calls
// in a second; past that, its uncached tokens get the inactive token's
// answer without a call for InactiveBlock (5s), while its cached active
// tokens, other keys and valid tokens keep working.
func TestInactiveTokensCannotAmplify(t *testing.T) {
	t.Run("200 unknown tokens from one key make 10 calls", func(t *testing.T) {
		a := newAmplification(t, IntrospectionConfig{})
		a.flood(t, a.key, "bogus-", 200)
		if n := a.as.calls.Load(); n != 10 {
			t.Errorf("introspection calls = %d, want 10", n)
		}
		if n := a.srv.handled.Load(); n != 0 {
			t.Errorf("handler ran %d times", n)
		}
		// After the block, the key's next unknown token is checked again.
		a.now = a.now.Add(5 * time.Second)
		wantInvalidToken(t, a.send(a.key, "bogus-after"), "unknown token after the block")
		if n := a.as.askedAbout("bogus-after"); n != 1 {
			t.Errorf("calls for a token after the block = %d, want 1", n)
		}
	})

	t.Run("throttled answer is the unknown token's answer", func(t *testing.T) {
		a := newAmplification(t, IntrospectionConfig{})
		unknown := a.send(a.key, "bogus-first")
		if a.srv.lastErr == nil || a.srv.lastErr.Reason != "token_inactive" {
			t.Fatalf("first unknown token: %v, want token_inactive", a.srv.lastErr)
		}
		a.flood(t, a.key, "bogus-", 20)
		throttled := a.send(a.key, "bogus-last")
		if a.srv.lastErr == nil || a.srv.lastErr.Reason != "token_throttled" {
			t.Fatalf("token past the bound: %v, want token_throttled", a.srv.lastErr)
		}
		if a.as.askedAbout("bogus-last") != 0 {
			t.Error("a throttled token reached the authorization server")
		}
		if throttled.Code != unknown.Code {
			t.Errorf("status = %d, want the unknown token's %d", throttled.Code, unknown.Code)
		}
		// maps.EqualFunc rather than go-cmp: cmp's reflection keeps every
		// method in the test binary, which would skew BenchmarkVerify.
		if !maps.EqualFunc(unknown.Header(), throttled.Header(), slices.Equal) {
			t.Errorf("headers = %v, want the unknown token's %v", throttled.Header(), unknown.Header())
		}
		if got, want := throttled.Body.String(), unknown.Body.String(); got != want {
			t.Errorf("body = %s, want the unknown token's %s", got, want)
		}
	})

	t.Run("cached active token of the throttled key keeps working", func(t *testing.T) {
		a := newAmplification(t, IntrospectionConfig{})
		a.as.issue("valid-1", a.key)
		wantStatus(t, a.send(a.key, "valid-1"), http.StatusOK, "valid token")
		a.wait()
		a.flood(t, a.key, "bogus-", 200)
		for range 3 {
			wantStatus(t, a.send(a.key, "valid-1"), http.StatusOK, "cached valid token during the block")
		}
		if n := a.as.askedAbout("valid-1"); n != 1 {
			t.Errorf("calls for the cached token = %d, want 1", n)
		}
	})

	t.Run("uncached valid token of the throttled key waits for the block to end", func(t *testing.T) {
		a := newAmplification(t, IntrospectionConfig{})
		a.flood(t, a.key, "bogus-", 10)
		a.as.issue("valid-new", a.key)
		wantInvalidToken(t, a.send(a.key, "valid-new"), "uncached token during the block")
		if n := a.as.askedAbout("valid-new"); n != 0 {
			t.Errorf("calls for an uncached token during the block = %d, want 0", n)
		}
		a.now = a.now.Add(5*time.Second - time.Nanosecond)
		wantInvalidToken(t, a.send(a.key, "valid-new"), "uncached token just before the block ends")
		a.now = a.now.Add(time.Nanosecond)
		wantStatus(t, a.send(a.key, "valid-new"), http.StatusOK, "token after the block")
	})

	t.Run("another key is unaffected", func(t *testing.T) {
		a := newAmplification(t, IntrospectionConfig{})
		other := sharedKey(t, "client-other-ES256", "ES256")
		a.flood(t, a.key, "bogus-", 200)
		before := a.as.calls.Load()
		wantInvalidToken(t, a.send(other, "bogus-other"), "other key's unknown token")
		if n := a.as.calls.Load() - before; n != 1 {
			t.Errorf("calls for the other key's unknown token = %d, want 1", n)
		}
		a.as.issue("valid-other", other)
		wantStatus(t, a.send(other, "valid-other"), http.StatusOK, "other key's valid token")
	})

	t.Run("many valid tokens from one key are never throttled", func(t *testing.T) {
		a := newAmplification(t, IntrospectionConfig{})
		// Nine unknown tokens in the same second stay under the bound.
		a.flood(t, a.key, "bogus-", 9)
		for i := range 300 {
			token := "payment-" + strconv.Itoa(i) // one token per payment
			a.as.issue(token, a.key)
			wantStatus(t, a.send(a.key, token), http.StatusOK, "valid token "+token)
		}
		if n := a.as.calls.Load(); n != 309 {
			t.Errorf("introspection calls = %d, want 309", n)
		}
	})

	t.Run("authorization server down: 503, not counted", func(t *testing.T) {
		a := newAmplification(t, IntrospectionConfig{})
		a.as.down.Store(true)
		for i := range 50 {
			w := a.send(a.key, "during-outage-"+strconv.Itoa(i))
			wantStatus(t, w, http.StatusServiceUnavailable, "token while the server is down")
			if w.Header().Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		}
		a.as.down.Store(false)
		before := a.as.calls.Load()
		wantInvalidToken(t, a.send(a.key, "bogus-after-outage"), "unknown token after the outage")
		if n := a.as.calls.Load() - before; n != 1 {
			t.Errorf("calls after the outage = %d, want 1 (failed calls must not count)", n)
		}
	})

	t.Run("repeated unknown token is answered from the negative cache", func(t *testing.T) {
		a := newAmplification(t, IntrospectionConfig{})
		wantInvalidToken(t, a.send(a.key, "bogus-again"), "unknown token")
		a.wait()
		a.now = a.now.Add(4 * time.Second)
		for range 50 {
			wantInvalidToken(t, a.send(a.key, "bogus-again"), "unknown token again")
		}
		if n := a.as.askedAbout("bogus-again"); n != 1 {
			t.Errorf("calls within the negative TTL = %d, want 1", n)
		}
		a.now = a.now.Add(time.Second)
		wantInvalidToken(t, a.send(a.key, "bogus-again"), "unknown token after the negative TTL")
		if n := a.as.askedAbout("bogus-again"); n != 2 {
			t.Errorf("calls after the negative TTL = %d, want 2", n)
		}
	})

	t.Run("configured bound and block", func(t *testing.T) {
		a := newAmplification(t, IntrospectionConfig{InactivePerKey: 3, InactiveBlock: time.Second})
		a.flood(t, a.key, "bogus-", 50)
		if n := a.as.calls.Load(); n != 3 {
			t.Errorf("introspection calls = %d, want 3", n)
		}
		a.now = a.now.Add(time.Second)
		a.flood(t, a.key, "later-", 50)
		if n := a.as.calls.Load(); n != 6 {
			t.Errorf("introspection calls after the block = %d, want 6", n)
		}
	})

	t.Run("bound disabled", func(t *testing.T) {
		a := newAmplification(t, IntrospectionConfig{InactivePerKey: -1})
		a.flood(t, a.key, "bogus-", 30)
		if n := a.as.calls.Load(); n != 30 {
			t.Errorf("introspection calls = %d, want 30", n)
		}
	})
}

// TestInactiveBoundUnderConcurrency: goroutines sending unknown tokens with
// one key at once make at most the bound plus the calls already in flight
// when it was reached (one per goroutine).
func TestInactiveBoundUnderConcurrency(t *testing.T) {
	const workers, each = 8, 25
	a := newAmplification(t, IntrospectionConfig{})
	other := sharedKey(t, "client-other-ES256", "ES256")
	a.as.issue("valid-other", other)
	reqs := make([][]Request, workers)
	for w := range workers {
		for i := range each {
			token := fmt.Sprintf("bogus-%d-%d", w, i)
			c := a.claims(http.MethodPost, testURL)
			c["ath"] = athOf(token)
			reqs[w] = append(reqs[w], Request{
				Method: http.MethodPost, URL: testURL,
				Authorization: []string{"DPoP " + token}, DPoP: []string{a.key.sign(t, a.key.header(), c)},
			})
		}
	}
	validReq := func() Request {
		c := a.claims(http.MethodPost, testURL)
		c["ath"] = athOf("valid-other")
		return Request{Method: http.MethodPost, URL: testURL,
			Authorization: []string{"DPoP valid-other"}, DPoP: []string{other.sign(t, other.header(), c)}}
	}
	valid := make([]Request, each)
	for i := range valid {
		valid[i] = validReq()
	}
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for _, r := range reqs[w] {
				_, _, err := a.v.Verify(context.Background(), r)
				var e *Error
				if !errors.As(err, &e) || e.Status != 401 || e.Code != CodeInvalidToken {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for _, r := range valid {
			if _, _, err := a.v.Verify(context.Background(), r); err != nil {
				wrong.Add(1)
			}
		}
	})
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d answers were not 401 invalid_token for unknown tokens or success for the valid one", n)
	}
	bogus := a.as.calls.Load() - int64(a.as.askedAbout("valid-other"))
	if bogus < 10 || bogus > 10+workers {
		t.Errorf("calls for unknown tokens = %d, want 10 to %d", bogus, 10+workers)
	}
}

// TestInactiveLimiterIsBounded: a flood of distinct keys never makes the
// table hold more than its bound, and the most recent keys stay counted.
func TestInactiveLimiterIsBounded(t *testing.T) {
	now := testNow
	l := newInactiveLimiter(2, 5*time.Second, 1600)
	for i := range 100_000 {
		l.inactive("key-"+strconv.Itoa(i), now)
	}
	if n := l.size(); n > 1600 {
		t.Errorf("tracked keys = %d, want at most 1600", n)
	}
	l.inactive("fresh", now)
	if l.blocked("fresh", now) {
		t.Error("key blocked after one inactive answer, bound 2")
	}
	l.inactive("fresh", now)
	if !l.blocked("fresh", now) {
		t.Error("key not blocked after two inactive answers, bound 2")
	}
	if !l.blocked("fresh", now.Add(5*time.Second-time.Nanosecond)) || l.blocked("fresh", now.Add(5*time.Second)) {
		t.Error("block does not last exactly 5s")
	}
	// Counts older than the window do not add up.
	l.inactive("slow", now)
	l.inactive("slow", now.Add(time.Second))
	if l.blocked("slow", now.Add(time.Second)) {
		t.Error("two inactive answers a second apart blocked the key, bound 2 per second")
	}
}

// TestInactiveLimiterConcurrent exercises the table from many goroutines
// (run with -race).
func TestInactiveLimiterConcurrent(t *testing.T) {
	l := newInactiveLimiter(10, time.Second, 64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := "key-" + strconv.Itoa((g*2000+i)%200)
				l.inactive(k, testNow)
				l.blocked(k, testNow)
			}
		})
	}
	wg.Wait()
	if n := l.size(); n > 64 {
		t.Errorf("tracked keys = %d, want at most 64", n)
	}
}
