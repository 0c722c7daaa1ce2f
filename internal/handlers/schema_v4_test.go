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
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/obapi4"
)

// consentBodyV4 is a valid Open Banking v4.0 payment consent body using the
// members v4 added.
const consentBodyV4 = `{"Data":{"Initiation":{"InstructionIdentification":"ACME412","EndToEndIdentification":"E2E-1",
	"InstructedAmount":{"Amount":"10.00","Currency":"GBP"},
	"CreditorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"04040012345678","Name":"Bob",
		"Proxy":{"Identification":"+447700900000","Code":"TELE"}},
	"CreditorAgent":{"SchemeName":"UK.OBIE.BICFI","Identification":"ACMEGB2L"},
	"UltimateDebtor":{"Name":"Alice Ltd"},
	"RegulatoryReporting":[{"DebitCreditReportingIndicator":"CRED","Details":[{"Type":"x","Information":["y"]}]}],
	"RemittanceInformation":{"Structured":[{"CreditorReferenceInformation":{"Reference":"INV-1"},"ReferredDocumentAmount":3}],
		"Unstructured":["Invoice 1"]},
	"SupplementaryData":{}}},
	"Risk":{"PaymentContextCode":"TransferToThirdParty","ContractPresentIndicator":true,"CategoryPurposeCode":"SUPP",
		"PaymentPurposeCode":"GDSV","DeliveryAddress":{"AddressType":"DLVY","TownName":"London","AddressLine":["1 High St"]}}}`

// accessConsentBodyV4 is a valid v4 account access consent body.
const accessConsentBodyV4 = `{"Data":{"Permissions":["ReadAccountsDetail","ReadBalances"],"ExpirationDateTime":"2030-01-01T00:00:00Z"},"Risk":{}}`

func mustValidatorV4(t testing.TB) *bodyValidator {
	t.Helper()
	v, err := newSpecValidator(obapi4.GetSpec)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func decodeOp(t testing.TB, v *bodyValidator, op, body string, dst any) error {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c := echo.New().NewContext(req, httptest.NewRecorder())
	_, err := v.decode(c, op, dst)
	return err
}

// TestValidatorV4Bodies validates sample v4 request bodies with the v4
// validator: the v4 members are accepted, and the v3.1 shapes the contract
// removed are refused with the member's dotted Path.
func TestValidatorV4Bodies(t *testing.T) {
	v := mustValidatorV4(t)
	payment := strings.Replace(consentBodyV4, `{"Data":{`, `{"Data":{"ConsentId":"c-1",`, 1)
	tests := []struct {
		name string
		op   string
		body string
		want []ErrorDetail // nil: accepted
	}{
		{name: "accepts a v4 consent", op: "CreateDomesticPaymentConsents", body: consentBodyV4},
		{name: "accepts a v4 payment", op: "CreateDomesticPayments", body: payment},
		{name: "accepts a v4 account access consent", op: "CreateAccountAccessConsents", body: accessConsentBodyV4},
		{name: "refuses v3.1's RemittanceInformation.Reference", op: "CreateDomesticPaymentConsents",
			body: strings.Replace(consentBodyV4, `"Unstructured"`, `"Reference":"INV-1","Unstructured"`, 1),
			want: []ErrorDetail{{ErrorCode: CodeFieldUnexpected, Message: "Unexpected field", Path: "Data.Initiation.RemittanceInformation.Reference"}}},
		{name: "refuses a missing creditor name", op: "CreateDomesticPaymentConsents",
			body: strings.Replace(consentBodyV4, `"Name":"Bob",`, ``, 1),
			want: []ErrorDetail{{ErrorCode: CodeFieldMissing, Message: "Required field is missing", Path: "Data.Initiation.CreditorAccount.Name"}}},
		{name: "refuses a missing creditor name in a payment", op: "CreateDomesticPayments",
			body: strings.Replace(payment, `"Name":"Bob",`, ``, 1),
			want: []ErrorDetail{{ErrorCode: CodeFieldMissing, Message: "Required field is missing", Path: "Data.Initiation.CreditorAccount.Name"}}},
		{name: "refuses v3.1's ContractPresentInidicator", op: "CreateDomesticPaymentConsents",
			body: strings.Replace(consentBodyV4, `"ContractPresentIndicator"`, `"ContractPresentInidicator"`, 1),
			want: []ErrorDetail{{ErrorCode: CodeFieldUnexpected, Message: "Unexpected field", Path: "Risk.ContractPresentInidicator"}}},
		{name: "refuses a string Unstructured", op: "CreateDomesticPaymentConsents",
			body: strings.Replace(consentBodyV4, `["Invoice 1"]`, `"Invoice 1"`, 1),
			want: []ErrorDetail{{ErrorCode: CodeFieldInvalid, Message: "Value has the wrong type", Path: "Data.Initiation.RemittanceInformation.Unstructured"}}},
		{name: "refuses an Unstructured text over 140 characters", op: "CreateDomesticPaymentConsents",
			body: strings.Replace(consentBodyV4, `"Invoice 1"`, `"`+strings.Repeat("r", 141)+`"`, 1),
			want: []ErrorDetail{{ErrorCode: CodeFieldInvalid, Message: "Value has the wrong length", Path: "Data.Initiation.RemittanceInformation.Unstructured.0"}}},
		{name: "refuses v3.1's PartyToParty context", op: "CreateDomesticPaymentConsents",
			body: strings.Replace(consentBodyV4, `"TransferToThirdParty"`, `"PartyToParty"`, 1),
			want: []ErrorDetail{{ErrorCode: CodeFieldInvalid, Message: "Value is not one of the allowed values", Path: "Risk.PaymentContextCode"}}},
		{name: "refuses eleven regulatory reports", op: "CreateDomesticPaymentConsents",
			body: strings.Replace(consentBodyV4, `"RegulatoryReporting":[`, `"RegulatoryReporting":[`+strings.Repeat(`{},`, 10), 1),
			want: []ErrorDetail{{ErrorCode: CodeFieldInvalid, Message: "Value has the wrong length", Path: "Data.Initiation.RegulatoryReporting"}}},
		{name: "accepts any member in SupplementaryData, which OB leaves open", op: "CreateDomesticPaymentConsents",
			body: strings.Replace(consentBodyV4, `"SupplementaryData":{}`, `"SupplementaryData":{"x":1,"Bank":{"Ref":["a"]}}`, 1)},
		{name: "refuses a referred document amount beyond int32", op: "CreateDomesticPaymentConsents",
			body: strings.Replace(consentBodyV4, `"ReferredDocumentAmount":3`, `"ReferredDocumentAmount":2147483648`, 1),
			want: []ErrorDetail{{ErrorCode: CodeFieldInvalid, Message: "Invalid value", Path: "Data.Initiation.RemittanceInformation.Structured.0.ReferredDocumentAmount"}}},
		{name: "refuses an unsupported permission", op: "CreateAccountAccessConsents",
			body: strings.Replace(accessConsentBodyV4, `"ReadBalances"`, `"ReadParty"`, 1),
			want: []ErrorDetail{{ErrorCode: CodeFieldInvalid, Message: "Value is not one of the allowed values", Path: "Data.Permissions.1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst map[string]any
			err := decodeOp(t, v, tt.op, tt.body, &dst)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("decode = %v, want nil", err)
				}
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
				t.Fatalf("decode = %v, want a 400 APIError", err)
			}
			if diff := cmp.Diff(tt.want, ae.Details); diff != "" {
				t.Errorf("details (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidatorV4DecodesIntoTheGeneratedTypes checks that an accepted v4 body
// unmarshals into the obapi4 request type with the v4 members kept.
func TestValidatorV4DecodesIntoTheGeneratedTypes(t *testing.T) {
	v := mustValidatorV4(t)
	var got obapi4.OBWriteDomesticConsent4
	if err := decodeOp(t, v, "CreateDomesticPaymentConsents", consentBodyV4, &got); err != nil {
		t.Fatalf("decode = %v", err)
	}
	ri := got.Data.Initiation.RemittanceInformation
	if ri == nil || ri.Unstructured == nil || (*ri.Unstructured)[0] != "Invoice 1" ||
		ri.Structured == nil || *(*ri.Structured)[0].CreditorReferenceInformation.Reference != "INV-1" {
		t.Errorf("RemittanceInformation = %+v, want the structured reference and the unstructured text", ri)
	}
	if got.Data.Initiation.CreditorAccount.Name != "Bob" || got.Risk.ContractPresentIndicator == nil || !*got.Risk.ContractPresentIndicator {
		t.Errorf("decoded %+v", got)
	}
}

// TestHandlerBuildsBothValidators checks that NewHandler compiles the v3.1
// and the v4 request bodies, each from its own contract.
func TestHandlerBuildsBothValidators(t *testing.T) {
	h, err := NewHandler(HandlerConfig{Service: &fakeTransactions{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PublicURL: testBase})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*bodyValidator{"v3.1": h.bodies, "v4.0": h.bodiesV4} {
		for _, op := range []string{"CreateDomesticPaymentConsents", "CreateDomesticPayments", "CreateAccountAccessConsents"} {
			if v == nil || v.schemas[op] == nil {
				t.Errorf("%s validator has no body schema for %s", name, op)
			}
		}
	}
	// The same body is a v4 consent and not a v3.1 one (Unstructured is a list in v4).
	if err := decodeOp(t, h.bodiesV4, "CreateDomesticPaymentConsents", consentBodyV4, &map[string]any{}); err != nil {
		t.Errorf("v4 validator refused a v4 consent: %v", err)
	}
	if err := decodeOp(t, h.bodies, "CreateDomesticPaymentConsents", consentBodyV4, &map[string]any{}); err == nil {
		t.Errorf("v3.1 validator accepted a v4 consent")
	}
}

func TestNewBodyValidatorRefusesNoSpec(t *testing.T) {
	if _, err := newBodyValidator(nil); err == nil {
		t.Fatal("newBodyValidator(nil) = nil error")
	}
	if _, err := newSpecValidator(func() (*openapi3.T, error) { return nil, errors.New("boom") }); err == nil {
		t.Fatal("newSpecValidator with a failing loader = nil error")
	}
}

func TestIntegerFormatsAreRanges(t *testing.T) {
	tests := []struct {
		format string
		value  float64
		ok     bool
	}{
		{"int32", 2147483647, true},
		{"int32", -2147483648, true},
		{"int32", 2147483648, false},
		{"int32", -2147483649, false},
		{"int64", 9e18, true},
		{"int64", 1e19, false},
		{"", 1e19, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %g", tt.format, tt.value), func(t *testing.T) {
			s, err := compileSchema(&openapi3.Schema{Type: &openapi3.Types{openapi3.TypeInteger}, Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			details, err := validateBody(context.Background(), s, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if (len(details) == 0) != tt.ok {
				t.Errorf("validate(%g) = %v, want ok %v", tt.value, details, tt.ok)
			}
		})
	}
}

// TestValidatorV4AgreesWithKin checks the compiled v4 validator against
// kin-openapi's general one on the v4 contract's request schemas: the same
// bodies are accepted and refused.
func TestValidatorV4AgreesWithKin(t *testing.T) {
	v := mustValidatorV4(t)
	spec, err := obapi4.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	payment := strings.Replace(consentBodyV4, `{"Data":{`, `{"Data":{"ConsentId":"c-1",`, 1)
	cases := []struct {
		op, path string
		bodies   []string
	}{
		{"CreateDomesticPaymentConsents", "/open-banking/v4.0/pisp/domestic-payment-consents", []string{
			consentBodyV4,
			strings.Replace(consentBodyV4, `"Unstructured"`, `"Reference":"INV-1","Unstructured"`, 1),
			strings.Replace(consentBodyV4, `"Name":"Bob",`, ``, 1),
			strings.Replace(consentBodyV4, `["Invoice 1"]`, `"Invoice 1"`, 1),
			strings.Replace(consentBodyV4, `["Invoice 1"]`, `[]`, 1),
			strings.Replace(consentBodyV4, `"TransferToThirdParty"`, `"PartyToParty"`, 1),
			strings.Replace(consentBodyV4, `"GDSV"`, `"GDSVX"`, 1),
			strings.Replace(consentBodyV4, `"TELE"`, `"XXXX"`, 1),
			strings.Replace(consentBodyV4, `"ReferredDocumentAmount":3`, `"ReferredDocumentAmount":3.5`, 1),
			strings.Replace(consentBodyV4, `"ReferredDocumentAmount":3`, `"ReferredDocumentAmount":2147483648`, 1),
			strings.Replace(consentBodyV4, `"RegulatoryReporting":[`, `"RegulatoryReporting":[`+strings.Repeat(`{},`, 10), 1),
			strings.Replace(consentBodyV4, `["1 High St"]`, `["a","b","c","d","e","f","g","h"]`, 1),
			strings.Replace(consentBodyV4, `"SupplementaryData":{}`, `"SupplementaryData":{"x":1}`, 1),
			strings.Replace(consentBodyV4, `"Data":{`, `"Data":{"ReadRefundAccount":"Yes","SCASupportData":{"AppliedAuthenticationApproach":"SCA"},`, 1),
			strings.Replace(consentBodyV4, `"Data":{`, `"Data":{"ReadRefundAccount":"Maybe",`, 1),
			`{}`, `[]`, `null`,
		}},
		{"CreateDomesticPayments", "/open-banking/v4.0/pisp/domestic-payments", []string{
			payment,
			strings.Replace(payment, `"ConsentId":"c-1",`, ``, 1),
		}},
		{"CreateAccountAccessConsents", "/open-banking/v4.0/aisp/account-access-consents", []string{
			accessConsentBodyV4,
			strings.Replace(accessConsentBodyV4, `["ReadAccountsDetail","ReadBalances"]`, `[]`, 1),
			strings.Replace(accessConsentBodyV4, `"2030-01-01T00:00:00Z"`, `"2030-01-01"`, 1),
			strings.Replace(accessConsentBodyV4, `"Risk":{}`, `"Risk":{"x":1}`, 1),
		}},
	}
	for _, c := range cases {
		kin := spec.Paths.Find(c.path).Post.RequestBody.Value.Content.Get(echo.MIMEApplicationJSON).Schema.Value
		for i, body := range c.bodies {
			var doc any
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatalf("%s body %d: %v", c.op, i, err)
			}
			kinErr := kin.VisitJSON(doc, openapi3.VisitAsRequest(), openapi3.EnableFormatValidation())
			details, err := validateBody(context.Background(), v.schemas[c.op], doc)
			if err != nil {
				t.Fatal(err)
			}
			if (kinErr == nil) != (len(details) == 0) {
				t.Errorf("%s body %d: kin-openapi says %v, we say %v\n%s", c.op, i, kinErr, details, body)
			}
		}
	}
}

// FuzzValidateBodyV4 checks on arbitrary bodies that the compiled v4
// validator never accepts what kin-openapi refuses, and refuses what
// kin-openapi accepts only for text the service cannot store.
func FuzzValidateBodyV4(f *testing.F) {
	f.Add(consentBodyV4)
	f.Add(strings.Replace(consentBodyV4, `"Unstructured"`, `"Reference":"INV-1","Unstructured"`, 1))
	f.Add(strings.Replace(consentBodyV4, `"Invoice 1"`, `"Invoice\u00001"`, 1))
	f.Add(`{"Data":{"Initiation":{"RemittanceInformation":{"Unstructured":[1,{"y":null}]}}},"Risk":{"x":[1]}}`)
	fuzzAgainstKin(f, mustValidatorV4(f), obapi4.GetSpec, "/open-banking/v4.0/pisp/domestic-payment-consents")
}
