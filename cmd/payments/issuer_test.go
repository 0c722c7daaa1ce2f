package main

import (
	"strings"
	"testing"
)

func TestIssuer(t *testing.T) {
	cases := []struct {
		name, value string
		ok          bool
	}{
		{"unset", "", true},
		{"https", "https://as.bank.example", true},
		{"https with a path", "https://as.bank.example/realms/obpay", true},
		{"http on 127.0.0.1", "http://127.0.0.1:9000", true},
		{"http on localhost", "http://localhost:9000/oidc", true},
		{"http on ::1", "http://[::1]:9000", true},
		{"http elsewhere", "http://as.bank.example", false},
		{"relative", "/oidc", false},
		{"other scheme", "ftp://as.bank.example", false},
		{"query", "https://as.bank.example?x=1", false},
		{"empty query", "https://as.bank.example?", false},
		{"fragment", "https://as.bank.example#x", false},
		{"user info", "https://user@as.bank.example", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(env(map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_ISSUER": tc.value}))
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), "PAYMENTS_ISSUER") {
					t.Fatalf("loadConfig(PAYMENTS_ISSUER=%q) = %v, want an error naming PAYMENTS_ISSUER", tc.value, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig(PAYMENTS_ISSUER=%q) = %v", tc.value, err)
			}
			if c.Issuer != tc.value {
				t.Errorf("Issuer = %q, want %q", c.Issuer, tc.value)
			}
		})
	}
}
