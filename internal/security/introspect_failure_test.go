package security

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// syncLog is a JSON slog destination that tests read line by line.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the log lines, decoded.
func (l *syncLog) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// errorLines returns the ERROR lines of the log.
func (l *syncLog) errorLines(t *testing.T) []map[string]any {
	var out []map[string]any
	for _, m := range l.lines(t) {
		if m["level"] == "ERROR" {
			out = append(out, m)
		}
	}
	return out
}

// outcomes gathers payments_introspection_answers_total by outcome, and the
// number of calls the latency histogram observed under "duration".
func outcomes(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		switch mf.GetName() {
		case "payments_introspection_answers_total":
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "outcome" {
						got[l.GetValue()] = m.GetCounter().GetValue()
					}
				}
			}
		case "payments_introspection_request_duration_seconds":
			got["duration"] = float64(mf.GetMetric()[0].GetHistogram().GetSampleCount())
		}
	}
	return got
}

// wantOutcomes compares the counters named in want; every other outcome
// must be zero.
func wantOutcomes(t *testing.T, reg *prometheus.Registry, want map[string]float64) {
	t.Helper()
	got := outcomes(t, reg)
	for _, o := range append(introspectionOutcomes, "duration") {
		if got[o] != want[o] {
			t.Errorf("outcome %s = %v, want %v (all: %v)", o, got[o], want[o], got)
		}
	}
}

func statusAnswerOf(status int, contentType, body string) func(http.ResponseWriter, string) {
	return func(w http.ResponseWriter, _ string) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// TestIntrospectionStatusMapping runs the verifier with the HTTP
// introspector against authorization servers answering in each way: what the
// client gets, what is counted and what is logged.
func TestIntrospectionStatusMapping(t *testing.T) {
	const js = "application/json"
	tests := []struct {
		name    string
		answer  func(http.ResponseWriter, string)
		status  int
		reason  string
		outcome string
	}{
		{"400 invalid_token", statusAnswerOf(400, js, `{"error":"invalid_token","error_description":"unknown"}`), 401, "token_inactive", outcomeInactive},
		{"400 unsupported_token_type", statusAnswerOf(400, js, `{"error":"unsupported_token_type"}`), 401, "token_inactive", outcomeInactive},
		{"400 invalid_token without a JSON content type", statusAnswerOf(400, "text/plain", `{"error":"invalid_token"}`), 401, "token_inactive", outcomeInactive},
		{"400 invalid_request", statusAnswerOf(400, js, `{"error":"invalid_request"}`), 503, "introspection_unavailable", outcomeAS4xx},
		{"400 without a body", statusAnswerOf(400, js, ``), 503, "introspection_unavailable", outcomeAS4xx},
		{"401 invalid_token (our credentials)", statusAnswerOf(401, js, `{"error":"invalid_token"}`), 503, "introspection_unavailable", outcomeCredentials},
		{"401 invalid_client", statusAnswerOf(401, js, `{"error":"invalid_client"}`), 503, "introspection_unavailable", outcomeCredentials},
		{"403", statusAnswerOf(403, js, `{"error":"access_denied"}`), 503, "introspection_unavailable", outcomeCredentials},
		{"404", statusAnswerOf(404, "text/html", `<html>not found</html>`), 503, "introspection_unavailable", outcomeAS4xx},
		{"500", statusAnswerOf(500, js, `{"error":"server_error"}`), 503, "introspection_unavailable", outcomeAS5xx},
		{"502 HTML", statusAnswerOf(502, "text/html", `<html>bad gateway</html>`), 503, "introspection_unavailable", outcomeAS5xx},
		{"302 redirect", func(w http.ResponseWriter, _ string) {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
		},
			503, "introspection_unavailable", outcomeASStatus},
		{"200 HTML body", statusAnswerOf(200, "text/html", `<html>login</html>`), 503, "introspection_unavailable", outcomeMalformed},
		{"200 JSON without active", statusAnswerOf(200, js, `{"scope":"payments"}`), 503, "introspection_unavailable", outcomeMalformed},
		{"timeout", func(w http.ResponseWriter, r string) { time.Sleep(time.Second); jsonAnswer(`{"active":false}`)(w, r) },
			503, "introspection_unavailable", outcomeTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := &authServer{answer: tt.answer}
			hs := httptest.NewServer(as)
			defer hs.Close()
			reg := prometheus.NewRegistry()
			logs := &syncLog{}
			in, err := NewHTTPIntrospector(IntrospectionConfig{
				URL: hs.URL, ClientID: "rs:client", ClientSecret: "s&cret", Timeout: 300 * time.Millisecond,
				Now: func() time.Time { return testNow }, Registerer: reg, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			f := newFixture(t, "ES256", func(c *Config) { c.Introspector = in })
			s := newServer(t, f)
			w := s.do(f.post(f.proof()))
			if w.Code != tt.status || s.lastErr == nil || s.lastErr.Reason != tt.reason {
				t.Fatalf("status = %d (%+v), want %d %s", w.Code, s.lastErr, tt.status, tt.reason)
			}
			if n := s.handled.Load(); n != 0 {
				t.Errorf("protected handler ran %d times", n)
			}
			if strings.Contains(logs.String(), testToken) || strings.Contains(logs.String(), "s&cret") {
				t.Errorf("log holds the token or the secret: %s", logs)
			}
			errs := logs.errorLines(t)
			if tt.status == 401 {
				if s.lastErr.Code != CodeInvalidToken {
					t.Errorf("code = %q, want %q", s.lastErr.Code, CodeInvalidToken)
				}
				if len(errs) != 0 {
					t.Errorf("ERROR lines for an inactive token: %v", errs)
				}
				// Cached negatively: the same token again is not sent.
				in.negative.Wait() // ristretto writes are asynchronous
				if w := s.do(f.post(f.proof())); w.Code != 401 || as.calls.Load() != 1 {
					t.Errorf("second try = %d after %d calls, want 401 after 1", w.Code, as.calls.Load())
				}
				wantOutcomes(t, reg, map[string]float64{tt.outcome: 1, outcomeCacheInactive: 1, "duration": 1})
				return
			}
			if got := w.Header().Get("Retry-After"); got == "" {
				t.Error("503 without Retry-After")
			}
			wantOutcomes(t, reg, map[string]float64{tt.outcome: 1, "duration": 1})
			if len(errs) != 1 {
				t.Fatalf("ERROR lines = %v, want one", errs)
			}
			if errs[0]["msg"] != "introspection failed" || errs[0]["outcome"] != tt.outcome {
				t.Errorf("ERROR line = %v, want msg %q, outcome %q", errs[0], "introspection failed", tt.outcome)
			}
		})
	}
}

// TestIntrospectionErrorLogNamesTheCause: the ERROR line carries the
// server's status and error code.
func TestIntrospectionErrorLogNamesTheCause(t *testing.T) {
	hs := httptest.NewServer(&authServer{answer: statusAnswerOf(401, "application/json", `{"error":"invalid_client"}`)})
	defer hs.Close()
	logs := &syncLog{}
	in, err := NewHTTPIntrospector(IntrospectionConfig{URL: hs.URL, ClientID: "rs:client", ClientSecret: "s&cret",
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := in.Introspect(context.Background(), "tok"); err == nil {
		t.Fatal("Introspect = nil error, want one")
	}
	errs := logs.errorLines(t)
	if len(errs) != 1 || errs[0]["as_status"] != float64(401) || errs[0]["as_error"] != "invalid_client" || errs[0]["suppressed"] != float64(0) {
		t.Errorf("ERROR lines = %v, want one with as_status 401, as_error invalid_client, suppressed 0", errs)
	}
}

// TestIntrospectionErrorLogRateLimit: one ERROR line per cause per 10s on the
// introspector's clock, and the next line counts the ones held back.
func TestIntrospectionErrorLogRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var status sync.Map
	status.Store("code", 500)
	hs := httptest.NewServer(&authServer{answer: func(w http.ResponseWriter, tok string) {
		code, _ := status.Load("code")
		statusAnswerOf(code.(int), "application/json", `{"error":"server_error"}`)(w, tok)
	}})
	defer hs.Close()
	logs := &syncLog{}
	in, err := NewHTTPIntrospector(IntrospectionConfig{URL: hs.URL, ClientID: "rs:client", ClientSecret: "s&cret",
		Now: clock, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fail := func() {
		t.Helper()
		if _, err := in.Introspect(context.Background(), "tok"); err == nil {
			t.Fatal("Introspect = nil error, want one")
		}
	}
	suppressed := func() []float64 {
		var out []float64
		for _, m := range logs.errorLines(t) {
			out = append(out, m["suppressed"].(float64))
		}
		return out
	}

	fail()
	advance(9 * time.Second)
	fail()
	if got := suppressed(); len(got) != 1 {
		t.Fatalf("ERROR lines after two failures within 10s = %v, want one", got)
	}
	status.Store("code", 502) // another cause is logged at once
	fail()
	if got := suppressed(); len(got) != 2 {
		t.Fatalf("ERROR lines after a second cause = %v, want two", got)
	}
	status.Store("code", 500)
	advance(time.Second) // 10s after the first 500 line
	fail()
	if got := suppressed(); len(got) != 3 || got[2] != 1 {
		t.Errorf("suppressed counts = %v, want [0 0 1]", got)
	}
}

func TestLogLimiterBoundsCauses(t *testing.T) {
	l := newLogLimiter(10 * time.Second)
	for i := range 3 * maxLogCauses {
		l.allow(fmt.Sprintf("cause-%d", i), testNow)
	}
	if n := len(l.causes); n > maxLogCauses+1 {
		t.Errorf("causes tracked = %d, want at most %d", n, maxLogCauses+1)
	}
	// Once the interval passed, quiet causes are forgotten for new ones.
	if ok, _ := l.allow("fresh", testNow.Add(10*time.Second)); !ok {
		t.Error("a new cause after the interval was held back")
	}
	if _, ok := l.causes["fresh"]; !ok {
		t.Error("the new cause shares the overflow slot after the interval")
	}
}

// TestIntrospectionMetrics counts each outcome of the cache, the per-key
// bound and the calls.
func TestIntrospectionMetrics(t *testing.T) {
	jkt := rfcJKT
	hs := httptest.NewServer(&authServer{answer: func(w http.ResponseWriter, tok string) {
		switch {
		case tok == "good":
			jsonAnswer(fmt.Sprintf(`{"active":true,"exp":%d,"cnf":{"jkt":%q}}`, testNow.Unix()+60, jkt))(w, tok)
		case strings.HasPrefix(tok, "gone"):
			statusAnswerOf(400, "application/json", `{"error":"invalid_token"}`)(w, tok)
		default:
			jsonAnswer(`{"active":false}`)(w, tok)
		}
	}})
	defer hs.Close()
	reg := prometheus.NewRegistry()
	in, err := NewHTTPIntrospector(IntrospectionConfig{URL: hs.URL, ClientID: "rs:client", ClientSecret: "s&cret",
		Now: func() time.Time { return testNow }, Registerer: reg, InactivePerKey: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx := context.Background()
	ask := func(tok string) error { _, err := in.IntrospectKey(ctx, tok, jkt); return err }

	_ = ask("good")
	in.cache.Wait()
	_ = ask("good") // cache_hit_active
	_ = ask("junk-1")
	in.negative.Wait()
	_ = ask("junk-1") // cache_hit_inactive
	_ = ask("gone-1") // 400 invalid_token: inactive, counted by the bound (2)
	if err := ask("junk-2"); !errors.Is(err, ErrIntrospectionThrottled) {
		t.Errorf("third inactive token for the key = %v, want ErrIntrospectionThrottled", err)
	}
	wantOutcomes(t, reg, map[string]float64{
		outcomeActive: 1, outcomeCacheActive: 1, outcomeInactive: 2, outcomeCacheInactive: 1, outcomeThrottled: 1,
		"duration": 3,
	})

	// A second introspector on the same registry (a discovered endpoint that
	// changed) counts into the same metrics.
	second, err := NewHTTPIntrospector(IntrospectionConfig{URL: hs.URL, ClientID: "rs:client", ClientSecret: "s&cret", Registerer: reg,
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatalf("second introspector on one registry: %v", err)
	}
	defer second.Close()
	if _, err := second.Introspect(context.Background(), "junk-1"); err != nil {
		t.Fatal(err)
	}
	wantOutcomes(t, reg, map[string]float64{
		outcomeActive: 1, outcomeCacheActive: 1, outcomeInactive: 3, outcomeCacheInactive: 1, outcomeThrottled: 1,
		"duration": 4,
	})
}
