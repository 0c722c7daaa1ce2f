package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
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
