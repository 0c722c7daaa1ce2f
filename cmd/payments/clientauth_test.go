package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obpay/payments/internal/security"
)

// writeKey writes key as a PEM block of type typ (PKCS#8 "PRIVATE KEY"
// unless said otherwise) with mode, and returns the path and the PEM text.
func writeKey(t *testing.T, key any, typ string, mode os.FileMode) (string, string) {
	t.Helper()
	var der []byte
	var err error
	switch typ {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	default:
		der = []byte("opaque bytes")
	}
	if err != nil {
		t.Fatal(err)
	}
	text := string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	return writeFile(t, text, mode), text
}

func writeFile(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "introspection-key.pem")
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // the umask may have narrowed it
		t.Fatal(err)
	}
	return path
}

// pkjwtEnv is a complete private_key_jwt configuration with the key at path.
func pkjwtEnv(path string) map[string]string {
	return map[string]string{
		"PAYMENTS_INTROSPECTION_URL":         "https://as.bank.example/introspect",
		"PAYMENTS_INTROSPECTION_CLIENT_ID":   "payments-rs",
		"PAYMENTS_INTROSPECTION_AUTH_METHOD": "private_key_jwt",
		"PAYMENTS_INTROSPECTION_PRIVATE_KEY": path,
		"PAYMENTS_INTROSPECTION_KEY_ID":      "rs-1",
		"PAYMENTS_ISSUER":                    "https://as.bank.example",
	}
}

func ecKey(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestIntrospectionAuthMethod(t *testing.T) {
	base := map[string]string{
		"PAYMENTS_INTROSPECTION_URL":           "https://as.bank.example/introspect",
		"PAYMENTS_INTROSPECTION_CLIENT_ID":     "payments-rs",
		"PAYMENTS_INTROSPECTION_CLIENT_SECRET": "s3cret",
	}
	for _, tc := range []struct{ value, want string }{
		{"", "client_secret_basic"},
		{"client_secret_basic", "client_secret_basic"},
		{"client_secret_post", "client_secret_post"},
	} {
		e := map[string]string{"PAYMENTS_INTROSPECTION_AUTH_METHOD": tc.value}
		for k, v := range base {
			e[k] = v
		}
		c, err := loadConfig(env(e))
		if err != nil || c.IntrospectionAuthMethod != tc.want {
			t.Errorf("loadConfig(PAYMENTS_INTROSPECTION_AUTH_METHOD=%q) = %q, %v, want %s", tc.value, c.IntrospectionAuthMethod, err, tc.want)
		}
	}
}

func TestPrivateKeyJWTConfig(t *testing.T) {
	ec, p384 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384())
	rsa2048, rsa1024 := rsaKey(t, 2048), rsaKey(t, 1024)
	_, ed := edKey(t)

	t.Run("accepts", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			key  any
			alg  string
		}{{"EC P-256", ec, "ES256"}, {"RSA 2048", rsa2048, "PS256"}, {"Ed25519", ed, "EdDSA"}} {
			path, _ := writeKey(t, tc.key, "PRIVATE KEY", 0o600)
			c, err := loadConfig(env(pkjwtEnv(path)))
			if err != nil {
				t.Fatalf("%s: loadConfig = %v", tc.name, err)
			}
			if c.IntrospectionKey == nil || c.IntrospectionKeyID != "rs-1" || c.Issuer != "https://as.bank.example" {
				t.Fatalf("%s: key %T, kid %q, issuer %q", tc.name, c.IntrospectionKey, c.IntrospectionKeyID, c.Issuer)
			}
			if alg, err := security.ClientAssertionAlg(c.IntrospectionKey); alg != tc.alg {
				t.Errorf("%s: alg = %q, %v, want %s", tc.name, alg, err, tc.alg)
			}
			ic := withClientAuth(c, security.IntrospectionConfig{ClientID: c.IntrospectionClientID})
			if ic.AuthMethod != security.AuthPrivateKeyJWT || ic.PrivateKey == nil || ic.KeyID != "rs-1" ||
				ic.AssertionAudience != "https://as.bank.example" || ic.ClientSecret != "" {
				t.Errorf("%s: withClientAuth = %+v", tc.name, ic)
			}
		}
	})

	okPath, _ := writeKey(t, ec, "PRIVATE KEY", 0o600)
	p384Path, _ := writeKey(t, p384, "PRIVATE KEY", 0o600)
	rsa1024Path, _ := writeKey(t, rsa1024, "PRIVATE KEY", 0o600)
	sec1Path, sec1 := writeKey(t, ec, "EC PRIVATE KEY", 0o600)
	pkcs1Path, _ := writeKey(t, rsa2048, "RSA PRIVATE KEY", 0o600)
	encPath, _ := writeKey(t, ec, "ENCRYPTED PRIVATE KEY", 0o600)
	junkPath := writeFile(t, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", 0o600)
	notPEM := writeFile(t, "just some text", 0o600)
	without := func(k string) map[string]string {
		e := pkjwtEnv(okPath)
		delete(e, k)
		return e
	}
	with := func(k, v string) map[string]string {
		e := pkjwtEnv(okPath)
		e[k] = v
		return e
	}
	for _, tc := range []struct {
		name, variable string
		env            map[string]string
	}{
		{"unknown method", "PAYMENTS_INTROSPECTION_AUTH_METHOD", with("PAYMENTS_INTROSPECTION_AUTH_METHOD", "tls_client_auth")},
		{"method in capitals", "PAYMENTS_INTROSPECTION_AUTH_METHOD", with("PAYMENTS_INTROSPECTION_AUTH_METHOD", "PRIVATE_KEY_JWT")},
		{"without issuer", "PAYMENTS_ISSUER", without("PAYMENTS_ISSUER")},
		{"without key", "PAYMENTS_INTROSPECTION_PRIVATE_KEY", without("PAYMENTS_INTROSPECTION_PRIVATE_KEY")},
		{"without client id", "PAYMENTS_INTROSPECTION_CLIENT_ID", without("PAYMENTS_INTROSPECTION_CLIENT_ID")},
		{"missing file", "PAYMENTS_INTROSPECTION_PRIVATE_KEY", with("PAYMENTS_INTROSPECTION_PRIVATE_KEY", filepath.Join(t.TempDir(), "nope.pem"))},
		{"a directory", "PAYMENTS_INTROSPECTION_PRIVATE_KEY", with("PAYMENTS_INTROSPECTION_PRIVATE_KEY", t.TempDir())},
		{"not PEM", "PAYMENTS_INTROSPECTION_PRIVATE_KEY", with("PAYMENTS_INTROSPECTION_PRIVATE_KEY", notPEM)},
		{"SEC 1 EC key, not PKCS#8", "PAYMENTS_INTROSPECTION_PRIVATE_KEY", with("PAYMENTS_INTROSPECTION_PRIVATE_KEY", sec1Path)},
		{"PKCS#1 RSA key, not PKCS#8", "PAYMENTS_INTROSPECTION_PRIVATE_KEY", with("PAYMENTS_INTROSPECTION_PRIVATE_KEY", pkcs1Path)},
		{"encrypted PKCS#8", "PAYMENTS_INTROSPECTION_PRIVATE_KEY", with("PAYMENTS_INTROSPECTION_PRIVATE_KEY", encPath)},
		{"PKCS#8 block that does not parse", "PAYMENTS_INTROSPECTION_PRIVATE_KEY", with("PAYMENTS_INTROSPECTION_PRIVATE_KEY", junkPath)},
		{"EC P-384", "PAYMENTS_INTROSPECTION_PRIVATE_KEY", with("PAYMENTS_INTROSPECTION_PRIVATE_KEY", p384Path)},
		{"RSA 1024", "PAYMENTS_INTROSPECTION_PRIVATE_KEY", with("PAYMENTS_INTROSPECTION_PRIVATE_KEY", rsa1024Path)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.variable) {
				t.Fatalf("loadConfig = %v, want an error naming %s", err, tc.variable)
			}
			if body := strings.Split(sec1, "\n")[1]; strings.Contains(err.Error(), body) {
				t.Error("the error quotes the key")
			}
		})
	}

	t.Run("serve stops", func(t *testing.T) {
		var stderr bytes.Buffer
		code := run(context.Background(), []string{"serve"}, env(without("PAYMENTS_ISSUER")), io.Discard, &stderr, nil)
		if code != 1 || !strings.Contains(stderr.String(), "PAYMENTS_ISSUER") {
			t.Fatalf("exit code = %d, want 1 with PAYMENTS_ISSUER named; stderr:\n%s", code, stderr.String())
		}
	})

	t.Run("the key is read only for private_key_jwt", func(t *testing.T) {
		e := with("PAYMENTS_INTROSPECTION_AUTH_METHOD", "client_secret_basic")
		e["PAYMENTS_INTROSPECTION_CLIENT_SECRET"] = "s3cret"
		c, err := loadConfig(env(e))
		if err != nil || c.IntrospectionKey != nil {
			t.Fatalf("loadConfig = key %T, %v, want no key and no error", c.IntrospectionKey, err)
		}
		if ic := withClientAuth(c, security.IntrospectionConfig{}); ic.ClientSecret != "s3cret" || ic.PrivateKey != nil {
			t.Errorf("withClientAuth = %+v, want the secret and no key", ic)
		}
	})
}

func edKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestWarnIntrospectionAuth(t *testing.T) {
	_, ed := edKey(t)
	const secret = "a-client-secret-never-logged"
	tests := []struct {
		name   string
		mode   os.FileMode
		secret string
		want   []string // messages, in order
	}{
		{"key file 0600, no secret", 0o600, "", nil},
		{"key file 0400, no secret", 0o400, "", nil},
		{"group-readable key file", 0o640, "", []string{msgKeyFileReadable}},
		{"world-readable key file", 0o604, "", []string{msgKeyFileReadable}},
		{"secret with private_key_jwt", 0o600, secret, []string{msgSecretIgnored}},
		{"both", 0o644, secret, []string{msgSecretIgnored, msgKeyFileReadable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, pemText := writeKey(t, ed, "PRIVATE KEY", tt.mode)
			e := pkjwtEnv(path)
			e["PAYMENTS_INTROSPECTION_CLIENT_SECRET"] = tt.secret
			c, err := loadConfig(env(e))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			warnIntrospectionAuth(context.Background(), c, log)
			out := buf.String()
			lines := logLines(t, &buf)
			if len(lines) != len(tt.want) {
				t.Fatalf("logged %v, want %q", lines, tt.want)
			}
			for i, want := range tt.want {
				if lines[i]["level"] != "WARN" || lines[i]["msg"] != want {
					t.Errorf("line %d = %v, want WARN %q", i, lines[i], want)
				}
				if want == msgKeyFileReadable && (lines[i]["file"] != path || lines[i]["fix"] != "chmod 600 "+path) {
					t.Errorf("line %d = %v, want the file %s and the fix chmod 600", i, lines[i], path)
				}
			}
			if strings.Contains(out, secret) || strings.Contains(out, strings.Split(pemText, "\n")[1]) {
				t.Error("the warnings log the secret or the key")
			}
		})
	}

	t.Run("client_secret_basic: nothing", func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, nil))
		warnIntrospectionAuth(context.Background(), config{IntrospectionAuthMethod: "client_secret_basic", IntrospectionSecret: secret}, log)
		if buf.Len() != 0 {
			t.Errorf("logged %s, want nothing", buf.String())
		}
	})
}

func TestHelpListsIntrospectionAuth(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, env(nil), &out, io.Discard, nil); code != 0 {
		t.Fatalf("--help exit code = %d", code)
	}
	want := map[string]string{
		"PAYMENTS_INTROSPECTION_AUTH_METHOD": "client_secret_basic",
		"PAYMENTS_INTROSPECTION_PRIVATE_KEY": "(none)",
		"PAYMENTS_INTROSPECTION_KEY_ID":      "(none)",
		"PAYMENTS_ISSUER":                    "(none)",
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			if def, ok := want[f[0]]; ok {
				if f[1] != def {
					t.Errorf("--help shows %s default %q, want %q", f[0], f[1], def)
				}
				delete(want, f[0])
			}
		}
	}
	for name := range want {
		t.Errorf("--help does not list %s", name)
	}
}
