package main

import (
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks what the image promises and no container engine is
// needed to see: the binary comes from mk/build-static.sh (the recipe make
// image-check builds and runs), the port exposed is PAYMENTS_ADDR's
// default, no HEALTHCHECK (orchestrators probe /healthz and /readyz), and a
// non-root user.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !regexp.MustCompile(`(?m)^RUN .*sh mk/build-static\.sh /out/payments$`).MatchString(text) {
		t.Error("the build stage must run mk/build-static.sh /out/payments (the recipe make image-check checks)")
	}
	if regexp.MustCompile(`go +build`).MatchString(text) {
		t.Error("the Dockerfile must not run go build itself: its flags would drift from mk/build-static.sh's")
	}
	if regexp.MustCompile(`(?m)^HEALTHCHECK`).MatchString(text) {
		t.Error("no HEALTHCHECK: orchestrators probe /healthz and /readyz")
	}
	var def string
	for _, s := range settings {
		if s.name == "PAYMENTS_ADDR" {
			def = s.def
		}
	}
	_, port, _ := net.SplitHostPort(def)
	if !regexp.MustCompile(`(?m)^EXPOSE .*\b` + port + `\b`).MatchString(text) {
		t.Errorf("EXPOSE must name PAYMENTS_ADDR's default port %s", port)
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)`).FindAllStringSubmatch(text, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Errorf("the image must run as a non-root user; USER lines: %v", users)
	}
}

// TestComposeNamesRealSettings checks that every setting compose.yaml
// gives the nodes is one the service reads.
func TestComposeNamesRealSettings(t *testing.T) {
	data, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.name] = true
	}
	names := regexp.MustCompile(`\b(PAYMENTS_[A-Z0-9_]+|DATABASE_URL)\b`).FindAllString(string(data), -1)
	if len(names) == 0 {
		t.Fatal("compose.yaml sets no setting")
	}
	for _, n := range names {
		if !known[n] {
			t.Errorf("compose.yaml names %s, which is not a setting (payments --help)", n)
		}
	}
}
