package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestPortMismatch(t *testing.T) {
	tests := []struct {
		addr, publicURL string
		listen, public  string
		differ          bool
	}{
		{":8080", "http://localhost:8080", "8080", "8080", false},
		{"127.0.0.1:8080", "http://127.0.0.1:8080/", "8080", "8080", false},
		{":8080", "http://localhost:9090", "8080", "9090", true},
		{":8080", "https://api.bank.example", "8080", "443", true},
		{":443", "https://api.bank.example", "443", "443", false},
		{":80", "HTTP://api.bank.example/gw", "80", "80", false},
		{"[::1]:8443", "https://api.bank.example:8443", "8443", "8443", false},
		{"[::]:8080", "http://api.bank.example", "8080", "80", true},
		{"127.0.0.1:41234", "http://localhost:8080", "41234", "8080", true},
	}
	for _, tt := range tests {
		listen, public, differ := portMismatch(tt.addr, tt.publicURL)
		if listen != tt.listen || public != tt.public || differ != tt.differ {
			t.Errorf("portMismatch(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.addr, tt.publicURL,
				listen, public, differ, tt.listen, tt.public, tt.differ)
		}
	}
}

func TestWarnPublicPort(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	warnPublicPort(context.Background(), "127.0.0.1:8080", "http://localhost:8080", log)
	if buf.Len() != 0 {
		t.Fatalf("same port: logged %s, want nothing", buf.String())
	}
	warnPublicPort(context.Background(), "[::]:8080", "https://api.bank.example", log)
	lines := logLines(t, &buf)
	if len(lines) != 1 || lines[0]["level"] != "WARN" || lines[0]["msg"] != msgPublicPort ||
		lines[0]["listen_port"] != "8080" || lines[0]["public_url_port"] != "443" || lines[0]["public_url"] != "https://api.bank.example" {
		t.Fatalf("logged %v, want one WARN %q with both ports", lines, msgPublicPort)
	}
	if !strings.Contains(msgPublicPort, "htu") || !strings.Contains(msgPublicPort, "PAYMENTS_PUBLIC_URL") {
		t.Errorf("the warning does not say that htu must use PAYMENTS_PUBLIC_URL: %q", msgPublicPort)
	}
}

// syncWriter is a bytes.Buffer safe for the server's goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestServeWarnsWhenThePublicPortDiffers runs serve until it listens: with
// PAYMENTS_PUBLIC_URL on another port than PAYMENTS_ADDR its log has the
// warning, with the same port it does not.
func TestServeWarnsWhenThePublicPortDiffers(t *testing.T) {
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	for _, tt := range []struct {
		name string
		addr func() (addr, publicURL string)
		warn bool
	}{
		{"another port", func() (string, string) { p := free(); return "127.0.0.1:" + p, "http://localhost:9" }, true},
		{"the same port", func() (string, string) { p := free(); return "127.0.0.1:" + p, "http://localhost:" + p }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, publicURL := tt.addr()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stderr syncWriter
			hooks := &serveHooks{listening: func(string) { cancel() }}
			code := run(ctx, []string{"serve"}, env(map[string]string{
				"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
				"PAYMENTS_ADDR": addr, "PAYMENTS_PUBLIC_URL": publicURL,
			}), &bytes.Buffer{}, &stderr, hooks)
			if code != 0 {
				t.Fatalf("serve exit code = %d; stderr:\n%s", code, stderr.String())
			}
			if got := strings.Contains(stderr.String(), msgPublicPort); got != tt.warn {
				t.Errorf("warning logged = %v, want %v; log:\n%s", got, tt.warn, stderr.String())
			}
		})
	}
}
