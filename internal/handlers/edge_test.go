package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

func serve(e *echo.Echo, method, path string, h hdr) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("DPoP", "test-proof")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// TestEdgeSplitsAdminRoutes builds the edge with an admin server: the back
// office and /metrics answer there and 404 on the public server, the API
// answers on the public server and 404 on the admin one.
func TestEdgeSplitsAdminRoutes(t *testing.T) {
	a := newAPI(t) // for its handler's service and database
	h, err := NewHandler(HandlerConfig{Service: a.svc, Logger: slog.New(slog.DiscardHandler), PublicURL: testBase})
	if err != nil {
		t.Fatal(err)
	}
	edge, err := NewEdge(Config{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Ping:        func(context.Context) error { return nil },
		Routes:      func(e *echo.Echo) error { return RegisterAPIRoutes(e, h, fakeDPoP) },
		AdminRoutes: func(e *echo.Echo) error { return RegisterBackOfficeRoutes(e, h, fakeDPoP) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if edge.Admin == nil {
		t.Fatal("NewEdge with AdminRoutes built no admin server")
	}
	tests := []struct {
		name          string
		method, path  string
		h             hdr
		public, admin int
	}{
		{"back office", http.MethodGet, "/internal/v1/ledger/reconcile", admin, 404, 200},
		{"back office without a token", http.MethodGet, "/internal/v1/ledger/reconcile", nil, 404, 401},
		{"metrics", http.MethodGet, "/metrics", nil, 404, 200},
		{"API", http.MethodPut, "/open-banking/v3.1/aisp/accounts", tpp("tpp-a", "accounts"), 405, 404},
		{"health", http.MethodGet, "/healthz", nil, 200, 200},
		{"readiness", http.MethodGet, "/readyz", nil, 200, 200},
		{"contract", http.MethodGet, "/openapi.yaml", nil, 200, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if rec := serve(edge.Public, tc.method, tc.path, tc.h); rec.Code != tc.public {
				t.Errorf("public %s %s = %d, want %d; body %s", tc.method, tc.path, rec.Code, tc.public, rec.Body.String())
			}
			if rec := serve(edge.Admin, tc.method, tc.path, tc.h); rec.Code != tc.admin {
				t.Errorf("admin %s %s = %d, want %d; body %s", tc.method, tc.path, rec.Code, tc.admin, rec.Body.String())
			}
		})
	}
	// One set of HTTP metrics counts both servers' requests.
	rec := serve(edge.Admin, http.MethodGet, "/metrics", nil)
	if !strings.Contains(rec.Body.String(), `route="/open-banking/v3.1/aisp/accounts",status="405"`) {
		t.Errorf("admin /metrics does not count the public server's requests:\n%s", rec.Body.String())
	}
}

func TestNewRefusesAdminRoutes(t *testing.T) {
	_, err := New(Config{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Ping: func(context.Context) error { return nil }, AdminRoutes: func(*echo.Echo) error { return nil }})
	if err == nil {
		t.Fatal("New with AdminRoutes = nil error, want one pointing at NewEdge")
	}
}

// TestReadyzNamesWhatIsDown checks the 503 body names each cause, and that
// readiness comes back when they do.
func TestReadyzNamesWhatIsDown(t *testing.T) {
	var dbDown, redisDown, draining atomic.Bool
	ping := func(down *atomic.Bool) func(context.Context) error {
		return func(context.Context) error {
			if down.Load() {
				return errors.New("dial tcp 10.0.0.7:6379: connection refused")
			}
			return nil
		}
	}
	logs := &syncBuffer{}
	e, err := New(Config{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Registry: prometheus.NewRegistry(),
		Ping:     ping(&dbDown),
		Checks:   []ReadyCheck{{Name: "Redis", Ping: ping(&redisDown)}},
		Draining: draining.Load,
		Status: func(context.Context) map[string]string {
			return map[string]string{"AuthorizationServer": "UNREACHABLE"}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		db, redis, drain bool
		want             int
		messages         []string
	}{
		{"all up, authorization server down", false, false, false, 200, nil},
		{"redis down", false, true, false, 503, []string{"Redis unreachable"}},
		{"database and redis down", true, true, false, 503, []string{"Database unreachable", "Redis unreachable"}},
		{"draining", false, false, true, 503, []string{"Shutting down"}},
		{"back", false, false, false, 200, nil},
	}
	for _, tc := range tests {
		dbDown.Store(tc.db)
		redisDown.Store(tc.redis)
		draining.Store(tc.drain)
		rec := serve(e, http.MethodGet, "/readyz", nil)
		if rec.Code != tc.want {
			t.Fatalf("%s: readyz = %d, want %d; body %s", tc.name, rec.Code, tc.want, rec.Body.String())
		}
		if tc.want == 200 {
			continue
		}
		var got []string
		for _, d := range decodeError(t, rec).Errors {
			got = append(got, d.Message)
		}
		if strings.Join(got, "|") != strings.Join(tc.messages, "|") {
			t.Errorf("%s: readyz causes = %q, want %q", tc.name, got, tc.messages)
		}
		if rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: readyz 503 without Retry-After", tc.name)
		}
		if strings.Contains(rec.Body.String(), "10.0.0.7") {
			t.Errorf("%s: readyz body shows the error text: %s", tc.name, rec.Body.String())
		}
	}
	var warns, agains int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON", line)
		}
		switch m["msg"] {
		case "not ready":
			warns++
		case "ready again":
			agains++
		}
		if m["msg"] == "http request" {
			t.Errorf("a probe was access-logged at INFO: %s", line)
		}
	}
	if warns != 1 || agains != 1 {
		t.Errorf("logged %d 'not ready' and %d 'ready again', want one each (changes only)", warns, agains)
	}
}

// TestProbesAreAccessLoggedAtDebug: at DEBUG the probes are in the access
// log, at INFO they are not; other requests are at INFO.
func TestProbesAreAccessLoggedAtDebug(t *testing.T) {
	s := newTestServer(t, nil) // logs at DEBUG
	for _, p := range []string{"/healthz", "/readyz", "/nope"} {
		s.do(http.MethodGet, p, "", nil)
	}
	levels := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m["msg"] == "http request" {
			levels[m["path"].(string)], _ = m["level"].(string)
		}
	}
	want := map[string]string{"/healthz": "DEBUG", "/readyz": "DEBUG", "/nope": "INFO"}
	for p, l := range want {
		if levels[p] != l {
			t.Errorf("access log level of %s = %q, want %s", p, levels[p], l)
		}
	}
}
