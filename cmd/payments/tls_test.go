package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn to
// certFile and keyFile and returns it.
func writeCert(t *testing.T, certFile, keyFile, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func clientFor(cert *x509.Certificate, cfg *tls.Config) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	cfg.RootCAs = pool
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func TestServeAnswersHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeCert(t, certFile, keyFile, "first")
	port := freeLoopbackPort(t)
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	serveInProcess(t, map[string]string{
		"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
		"PAYMENTS_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "PAYMENTS_PUBLIC_URL": base,
		"PAYMENTS_TLS_CERT_FILE": certFile, "PAYMENTS_TLS_KEY_FILE": keyFile,
	})

	res, err := clientFor(cert, &tls.Config{}).Get(base + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.TLS == nil || res.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("HTTPS answer: %d, %+v", res.StatusCode, res.TLS)
	}
	for name, cfg := range map[string]*tls.Config{
		"TLS 1.1":               {MaxVersion: tls.VersionTLS11},
		"TLS 1.2 with CBC":      {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}},
		"TLS 1.2 with ChaCha20": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
	} {
		if res, err := clientFor(cert, cfg).Get(base + "/healthz"); err == nil {
			res.Body.Close()
			t.Errorf("%s was accepted", name)
		}
	}
	if res, err := clientFor(cert, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}).Get(base + "/healthz"); err != nil {
		t.Errorf("TLS 1.2 with ECDHE-ECDSA-AES256-GCM refused: %v", err)
	} else {
		res.Body.Close()
	}
	if res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err == nil && res.StatusCode == http.StatusOK {
		res.Body.Close()
		t.Error("plain HTTP is served too")
	}
}

func TestCertificateReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, "first")
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	go r.watch(ctx, 20*time.Millisecond)
	current := func() string {
		c, _ := r.getCertificate(nil)
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		return leaf.Subject.CommonName
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for current() != want {
			if time.Now().After(deadline) {
				t.Fatalf("certificate %q, want %q", current(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(30 * time.Millisecond) // distinct modification times
	writeCert(t, certFile, keyFile, "second")
	waitFor("second")

	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := current(); got != "second" {
		t.Fatalf("a broken pair replaced the certificate: %q", got)
	}

	// SIGHUP reloads at once, whatever the file times say.
	writeCert(t, certFile, keyFile, "third")
	r.mu.Lock()
	r.stamp = r.stampOf() // as if the poll had seen it: only the signal can reload now
	r.mu.Unlock()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("third")
}

func TestTLSSettingsGoTogether(t *testing.T) {
	_, err := loadConfig(env(map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_TLS_CERT_FILE": "/etc/payments/cert.pem"}))
	if err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
}
