package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
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

// TestServeWarnsWhenThePublicPortDiffers runs serve until it listens: with
// PAYMENTS_PUBLIC_URL on another port than PAYMENTS_ADDR its log has the
// warning, with the same port it does not.
func TestServeWarnsWhenThePublicPortDiffers(t *testing.T) {
	for _, tt := range []struct {
		name string
		addr func() (addr, publicURL string)
		warn bool
	}{
		{"another port", func() (string, string) {
			return fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), "http://localhost:9"
		}, true},
		{"the same port", func() (string, string) {
			p := freeLoopbackPort(t)
			return fmt.Sprintf("127.0.0.1:%d", p), fmt.Sprintf("http://localhost:%d", p)
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, publicURL := tt.addr()
			lines := serveOnce(t, map[string]string{
				"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
				"PAYMENTS_ADDR": addr, "PAYMENTS_PUBLIC_URL": publicURL,
			})
			warned := false
			for _, l := range lines {
				if l["msg"] == msgPublicPort {
					warned = true
				}
			}
			if warned != tt.warn {
				t.Errorf("warning logged = %v, want %v; log: %v", warned, tt.warn, lines)
			}
		})
	}
}
