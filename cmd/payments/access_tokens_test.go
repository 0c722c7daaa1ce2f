package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/obpay/payments/internal/security"
)

func TestAccessTokensConfig(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string // AccessTokens; "" when refused
		errs string // the variable the error names
	}{
		{"default auto", map[string]string{"PAYMENTS_DEV_AUTH": "true"}, "auto", ""},
		{"issuer alone suffices", map[string]string{"PAYMENTS_ISSUER": "https://as.bank.example", "PAYMENTS_INTROSPECTION_CLIENT_ID": "rs", "PAYMENTS_INTROSPECTION_CLIENT_SECRET": "s"}, "auto", ""},
		{"jwt with issuer", map[string]string{"PAYMENTS_ISSUER": "https://as.bank.example", "PAYMENTS_ACCESS_TOKENS": "jwt"}, "jwt", ""},
		{"introspect", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_ACCESS_TOKENS": "introspect"}, "introspect", ""},
		{"unknown mode", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_ACCESS_TOKENS": "both"}, "", "PAYMENTS_ACCESS_TOKENS"},
		{"jwt without issuer", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_ACCESS_TOKENS": "jwt"}, "", "PAYMENTS_ACCESS_TOKENS=jwt"},
		{"neither issuer nor introspection", map[string]string{}, "", "PAYMENTS_ISSUER"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(env(tc.env))
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), tc.errs) {
					t.Fatalf("loadConfig = %v, want an error naming %s", err, tc.errs)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig = %v", err)
			}
			if c.AccessTokens != tc.want {
				t.Errorf("AccessTokens = %q, want %q", c.AccessTokens, tc.want)
			}
		})
	}
}

// An authorization server that does not answer at start does not stop the
// service: discovery keeps retrying and the status says so.
func TestStartDiscoveryWithTheASDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	app := &application{}
	disc, err := startDiscovery(context.Background(), app, config{Issuer: issuer}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("startDiscovery = %v, want nil with the AS down", err)
	}
	if s := disc.Status(); s != security.ASStatusUnreachable {
		t.Errorf("Status = %s, want %s", s, security.ASStatusUnreachable)
	}
	app.close() // stops the background refresh
}
