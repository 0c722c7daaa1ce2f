package integration

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
)

func TestHealthAndReadiness(t *testing.T) {
	s := startServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		res, _ := do(t, http.MethodGet, s.URL+path, nil, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, res.StatusCode)
		}
	}
}

func TestCredentialsNeverReachTheLog(t *testing.T) {
	s := startServer(t)
	secret := http.Header{
		"Authorization": {"DPoP secret-token"},
		"Dpop":          {"secret-proof"},
		"Cookie":        {"session=secret-cookie"},
	}
	paths := []string{
		"/open-banking/v3.1/aisp/accounts",
		"/open-banking/v3.1/pisp/domestic-payments",
		"/healthz",
		"/no/such/path?access_token=secret-query",
	}
	for _, p := range paths {
		do(t, http.MethodGet, s.URL+p, nil, secret)
		do(t, http.MethodPost, s.URL+p, []byte(`{}`), secret)
	}
	s.stop(t)
	logs := s.Logs()
	if len(contains(logs, `"msg":"http request"`)) == 0 {
		t.Fatalf("the server logged no requests; log:\n%s", logs)
	}
	if leaked := contains(logs, "secret-token", "secret-proof", "secret-cookie", "secret-query"); len(leaked) > 0 {
		t.Fatalf("log contains %v:\n%s", leaked, logs)
	}
}

func TestInteractionIDEchoedOrGenerated(t *testing.T) {
	s := startServer(t)
	cases := []struct {
		name, method, path string
		want               int
	}{
		{"200", http.MethodGet, "/healthz", http.StatusOK},
		{"401", http.MethodGet, "/open-banking/v3.1/aisp/accounts", http.StatusUnauthorized},
		{"404", http.MethodGet, "/no/such/path", http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.NewString()
			res, _ := do(t, tc.method, s.URL+tc.path, nil, http.Header{"X-Fapi-Interaction-Id": {id}})
			if res.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", res.StatusCode, tc.want)
			}
			if got := res.Header.Get("x-fapi-interaction-id"); got != id {
				t.Errorf("interaction id = %q, want %q echoed", got, id)
			}
			res, _ = do(t, tc.method, s.URL+tc.path, nil, nil)
			if _, err := uuid.Parse(res.Header.Get("x-fapi-interaction-id")); err != nil {
				t.Errorf("generated interaction id %q is not a UUID", res.Header.Get("x-fapi-interaction-id"))
			}
		})
	}
}
