package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
	"github.com/obpay/payments/internal/handlers"
	"github.com/obpay/payments/internal/security"
)

// running is one `payments serve` run in this process.
type running struct {
	addr, admin string // bound addresses; admin empty without PAYMENTS_ADMIN_ADDR
	cancel      context.CancelFunc
	done        chan int
	logs        *lockedBuffer

	once sync.Once
	code int
}

// wait returns serve's exit code once it has stopped (at most 30s).
func (r *running) wait(t *testing.T) int {
	r.once.Do(func() {
		select {
		case r.code = <-r.done:
		case <-time.After(30 * time.Second):
			r.code = -1
			t.Error("serve did not stop within 30s")
		}
	})
	return r.code
}

// startServe runs serve with vars (and the test's routes, if any) until it
// listens; the test's cleanup stops it if the test did not.
func startServe(t *testing.T, vars map[string]string, routes ...func(e *echo.Echo)) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan int, 1), logs: &lockedBuffer{}}
	listening := make(chan string, 1)
	hooks := &serveHooks{
		admin:     func(a string) { r.admin = a },
		listening: func(a string) { listening <- a },
		routes: func(e *echo.Echo) {
			for _, f := range routes {
				f(e)
			}
		},
	}
	go func() { r.done <- run(ctx, []string{"serve"}, env(vars), io.Discard, r.logs, hooks) }()
	t.Cleanup(func() {
		cancel()
		r.wait(t)
	})
	select {
	case r.addr = <-listening:
	case code := <-r.done:
		r.once.Do(func() { r.code = code })
		t.Fatalf("serve exited with %d before listening; log:\n%s", code, r.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start within 60s")
	}
	return r
}

// get answers GET url's status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, string(b)
}

// redirectTo sends every request to addr whatever its URL names: a client
// whose proofs name one URL while it talks to another listener.
type redirectTo string

func (a redirectTo) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Host = string(a)
	r.Host = string(a)
	return http.DefaultTransport.RoundTrip(r)
}

// TestAdminListener runs serve with PAYMENTS_ADMIN_ADDR: the back office,
// /metrics and the profiles answer 404 on the public listener and are served
// on the admin one, whose back office takes proofs for its own URL only.
func TestAdminListener(t *testing.T) {
	adminPort := freeLoopbackPort(t)
	port := freeLoopbackPort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", port)
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", adminPort) // the default PAYMENTS_ADMIN_PUBLIC_URL
	r := startServe(t, map[string]string{"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
		"PAYMENTS_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "PAYMENTS_PUBLIC_URL": public,
		"PAYMENTS_ADMIN_ADDR": fmt.Sprintf(":%d", adminPort)})
	if r.admin == "" {
		t.Fatal("serve did not report the admin listener")
	}

	for _, tc := range []struct {
		path          string
		public, admin int
	}{
		{"/metrics", 404, 200},
		{"/debug/pprof/", 404, 200},
		{"/debug/pprof/cmdline", 404, 200},
		{"/internal/v1/ledger/reconcile", 404, 401}, // no token
		{"/healthz", 200, 200},
		{"/readyz", 200, 200},
		{"/.well-known/oauth-protected-resource", 200, 404},
	} {
		if got, body := get(t, public+tc.path); got != tc.public {
			t.Errorf("public GET %s = %d, want %d; body %s", tc.path, got, tc.public, body)
		}
		if got, body := get(t, adminURL+tc.path); got != tc.admin {
			t.Errorf("admin GET %s = %d, want %d; body %s", tc.path, got, tc.admin, body)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewTokenClient(client.TokenConfig{BaseURL: public, ClientID: sandboxAdminID, ClientSecret: sandboxAdminSecret, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	tokens := tc.ClientCredentialsSource("ledger:admin")
	reconcile := func(base string, opts ...client.Option) (int, string) {
		t.Helper()
		api, err := client.New(base, key, tokens, opts...)
		if err != nil {
			t.Fatal(err)
		}
		res, err := api.ReconcileLedgerWithResponse(ctx, &obapi.ReconcileLedgerParams{})
		if err != nil {
			t.Fatalf("reconcile via %s: %v", base, err)
		}
		return res.StatusCode(), res.HTTPResponse.Header.Get("WWW-Authenticate")
	}
	if got, _ := reconcile(public); got != 404 {
		t.Errorf("back office on the public listener = %d, want 404", got)
	}
	if got, _ := reconcile(adminURL); got != 200 {
		t.Errorf("back office on the admin listener with proofs for its URL = %d, want 200", got)
	}
	// Proofs whose htu names the public URL, sent to the admin listener.
	got, challenge := reconcile(public, client.WithHTTPClient(&http.Client{Transport: redirectTo(r.admin), Timeout: 30 * time.Second}))
	if got != 401 || !strings.Contains(challenge, `error="invalid_dpop_proof"`) {
		t.Errorf("back office on the admin listener with proofs for the public URL = %d %q, want 401 invalid_dpop_proof", got, challenge)
	}

	// The sandbox walk-through takes the admin listener's URL for its back
	// office calls.
	var out, errs lockedBuffer
	if code := run(ctx, []string{"sandbox", "pay", "--url", public, "--admin-url", adminURL}, env(nil), &out, &errs, nil); code != 0 {
		t.Errorf("sandbox pay with --admin-url = %d; stdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
	}
}

func TestAdminConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vars     map[string]string
		adminURL string // "" when refused
		errs     string
	}{
		{"off", nil, "", ""},
		{"wildcard host", map[string]string{"PAYMENTS_ADMIN_ADDR": ":9090"}, "http://127.0.0.1:9090", ""},
		{"all IPv4", map[string]string{"PAYMENTS_ADMIN_ADDR": "0.0.0.0:9090"}, "http://127.0.0.1:9090", ""},
		{"all IPv6", map[string]string{"PAYMENTS_ADMIN_ADDR": "[::]:9090"}, "http://127.0.0.1:9090", ""},
		{"private interface", map[string]string{"PAYMENTS_ADMIN_ADDR": "10.1.2.3:9090"}, "http://10.1.2.3:9090", ""},
		{"IPv6 loopback", map[string]string{"PAYMENTS_ADMIN_ADDR": "[::1]:9090"}, "http://[::1]:9090", ""},
		{"explicit URL", map[string]string{"PAYMENTS_ADMIN_ADDR": ":9090", "PAYMENTS_ADMIN_PUBLIC_URL": "https://admin.bank.internal"}, "https://admin.bank.internal", ""},
		{"port 0 needs a URL", map[string]string{"PAYMENTS_ADMIN_ADDR": "127.0.0.1:0"}, "", "PAYMENTS_ADMIN_PUBLIC_URL"},
		{"URL without address", map[string]string{"PAYMENTS_ADMIN_PUBLIC_URL": "http://127.0.0.1:9090"}, "", "PAYMENTS_ADMIN_PUBLIC_URL: needs PAYMENTS_ADMIN_ADDR"},
		{"same address as the API", map[string]string{"PAYMENTS_ADMIN_ADDR": ":8080"}, "", "PAYMENTS_ADMIN_ADDR: must differ"},
		{"same URL as the API", map[string]string{"PAYMENTS_ADMIN_ADDR": ":9090", "PAYMENTS_ADMIN_PUBLIC_URL": "http://localhost:8080/"}, "", "PAYMENTS_ADMIN_PUBLIC_URL: must differ"},
		{"bad address", map[string]string{"PAYMENTS_ADMIN_ADDR": "9090"}, "", "PAYMENTS_ADMIN_ADDR"},
		{"pprof on the admin address", map[string]string{"PAYMENTS_ADMIN_ADDR": "127.0.0.1:9090", "PAYMENTS_DEBUG_PPROF_ADDR": "127.0.0.1:9090"}, "", "PAYMENTS_DEBUG_PPROF_ADDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"PAYMENTS_DEV_AUTH": "true"}
			for k, v := range tc.vars {
				vars[k] = v
			}
			c, err := loadConfig(env(vars))
			if tc.errs != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errs) {
					t.Fatalf("loadConfig = %v, want an error with %q", err, tc.errs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AdminPublicURL != tc.adminURL {
				t.Errorf("AdminPublicURL = %q, want %q", c.AdminPublicURL, tc.adminURL)
			}
		})
	}
}

// TestRateLimitIsSharedByBothListeners: with an admin listener the back
// office's DPoP middleware gets the same limiter, so a client has one budget
// whichever listener it calls.
func TestRateLimitIsSharedByBothListeners(t *testing.T) {
	asClient := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			c.SetRequest(r.WithContext(security.WithPrincipal(r.Context(), security.Principal{ClientID: "bank-admin"})))
			return next(c)
		}
	}
	public, admin := echo.MiddlewareFunc(asClient), echo.MiddlewareFunc(asClient)
	rl, err := parseRateLimit("1/m,burst=1")
	if err != nil {
		t.Fatal(err)
	}
	if err := withRateLimit(rl, prometheus.NewRegistry(), &public, &admin); err != nil {
		t.Fatal(err)
	}
	call := func(m echo.MiddlewareFunc) error {
		c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/internal/v1/ledger/reconcile", nil), httptest.NewRecorder())
		return m(func(echo.Context) error { return nil })(c)
	}
	if err := call(public); err != nil {
		t.Fatalf("first call on the public listener = %v, want it through", err)
	}
	var apiErr *handlers.APIError
	if err := call(admin); !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests {
		t.Errorf("second call, on the admin listener = %v, want 429: one budget for both", err)
	}
}
