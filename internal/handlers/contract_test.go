package handlers

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestContractIsServed: GET /openapi.yaml answers, without a token, exactly
// the committed api/openapi.yaml, as YAML, cacheable and revalidated by its
// ETag.
func TestContractIsServed(t *testing.T) {
	committed, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, nil)

	rec := s.do(http.MethodGet, "/openapi.yaml", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.yaml = %d %s, want 200", rec.Code, rec.Body.String())
	}
	if !bytes.Equal(rec.Body.Bytes(), committed) {
		t.Errorf("GET /openapi.yaml answers %d bytes that differ from the committed api/openapi.yaml (%d bytes)", rec.Body.Len(), len(committed))
	}
	h := rec.Header()
	if got := h.Get("Content-Type"); got != "application/yaml" {
		t.Errorf("Content-Type = %q, want application/yaml", got)
	}
	if got := h.Get("Cache-Control"); !strings.HasPrefix(got, "public, max-age=") {
		t.Errorf("Cache-Control = %q, want public with a max-age", got)
	}
	etag := h.Get("ETag")
	if len(etag) < 3 || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
		t.Fatalf("ETag = %q, want a strong entity tag", etag)
	}

	tests := []struct {
		name, method string
		hdr          map[string]string
		status       int
		body         bool
	}{
		{"revalidation with the ETag", http.MethodGet, map[string]string{"If-None-Match": etag}, http.StatusNotModified, false},
		{"another ETag", http.MethodGet, map[string]string{"If-None-Match": `"other"`}, http.StatusOK, true},
		{"HEAD", http.MethodHead, nil, http.StatusOK, false},
		{"a DPoP token is not needed and not looked at", http.MethodGet, map[string]string{"Authorization": "DPoP junk"}, http.StatusOK, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := s.do(tc.method, "/openapi.yaml", "", tc.hdr)
			if rec.Code != tc.status {
				t.Fatalf("%s /openapi.yaml = %d, want %d", tc.method, rec.Code, tc.status)
			}
			if got := rec.Body.Len() > 0; got != tc.body {
				t.Errorf("body of %d bytes, want a body: %v", rec.Body.Len(), tc.body)
			}
			if got := rec.Header().Get("ETag"); got != etag {
				t.Errorf("ETag = %q, want %q", got, etag)
			}
		})
	}
	if rec := s.do(http.MethodPost, "/openapi.yaml", "", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /openapi.yaml = %d, want 405", rec.Code)
	}
}
