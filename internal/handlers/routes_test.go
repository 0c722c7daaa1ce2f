package handlers

import (
	"net/http"
	"testing"
)

// TestRoutesRefuseOtherMethods checks that a declared path answers 405 with
// an Allow header and an OB error for the methods it does not serve, after
// the group's authentication, and that unknown paths stay 404.
func TestRoutesRefuseOtherMethods(t *testing.T) {
	a := newAPI(t)
	const id = "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a"
	payments, accounts, office := tpp("tpp-a", "payments"), tpp("tpp-a", "accounts"), admin
	tests := []struct {
		name         string
		method, path string
		h            hdr
		status       int
		code, allow  string
	}{
		{"PUT on a payment consent", http.MethodPut, "/open-banking/v3.1/pisp/domestic-payment-consents/" + id, payments, 405, CodeMethodNotAllowed, "GET"},
		{"GET on the payments collection", http.MethodGet, "/open-banking/v3.1/pisp/domestic-payments", payments, 405, CodeMethodNotAllowed, "POST"},
		{"DELETE on a payment", http.MethodDelete, "/open-banking/v3.1/pisp/domestic-payments/" + id, payments, 405, CodeMethodNotAllowed, "GET"},
		{"PATCH on an access consent", http.MethodPatch, "/open-banking/v3.1/aisp/account-access-consents/" + id, accounts, 405, CodeMethodNotAllowed, "DELETE, GET"},
		{"POST on the accounts", http.MethodPost, "/open-banking/v3.1/aisp/accounts", accounts, 405, CodeMethodNotAllowed, "GET"},
		{"GET on consent authorisation", http.MethodGet, "/internal/v1/consents/" + id + "/authorise", office, 405, CodeMethodNotAllowed, "POST"},
		{"PUT without a token is refused first", http.MethodPut, "/open-banking/v3.1/pisp/domestic-payment-consents/" + id, nil, 401, CodeUnauthorized, ""},
		{"unknown path in a group", http.MethodGet, "/open-banking/v3.1/pisp/nothing", payments, 404, CodeResourceNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := a.do(tc.method, tc.path, "", tc.h)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.status, rec.Body.String())
			}
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if b := decodeError(t, rec); b.Errors[0].ErrorCode != tc.code {
				t.Errorf("ErrorCode = %s, want %s", b.Errors[0].ErrorCode, tc.code)
			}
		})
	}
}
