package security

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// authServer is a tiny RFC 7662 endpoint for the tests.
type authServer struct {
	calls  atomic.Int64
	answer func(w http.ResponseWriter, token string)
}

func (a *authServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	id, secret, ok := r.BasicAuth()
	if !ok || id != "rs%3Aclient" || secret != "s%26cret" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	a.answer(w, r.PostForm.Get("token"))
}

func jsonAnswer(body string) func(http.ResponseWriter, string) {
	return func(w http.ResponseWriter, _ string) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

func newIntrospector(t *testing.T, srvURL string, now func() time.Time) *HTTPIntrospector {
	t.Helper()
	in, err := NewHTTPIntrospector(IntrospectionConfig{
		URL: srvURL, ClientID: "rs:client", ClientSecret: "s&cret",
		Timeout: 300 * time.Millisecond, CacheTTL: 30 * time.Second, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return in
}

func TestHTTPIntrospectorParses(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		body string
		want Introspection
	}{
		{"full answer with aud array",
			`{"active":true,"scope":"payments accounts","client_id":"tpp","sub":"psu","exp":1800000300,"iat":1800000000,"nbf":1800000000,"token_type":"DPoP","cnf":{"jkt":"` + rfcJKT + `"},"aud":["a","b"],"consent_id":"c1","iss":"x"}`,
			Introspection{Active: true, Scope: "payments accounts", ClientID: "tpp", Subject: "psu", Exp: 1800000300, Iat: 1800000000, Nbf: 1800000000, TokenType: "DPoP", CnfJKT: rfcJKT, Aud: []string{"a", "b"}, ConsentID: "c1"}},
		{"aud as a string", `{"active":true,"aud":"a"}`, Introspection{Active: true, Aud: []string{"a"}}},
		{"inactive", `{"active":false}`, Introspection{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&authServer{answer: jsonAnswer(tt.body)})
			defer srv.Close()
			in := newIntrospector(t, srv.URL, func() time.Time { return now })
			got, err := in.Introspect(context.Background(), "tok")
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tt.want)
			if string(gb) != string(wb) {
				t.Errorf("Introspect = %s, want %s", gb, wb)
			}
		})
	}
}

func TestHTTPIntrospectorFailures(t *testing.T) {
	tests := []struct {
		name   string
		answer func(http.ResponseWriter, string)
	}{
		{"server error", func(w http.ResponseWriter, _ string) { http.Error(w, "down", 500) }},
		{"not JSON", func(w http.ResponseWriter, _ string) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>"))
		}},
		{"malformed JSON", jsonAnswer(`{"active":tru`)},
		{"active missing", jsonAnswer(`{"scope":"payments"}`)},
		{"active as string", jsonAnswer(`{"active":"true"}`)},
		{"aud as number", jsonAnswer(`{"active":true,"aud":5}`)},
		{"exp as string", jsonAnswer(`{"active":true,"exp":"soon"}`)},
		{"too slow", func(w http.ResponseWriter, _ string) { time.Sleep(time.Second); jsonAnswer(`{"active":true}`)(w, "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&authServer{answer: tt.answer})
			defer srv.Close()
			in := newIntrospector(t, srv.URL, time.Now)
			if got, err := in.Introspect(context.Background(), "tok"); err == nil {
				t.Errorf("Introspect = %+v, want an error", got)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := srv.URL
		srv.Close()
		in := newIntrospector(t, addr, time.Now)
		if _, err := in.Introspect(context.Background(), "tok"); err == nil {
			t.Error("Introspect against a closed port succeeded")
		}
	})
	t.Run("wrong client credentials", func(t *testing.T) {
		srv := httptest.NewServer(&authServer{answer: jsonAnswer(`{"active":true}`)})
		defer srv.Close()
		in, err := NewHTTPIntrospector(IntrospectionConfig{URL: srv.URL, ClientID: "rs:client", ClientSecret: "wrong"})
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if _, err := in.Introspect(context.Background(), "tok"); err == nil {
			t.Error("Introspect with a rejected client succeeded")
		}
	})
}

func TestHTTPIntrospectorCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	active := `{"active":true,"exp":1800000010,"cnf":{"jkt":"` + rfcJKT + `"}}`
	srv := &authServer{answer: func(w http.ResponseWriter, token string) {
		if token == "revoked" {
			jsonAnswer(`{"active":false}`)(w, token)
			return
		}
		jsonAnswer(active)(w, token)
	}}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	in := newIntrospector(t, hs.URL, clock)
	ctx := context.Background()

	if _, err := in.Introspect(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	in.cache.Wait() // ristretto writes are asynchronous
	for range 3 {
		if _, err := in.Introspect(ctx, "good"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("calls after cached answers = %d, want 1", n)
	}

	// Never past exp: at exp the cached answer is not used.
	now = now.Add(10 * time.Second)
	if _, err := in.Introspect(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("calls after exp = %d, want 2", n)
	}

	// Inactive answers are cached for NegativeCacheTTL (5s) on our clock.
	for range 3 {
		res, err := in.Introspect(ctx, "revoked")
		if err != nil || res.Active {
			t.Fatalf("Introspect(revoked) = %+v, %v", res, err)
		}
		in.negative.Wait()
	}
	if n := srv.calls.Load(); n != 3 {
		t.Errorf("calls after three inactive answers within the TTL = %d, want 3", n)
	}
	now = now.Add(5*time.Second - time.Nanosecond)
	if res, err := in.Introspect(ctx, "revoked"); err != nil || res.Active {
		t.Fatalf("Introspect(revoked) = %+v, %v", res, err)
	}
	if n := srv.calls.Load(); n != 3 {
		t.Errorf("calls just before the negative TTL = %d, want 3", n)
	}
	now = now.Add(time.Nanosecond)
	if res, err := in.Introspect(ctx, "revoked"); err != nil || res.Active {
		t.Fatalf("Introspect(revoked) = %+v, %v", res, err)
	}
	if n := srv.calls.Load(); n != 4 {
		t.Errorf("calls at the negative TTL = %d, want 4", n)
	}
}

// TestHTTPIntrospectorCacheTTL: an active answer without exp is reused for
// CacheTTL on the introspector's clock, not longer.
func TestHTTPIntrospectorCacheTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	srv := &authServer{answer: jsonAnswer(`{"active":true,"cnf":{"jkt":"` + rfcJKT + `"}}`)}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	in := newIntrospector(t, hs.URL, func() time.Time { return now })
	ctx := context.Background()
	if _, err := in.Introspect(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	in.cache.Wait()
	now = now.Add(30*time.Second - time.Nanosecond)
	if _, err := in.Introspect(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("calls within CacheTTL = %d, want 1", n)
	}
	now = now.Add(time.Nanosecond)
	if _, err := in.Introspect(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("calls at CacheTTL = %d, want 2", n)
	}
}

// TestHTTPIntrospectorNegativeCacheOff: a negative NegativeCacheTTL asks
// the server about an inactive token every time.
func TestHTTPIntrospectorNegativeCacheOff(t *testing.T) {
	srv := &authServer{answer: jsonAnswer(`{"active":false}`)}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	in, err := NewHTTPIntrospector(IntrospectionConfig{
		URL: hs.URL, ClientID: "rs:client", ClientSecret: "s&cret", NegativeCacheTTL: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for range 3 {
		if _, err := in.Introspect(context.Background(), "junk"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.calls.Load(); n != 3 {
		t.Errorf("calls = %d, want 3", n)
	}
}

func TestNewHTTPIntrospectorRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]IntrospectionConfig{
		"no URL":       {ClientID: "a", ClientSecret: "b"},
		"relative URL": {URL: "/introspect", ClientID: "a", ClientSecret: "b"},
		"no client id": {URL: "https://as.example/introspect", ClientSecret: "b"},
		"no secret":    {URL: "https://as.example/introspect", ClientID: "a"},
		"neg. timeout": {URL: "https://as.example/introspect", ClientID: "a", ClientSecret: "b", Timeout: -1},
		"neg. block":   {URL: "https://as.example/introspect", ClientID: "a", ClientSecret: "b", InactiveBlock: -1},
		"neg. keys":    {URL: "https://as.example/introspect", ClientID: "a", ClientSecret: "b", InactiveKeys: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewHTTPIntrospector(cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestIntrospectionDownProtectsRoutes runs the real HTTP introspector against
// a dead endpoint behind the middleware: 503 with Retry-After, no handler.
func TestIntrospectionDownProtectsRoutes(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	dead := hs.URL
	hs.Close()
	in := newIntrospector(t, dead, func() time.Time { return testNow })
	f := newFixture(t, "ES256", func(c *Config) { c.Introspector = in })
	s := newServer(t, f)
	w := s.do(f.post(f.proof()))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("status = %d, Retry-After = %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if s.handled.Load() != 0 {
		t.Error("handler ran while introspection was down")
	}
}

// TestHTTPIntrospectorReusesConnections: calls that are in flight together
// (uncached tokens, as with a new token per payment) keep their connections
// for the next calls instead of opening new ones each time. With net/http's
// default of two idle connections per host, every round after the first
// would open parallel-2 new connections.
func TestHTTPIntrospectorReusesConnections(t *testing.T) {
	const parallel, rounds = 16, 3
	var (
		mu      sync.Mutex
		arrived int
		release = make(chan struct{})
	)
	answer := jsonAnswer(`{"active":false}`) // inactive: never cached
	as := &authServer{answer: func(w http.ResponseWriter, token string) {
		// Hold every call until the whole round is in flight, so that the
		// round really needs parallel connections at once.
		mu.Lock()
		arrived++
		if arrived == parallel {
			close(release)
		}
		wait := release
		mu.Unlock()
		<-wait
		answer(w, token)
	}}
	var opened atomic.Int64
	hs := httptest.NewUnstartedServer(as)
	hs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	hs.Start()
	t.Cleanup(hs.Close)
	in, err := NewHTTPIntrospector(IntrospectionConfig{
		URL: hs.URL, ClientID: "rs:client", ClientSecret: "s&cret", Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)

	var afterFirst int64
	for r := range rounds {
		mu.Lock()
		arrived, release = 0, make(chan struct{})
		mu.Unlock()
		var wg sync.WaitGroup
		for i := range parallel {
			wg.Go(func() {
				if _, err := in.Introspect(context.Background(), fmt.Sprintf("token-%d-%d", r, i)); err != nil {
					t.Errorf("Introspect: %v", err)
				}
			})
		}
		wg.Wait()
		if r == 0 {
			afterFirst = opened.Load()
		}
	}
	if afterFirst != parallel || opened.Load() != afterFirst {
		t.Errorf("opened %d connections in the first round and %d in the next %d; want %d, then none",
			afterFirst, opened.Load()-afterFirst, rounds-1, parallel)
	}
}
