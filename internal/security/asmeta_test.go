package security

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestMetadataURLs(t *testing.T) {
	cases := []struct {
		issuer string
		want   []string
	}{
		{"https://as.example", []string{
			"https://as.example/.well-known/oauth-authorization-server",
			"https://as.example/.well-known/openid-configuration",
		}},
		{"https://as.example/realms/bank", []string{
			"https://as.example/.well-known/oauth-authorization-server/realms/bank",
			"https://as.example/realms/bank/.well-known/openid-configuration",
			"https://as.example/realms/bank/.well-known/oauth-authorization-server",
			"https://as.example/.well-known/openid-configuration/realms/bank",
		}},
	}
	for _, tc := range cases {
		if got := metadataURLs(tc.issuer); !slices.Equal(got, tc.want) {
			t.Errorf("metadataURLs(%s) = %q, want %q", tc.issuer, got, tc.want)
		}
	}
}

func TestCheckIssuer(t *testing.T) {
	for issuer, ok := range map[string]bool{
		"https://as.example":          true,
		"https://as.example/tenant":   true,
		"http://127.0.0.1:8080":       true,
		"http://localhost:9000/x":     true,
		"http://as.example":           false,
		"https://as.example?x=1":      false,
		"https://as.example#f":        false,
		"https://user@as.example":     false,
		"as.example":                  false,
		"ftp://as.example":            false,
		"":                            false,
		"https://as.example/realm/ok": true,
	} {
		if err := CheckIssuer(issuer); (err == nil) != ok {
			t.Errorf("CheckIssuer(%q) = %v, want ok %v", issuer, err, ok)
		}
	}
}

func TestDiscoveryFetch(t *testing.T) {
	t.Run("RFC 8414 path insertion", func(t *testing.T) {
		as := newTestAS(t, "/tenant")
		d, err := NewDiscovery(DiscoveryConfig{Issuer: as.issuer})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Fetch(context.Background()); err != nil {
			t.Fatalf("Fetch = %v", err)
		}
		m, ok := d.Metadata()
		if !ok || m.JWKSURI != as.srv.URL+"/jwks" || m.IntrospectionEndpoint != as.srv.URL+"/introspect" || d.Status() != ASStatusUp {
			t.Errorf("Metadata = %+v %v, status %s", m, ok, d.Status())
		}
	})
	t.Run("falls back to openid-configuration", func(t *testing.T) {
		as := newTestAS(t, "/tenant")
		as.mu.Lock()
		as.metaPaths = map[string]bool{"/tenant/.well-known/openid-configuration": true}
		as.mu.Unlock()
		d, _ := NewDiscovery(DiscoveryConfig{Issuer: as.issuer})
		if err := d.Fetch(context.Background()); err != nil {
			t.Fatalf("Fetch = %v", err)
		}
	})
	t.Run("refuses another issuer", func(t *testing.T) {
		as := newTestAS(t, "")
		as.mu.Lock()
		as.metaIss = "https://evil.example"
		as.mu.Unlock()
		d, _ := NewDiscovery(DiscoveryConfig{Issuer: as.issuer})
		if err := d.Fetch(context.Background()); !errors.Is(err, ErrIssuerMismatch) {
			t.Fatalf("Fetch = %v, want ErrIssuerMismatch", err)
		}
		if _, ok := d.Metadata(); ok || d.Status() != ASStatusUnreachable {
			t.Errorf("metadata kept after a mismatch (status %s)", d.Status())
		}
	})
	t.Run("issuer with a trailing slash differs", func(t *testing.T) {
		as := newTestAS(t, "")
		as.mu.Lock()
		as.metaIss = as.issuer + "/"
		as.mu.Unlock()
		d, _ := NewDiscovery(DiscoveryConfig{Issuer: as.issuer})
		if err := d.Fetch(context.Background()); !errors.Is(err, ErrIssuerMismatch) {
			t.Fatalf("Fetch = %v, want ErrIssuerMismatch", err)
		}
	})
	t.Run("refuses a plain-http endpoint", func(t *testing.T) {
		srv := httptest.NewServer(nil)
		t.Cleanup(srv.Close)
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": "http://as.example/jwks"})
		})
		d, _ := NewDiscovery(DiscoveryConfig{Issuer: srv.URL})
		if err := d.Fetch(context.Background()); err == nil {
			t.Fatal("Fetch = nil, want an error")
		}
	})
	t.Run("a failed refresh keeps the metadata", func(t *testing.T) {
		as := newTestAS(t, "")
		d, _ := NewDiscovery(DiscoveryConfig{Issuer: as.issuer})
		if err := d.Fetch(context.Background()); err != nil {
			t.Fatal(err)
		}
		as.metaDown.Store(true)
		if err := d.Fetch(context.Background()); err == nil {
			t.Fatal("Fetch with the AS down = nil")
		}
		if _, ok := d.Metadata(); !ok || d.Status() != ASStatusStale {
			t.Errorf("Metadata ok %v, status %s, want kept and STALE", ok, d.Status())
		}
	})
}

func TestDiscoveryRunRetriesUntilTheASAnswers(t *testing.T) {
	as := newTestAS(t, "")
	as.metaDown.Store(true)
	d, err := NewDiscovery(DiscoveryConfig{Issuer: as.issuer, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(30 * time.Millisecond)
	if d.Status() != ASStatusUnreachable {
		t.Fatalf("status = %s, want UNREACHABLE", d.Status())
	}
	as.metaDown.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for d.Status() != ASStatusUp {
		if time.Now().After(deadline) {
			t.Fatal("metadata never fetched")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDiscoveredIntrospector(t *testing.T) {
	as := newTestAS(t, "")
	var calls atomic.Int64
	as.srv.Config.Handler.(*http.ServeMux).HandleFunc("/introspect", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"active":true,"client_id":"tpp-1"}`))
	})
	as.metaDown.Store(true)
	d, _ := NewDiscovery(DiscoveryConfig{Issuer: as.issuer})
	di, err := NewDiscoveredIntrospector(d, IntrospectionConfig{ClientID: "rs", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer di.Close()
	if _, err := di.IntrospectKey(context.Background(), "tok", "jkt"); !errors.Is(err, ErrAuthServerUnavailable) {
		t.Fatalf("IntrospectKey before discovery = %v, want ErrAuthServerUnavailable", err)
	}
	as.metaDown.Store(false)
	if err := d.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := di.Introspect(context.Background(), "tok")
	if err != nil || !res.Active || res.ClientID != "tpp-1" || calls.Load() != 1 {
		t.Fatalf("Introspect = %+v, %v (calls %d)", res, err, calls.Load())
	}
	if _, err := NewDiscoveredIntrospector(d, IntrospectionConfig{}); err == nil {
		t.Error("NewDiscoveredIntrospector without credentials = nil error")
	}
}
