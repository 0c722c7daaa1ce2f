package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obpay/payments/internal/obapi4"
	"github.com/obpay/payments/internal/openbanking"
)

// det is an ErrorDetail without Url.
func det(code, message, path string) ErrorDetail {
	return ErrorDetail{ErrorCode: code, Message: message, Path: path}
}

func TestToV4(t *testing.T) {
	tests := []struct {
		name   string
		status int
		in     ErrorDetail
		want   ErrorDetail
	}{
		{"missing member", 400, det(CodeFieldMissing, "Required field is missing", "Data.Initiation.CreditorAccount.Name"),
			det("U004", "Required field is missing", "Data.Initiation.CreditorAccount.Name")},
		{"expected member", 400, det(CodeFieldExpected, "Expected", "Data.Initiation"),
			det("U004", "Expected", "Data.Initiation")},
		{"invalid value", 400, det(CodeFieldInvalid, "Value has the wrong format", "Data.Initiation.InstructedAmount.Amount"),
			det("U002", "Value has the wrong format", "Data.Initiation.InstructedAmount.Amount")},
		{"invalid date in a body", 400, det(CodeFieldInvalid, "must be in the future", "Data.ExpirationDateTime"),
			det("U003", "must be in the future", "Data.ExpirationDateTime")},
		{"invalid date in a query", 400, det(CodeFieldInvalid, "Not an ISO 8601 date-time", "fromBookingDateTime"),
			det("U003", "Not an ISO 8601 date-time", "fromBookingDateTime")},
		{"v3.1 invalid date code", 400, det(CodeFieldInvalidDate, "bad date", "Data.Authorisation.CompletionDateTime"),
			det("U003", "bad date", "Data.Authorisation.CompletionDateTime")},
		{"invalid Date of an Initiation", 400, det(CodeFieldInvalid, "Value has the wrong format", "Data.Initiation.RegulatoryReporting.0.Details.0.Date"),
			det("U003", "Value has the wrong format", "Data.Initiation.RegulatoryReporting.0.Details.0.Date")},
		{"body of the wrong type", 400, det(CodeFieldInvalid, "Value has the wrong type", ""),
			det("U010", "Value has the wrong type", "")},
		{"missing date stays missing", 400, det(CodeFieldMissing, "Required field is missing", "Data.ExpirationDateTime"),
			det("U004", "Required field is missing", "Data.ExpirationDateTime")},
		{"unexpected member", 400, det(CodeFieldUnexpected, "Unexpected field", "Data.Initiation.RemittanceInformation.Reference"),
			det("U005", "Unexpected field", "Data.Initiation.RemittanceInformation.Reference")},
		{"malformed body", 400, det(CodeResourceInvalidFormat, "Request body is not valid JSON", ""),
			det("U010", "Request body is not valid JSON", "")},
		{"idempotency key missing", 400, det(CodeHeaderMissing, "x-idempotency-key is required", HeaderIdempotencyKey),
			det("U007", "x-idempotency-key is required", HeaderIdempotencyKey)},
		{"idempotency key invalid", 400, det(CodeHeaderInvalid, "too long", HeaderIdempotencyKey),
			det("U006", "too long", HeaderIdempotencyKey)},
		{"consent mismatch", 400, det(CodeConsentMismatch, "differ", "Data.Initiation"),
			det("U008", "differ", "")},
		{"invalid consent status", 400, det(CodeInvalidConsentStatus, "status", ""),
			det("U009", "status", "")},
		{"unknown id", 400, det(CodeResourceNotFound, "No such resource", ""),
			det("U011", "No such resource", "")},
		{"unsupported currency", 400, det(CodeUnsupportedCurrency, "currency", "Data.Initiation.InstructedAmount.Currency"),
			det("U023", "currency", "Data.Initiation.InstructedAmount.Currency")},
		{"unsupported scheme", 400, det(CodeUnsupportedScheme, "scheme", "Data.Initiation.CreditorAccount.SchemeName"),
			det("U027", "scheme", "Data.Initiation.CreditorAccount.SchemeName")},
		{"unsupported account identifier", 400, det(CodeUnsupportedAccountIdentifier, "scheme", "Data.Initiation.CreditorAccount.SchemeName"),
			det("U027", "scheme", "Data.Initiation.CreditorAccount.SchemeName")},
		{"another 400 of our own", 400, det(CodeResourceInvalidRequest, "Bad Request", ""),
			det("U002", "Bad Request", "")},
		{"401 hides the reason", 401, det(CodeUnauthorized, "DPoP proof signature invalid", ""),
			det("U042", "Unauthorized", "")},
		{"403 hides the reason, not the header", 403, det(CodeForbidden, msgCustomerTokenRequired, "Authorization"),
			det("U042", "Forbidden", "Authorization")},
		{"403 without a path", 403, det(CodeForbidden, "The token does not grant access to this resource", ""),
			det("U042", "Forbidden", "")},
		{"404 route", 404, det(CodeResourceNotFound, "No such resource", ""),
			det("U042", "Not Found", "")},
		{"405", 405, det(CodeMethodNotAllowed, "Method not allowed on this resource", ""),
			det("U042", "Method Not Allowed", "")},
		{"429", 429, det(CodeTooManyRequests, "Too many requests", ""),
			det("U042", "Too Many Requests", "")},
		{"406", 406, det(CodeNotAcceptable, "This API answers application/json only", "Accept"),
			det("U006", "This API answers application/json only", "Accept")},
		{"415", 415, det(CodeUnsupportedMediaType, "Content-Type must be application/json", ""),
			det("U006", "Content-Type must be application/json", "Content-Type")},
		{"413", 413, det(CodeRequestEntityTooLarge, "Request body too large", ""),
			det("U010", "Request body too large", "")},
		{"500", 500, det(CodeUnexpectedError, "Internal error", ""),
			det("U000", "Internal error", "")},
		{"503", 503, det(CodeServiceUnavailable, "Service unavailable", ""),
			det("U000", "Service unavailable", "")},
		{"a message is always sent", 400, det(CodeFieldInvalid, "", "Data"),
			det("U002", "Bad Request", "Data")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := toV4(tc.status, tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("toV4(%d, %+v) mismatch (-want +got):\n%s", tc.status, tc.in, diff)
			}
			if len(got.ErrorCode) != 4 {
				t.Fatalf("ErrorCode %q is not 4 characters", got.ErrorCode)
			}
		})
	}
}

func TestV4AnswerToAReusedIdempotencyKey(t *testing.T) {
	err := obError(openbanking.ErrIdempotencyConflict)
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("obError = %v, want an *APIError", err)
	}
	status, details := v4Answer(err, apiErr.Status, apiErr.Details, testBase)
	want := []ErrorDetail{{ErrorCode: "U029", Message: msgIdempotencyReused, Path: HeaderIdempotencyKey, URL: testBase + "/docs/idempotency"}}
	if diff := cmp.Diff(want, details); status != http.StatusUnprocessableEntity || diff != "" {
		t.Fatalf("v4Answer = %d, want 422; details (-want +got):\n%s", status, diff)
	}
	if _, details := v4Answer(err, apiErr.Status, apiErr.Details, ""); details[0].URL != "" {
		t.Fatalf("Url without a public URL = %q, want none", details[0].URL)
	}
}

// TestV4ErrorsThroughTheRenderer sends requests under /open-banking/v4.0 (a
// route group registered here) and under v3.1 through the server's error
// renderer.
func TestV4ErrorsThroughTheRenderer(t *testing.T) {
	reg := prometheus.NewRegistry()
	conflict := func(echo.Context) error { return obError(openbanking.ErrIdempotencyConflict) }
	e, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: reg, PublicURL: testBase + "/",
		Ping: func(context.Context) error { return nil },
		Routes: func(e *echo.Echo) error {
			e.Group("/open-banking/v4.0/pisp", acceptJSON(), fakeDPoP).GET("/thing", conflict)
			e.Group("/open-banking/v3.1/pisp", acceptJSON(), fakeDPoP).GET("/thing", conflict)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := obapi4.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	errorSchema := doc.Components.Schemas["OBErrorResponse1"].Value
	tests := []struct {
		name   string
		path   string
		header map[string]string
		status int
		want   ErrorDetail
	}{
		{"401 keeps its challenge", "/open-banking/v4.0/pisp/thing", nil, 401, ErrorDetail{ErrorCode: "U042", Message: "Unauthorized"}},
		{"406 names Accept", "/open-banking/v4.0/pisp/thing", map[string]string{"Accept": "text/html"}, 406,
			ErrorDetail{ErrorCode: "U006", Message: "This API answers application/json only: send Accept: application/json (or none)", Path: "Accept"}},
		{"404 route", "/open-banking/v4.0/nowhere", nil, 404, ErrorDetail{ErrorCode: "U042", Message: "Not Found"}},
		{"reused idempotency key", "/open-banking/v4.0/pisp/thing", map[string]string{hClient: "tpp-a"}, 422,
			ErrorDetail{ErrorCode: "U029", Message: msgIdempotencyReused, Path: HeaderIdempotencyKey, URL: testBase + "/docs/idempotency"}},
		{"v3.1 reused idempotency key is unchanged", "/open-banking/v3.1/pisp/thing", map[string]string{hClient: "tpp-a"}, 400,
			ErrorDetail{ErrorCode: CodeFieldInvalid, Message: msgIdempotencyReused, Path: HeaderIdempotencyKey}},
		{"v3.1 401 is unchanged", "/open-banking/v3.1/pisp/thing", nil, 401, ErrorDetail{ErrorCode: CodeUnauthorized, Message: "Invalid access token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			var body ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != tc.status || len(body.Errors) != 1 {
				t.Fatalf("GET %s = %d %s, want %d", tc.path, rec.Code, rec.Body, tc.status)
			}
			if diff := cmp.Diff(tc.want, body.Errors[0]); diff != "" {
				t.Fatalf("GET %s: detail (-want +got):\n%s", tc.path, diff)
			}
			if isV4Path(tc.path) {
				if err := errorSchema.VisitJSON(jsonValue(t, rec.Body.Bytes())); err != nil {
					t.Fatalf("GET %s: body %s is not an OBErrorResponse1 of api/openapi-v4.yaml: %v", tc.path, rec.Body, err)
				}
			}
			if tc.status == http.StatusUnauthorized && rec.Header().Get(echo.HeaderWWWAuthenticate) == "" {
				t.Fatalf("GET %s: no WWW-Authenticate challenge", tc.path)
			}
		})
	}
	// The metrics count v4.0 answers by their v4.0 code.
	for _, code := range []string{"U042", "U006", "U029"} {
		n := 0
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "payments_api_errors_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "code" && l.GetValue() == code {
						n += int(m.GetCounter().GetValue())
					}
				}
			}
		}
		if n == 0 {
			t.Errorf("payments_api_errors_total has no answer with code %s", code)
		}
	}
}

// TestV4CodesOfServiceErrors follows each error of the service through
// obError and the v4.0 translation, so that a v3.1 mapping change cannot
// silently change a v4.0 code.
func TestV4CodesOfServiceErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		path   string
	}{
		{"unknown id", openbanking.ErrNotFound, 400, "U011", ""},
		{"another client's resource", openbanking.ErrForbidden, 403, "U042", ""},
		{"client-credentials token for a customer call", openbanking.ErrCustomerTokenRequired, 403, "U042", "Authorization"},
		{"consent not authorised", openbanking.ErrInvalidConsentStatus, 400, "U009", ""},
		{"consent of the other version", fmt.Errorf("payment on v4.0: %w", openbanking.ErrOtherVersion), 400, "U009", ""},
		{"payment differs from its consent", openbanking.ErrConsentMismatch, 400, "U008", ""},
		{"reused idempotency key", openbanking.ErrIdempotencyConflict, 422, "U029", HeaderIdempotencyKey},
		{"unsupported currency", &openbanking.FieldError{Path: "Data.Initiation.InstructedAmount.Currency", Reason: "unsupported currency",
			Err: openbanking.ErrUnsupportedCurrency}, 400, "U023", "Data.Initiation.InstructedAmount.Currency"},
		{"missing member", &openbanking.FieldError{Path: "Data.Permissions", Reason: "required", Missing: true, Err: openbanking.ErrInvalidField},
			400, "U004", "Data.Permissions"},
		{"invalid value", &openbanking.FieldError{Path: "Data.Initiation.InstructedAmount.Amount", Reason: "bad", Err: openbanking.ErrInvalidField},
			400, "U002", "Data.Initiation.InstructedAmount.Amount"},
		{"invalid date", &openbanking.FieldError{Path: "Data.ExpirationDateTime", Reason: "must be in the future", Err: openbanking.ErrInvalidField},
			400, "U003", "Data.ExpirationDateTime"},
		{"database unavailable", openbanking.ErrUnavailable, 503, "U000", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := obError(tc.err)
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("obError(%v) = %v, want an *APIError", tc.err, err)
			}
			status, details := v4Answer(err, apiErr.Status, apiErr.Details, testBase)
			if status != tc.status || len(details) != 1 || details[0].ErrorCode != tc.code || details[0].Path != tc.path || details[0].Message == "" {
				t.Fatalf("v4 answer to %v = %d %+v, want %d %s Path %q", tc.err, status, details, tc.status, tc.code, tc.path)
			}
		})
	}
}
