package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/internal/security"
)

// oneToken introspects one token as bound to one key.
type oneToken struct{ token, jkt string }

func (o oneToken) Introspect(_ context.Context, token string) (security.Introspection, error) {
	if token != o.token {
		return security.Introspection{}, nil
	}
	return security.Introspection{Active: true, TokenType: "DPoP", CnfJKT: o.jkt, Exp: time.Now().Add(time.Hour).Unix()}, nil
}

func TestDPoPKeygenProofThumbprint(t *testing.T) {
	for _, tc := range []struct{ alg, format string }{
		{"ES256", "jwk"}, {"EdDSA", "jwk"}, {"Ed25519", "pem"}, {"PS256", "pem"}, {"ES256", "pem"},
	} {
		t.Run(tc.alg+" "+tc.format, func(t *testing.T) {
			ctx := context.Background()
			var keyOut, stderr bytes.Buffer
			if err := dpopCommand(ctx, []string{"keygen", "--alg", tc.alg, "--format", tc.format}, &keyOut, &stderr); err != nil {
				t.Fatalf("keygen = %v (%s)", err, stderr.String())
			}
			path := filepath.Join(t.TempDir(), "key."+tc.format)
			if err := os.WriteFile(path, keyOut.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := client.LoadKey(path)
			if err != nil {
				t.Fatalf("keygen output does not load: %v", err)
			}

			var tp bytes.Buffer
			if err := dpopCommand(ctx, []string{"thumbprint", "--key", path}, &tp, &stderr); err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(tp.String()) != key.Thumbprint() {
				t.Errorf("thumbprint printed %q, want %q", tp.String(), key.Thumbprint())
			}

			// The printed proof passes the service's own verifier.
			const base = "http://localhost:8080"
			target := base + "/open-banking/v3.1/aisp/accounts?x=1"
			store, _ := security.NewMemoryReplayStore()
			v, err := security.NewVerifier(security.Config{PublicURL: base, NonceMode: security.NonceOff, ReplayStore: store, Introspector: oneToken{"tok-1", key.Thumbprint()}})
			if err != nil {
				t.Fatal(err)
			}
			var proof bytes.Buffer
			if err := dpopCommand(ctx, []string{"proof", "--key", path, "--method", "GET", "--url", target, "--token", "tok-1", "--nonce", "n"}, &proof, &stderr); err != nil {
				t.Fatal(err)
			}
			_, _, err = v.Verify(ctx, security.Request{
				Method:        "GET",
				URL:           base + "/open-banking/v3.1/aisp/accounts",
				Authorization: []string{"DPoP tok-1"},
				DPoP:          []string{strings.TrimSpace(proof.String())},
			})
			if err != nil {
				t.Errorf("the service refuses the printed proof: %v", err)
			}
		})
	}
}

func TestDPoPCommandRefusesBadArguments(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not a key"), 0o600)
	key, _ := client.GenerateKey(client.ES256)
	jwk, _ := key.MarshalJWK()
	good := filepath.Join(dir, "key.jwk")
	os.WriteFile(good, jwk, 0o600)
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"no sub-command", nil, errUsage},
		{"unknown sub-command", []string{"sign"}, errUsage},
		{"unsupported algorithm", []string{"keygen", "--alg", "HS256"}, errUsage},
		{"unknown format", []string{"keygen", "--format", "der"}, errUsage},
		{"unknown flag", []string{"keygen", "--bits", "1024"}, errUsage},
		{"proof without key", []string{"proof", "--method", "GET", "--url", "http://x/"}, errUsage},
		{"proof with a file that is no key", []string{"proof", "--key", junk, "--method", "GET", "--url", "http://x/"}, errUsage},
		{"proof for a relative URL", []string{"proof", "--key", good, "--method", "GET", "--url", "/x"}, errUsage},
		{"thumbprint without key", []string{"thumbprint"}, errUsage},
		{"stray argument", []string{"thumbprint", "--key", good, "extra"}, errUsage},
		{"help", []string{"--help"}, errHelp},
		{"sub-command help", []string{"proof", "-h"}, errHelp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, stderr bytes.Buffer
			if err := dpopCommand(context.Background(), tc.args, &out, &stderr); !errors.Is(err, tc.want) {
				t.Errorf("dpopCommand(%q) = %v, want %v", tc.args, err, tc.want)
			}
		})
	}
	var out, stderr bytes.Buffer
	if code := run(context.Background(), []string{"dpop", "keygen", "--alg", "nope"}, func(string) string { return "" }, &out, &stderr, nil); code != 2 {
		t.Errorf("payments dpop keygen --alg nope exits %d, want 2", code)
	}
}

func TestSandboxCommandRefusesBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"no sub-command", nil, errUsage},
		{"unknown sub-command", []string{"refund"}, errUsage},
		{"relative URL", []string{"pay", "--url", "localhost:8080"}, errUsage},
		{"bad algorithm", []string{"pay", "--alg", "RS256"}, errUsage},
		{"unknown API version", []string{"pay", "--version", "3.0"}, errUsage},
		{"API version with a v", []string{"pay", "--version", "v4.0"}, errUsage},
		{"help", []string{"pay", "--help"}, errHelp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, stderr bytes.Buffer
			err := sandboxCommand(context.Background(), tc.args, func(string) string { return "" }, &out, &stderr)
			if !errors.Is(err, tc.want) {
				t.Errorf("sandboxCommand(%q) = %v, want %v", tc.args, err, tc.want)
			}
		})
	}
}
