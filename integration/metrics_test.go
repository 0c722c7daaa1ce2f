package integration

import (
	"bufio"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/obpay/payments/client"
)

// scrape returns the lines of the server's /metrics.
func scrape(t *testing.T, base string) []string {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var lines []string
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// metricValue returns the value of the series whose line starts with
// series (name and labels as exposed), or "" when there is none.
func metricValue(t *testing.T, base, series string) string {
	t.Helper()
	for _, l := range scrape(t, base) {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// exposes reports whether some line of /metrics starts with prefix.
func exposes(t *testing.T, base, prefix string) bool {
	t.Helper()
	for _, l := range scrape(t, base) {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// After a sandbox payment (and its idempotent retry) the business metrics
// count it once, with its consent's life.
func TestBusinessMetricsCountAPayment(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	init := initiation(bob, "30.00", "metrics-1")
	consentID := sb.createConsent(t, init)
	psu := sb.psuClient(t, consentID, "alice", alice.AccountId, "payments")
	key := client.NewIdempotencyKey()
	for range 2 {
		if res := sb.pay(t, psu, consentID, init, key); res.JSON201 == nil {
			t.Fatalf("payment = %d %s", res.StatusCode(), res.Body)
		}
	}
	for series, want := range map[string]string{
		`payments_payments_total{outcome="settled"}`:                     "1",
		`payments_payments_total{outcome="rejected_insufficient_funds"}`: "0",
		`payments_consents_total{event="created",kind="payment"}`:        "1",
		`payments_consents_total{event="authorised",kind="payment"}`:     "1",
		`payments_consents_total{event="consumed",kind="payment"}`:       "1",
		`payments_idempotent_replays_total{resource="payment"}`:          "1",
	} {
		if got := metricValue(t, s.URL, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	if got := metricValue(t, s.URL, `payments_api_errors_total{code="OBPAY.Unauthorized",route="/open-banking/v3.1/pisp/domestic-payment-consents"}`); got == "" {
		t.Error("the nonce challenges of the consent request are not counted as errors by route and code")
	}
	for _, series := range []string{`payments_build_info{goversion=`, `go_sql_wait_count_total{db_name="payments"}`, `payments_dpop_accepted_total`,
		`payments_replay_store_entries`, `payments_replay_store_capacity 1e+06`} {
		if !exposes(t, s.URL, series) {
			t.Errorf("/metrics has no %s", series)
		}
	}
}

// Every metric the Grafana dashboard and the operating guide's metrics table
// name is one the service exposes (after a payment, so every family has a
// series). The introspection family exists only with an introspection
// endpoint, which the sandbox does not use, and the rate limit's counter only
// with PAYMENTS_RATE_LIMIT (TestRateLimitPerClient reads it).
func TestDocumentedMetricsExist(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	init := initiation(bob, "1.00", "metrics-doc")
	consentID := sb.createConsent(t, init)
	psu := sb.psuClient(t, consentID, "alice", alice.AccountId, "payments")
	sb.pay(t, psu, consentID, init, client.NewIdempotencyKey())

	dashboard, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	guide, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(guide), "## 11. Metrics and alerts")
	names := map[string]bool{}
	for _, m := range metricName.FindAllString(string(dashboard)+table, -1) {
		names[strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_")] = true
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in the dashboard and the guide", len(names))
	}
	for name := range names {
		if strings.HasPrefix(name, "payments_introspection_") || name == "payments_rate_limited_total" {
			continue
		}
		if !exposes(t, s.URL, name) {
			t.Errorf("%s is documented but not exposed", name)
		}
	}
}

var metricName = regexp.MustCompile(`\b(?:payments|go_sql)_[a-z_]+`)
