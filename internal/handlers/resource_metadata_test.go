package handlers

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
)

// TestResourceMetadataDocuments checks the RFC 9728 documents for each
// configuration: where they are served, that resource is the identifier the
// URL was derived from (§3.3), and the members that depend on configuration.
func TestResourceMetadataDocuments(t *testing.T) {
	algs := []string{"ES256", "EdDSA", "Ed25519", "PS256"}
	doc := func(resource string, as []string, algs []string) map[string]any {
		m := map[string]any{
			"resource":                              resource,
			"scopes_supported":                      []any{"accounts", "payments"},
			"bearer_methods_supported":              []any{"header"},
			"resource_name":                         "Open Banking API",
			"authorization_details_types_supported": []any{"openbanking_intent"},
			"dpop_bound_access_tokens_required":     true,
		}
		var a []any
		for _, s := range algs {
			a = append(a, s)
		}
		m["dpop_signing_alg_values_supported"] = a
		if as != nil {
			var l []any
			for _, s := range as {
				l = append(l, s)
			}
			m["authorization_servers"] = l
		}
		return m
	}
	tests := []struct {
		name string
		cfg  ResourceMetadataConfig
		path string
		want map[string]any
	}{
		{"public URL, issuer configured",
			ResourceMetadataConfig{PublicURL: "https://api.bank.example", AuthorizationServers: []string{"https://as.bank.example"}, DPoPAlgs: algs},
			"/.well-known/oauth-protected-resource",
			doc("https://api.bank.example", []string{"https://as.bank.example"}, algs)},
		{"API base, issuer configured",
			ResourceMetadataConfig{PublicURL: "https://api.bank.example", AuthorizationServers: []string{"https://as.bank.example"}, DPoPAlgs: algs},
			"/.well-known/oauth-protected-resource/open-banking/v3.1",
			doc("https://api.bank.example/open-banking/v3.1", []string{"https://as.bank.example"}, algs)},
		{"v4.0 API base, issuer configured",
			ResourceMetadataConfig{PublicURL: "https://api.bank.example", AuthorizationServers: []string{"https://as.bank.example"}, DPoPAlgs: algs},
			"/.well-known/oauth-protected-resource/open-banking/v4.0",
			doc("https://api.bank.example/open-banking/v4.0", []string{"https://as.bank.example"}, algs)},
		{"no authorization server known",
			ResourceMetadataConfig{PublicURL: "https://api.bank.example", DPoPAlgs: []string{"ES256"}},
			"/.well-known/oauth-protected-resource/open-banking/v3.1",
			doc("https://api.bank.example/open-banking/v3.1", nil, []string{"ES256"})},
		{"trailing slash in the public URL",
			ResourceMetadataConfig{PublicURL: "http://localhost:8080/", AuthorizationServers: []string{"http://localhost:8080"}, DPoPAlgs: algs},
			"/.well-known/oauth-protected-resource",
			doc("http://localhost:8080", []string{"http://localhost:8080"}, algs)},
		{"path prefix: root document",
			ResourceMetadataConfig{PublicURL: "https://bank.example/payments", DPoPAlgs: algs},
			"/.well-known/oauth-protected-resource/payments",
			doc("https://bank.example/payments", nil, algs)},
		{"path prefix: API base",
			ResourceMetadataConfig{PublicURL: "https://bank.example/payments", DPoPAlgs: algs},
			"/.well-known/oauth-protected-resource/payments/open-banking/v3.1",
			doc("https://bank.example/payments/open-banking/v3.1", nil, algs)},
		{"path prefix: v4.0 API base",
			ResourceMetadataConfig{PublicURL: "https://bank.example/payments", DPoPAlgs: algs},
			"/.well-known/oauth-protected-resource/payments/open-banking/v4.0",
			doc("https://bank.example/payments/open-banking/v4.0", nil, algs)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := echo.New()
			if err := RegisterResourceMetadata(e, tt.cfg); err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200", tt.path, rec.Code)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if got := rec.Header().Get("Cache-Control"); got != "public, max-age=300" {
				t.Errorf("Cache-Control = %q, want public, max-age=300", got)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("document (-want +got):\n%s", d)
			}
		})
	}
}

// TestResourceMetadataOnlyPublishedIdentifiers checks that no document is
// served for identifiers the service does not publish: a client that
// inserted the well-known segment into another path finds nothing.
func TestResourceMetadataOnlyPublishedIdentifiers(t *testing.T) {
	e := echo.New()
	err := RegisterResourceMetadata(e, ResourceMetadataConfig{PublicURL: "https://bank.example/payments", DPoPAlgs: []string{"ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"/.well-known/oauth-protected-resource",
		"/.well-known/oauth-protected-resource/payments/internal/v1",
		"/.well-known/oauth-protected-resource/open-banking/v3.1",
		"/.well-known/oauth-protected-resource/open-banking/v4.0",
		"/payments/.well-known/oauth-protected-resource",
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, rec.Code)
		}
	}
}

func TestResourceMetadataURL(t *testing.T) {
	for _, tt := range []struct{ public, want string }{
		{"https://api.bank.example", "https://api.bank.example/.well-known/oauth-protected-resource"},
		{"http://localhost:8080/", "http://localhost:8080/.well-known/oauth-protected-resource"},
		{"https://bank.example/payments", "https://bank.example/.well-known/oauth-protected-resource/payments"},
	} {
		got, err := ResourceMetadataURL(tt.public)
		if err != nil || got != tt.want {
			t.Errorf("ResourceMetadataURL(%q) = %q, %v; want %q", tt.public, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "/relative", "ftp://x.example", "https://x.example/?q", "https://x.example/#f", "https://u:p@x.example"} {
		if got, err := ResourceMetadataURL(bad); err == nil {
			t.Errorf("ResourceMetadataURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestRegisterResourceMetadataRejectsBadConfig(t *testing.T) {
	ok := ResourceMetadataConfig{PublicURL: "https://api.bank.example", DPoPAlgs: []string{"ES256"}}
	for _, tt := range []struct {
		name string
		mod  func(*ResourceMetadataConfig)
	}{
		{"no public URL", func(c *ResourceMetadataConfig) { c.PublicURL = "" }},
		{"public URL with query", func(c *ResourceMetadataConfig) { c.PublicURL = "https://api.bank.example/?a=b" }},
		{"no algorithms", func(c *ResourceMetadataConfig) { c.DPoPAlgs = nil }},
		{"relative authorization server", func(c *ResourceMetadataConfig) { c.AuthorizationServers = []string{"as.bank.example"} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			if err := RegisterResourceMetadata(echo.New(), cfg); err == nil {
				t.Errorf("RegisterResourceMetadata accepted %s", tt.name)
			}
		})
	}
	if err := RegisterResourceMetadata(echo.New(), ok); err != nil {
		t.Errorf("RegisterResourceMetadata(valid) = %v", err)
	}
}
