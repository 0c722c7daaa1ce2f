package handlers

import (
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

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	e    *echo.Echo
	logs *syncBuffer
}

func newTestServer(t *testing.T, ping func(context.Context) error) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if ping == nil {
		ping = func(context.Context) error { return nil }
	}
	e, err := New(Config{
		Logger:    log,
		Registry:  prometheus.NewRegistry(),
		BodyLimit: 1024,
		Ping:      ping,
		Routes: func(e *echo.Echo) error {
			e.GET("/test/panic", func(echo.Context) error { panic("boom") })
			e.POST("/test/echo", func(c echo.Context) error {
				var v map[string]any
				if err := json.NewDecoder(c.Request().Body).Decode(&v); err != nil {
					return err
				}
				return c.JSON(http.StatusOK, v)
			})
			e.GET("/test/auth", func(c echo.Context) error {
				return &APIError{Status: http.StatusUnauthorized, Details: []ErrorDetail{{ErrorCode: CodeUnauthorized, Message: "no"}}}
			})
			return nil
		},
	})
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	return &testServer{e: e, logs: logs}
}

func (s *testServer) do(method, path string, body string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.e.ServeHTTP(rec, req)
	return rec
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder) ErrorBody {
	t.Helper()
	var b ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q is not OBErrorResponse1: %v", rec.Body.String(), err)
	}
	if b.Code == "" || b.Message == "" || len(b.Errors) == 0 || b.Errors[0].ErrorCode == "" {
		t.Fatalf("error body %+v lacks Code, Message or Errors[0].ErrorCode", b)
	}
	return b
}

func TestInteractionIDOnEveryResponse(t *testing.T) {
	s := newTestServer(t, func(context.Context) error { return errors.New("db down") })
	cases := []struct {
		name, method, path string
		wantStatus         int
	}{
		{"200 health", http.MethodGet, "/healthz", http.StatusOK},
		{"404 unknown path", http.MethodGet, "/nope", http.StatusNotFound},
		{"405 wrong method", http.MethodDelete, "/healthz", http.StatusMethodNotAllowed},
		{"401 handler error", http.MethodGet, "/test/auth", http.StatusUnauthorized},
		{"500 panic", http.MethodGet, "/test/panic", http.StatusInternalServerError},
		{"503 not ready", http.MethodGet, "/readyz", http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sent := uuid.NewString()
			rec := s.do(tc.method, tc.path, "", map[string]string{HeaderInteractionID: sent})
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Header().Get(HeaderInteractionID); got != sent {
				t.Errorf("echoed interaction id = %q, want %q", got, sent)
			}
			rec = s.do(tc.method, tc.path, "", nil)
			got := rec.Header().Get(HeaderInteractionID)
			if _, err := uuid.Parse(got); err != nil || len(got) != 36 {
				t.Errorf("generated interaction id = %q, want a UUID", got)
			}
			if tc.wantStatus >= 400 {
				b := decodeError(t, rec)
				if b.ID != got {
					t.Errorf("error body Id = %q, want the interaction id %q", b.ID, got)
				}
			}
		})
	}
}

func TestInteractionIDNotReflectedWhenNotUUID(t *testing.T) {
	s := newTestServer(t, nil)
	rec := s.do(http.MethodGet, "/healthz", "", map[string]string{HeaderInteractionID: "<script>"})
	got := rec.Header().Get(HeaderInteractionID)
	if got == "<script>" {
		t.Fatal("non-UUID interaction id was reflected")
	}
	if _, err := uuid.Parse(got); err != nil {
		t.Fatalf("interaction id = %q, want a fresh UUID", got)
	}
}

func TestPanicIsLoggedAtErrorAndAnswered500(t *testing.T) {
	s := newTestServer(t, nil)
	rec := s.do(http.MethodGet, "/test/panic", "", nil)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	if b := decodeError(t, rec); b.Errors[0].ErrorCode != CodeUnexpectedError {
		t.Errorf("ErrorCode = %q, want %q", b.Errors[0].ErrorCode, CodeUnexpectedError)
	}
	if !strings.Contains(s.logs.String(), `"level":"ERROR","msg":"panic while serving request"`) {
		t.Errorf("panic not logged at ERROR; log:\n%s", s.logs.String())
	}
}

func TestBodyLimitAnswers413WithOBError(t *testing.T) {
	s := newTestServer(t, nil)
	big := `{"a":"` + strings.Repeat("x", 2048) + `"}`
	rec := s.do(http.MethodPost, "/test/echo", big, map[string]string{"Content-Type": "application/json"})
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413", rec.Code)
	}
	if b := decodeError(t, rec); b.Errors[0].ErrorCode != CodeRequestEntityTooLarge {
		t.Errorf("ErrorCode = %q", b.Errors[0].ErrorCode)
	}
	small := s.do(http.MethodPost, "/test/echo", `{"a":"b"}`, map[string]string{"Content-Type": "application/json"})
	if small.Code != http.StatusOK {
		t.Fatalf("small body status = %d, want 200", small.Code)
	}
}

func TestAccessLogNeverContainsCredentials(t *testing.T) {
	s := newTestServer(t, nil)
	secrets := map[string]string{
		"Authorization": "DPoP secret-token",
		"DPoP":          "secret-proof",
		"Cookie":        "session=secret-cookie",
	}
	for _, path := range []string{"/healthz", "/test/auth", "/nope?access_token=secret-query", "/test/panic"} {
		s.do(http.MethodGet, path, "", secrets)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"msg":"http request"`) {
		t.Fatalf("no access log lines written:\n%s", logs)
	}
	for _, secret := range []string{"secret-token", "secret-proof", "secret-cookie", "secret-query"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q:\n%s", secret, logs)
		}
	}
}

func TestMetricsCountRequestsByRouteAndStatus(t *testing.T) {
	s := newTestServer(t, nil)
	s.do(http.MethodGet, "/healthz", "", nil)
	s.do(http.MethodGet, "/nope", "", nil)
	rec := s.do(http.MethodGet, "/metrics", "", nil)
	body := rec.Body.String()
	for _, want := range []string{
		`payments_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`payments_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`payments_http_request_duration_seconds_bucket{method="GET",route="/healthz",status="200"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestReadyz(t *testing.T) {
	ok := newTestServer(t, nil)
	if rec := ok.do(http.MethodGet, "/readyz", "", nil); rec.Code != http.StatusOK {
		t.Errorf("readyz with a working database = %d, want 200", rec.Code)
	}
	slow := newTestServer(t, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	rec := slow.do(http.MethodGet, "/readyz", "", nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a hanging database = %d, want 503", rec.Code)
	}
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestDateHeaderOnEveryResponse(t *testing.T) {
	s := newTestServer(t, nil)
	srv := httptest.NewServer(s.e)
	defer srv.Close()
	for _, path := range []string{"/healthz", "/nope", "/test/panic"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if _, err := http.ParseTime(res.Header.Get("Date")); err != nil {
			t.Errorf("%s: Date header %q: %v", path, res.Header.Get("Date"), err)
		}
	}
}

// TestRequestDeadline checks that a request that runs past the request
// timeout is abandoned: the handler's context ends, the answer is a 503 with
// Retry-After, and it is logged as normal traffic, not as a bug.
func TestRequestDeadline(t *testing.T) {
	logs := &syncBuffer{}
	stopped := make(chan error, 1)
	e, err := New(Config{
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		Registry:       prometheus.NewRegistry(),
		RequestTimeout: 20 * time.Millisecond,
		Ping:           func(context.Context) error { return nil },
		Routes: func(e *echo.Echo) error {
			e.GET("/test/slow", func(c echo.Context) error {
				<-c.Request().Context().Done()
				stopped <- c.Request().Context().Err()
				return fmt.Errorf("slow work: %w", c.Request().Context().Err())
			})
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/test/slow", nil))
	if err := <-stopped; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("handler context ended with %v, want DeadlineExceeded", err)
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get(echo.HeaderRetryAfter) == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get(echo.HeaderRetryAfter))
	}
	var body ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Errors[0].ErrorCode != CodeUnexpectedError {
		t.Errorf("body %s, want %s", rec.Body.String(), CodeUnexpectedError)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("an abandoned request logged at ERROR:\n%s", logs.String())
	}
	if _, err := New(Config{Logger: slog.Default(), Registry: prometheus.NewRegistry(), RequestTimeout: -1,
		Ping: func(context.Context) error { return nil }}); err == nil {
		t.Error("New accepted a negative RequestTimeout")
	}
}
