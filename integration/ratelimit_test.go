package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// TestRateLimitPerClient runs the server with PAYMENTS_RATE_LIMIT: past its
// burst an aggregator is answered 429 with Retry-After and the OB error
// body, while another aggregator goes on.
func TestRateLimitPerClient(t *testing.T) {
	s := startServer(t, "PAYMENTS_RATE_LIMIT=1/m,burst=2")
	sb := newSandbox(t, s)
	url := s.URL + "/open-banking/v3.1/aisp/account-access-consents/unknown"
	get := func(c *client.Client) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(sb.ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, body
	}
	for i := 0; i < 2; i++ {
		if res, body := get(sb.tppAPI); res.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d within the burst: 429 %s", i+1, body)
		}
	}
	res, body := get(sb.tppAPI)
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third request: %d %s, want 429", res.StatusCode, body)
	}
	if ra := res.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q, want the seconds until the next request (about 60)", ra)
	}
	var e obapi.OBErrorResponse1
	if err := json.Unmarshal(body, &e); err != nil || e.Code != "429 Too Many Requests" || len(e.Errors) != 1 ||
		e.Errors[0].ErrorCode != "OBPAY.TooManyRequests" || e.Id == nil || *e.Id != res.Header.Get("x-fapi-interaction-id") {
		t.Errorf("429 body = %s (%v), want the OB error body", body, err)
	}
	if res, body := get(sb.tpp2); res.StatusCode == http.StatusTooManyRequests {
		t.Errorf("another aggregator: 429 %s", body)
	}
	if got := metricValue(t, s.URL, "payments_rate_limited_total"); got != "1" {
		t.Errorf("payments_rate_limited_total = %q, want 1", got)
	}
}
