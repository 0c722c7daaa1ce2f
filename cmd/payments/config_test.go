package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/obpay/payments/internal/devauth"
	"github.com/obpay/payments/internal/security"
)

func TestTimezone(t *testing.T) {
	cases := []struct {
		name, value string
		want        string // the location's name; "" when refused
	}{
		{"default", "", "UTC"},
		{"UTC", "UTC", "UTC"},
		{"IANA name", "Europe/London", "Europe/London"},
		{"surrounding spaces", " Asia/Kolkata ", "Asia/Kolkata"},
		{"unknown name", "Mars/Olympus_Mons", ""},
		{"abbreviation", "BST", ""},
		{"offset", "+01:00", ""},
		{"the host's zone", "Local", ""},
		{"path", "../../etc/passwd", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(env(map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_TIMEZONE": tc.value}))
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), "PAYMENTS_TIMEZONE") {
					t.Fatalf("loadConfig(PAYMENTS_TIMEZONE=%q) = %v, want an error naming PAYMENTS_TIMEZONE", tc.value, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig(PAYMENTS_TIMEZONE=%q) = %v", tc.value, err)
			}
			if c.Timezone == nil || c.Timezone.String() != tc.want {
				t.Fatalf("Timezone = %v, want %s", c.Timezone, tc.want)
			}
		})
	}

	london, err := loadConfig(env(map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_TIMEZONE": "Europe/London"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Date(2026, 7, 1, 0, 0, 0, 0, london.Timezone).UTC(); !got.Equal(time.Date(2026, 6, 30, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("midnight 1 July 2026 in Europe/London = %v, want 2026-06-30T23:00:00Z", got)
	}
}

func TestInvalidTimezoneStopsServe(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"serve"}, env(map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_TIMEZONE": "Nowhere/Special"}), io.Discard, &stderr, nil)
	if code != 1 || !strings.Contains(stderr.String(), "PAYMENTS_TIMEZONE") {
		t.Fatalf("exit code = %d, want 1 with PAYMENTS_TIMEZONE named; stderr:\n%s", code, stderr.String())
	}
}

func TestHelpListsTimezone(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, env(nil), &out, io.Discard, nil); code != 0 {
		t.Fatalf("--help exit code = %d", code)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "PAYMENTS_TIMEZONE" {
			if f[1] != "UTC" {
				t.Errorf("--help shows PAYMENTS_TIMEZONE default %q, want UTC", f[1])
			}
			return
		}
	}
	t.Errorf("--help does not list PAYMENTS_TIMEZONE:\n%s", out.String())
}

func TestEmbeddedPostgresDataDirDefault(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		root bool
		want string
	}{
		{"root", map[string]string{"HOME": "/root"}, true, "/var/lib/payments"},
		{"XDG data home", map[string]string{"XDG_DATA_HOME": "/home/ada/data", "HOME": "/home/ada"}, false, "/home/ada/data/payments"},
		{"home", map[string]string{"HOME": "/home/ada"}, false, "/home/ada/.local/share/payments"},
		{"relative XDG data home is ignored", map[string]string{"XDG_DATA_HOME": "data", "HOME": "/home/ada"}, false, "/home/ada/.local/share/payments"},
	}
	for _, tc := range cases {
		got, err := defaultDataDir(func(k string) string { return tc.env[k] }, tc.root)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := defaultDataDir(func(string) string { return "" }, false); err == nil || !strings.Contains(err.Error(), "PAYMENTS_DATA_DIR") {
		t.Errorf("no HOME: %v", err)
	}
}

func TestEmbeddedPostgresSettings(t *testing.T) {
	base := map[string]string{"PAYMENTS_DEV_AUTH": "true"}
	with := func(k, v string) func(string) string {
		return func(name string) string {
			if name == k {
				return v
			}
			return base[name]
		}
	}
	c, err := loadConfig(with("PAYMENTS_DATA_DIR", "/srv/payments"))
	if err != nil || c.DatabaseURL != "" || c.DataDir != "/srv/payments" {
		t.Fatalf("PAYMENTS_DATA_DIR: %+v, %v", c.DataDir, err)
	}
	for _, name := range []string{"PAYMENTS_DATA_DIR", "PAYMENTS_POSTGRES_BIN"} {
		if _, err := loadConfig(with(name, "relative/dir")); err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "absolute") {
			t.Errorf("%s relative: %v", name, err)
		}
	}
	c, err = loadConfig(with("DATABASE_URL", "postgres://db.internal/payments"))
	if err != nil || c.DataDir != "" {
		t.Errorf("with DATABASE_URL the data directory stays unset: %q, %v", c.DataDir, err)
	}
}

// TestEveryConfigErrorNamesItsVariable walks the whole settings table with
// values that are wrong for most settings: every refusal names its variable,
// each line of it starts with a variable (NAME=value: why, or NAME: why for
// a rule between settings), none reads like a library message, and
// never shows a secret's value. The settings that validate their value must
// refuse at least one of them.
func TestEveryConfigErrorNamesItsVariable(t *testing.T) {
	bad := []string{"bogus", "-1", "0", "1ms", "24h", "99999999999", "http://", "ftp://x.example", "a b", "x\x01y", "yes"}
	// Free text (ids, secrets, paths read later): any value is accepted here.
	free := map[string]bool{
		"PAYMENTS_INTROSPECTION_CLIENT_ID": true, "PAYMENTS_INTROSPECTION_CLIENT_SECRET": true,
		"PAYMENTS_INTROSPECTION_PRIVATE_KEY": true, "PAYMENTS_INTROSPECTION_KEY_ID": true,
	}
	for _, s := range settings {
		t.Run(s.name, func(t *testing.T) {
			refused := 0
			for _, v := range bad {
				e := map[string]string{"PAYMENTS_DEV_AUTH": "true", s.name: v}
				_, err := loadConfig(env(e))
				if err == nil {
					continue
				}
				refused++
				msg := err.Error()
				if !strings.Contains(msg, s.name) {
					t.Errorf("%s=%q: error does not name the variable:\n%s", s.name, v, msg)
				}
				for _, line := range strings.Split(msg, "\n")[1:] {
					if name, _, _ := strings.Cut(strings.TrimSpace(line), " "); !strings.HasPrefix(name, "PAYMENTS_") && !strings.HasPrefix(name, "DATABASE_URL") && !strings.HasPrefix(name, "OTEL_") {
						t.Errorf("%s=%q: a line of the error does not start with a variable: %q", s.name, v, line)
					}
				}
				for _, lib := range []string{"strconv.", "time: ", "slog: ", "parsing "} {
					if strings.Contains(msg, lib) {
						t.Errorf("%s=%q: error reads like a library message (%q):\n%s", s.name, v, lib, msg)
					}
				}
				if s.secret && len(v) >= 5 && strings.Contains(msg, v) {
					t.Errorf("%s=%q: error shows the secret value:\n%s", s.name, v, msg)
				}
			}
			if refused == 0 && !free[s.name] {
				t.Errorf("%s accepted every one of %q", s.name, bad)
			}
		})
	}
}

// TestConfigErrorsStateTheRule: the three settings that used to print a
// library's words (or fail later without naming the variable) now say what
// is allowed.
func TestConfigErrorsStateTheRule(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"PAYMENTS_DPOP_NONCE_WINDOW", "1ms", "PAYMENTS_DPOP_NONCE_WINDOW=1ms: must be at least 1s"},
		{"PAYMENTS_DPOP_MAX_AGE", "24h", "PAYMENTS_DPOP_MAX_AGE=24h: must be at most 5m"},
		{"PAYMENTS_DEV_AUTH", "yes", "PAYMENTS_DEV_AUTH=yes: must be true or false"},
		{"PAYMENTS_MIGRATE", "maybe", "PAYMENTS_MIGRATE=maybe: must be true or false"},
		{"PAYMENTS_DPOP_SKEW", "61s", "PAYMENTS_DPOP_SKEW=61s: must be at most 60s"},
		{"PAYMENTS_SHUTDOWN_GRACE", "soon", "PAYMENTS_SHUTDOWN_GRACE=soon: must be a Go duration such as 30s or 5m"},
		{"PAYMENTS_LOG_LEVEL", "loud", "PAYMENTS_LOG_LEVEL=loud: must be debug, info, warn or error"},
		{"PAYMENTS_ADDR", "8080", "PAYMENTS_ADDR=8080: must be host:port such as :8080 or 127.0.0.1:8080"},
		{"PAYMENTS_PUBLIC_URL", "http://localhost:99999", "PAYMENTS_PUBLIC_URL=http://localhost:99999: must have a port from 1 to 65535"},
		{"PAYMENTS_TIMEZONE", "Mars Base", `PAYMENTS_TIMEZONE="Mars Base": must be an IANA time zone name such as "Europe/London" or "UTC"`},
		{"DATABASE_URL", "mysql://db/x", "DATABASE_URL=(hidden): must be a postgres:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := map[string]string{"PAYMENTS_DEV_AUTH": "true", tt.name: tt.value}
			_, err := loadConfig(env(e))
			if err == nil {
				t.Fatalf("%s=%s accepted", tt.name, tt.value)
			}
			if want := "invalid configuration:\n  " + tt.want; err.Error() != want {
				t.Errorf("error =\n%s\nwant\n%s", err, want)
			}
			var stderr bytes.Buffer
			if code := run(context.Background(), []string{"serve"}, env(e), io.Discard, &stderr, nil); code != 1 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("serve = %d, stderr:\n%s\nwant exit 1 with %q", code, stderr.String(), tt.want)
			}
		})
	}
}

// TestHelpStatesEnforcedBounds: --help states each DPoP bound in the words of
// its error, the bound itself is accepted and the value just past it
// refused, and the security package's verifier accepts the bounds.
func TestHelpStatesEnforcedBounds(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, env(nil), &out, io.Discard, nil); code != 0 {
		t.Fatalf("--help exit code = %d", code)
	}
	help := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 {
			help[f[0]] = line
		}
	}
	tests := []struct {
		name        string
		bound, past time.Duration
		words       string
	}{
		{"PAYMENTS_DPOP_NONCE_WINDOW", minNonceWindow, minNonceWindow - time.Millisecond, "at least " + boundText(minNonceWindow)},
		{"PAYMENTS_DPOP_MAX_AGE", maxDPoPMaxAge, maxDPoPMaxAge + time.Second, "at most " + boundText(maxDPoPMaxAge)},
		{"PAYMENTS_DPOP_SKEW", maxDPoPSkew, maxDPoPSkew + time.Second, "at most " + boundText(maxDPoPSkew)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(help[tt.name], tt.words) {
				t.Errorf("--help for %s = %q, want it to say %q", tt.name, help[tt.name], tt.words)
			}
			if _, err := loadConfig(env(map[string]string{"PAYMENTS_DEV_AUTH": "true", tt.name: tt.bound.String()})); err != nil {
				t.Errorf("%s=%s (the bound) refused: %v", tt.name, tt.bound, err)
			}
			_, err := loadConfig(env(map[string]string{"PAYMENTS_DEV_AUTH": "true", tt.name: tt.past.String()}))
			if want := tt.name + "=" + tt.past.String() + ": must be " + tt.words; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s=%s (past the bound) = %v, want %q", tt.name, tt.past, err, want)
			}
		})
	}
	replay, err := security.NewMemoryReplayStore()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := security.NewVerifier(security.Config{PublicURL: "http://localhost:8080", ReplayStore: replay,
		Introspector: devauth.NewTokens(time.Now), MaxAge: maxDPoPMaxAge, Skew: maxDPoPSkew, NonceWindow: minNonceWindow}); err != nil {
		t.Errorf("the verifier refuses the configuration's bounds: %v", err)
	}
}
