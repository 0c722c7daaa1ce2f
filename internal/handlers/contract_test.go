package handlers

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestContractIsServed: GET /openapi.yaml and GET /openapi-v4.yaml answer,
// without a token, exactly the committed documents, as YAML, cacheable and
// revalidated by their ETags.
func TestContractIsServed(t *testing.T) {
	s := newTestServer(t, nil)
	var etags []string
	for _, doc := range []string{"openapi.yaml", "openapi-v4.yaml"} {
		t.Run(doc, func(t *testing.T) {
			etags = append(etags, checkContract(t, s, doc))
		})
	}
	if len(etags) == 2 && etags[0] == etags[1] {
		t.Errorf("both documents have ETag %s", etags[0])
	}
}

func checkContract(t *testing.T, s *testServer, doc string) (etag string) {
	committed, err := os.ReadFile("../../api/" + doc)
	if err != nil {
		t.Fatal(err)
	}

	rec := s.do(http.MethodGet, "/"+doc, "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /%s = %d %s, want 200", doc, rec.Code, rec.Body.String())
	}
	if !bytes.Equal(rec.Body.Bytes(), committed) {
		t.Errorf("GET /%s answers %d bytes that differ from the committed api/%s (%d bytes)", doc, rec.Body.Len(), doc, len(committed))
	}
	h := rec.Header()
	if got := h.Get("Content-Type"); got != "application/yaml" {
		t.Errorf("Content-Type = %q, want application/yaml", got)
	}
	if got := h.Get("Cache-Control"); !strings.HasPrefix(got, "public, max-age=") {
		t.Errorf("Cache-Control = %q, want public with a max-age", got)
	}
	etag = h.Get("ETag")
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
			rec := s.do(tc.method, "/"+doc, "", tc.hdr)
			if rec.Code != tc.status {
				t.Fatalf("%s /%s = %d, want %d", tc.method, doc, rec.Code, tc.status)
			}
			if got := rec.Body.Len() > 0; got != tc.body {
				t.Errorf("body of %d bytes, want a body: %v", rec.Body.Len(), tc.body)
			}
			if got := rec.Header().Get("ETag"); got != etag {
				t.Errorf("ETag = %q, want %q", got, etag)
			}
		})
	}
	if rec := s.do(http.MethodPost, "/"+doc, "", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /%s = %d, want 405", doc, rec.Code)
	}
	return etag
}

// TestIdempotencyDocsServed: the Url of a v4.0 U029 answer leads to the
// rules, without a token.
func TestIdempotencyDocsServed(t *testing.T) {
	s := newTestServer(t, nil)
	rec := s.do(http.MethodGet, pathIdempotencyDocs, "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", pathIdempotencyDocs, rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	for _, want := range []string{"x-idempotency-key", "U029", "24 hours"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("the page does not mention %q", want)
		}
	}
}
