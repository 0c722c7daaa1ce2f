package devauth

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/obpay/payments/internal/security"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
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

// TestLogsWarnAndHoldNoSecrets runs every endpoint, successes and refusals,
// with debug logging, then checks that Register warned that the sandbox is
// mounted and that no token, refresh token, code, code verifier, client
// secret or proof reached the log.
func TestLogsWarnAndHoldNoSecrets(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFixture(t, func(s *security.Config, d *Config) {
		s.Logger = log
		d.Logger = log
	})

	var secrets []string
	cc := f.mustToken(url.Values{"grant_type": {"client_credentials"}})
	secrets = append(secrets, cc.AccessToken)

	code := f.code(authorizeQuery())
	proof := f.proof(f.key)
	pair := f.mustToken(exchangeForm(code), withHeader("DPoP", proof))
	secrets = append(secrets, code, proof, pair.AccessToken, pair.RefreshToken, testVerifier)

	// Refused: the code again (reuse), a wrong secret, a tampered proof.
	if w := f.tokenRequest(exchangeForm(code)); w.Code != http.StatusBadRequest {
		t.Errorf("reused code = %d, want 400", w.Code)
	}
	if w := f.tokenRequest(url.Values{"grant_type": {"client_credentials"}},
		withHeader("Authorization", basic("sandbox-tpp", "guessed-secret"))); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong secret = %d, want 401", w.Code)
	}
	bad := f.proof(f.key) + "x"
	if w := f.tokenRequest(url.Values{"grant_type": {"client_credentials"}}, withHeader("DPoP", bad)); w.Code != http.StatusBadRequest {
		t.Errorf("tampered proof = %d, want 400", w.Code)
	}
	secrets = append(secrets, bad, "guessed-secret")

	// Introspection over HTTP, by the resource server client.
	w := f.post("/oauth2/introspect", url.Values{"token": {pair.AccessToken}},
		withHeader("Authorization", basic(ResourceServerClientID, ResourceServerClientSecret)))
	if w.Code != http.StatusOK {
		t.Errorf("introspect = %d, want 200", w.Code)
	}
	secrets = append(secrets, "sandbox-secret", "admin-secret", ResourceServerClientSecret)

	out := logs.String()
	if !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, "sandbox authorization server mounted") {
		t.Errorf("no WARN line saying the sandbox is mounted in:\n%s", out)
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret in the list: the flow above did not run")
		}
		if strings.Contains(out, s) {
			t.Errorf("log holds a secret (%.12s...):\n%s", s, out)
		}
	}
	// The refusals were logged, with their reasons.
	for _, want := range []string{"code_reused", "client_auth_failed", "dpop_signature"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks reason %q:\n%s", want, out)
		}
	}
}
