package integration

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// v3.1 as its OpenAPI says: payment-details is served, an unknown sub-path
// of a payment is 404, and a request that does not accept JSON is 406.
func TestPaymentDetailsUnknownSubPathsAndAccept(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	init := initiation(bob, "5.00", "details-1")
	consentID := sb.createConsent(t, init)
	psu := sb.psuClient(t, consentID, "alice", alice.AccountId, "payments")
	res := sb.pay(t, psu, consentID, init, client.NewIdempotencyKey())
	if res.JSON201 == nil {
		t.Fatalf("payment = %d %s", res.StatusCode(), res.Body)
	}
	id := res.JSON201.Data.DomesticPaymentId

	details, err := sb.tppAPI.GetDomesticPaymentsDomesticPaymentIdPaymentDetailsWithResponse(sb.ctx, id,
		&obapi.GetDomesticPaymentsDomesticPaymentIdPaymentDetailsParams{})
	if err != nil {
		t.Fatal(err)
	}
	if details.JSON200 == nil || details.JSON200.Data.PaymentStatus == nil || len(*details.JSON200.Data.PaymentStatus) != 1 {
		t.Fatalf("payment-details = %d %s", details.StatusCode(), details.Body)
	}
	st := (*details.JSON200.Data.PaymentStatus)[0]
	if string(st.Status) != string(res.JSON201.Data.Status) || st.PaymentTransactionId == "" || st.PaymentTransactionId == id {
		t.Errorf("payment-details = %+v, want the payment's status and its ledger transfer", st)
	}
	if details.JSON200.Links == nil || details.JSON200.Links.Self != s.URL+"/open-banking/v3.1/pisp/domestic-payments/"+id+"/payment-details" {
		t.Errorf("Links = %+v", details.JSON200.Links)
	}

	get := func(path, accept string) outcome {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		r, err := sb.tppAPI.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		return outcome{status: r.StatusCode, body: b.Bytes(), header: r.Header}
	}
	payment := "/open-banking/v3.1/pisp/domestic-payments/" + id
	for _, tc := range []struct {
		name, path, accept string
		status             int
		code               string
	}{
		{"unknown sub-path of a payment", payment + "/xyz", "", 404, "UK.OBIE.Resource.NotFound"},
		{"unknown deeper path", payment + "/payment-details/more", "", 404, "UK.OBIE.Resource.NotFound"},
		{"XML only", payment, "application/xml", 406, "OBPAY.NotAcceptable"},
		{"JSON refused by weight", payment, "application/json;q=0", 406, "OBPAY.NotAcceptable"},
		{"a browser's Accept", payment, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 200, ""},
		{"JSON", payment + "/payment-details", "application/json", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := get(tc.path, tc.accept)
			if o.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", o.status, tc.status, o.body)
			}
			if tc.code != "" {
				if code := obError(t, o).Errors[0].ErrorCode; code != tc.code {
					t.Errorf("ErrorCode = %s, want %s", code, tc.code)
				}
			}
		})
	}
}
