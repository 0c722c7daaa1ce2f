package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestInteropFAPIClientAgainstSandbox runs ../interop/fapi-sandbox.mjs, an
// aggregator built on panva's oauth4webapi configured for FAPI 2.0, against
// the service's own sandbox authorization server with pushed authorization
// requests required: discovery, private_key_jwt with the published key of
// sandbox-tpp-fapi, PKCE, DPoP (nonce retries included), PAR naming the
// consent and the customer, the 303 with iss checked by oauth4webapi, the
// code exchange and a booked payment from alice to bob. The script prints
// statuses and ids only; the test checks that nothing secret leaked into it.
func TestInteropFAPIClientAgainstSandbox(t *testing.T) {
	node := requireNode(t)
	dir, err := filepath.Abs("../interop")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	s := startServer(t, "PAYMENTS_DEV_AUTH=true", "PAYMENTS_DEV_AUTH_REQUIRE_PAR=true")
	out, err := runNodeScript(ctx, t, node, dir, "fapi-sandbox.mjs", "fapi-sandbox", "INTEROP_API="+s.URL)
	if err != nil {
		t.Fatalf("fapi-sandbox.mjs: %v\npayments log (tail):\n%s", err, tail(s.Logs(), 8000))
	}

	for _, want := range []string{"require_pushed_authorization_requests=true", "fapi-sandbox: all steps passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	booked := regexp.MustCompile(`(?m)^payment \S+: (AcceptedCreditSettlementCompleted|AcceptedSettlementCompleted)$`)
	if !booked.MatchString(out) {
		t.Errorf("output names no booked payment read back")
	}
	assertNoSecrets(t, out)
	assertBalanced(t, newSandbox(t, s))
}

// assertNoSecrets fails when out holds the client's private key, a JWT (an
// assertion, a proof), token or code fields, a request_uri, or any other
// long random-looking string that is not a UUID (the service's ids are).
func assertNoSecrets(t *testing.T, out string) {
	t.Helper()
	b, err := os.ReadFile("../docs/sandbox-tpp-fapi.jwk")
	if err != nil {
		t.Fatal(err)
	}
	var key struct {
		D string `json:"d"`
	}
	if err := json.Unmarshal(b, &key); err != nil || key.D == "" {
		t.Fatalf("sandbox-tpp-fapi.jwk: %v", err)
	}
	marks := map[string]string{"the client's private key": key.D, "a JWT": "eyJ", "an access token field": "access_token",
		"a refresh token field": "refresh_token", "a code parameter": "code=", "a request_uri": "urn:ietf:params:oauth:request_uri"}
	for what, mark := range marks {
		if strings.Contains(out, mark) {
			t.Errorf("the script's output holds %s", what)
		}
	}
	// Tokens, codes and proofs are long base64url strings; ids are UUIDs and
	// the rest is words.
	uuid := regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	digit := regexp.MustCompile(`[0-9]`)
	for _, word := range regexp.MustCompile(`[A-Za-z0-9_\-]{24,}`).FindAllString(out, -1) {
		if !uuid.MatchString(word) && digit.MatchString(word) {
			t.Errorf("the script's output holds a long random-looking string (%d characters)", len(word))
		}
	}
}
