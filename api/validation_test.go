package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/obpay/payments/internal/obapi"
)

// specRouter finds the operation of a request, as the server's request validation will.
func specRouter(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	doc := loadSpec(t)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("legacy.NewRouter() = %v", err)
	}
	return doc, router
}

const validConsent = `{
  "Data": {"Initiation": {
    "InstructionIdentification": "ACME412", "EndToEndIdentification": "FRESCO.21302.GFX.20",
    "InstructedAmount": {"Amount": "165.88", "Currency": "GBP"},
    "CreditorAccount": {"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "08080021325698"}}},
  "Risk": {}
}`

// TestRequestValidation shows that the spec, used for request validation, accepts a correct
// request and refuses the mistakes the contract forbids.
func TestRequestValidation(t *testing.T) {
	_, router := specRouter(t)
	consents := "http://localhost:8080/open-banking/v3.1/pisp/domestic-payment-consents"
	headers := map[string]string{"DPoP": "proof", "x-idempotency-key": "key-1", "Content-Type": "application/json"}
	without := func(name string) map[string]string {
		h := map[string]string{}
		for k, v := range headers {
			if k != name {
				h[k] = v
			}
		}
		return h
	}
	tests := []struct {
		name    string
		method  string
		url     string
		headers map[string]string
		body    string
		ok      bool
	}{
		{name: "accepts a valid payment consent", method: "POST", url: consents, headers: headers, body: validConsent, ok: true},
		{name: "refuses a numeric amount", method: "POST", url: consents, headers: headers,
			body: strings.Replace(validConsent, `"165.88"`, `165.88`, 1)},
		{name: "refuses more than five decimals", method: "POST", url: consents, headers: headers,
			body: strings.Replace(validConsent, `"165.88"`, `"165.888888"`, 1)},
		{name: "refuses a lower-case currency", method: "POST", url: consents, headers: headers,
			body: strings.Replace(validConsent, `"GBP"`, `"gbp"`, 1)},
		{name: "refuses an unknown field", method: "POST", url: consents, headers: headers,
			body: strings.Replace(validConsent, `"Risk": {}`, `"Risk": {}, "Extra": 1`, 1)},
		{name: "refuses an unknown Initiation field", method: "POST", url: consents, headers: headers,
			body: strings.Replace(validConsent, `"InstructionIdentification"`, `"Surprise": "x", "InstructionIdentification"`, 1)},
		{name: "refuses a missing CreditorAccount", method: "POST", url: consents, headers: headers,
			body: strings.Replace(validConsent, `"CreditorAccount"`, `"DebtorAccount"`, 1)},
		{name: "refuses a missing Risk", method: "POST", url: consents, headers: headers,
			body: strings.Replace(validConsent, `,
  "Risk": {}`, ``, 1)},
		{name: "refuses a missing idempotency key", method: "POST", url: consents, headers: without("x-idempotency-key"), body: validConsent},
		{name: "refuses an idempotency key over 40 characters", method: "POST", url: consents,
			headers: map[string]string{"DPoP": "proof", "x-idempotency-key": strings.Repeat("k", 41), "Content-Type": "application/json"}, body: validConsent},
		{name: "refuses a missing DPoP header", method: "POST", url: consents, headers: without("DPoP"), body: validConsent},
		{name: "accepts an account access consent", method: "POST", url: "http://localhost:8080/open-banking/v3.1/aisp/account-access-consents",
			headers: without("x-idempotency-key"), body: `{"Data": {"Permissions": ["ReadAccountsDetail", "ReadBalances"]}, "Risk": {}}`, ok: true},
		{name: "refuses an unsupported permission", method: "POST", url: "http://localhost:8080/open-banking/v3.1/aisp/account-access-consents",
			headers: without("x-idempotency-key"), body: `{"Data": {"Permissions": ["ReadBeneficiariesDetail"]}, "Risk": {}}`},
		{name: "refuses no permissions", method: "POST", url: "http://localhost:8080/open-banking/v3.1/aisp/account-access-consents",
			headers: without("x-idempotency-key"), body: `{"Data": {"Permissions": []}, "Risk": {}}`},
		{name: "accepts a back office account without opening balance", method: "POST", url: "http://localhost:8080/internal/v1/accounts",
			headers: without("x-idempotency-key"), body: `{"Owner": "alice", "Currency": "GBP", "Nickname": "Main"}`, ok: true},
		{name: "refuses a numeric opening balance", method: "POST", url: "http://localhost:8080/internal/v1/accounts",
			headers: without("x-idempotency-key"), body: `{"Owner": "alice", "Currency": "GBP", "Nickname": "Main", "OpeningBalance": 100}`},
		{name: "accepts an authorisation without debtor account", method: "POST", url: "http://localhost:8080/internal/v1/consents/c-1/authorise",
			headers: without("x-idempotency-key"), body: `{"Psu": "alice"}`, ok: true},
		{name: "accepts a transactions query", method: "GET",
			url:     "http://localhost:8080/open-banking/v3.1/aisp/accounts/a-1/transactions?fromBookingDateTime=2025-01-01T00:00:00Z&cursor=abc",
			headers: map[string]string{"DPoP": "proof"}, ok: true},
		{name: "refuses a malformed booking date", method: "GET",
			url:     "http://localhost:8080/open-banking/v3.1/aisp/accounts/a-1/transactions?fromBookingDateTime=yesterday",
			headers: map[string]string{"DPoP": "proof"}},
		{name: "accepts a health check without credentials", method: "GET", url: "http://localhost:8080/healthz", ok: true},
		{name: "accepts any interaction id (the server replaces non-UUIDs)", method: "GET", url: "http://localhost:8080/readyz",
			headers: map[string]string{"x-fapi-interaction-id": strings.Repeat("not-a-uuid ", 10)}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req := httptest.NewRequest(tt.method, tt.url, body)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			route, pathParams, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("FindRoute(%s %s) = %v", tt.method, tt.url, err)
			}
			err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
				Request: req, PathParams: pathParams, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
			})
			if (err == nil) != tt.ok {
				t.Errorf("ValidateRequest() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestGeneratedModelsMarshalToValidResponses marshals the generated Go types, filled the way
// a handler fills them, and validates the JSON against the spec: time formats, amount strings,
// empty Risk objects and omitted optional fields all come out as the contract says.
func TestGeneratedModelsMarshalToValidResponses(t *testing.T) {
	_, router := specRouter(t)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	initiation := obapi.OBWriteDomestic2DataInitiation{
		InstructionIdentification: "ACME412",
		EndToEndIdentification:    "FRESCO.21302.GFX.20",
		InstructedAmount:          obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: "165.88", Currency: "GBP"},
		CreditorAccount:           obapi.OBCashAccountCreditor3{SchemeName: "UK.OBIE.SortCodeAccountNumber", Identification: "08080021325698"},
	}
	links := obapi.Links{Self: "http://localhost:8080/open-banking/v3.1/pisp/domestic-payment-consents/c-1"}
	tests := []struct {
		name   string
		method string
		url    string
		status int
		body   any
		ok     bool
	}{
		{name: "payment consent", method: "POST", url: "/open-banking/v3.1/pisp/domestic-payment-consents", status: 201, ok: true,
			body: obapi.OBWriteDomesticConsentResponse5{
				Data: obapi.OBWriteDomesticConsentResponse5Data{
					ConsentId: "c-1", CreationDateTime: now, StatusUpdateDateTime: now, Initiation: initiation,
					Status: obapi.OBWriteDomesticConsentResponse5DataStatusAwaitingAuthorisation,
				},
				Links: links,
			}},
		{name: "domestic payment", method: "GET", url: "/open-banking/v3.1/pisp/domestic-payments/p-1", status: 200, ok: true,
			body: obapi.OBWriteDomesticResponse5{
				Data: obapi.OBWriteDomesticResponse5Data{
					DomesticPaymentId: "p-1", ConsentId: "c-1", CreationDateTime: now, StatusUpdateDateTime: now, Initiation: initiation,
					Status: obapi.OBWriteDomesticResponse5DataStatusAcceptedSettlementCompleted,
				},
				Links: links,
			}},
		{name: "account access consent with empty Risk", method: "GET", url: "/open-banking/v3.1/aisp/account-access-consents/c-2", status: 200, ok: true,
			body: obapi.OBReadConsentResponse1{
				Data: obapi.OBReadConsentResponse1Data{
					ConsentId: "c-2", CreationDateTime: now, StatusUpdateDateTime: now,
					Status:      obapi.OBReadConsentResponse1DataStatusAuthorised,
					Permissions: []obapi.OBExternalPermissions1Code{obapi.OBExternalPermissions1CodeReadBalances},
				},
				Links: links,
			}},
		{name: "balances", method: "GET", url: "/open-banking/v3.1/aisp/accounts/a-1/balances", status: 200, ok: true,
			body: obapi.OBReadBalance1{
				Data: obapi.OBReadBalance1Data{Balance: []obapi.OBReadBalance1DataBalance{{
					AccountId: "a-1", CreditDebitIndicator: obapi.OBCreditDebitCodeCredit, Type: obapi.OBBalanceType1CodeInterimAvailable,
					DateTime: now, Amount: obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: "100.00", Currency: "GBP"},
				}}},
				Links: links,
				Meta:  obapi.Meta{TotalPages: ptr(int32(1))},
			}},
		{name: "reconcile report with empty drift", method: "GET", url: "/internal/v1/ledger/reconcile", status: 200, ok: true,
			body: obapi.ReconcileReport{
				Balanced: true, AccountsChecked: 3, Drift: []obapi.LedgerDrift{},
				Totals: []obapi.LedgerCurrencyTotal{{Currency: "GBP", Net: "0.00"}},
			}},
		{name: "reconcile report with nil drift is refused (null is not an array)", method: "GET", url: "/internal/v1/ledger/reconcile", status: 200,
			body: obapi.ReconcileReport{Balanced: true, Totals: []obapi.LedgerCurrencyTotal{}}},
		{name: "liveness", method: "GET", url: "/healthz", status: 200, ok: true, body: obapi.HealthStatus{Status: obapi.HealthStatusStatusUP}},
		{name: "readiness", method: "GET", url: "/readyz", status: 200, ok: true, body: obapi.HealthStatus{Status: obapi.HealthStatusStatusREADY}},
		{name: "error body", method: "POST", url: "/open-banking/v3.1/pisp/domestic-payments", status: 400, ok: true,
			body: obapi.OBErrorResponse1{Code: "400 BadRequest", Message: "The request is invalid.", Errors: []obapi.OBError1{{
				ErrorCode: "UK.OBIE.Field.Invalid", Message: "bad amount", Path: ptr("Data.Initiation.InstructedAmount.Amount"),
			}}}},
		{name: "not implemented yet answers an OB error body", method: "GET", url: "/open-banking/v3.1/aisp/accounts", status: 501, ok: true,
			body: obapi.OBErrorResponse1{Code: "501 NotImplemented", Message: "Not implemented yet.", Errors: []obapi.OBError1{{
				ErrorCode: "UK.OBIE.UnexpectedError", Message: "not implemented",
			}}}},
		{name: "error body without errors is refused", method: "GET", url: "/open-banking/v3.1/aisp/accounts", status: 500,
			body: obapi.OBErrorResponse1{Code: "500 InternalError", Message: "boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://localhost:8080"+tt.url, nil)
			route, pathParams, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("FindRoute() = %v", err)
			}
			raw, err := json.Marshal(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			header := http.Header{}
			header.Set("Content-Type", "application/json")
			header.Set("x-fapi-interaction-id", "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a")
			err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route},
				Status:                 tt.status,
				Header:                 header,
				Body:                   io.NopCloser(bytes.NewReader(raw)),
				Options:                &openapi3filter.Options{IncludeResponseStatus: true},
			})
			if (err == nil) != tt.ok {
				t.Errorf("ValidateResponse(%s) = %v, want ok %v", raw, err, tt.ok)
			}
		})
	}
}
