package integration

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// interopConfig is one way a bank may set up its authorization server in
// front of the service; the interop test runs the same aggregator against
// each.
type interopConfig struct {
	name         string
	consentClaim string // where the AS puts the consent id: consent_id, openbanking_intent_id, authorization_details
	tokens       string // access token format: opaque (introspected) or jwt (RFC 9068, validated locally)
	rsAuth       string // how the service authenticates to the introspection endpoint
	skip         string // non-empty: the service-side feature this configuration waits for
}

var interopConfigs = []interopConfig{
	{name: "opaque tokens, consent_id", consentClaim: "consent_id", tokens: "opaque", rsAuth: "client_secret_basic"},
	{name: "opaque tokens, openbanking_intent_id", consentClaim: "openbanking_intent_id", tokens: "opaque", rsAuth: "client_secret_basic"},
	{name: "opaque tokens, authorization_details", consentClaim: "authorization_details", tokens: "opaque", rsAuth: "client_secret_basic"},
	{name: "opaque tokens, private_key_jwt introspection", consentClaim: "consent_id", tokens: "opaque", rsAuth: "private_key_jwt"},
	{name: "JWT access tokens", consentClaim: "consent_id", tokens: "jwt", rsAuth: "client_secret_basic"},
}

// TestInteropOIDCProvider runs an aggregator built on panva's oauth4webapi
// against the real payments binary and panva's oidc-provider, a FAPI 2.0
// certified authorization server, configured as a bank would configure it:
// PAR, PKCE, private_key_jwt, DPoP-bound tokens and RFC 7662 introspection.
// The Node side lives in ../interop (as.mjs, aggregator.mjs); npm ci installs
// its locked dependencies once.
func TestInteropOIDCProvider(t *testing.T) {
	node := requireNode(t)
	dir, err := filepath.Abs("../interop")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, dir)
	for _, tc := range interopConfigs {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			runInterop(t, node, dir, tc)
		})
	}
}

// runInterop starts the AS, the service and the aggregator for one
// configuration and fails with all three logs when the aggregator does.
func runInterop(t *testing.T, node, dir string, tc interopConfig) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	aggregatorKey, rsKey := newP256(t), newP256(t)
	rsSecret, adminSecret := randomSecret(t), randomSecret(t)
	asPort, apiPort := freePort(t), freePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d", asPort)
	api := fmt.Sprintf("http://127.0.0.1:%d", apiPort)

	as := startNode(ctx, t, node, dir, "as.mjs", "interop-as ready",
		"INTEROP_AS_PORT="+strconv.Itoa(asPort),
		"INTEROP_RESOURCE="+api,
		"INTEROP_CONSENT_CLAIM="+tc.consentClaim,
		"INTEROP_ACCESS_TOKENS="+tc.tokens,
		"INTEROP_AGGREGATOR_JWK="+jwkJSON(t, aggregatorKey, "aggregator-1", false),
		"INTEROP_RS_AUTH="+tc.rsAuth,
		"INTEROP_RS_JWK="+jwkJSON(t, rsKey, "payments-rs-1", false),
		"INTEROP_RS_SECRET="+rsSecret,
		"INTEROP_ADMIN_SECRET="+adminSecret,
	)

	env := []string{
		"PAYMENTS_DEV_AUTH=false",
		"PAYMENTS_INTROSPECTION_URL=" + issuer + "/token/introspection",
		"PAYMENTS_INTROSPECTION_CLIENT_ID=payments-rs",
		// The AS's tokens name the service as their audience (RFC 8707).
		"PAYMENTS_AUDIENCE=" + api,
	}
	switch tc.rsAuth {
	case "private_key_jwt":
		keyFile := filepath.Join(t.TempDir(), "payments-rs.pem")
		if err := os.WriteFile(keyFile, pkcs8PEM(t, rsKey), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env,
			"PAYMENTS_ISSUER="+issuer,
			"PAYMENTS_INTROSPECTION_AUTH_METHOD=private_key_jwt",
			"PAYMENTS_INTROSPECTION_PRIVATE_KEY="+keyFile,
			"PAYMENTS_INTROSPECTION_KEY_ID=payments-rs-1")
	default:
		env = append(env, "PAYMENTS_INTROSPECTION_CLIENT_SECRET="+rsSecret)
	}
	if tc.tokens == "jwt" {
		// RFC 9068 tokens are checked locally against the issuer's keys;
		// jwt rather than auto, so that no token is introspected.
		env = append(env, "PAYMENTS_ISSUER="+issuer, "PAYMENTS_ACCESS_TOKENS=jwt")
	}
	srv := startServerAt(t, apiPort, env...)

	_, err := runNodeScript(ctx, t, node, dir, "aggregator.mjs", "aggregator",
		"INTEROP_ISSUER="+issuer,
		"INTEROP_API="+srv.URL,
		"INTEROP_AGGREGATOR_PRIVATE_JWK="+jwkJSON(t, aggregatorKey, "aggregator-1", true),
		"INTEROP_ADMIN_SECRET="+adminSecret,
		"INTEROP_CONSENT_CLAIM="+tc.consentClaim,
	)
	if err != nil {
		t.Fatalf("aggregator.mjs: %v\nauthorization server log:\n%s\npayments log (tail):\n%s",
			err, tail(as.String(), 6000), tail(srv.Logs(), 8000))
	}
}

// runNodeScript runs one of ../interop's scripts to its end with env added
// to the test's environment, logs each line of its output under label and
// returns the output.
func runNodeScript(ctx context.Context, t *testing.T, node, dir, script, label string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		t.Log(label + ": " + line)
	}
	return string(out), err
}

// requireNode returns the path of node, at least version 20. Without node the
// test is skipped, loudly, except in CI (CI=true), where it fails.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = exec.LookPath("npm")
	}
	if err != nil {
		msg := "interop test NOT RUN: Node.js 20 or later and npm are needed (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("!!! " + msg + " !!!")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	m := regexp.MustCompile(`^v(\d+)\.`).FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		t.Fatalf("node --version = %q, want vMAJOR.MINOR.PATCH", out)
	}
	if major, _ := strconv.Atoi(m[1]); major < 20 {
		t.Fatalf("node --version = %s: the interop test needs Node.js 20 or later", strings.TrimSpace(string(out)))
	}
	return node
}

// npmCI installs ../interop's locked dependencies unless node_modules was
// installed from the same package-lock.json already (a stamp holds its hash;
// npm ci removes node_modules, and with it the stamp, before installing).
func npmCI(t *testing.T, dir string) {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", ".interop-lock-sha256")
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startNode runs one of ../interop's scripts until the test ends and waits
// for its ready line; it returns the script's output so far and later.
func startNode(ctx context.Context, t *testing.T, node, dir, script, ready string, env ...string) *logBuffer {
	t.Helper()
	logs := &logBuffer{}
	cmd := exec.Command(node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	readyc := make(chan struct{})
	go func() {
		s := bufio.NewScanner(stdout)
		signalled := false
		for s.Scan() {
			fmt.Fprintln(logs, s.Text())
			if !signalled && strings.HasPrefix(s.Text(), ready) {
				signalled = true
				close(readyc)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	select {
	case <-readyc:
		t.Log(script + ": " + strings.TrimSpace(lastLine(logs.String(), ready)))
		return logs
	case err := <-done:
		done <- err
		t.Fatalf("%s exited before it was ready (%v):\n%s", script, err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready within 30s:\n%s", script, logs.String())
	case <-ctx.Done():
		t.Fatalf("%s: %v:\n%s", script, ctx.Err(), logs.String())
	}
	return nil
}

func lastLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func newP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwkJSON renders an ES256 key as a JWK (RFC 7517 §4, RFC 7518 §6.2), with
// its private member d only when private is set.
func jwkJSON(t *testing.T, k *ecdsa.PrivateKey, kid string, private bool) string {
	t.Helper()
	pub, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := map[string]string{"kty": "EC", "crv": "P-256", "x": b64(pub[1:33]), "y": b64(pub[33:]),
		"kid": kid, "alg": "ES256", "use": "sig"}
	if private {
		d, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		jwk["d"] = b64(d)
	}
	b, err := json.Marshal(jwk)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func pkcs8PEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
