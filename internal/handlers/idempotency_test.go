package handlers

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/openbanking"
)

// TestRequireIdempotencyKeyFollowsServiceRule checks that the edge accepts
// exactly the keys openbanking.CheckIdempotencyKey accepts, with the OB code
// and Path the contract gives, so that the edge cannot drift from the
// service's rule (the NUL case passes a UTF-8-only check).
func TestRequireIdempotencyKeyFollowsServiceRule(t *testing.T) {
	tests := []struct {
		name     string
		values   []string
		wantCode string // "" means accepted
	}{
		{"accepts a key", []string{"k-1"}, ""},
		{"accepts 40 characters", []string{strings.Repeat("é", openbanking.MaxIdempotencyKeyLen)}, ""},
		{"rejects absent header", nil, CodeHeaderMissing},
		{"rejects empty value", []string{""}, CodeHeaderMissing},
		{"rejects two values", []string{"a", "b"}, CodeHeaderInvalid},
		{"rejects 41 characters", []string{strings.Repeat("k", openbanking.MaxIdempotencyKeyLen+1)}, CodeHeaderInvalid},
		{"rejects padded key", []string{"k "}, CodeHeaderInvalid},
		{"rejects invalid UTF-8", []string{"k\xff"}, CodeHeaderInvalid},
		{"rejects NUL", []string{"k\x00"}, CodeHeaderInvalid},
	}
	mw := requireIdempotencyKey()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", nil)
			for _, v := range tc.values {
				req.Header.Add(HeaderIdempotencyKey, v)
			}
			c := echo.New().NewContext(req, httptest.NewRecorder())
			called := false
			err := mw(func(echo.Context) error { called = true; return nil })(c)
			if tc.wantCode == "" {
				if err != nil || !called {
					t.Fatalf("requireIdempotencyKey(%q) = %v (next called %v), want accepted", tc.values, err, called)
				}
				if len(tc.values) == 1 && openbanking.CheckIdempotencyKey(tc.values[0]) != nil {
					t.Errorf("edge accepts %q but openbanking.CheckIdempotencyKey refuses it", tc.values[0])
				}
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) || called || len(ae.Details) != 1 {
				t.Fatalf("requireIdempotencyKey(%q) = %v (next called %v), want an APIError", tc.values, err, called)
			}
			if d := ae.Details[0]; ae.Status != http.StatusBadRequest || d.ErrorCode != tc.wantCode || d.Path != HeaderIdempotencyKey {
				t.Errorf("requireIdempotencyKey(%q) = %d %s %s, want 400 %s %s", tc.values, ae.Status, d.ErrorCode, d.Path, tc.wantCode, HeaderIdempotencyKey)
			}
		})
	}
}
