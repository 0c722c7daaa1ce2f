package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/obapi4"
)

// loadSpecV4 loads openapi-v4.yaml with kin-openapi, resolving every $ref.
func loadSpecV4(t *testing.T) *openapi3.T { return loadDoc(t, "openapi-v4.yaml") }

const ob4 = "/open-banking/v4.0"

// v4Routes is the literal list of the v4 endpoints (the Open Banking v4.0 contract, section 1):
// the same operations as v3.1 under /open-banking/v4.0, and no back office or health routes.
var v4Routes = openBankingRoutes(ob4)

// TestSpecV4HasExactlyTheV4Endpoints checks every operation of the v4 document against
// v4Routes: the same set, operationIds, success codes, security, bodies and headers, and the
// 422 answer exactly on the two POSTs that take an idempotency key.
func TestSpecV4HasExactlyTheV4Endpoints(t *testing.T) {
	doc := loadSpecV4(t)
	want := map[string]route{}
	for _, r := range v4Routes {
		want[r.method+" "+r.path] = r
	}
	ops := operations(doc)
	for name := range ops {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is in the v4 document but not in the v4 endpoints", name)
		}
	}
	for name, r := range want {
		t.Run(name, func(t *testing.T) {
			op := ops[name]
			if op == nil {
				t.Fatalf("%s missing from the v4 document", name)
			}
			if op.OperationID != r.operationID {
				t.Errorf("operationId = %q, want %q", op.OperationID, r.operationID)
			}
			if op.Responses.Value(r.success) == nil {
				t.Errorf("no %s response", r.success)
			}
			var got []map[string][]string
			if op.Security != nil {
				for _, req := range *op.Security {
					got = append(got, map[string][]string(req))
				}
			}
			if diff := cmp.Diff(r.security, got); diff != "" {
				t.Errorf("security mismatch (-want +got):\n%s", diff)
			}
			if hasBody := op.RequestBody != nil; hasBody != r.body {
				t.Errorf("has request body = %v, want %v", hasBody, r.body)
			} else if hasBody && (!op.RequestBody.Value.Required || op.RequestBody.Value.Content.Get("application/json") == nil) {
				t.Errorf("request body must be required application/json")
			}
			headers := map[string]*openapi3.Parameter{}
			for _, p := range op.Parameters {
				if p.Value.In == openapi3.ParameterInHeader {
					headers[strings.ToLower(p.Value.Name)] = p.Value
				}
			}
			if h := headers["x-fapi-interaction-id"]; h == nil || h.Required {
				t.Errorf("x-fapi-interaction-id must be an optional header parameter")
			}
			if h := headers["dpop"]; h == nil || !h.Required {
				t.Errorf("DPoP must be a required header parameter")
			}
			if _, ok := headers["authorization"]; ok {
				t.Errorf("Authorization is declared as a parameter; the security scheme carries it")
			}
			key := headers["x-idempotency-key"]
			switch {
			case r.idempotent && (key == nil || !key.Required):
				t.Errorf("x-idempotency-key must be a required header")
			case r.idempotent && (key.Schema.Value.MaxLength == nil || *key.Schema.Value.MaxLength != 40 || key.Schema.Value.Pattern != idempotencyKeyPattern):
				t.Errorf("x-idempotency-key schema: want maxLength 40 and pattern %q", idempotencyKeyPattern)
			case !r.idempotent && key != nil:
				t.Errorf("x-idempotency-key declared on an operation that does not take one")
			}
			if has422 := op.Responses.Value("422") != nil; has422 != r.idempotent {
				t.Errorf("has a 422 response = %v, want %v (only the POSTs with an idempotency key)", has422, r.idempotent)
			}
			for code, resp := range op.Responses.Map() {
				if resp.Value.Headers["x-fapi-interaction-id"] == nil {
					t.Errorf("%s response lacks the x-fapi-interaction-id header", code)
				}
				if code == "default" || code[0] == '4' || code[0] == '5' {
					media := resp.Value.Content.Get("application/json")
					if media == nil || media.Schema == nil || media.Schema.Ref != errorSchemaRef {
						t.Errorf("%s response body is not %s", code, errorSchemaRef)
					}
				}
			}
			for _, code := range []string{"400", "401", "403", "405", "406", "429", "500", "503", "default"} {
				if op.Responses.Value(code) == nil {
					t.Errorf("no %s response", code)
				}
			}
		})
	}
}

func TestGeneratedV4ServerRegistersEveryRoute(t *testing.T) {
	e := echo.New()
	// The routes are only registered, never called, so a nil implementation is enough.
	obapi4.RegisterHandlers(e, struct{ obapi4.ServerInterface }{})
	checkRegisteredRoutes(t, e, v4Routes, reflect.TypeFor[obapi4.ServerInterface]())
}

// walkSchemas calls visit once for every schema reachable from the document's components, with
// a readable location.
func walkSchemas(doc *openapi3.T, visit func(where string, s *openapi3.Schema)) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(where string, ref *openapi3.SchemaRef)
	walk = func(where string, ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		visit(where, s)
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range s.Properties {
				if !yield(k) {
					return
				}
			}
		}) {
			walk(where+"."+name, s.Properties[name])
		}
		walk(where+"[]", s.Items)
		for i, sub := range s.AllOf {
			walk(fmt.Sprintf("%s.allOf[%d]", where, i), sub)
		}
		walk(where+".additionalProperties", s.AdditionalProperties.Schema)
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range doc.Components.Schemas {
			if !yield(k) {
				return
			}
		}
	}) {
		walk(name, doc.Components.Schemas[name])
	}
}

// TestSpecV4ObjectsAreClosed checks that every object of the v4 document, in requests and in
// responses, sets additionalProperties false: an undefined request member is refused (U005) and
// an answer never carries one.
func TestSpecV4ObjectsAreClosed(t *testing.T) {
	doc := loadSpecV4(t)
	objects := 0
	walkSchemas(doc, func(where string, s *openapi3.Schema) {
		if !s.Type.Is("object") {
			return
		}
		objects++
		if where == "OBSupplementaryData1" || strings.HasSuffix(where, ".SupplementaryData") {
			// OB leaves SupplementaryData open for members of a bank's own.
			return
		}
		if has := s.AdditionalProperties.Has; has == nil || *has || s.AdditionalProperties.Schema != nil {
			t.Errorf("%s is an open object; want additionalProperties: false", where)
		}
	})
	// Guard against a walk that checks nothing.
	if objects < 50 {
		t.Errorf("walked only %d objects; the walk is broken", objects)
	}
}

// schemaAt follows a dotted path of property names from a component schema; "[]" steps into
// an array's items.
func schemaAt(t *testing.T, doc *openapi3.T, path string) *openapi3.Schema {
	t.Helper()
	parts := strings.Split(path, ".")
	ref := doc.Components.Schemas[parts[0]]
	if ref == nil {
		t.Fatalf("no schema %s", parts[0])
	}
	s := ref.Value
	for _, p := range parts[1:] {
		name, items := strings.CutSuffix(p, "[]")
		next := s.Properties[name]
		if next == nil {
			t.Fatalf("%s: no member %s", path, name)
		}
		s = next.Value
		if items {
			if s.Items == nil {
				t.Fatalf("%s: %s is not an array", path, name)
			}
			s = s.Items.Value
		}
	}
	return s
}

func enumOf(s *openapi3.Schema) []string {
	var out []string
	for _, v := range s.Enum {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

func TestSpecV4Enums(t *testing.T) {
	doc := loadSpecV4(t)
	tests := []struct {
		name   string
		schema string
		want   []string
	}{
		{"payment consent status", "OBWriteDomesticConsentResponse5.Data.Status", []string{"AWAU", "RJCT", "AUTH", "COND"}},
		{"account access consent status", "OBReadConsentResponse1.Data.Status", []string{"AWAU", "RJCT", "AUTH", "EXPD", "CANC"}},
		{"payment status", "OBWriteDomesticResponse5.Data.Status",
			[]string{"RCVD", "PDNG", "ACTC", "PATC", "ACCP", "ACFC", "ACSP", "ACWC", "ACSC", "ACWP", "ACCC", "BLCK", "RJCT"}},
		{"payment details status", "OBWritePaymentDetailsResponse1.Data.PaymentStatus[].Status",
			[]string{"PDNG", "ACTC", "PATC", "ACCP", "ACFC", "ACSP", "ACWC", "ACSC", "ACWP", "ACCC", "BLCK", "RJCT"}},
		{"payment details status detail", "OBWritePaymentDetailsResponse1.Data.PaymentStatus[].StatusDetail.Status",
			[]string{"PDNG", "ACTC", "PATC", "ACCP", "ACFC", "ACSP", "ACWC", "ACSC", "ACWP", "ACCC", "BLCK", "RJCT"}},
		{"balance type", "OBReadBalance1.Data.Balance[].Type",
			[]string{"CLAV", "CLBD", "FWAV", "INFO", "ITAV", "ITBD", "OPAV", "OPBD", "PRCD", "XPCD"}},
		{"transaction balance type", "OBReadTransaction6.Data.Transaction[].Balance.Type",
			[]string{"CLAV", "CLBD", "FWAV", "INFO", "ITAV", "ITBD", "OPAV", "OPBD", "PRCD", "XPCD"}},
		{"balance amount sub type", "OBReadBalance1.Data.Balance[].Amount.SubType", []string{"BCUR", "LCUR"}},
		// The contract's entry statuses: v3.1's Booked, Pending, Rejected as ISO codes, and FUTR and INFO.
		{"transaction status", "OBReadTransaction6.Data.Transaction[].Status", []string{"BOOK", "PDNG", "RJCT", "FUTR", "INFO"}},
		{"payment context code", "OBWriteDomesticConsent4.Risk.PaymentContextCode",
			[]string{"BillingGoodsAndServicesInAdvance", "BillingGoodsAndServicesInArrears", "EcommerceMerchantInitiatedPayment",
				"FaceToFacePointOfSale", "TransferToSelf", "TransferToThirdParty"}},
		{"account category", "OBReadAccount6.Data.Account[].AccountCategory", []string{"Business", "Personal"}},
		{"delivery address type", "OBWriteDomesticConsent4.Risk.DeliveryAddress.AddressType",
			[]string{"BIZZ", "DLVY", "MLTO", "PBOX", "ADDR", "HOME", "CORR", "STAT"}},
		{"permissions", "OBReadConsent1.Data.Permissions[]",
			[]string{"ReadAccountsBasic", "ReadAccountsDetail", "ReadBalances", "ReadTransactionsBasic", "ReadTransactionsDetail",
				"ReadTransactionsCredits", "ReadTransactionsDebits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, enumOf(schemaAt(t, doc, tt.schema))); diff != "" {
				t.Errorf("%s enum (-want +got):\n%s", tt.schema, diff)
			}
		})
	}
}

func TestSpecV4Members(t *testing.T) {
	doc := loadSpecV4(t)
	tests := []struct {
		name  string
		check func(t *testing.T) error
	}{
		{"creditor name is required in consents and payments", func(t *testing.T) error {
			for _, at := range []string{"OBWriteDomesticConsent4.Data.Initiation.CreditorAccount", "OBWriteDomestic2.Data.Initiation.CreditorAccount"} {
				if got := schemaAt(t, doc, at).Required; !slices.Equal(got, []string{"SchemeName", "Identification", "Name"}) {
					return fmt.Errorf("%s required = %v, want [SchemeName Identification Name]", at, got)
				}
			}
			return nil
		}},
		{"error body needs only Errors, at least one", func(t *testing.T) error {
			s := schemaAt(t, doc, "OBErrorResponse1")
			if !slices.Equal(s.Required, []string{"Errors"}) || s.Properties["Errors"].Value.MinItems != 1 {
				return fmt.Errorf("required %v, Errors minItems %d; want [Errors] and 1", s.Required, s.Properties["Errors"].Value.MinItems)
			}
			for _, m := range []string{"Code", "Message", "Id"} {
				if s.Properties[m] == nil {
					return fmt.Errorf("optional %s missing", m)
				}
			}
			return nil
		}},
		{"error code is exactly four characters", func(t *testing.T) error {
			s := schemaAt(t, doc, "OBError1.ErrorCode")
			if s.MinLength != 4 || s.MaxLength == nil || *s.MaxLength != 4 {
				return fmt.Errorf("ErrorCode length %d..%v, want 4..4", s.MinLength, s.MaxLength)
			}
			if e := schemaAt(t, doc, "OBError1"); !slices.Equal(e.Required, []string{"ErrorCode"}) ||
				e.Properties["Message"] == nil || e.Properties["Path"] == nil || e.Properties["Url"] == nil {
				return fmt.Errorf("OBError1 required %v, want [ErrorCode] with optional Message, Path, Url", e.Required)
			}
			return nil
		}},
		{"unstructured remittance is a list of 1..140 texts, Reference is gone", func(t *testing.T) error {
			r := schemaAt(t, doc, "OBWriteDomesticConsent4.Data.Initiation.RemittanceInformation")
			if r.Properties["Reference"] != nil {
				return fmt.Errorf("RemittanceInformation.Reference is a member")
			}
			u := r.Properties["Unstructured"].Value
			if !u.Type.Is("array") || u.Items == nil || u.Items.Value.MinLength != 1 || *u.Items.Value.MaxLength != 140 {
				return fmt.Errorf("Unstructured is %v, want an array of 1..140 strings", u.Type)
			}
			ref := schemaAt(t, doc, "OBWriteDomesticConsent4.Data.Initiation.RemittanceInformation.Structured[].CreditorReferenceInformation.Reference")
			if ref.MaxLength == nil || *ref.MaxLength != 35 {
				return fmt.Errorf("Structured[].CreditorReferenceInformation.Reference maxLength %v, want 35", ref.MaxLength)
			}
			return nil
		}},
		{"risk has ContractPresentIndicator, not the v3.1 spelling", func(t *testing.T) error {
			r := schemaAt(t, doc, "OBRisk1")
			if r.Properties["ContractPresentInidicator"] != nil {
				return fmt.Errorf("v3.1's ContractPresentInidicator is a member")
			}
			for _, m := range []string{"ContractPresentIndicator", "CategoryPurposeCode", "PaymentPurposeCode", "DeliveryAddress", "BeneficiaryAccountType"} {
				if r.Properties[m] == nil {
					return fmt.Errorf("Risk.%s missing", m)
				}
			}
			if p := r.Properties["PaymentPurposeCode"].Value; len(p.Enum) < 100 {
				return fmt.Errorf("PaymentPurposeCode has %d codes, want the ISO list", len(p.Enum))
			}
			return nil
		}},
		{"delivery address is OBPostalAddress7 with up to 7 lines and optional country", func(t *testing.T) error {
			if ref := doc.Components.Schemas["OBRisk1"].Value.Properties["DeliveryAddress"].Ref; ref != "#/components/schemas/OBPostalAddress7" {
				return fmt.Errorf("DeliveryAddress is %q", ref)
			}
			a := schemaAt(t, doc, "OBPostalAddress7")
			if len(a.Required) != 0 || a.Properties["AddressLine"].Value.MaxItems == nil || *a.Properties["AddressLine"].Value.MaxItems != 7 {
				return fmt.Errorf("required %v; want none and AddressLine maxItems 7", a.Required)
			}
			return nil
		}},
		{"initiation accepts the v4 members", func(t *testing.T) error {
			i := schemaAt(t, doc, "OBWriteDomesticConsent4.Data.Initiation")
			for _, m := range []string{"CreditorAgent", "UltimateCreditor", "UltimateDebtor", "RegulatoryReporting", "RemittanceInformation", "CreditorPostalAddress", "SupplementaryData"} {
				if i.Properties[m] == nil {
					return fmt.Errorf("Initiation.%s missing", m)
				}
			}
			if n := i.Properties["RegulatoryReporting"].Value.MaxItems; n == nil || *n != 10 {
				return fmt.Errorf("RegulatoryReporting maxItems %v, want 10", n)
			}
			for _, at := range []string{"DebtorAccount", "CreditorAccount"} {
				if i.Properties[at].Value.Properties["Proxy"] == nil {
					return fmt.Errorf("%s.Proxy missing", at)
				}
			}
			return nil
		}},
		{"consent and payment Data carry StatusReason", func(t *testing.T) error {
			for _, at := range []string{"OBWriteDomesticConsentResponse5.Data.StatusReason[]", "OBWriteDomesticResponse5.Data.StatusReason[]", "OBReadConsentResponse1.Data.StatusReason[]"} {
				s := schemaAt(t, doc, at)
				if code := s.Properties["StatusReasonCode"]; code == nil || *code.Value.MaxLength != 4 {
					return fmt.Errorf("%s: StatusReasonCode missing or not <=4", at)
				}
				if d := s.Properties["StatusReasonDescription"]; d == nil || *d.Value.MaxLength != 500 {
					return fmt.Errorf("%s: StatusReasonDescription missing or not <=500", at)
				}
			}
			return nil
		}},
		{"payment details carry StatusDetail", func(t *testing.T) error {
			s := schemaAt(t, doc, "OBWritePaymentDetailsResponse1.Data.PaymentStatus[].StatusDetail")
			if !slices.Equal(s.Required, []string{"Status"}) || s.Properties["StatusReason"] == nil {
				return fmt.Errorf("StatusDetail required %v", s.Required)
			}
			return nil
		}},
		{"accounts have AccountCategory and AccountTypeCode CACC, not AccountType", func(t *testing.T) error {
			a := schemaAt(t, doc, "OBReadAccount6.Data.Account[]")
			if a.Properties["AccountType"] != nil || a.Properties["AccountSubType"] != nil {
				return fmt.Errorf("v3.1's AccountType/AccountSubType are members")
			}
			if !slices.Contains(enumOf(a.Properties["AccountTypeCode"].Value), "CACC") {
				return fmt.Errorf("AccountTypeCode lacks CACC")
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(t); err != nil {
				t.Error(err)
			}
		})
	}
}

// validConsentV4 is a v4 payment consent using the new members.
const validConsentV4 = `{
  "Data": {"Initiation": {
    "InstructionIdentification": "ACME412", "EndToEndIdentification": "FRESCO.21302.GFX.20",
    "InstructedAmount": {"Amount": "165.88", "Currency": "GBP"},
    "CreditorAccount": {"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "08080021325698", "Name": "ACME Inc",
      "Proxy": {"Identification": "+447700900000", "Code": "TELE"}},
    "CreditorAgent": {"SchemeName": "UK.OBIE.BICFI", "Identification": "ACMEGB2L"},
    "UltimateCreditor": {"Name": "ACME Group"},
    "RegulatoryReporting": [{"DebitCreditReportingIndicator": "CRED"}],
    "RemittanceInformation": {"Structured": [{"CreditorReferenceInformation": {"Reference": "FRESCO-101"}}], "Unstructured": ["Internal ops code 5120101"]}}},
  "Risk": {"PaymentContextCode": "TransferToThirdParty", "ContractPresentIndicator": true, "CategoryPurposeCode": "SUPP",
    "PaymentPurposeCode": "GDSV", "DeliveryAddress": {"AddressType": "DLVY", "TownName": "London", "AddressLine": ["1 High St"]}}
}`

// TestRequestBodiesV4 shows that the v4 request schemas accept a v4 body and refuse the v3.1
// shapes the contract moved or removed.
func TestRequestBodiesV4(t *testing.T) {
	doc := loadSpecV4(t)
	consent := doc.Components.Schemas["OBWriteDomesticConsent4"].Value
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{name: "accepts a v4 consent", body: validConsentV4, ok: true},
		{name: "refuses RemittanceInformation.Reference", body: strings.Replace(validConsentV4, `"Structured"`, `"Reference": "FRESCO-101", "Structured"`, 1)},
		{name: "refuses a string Unstructured", body: strings.Replace(validConsentV4, `["Internal ops code 5120101"]`, `"Internal ops code 5120101"`, 1)},
		{name: "refuses an empty Unstructured text", body: strings.Replace(validConsentV4, `["Internal ops code 5120101"]`, `[""]`, 1)},
		{name: "refuses a missing creditor name", body: strings.Replace(validConsentV4, `"Name": "ACME Inc",`, ``, 1)},
		{name: "refuses v3.1's ContractPresentInidicator", body: strings.Replace(validConsentV4, `"ContractPresentIndicator"`, `"ContractPresentInidicator"`, 1)},
		{name: "refuses v3.1's PartyToParty context", body: strings.Replace(validConsentV4, `"TransferToThirdParty"`, `"PartyToParty"`, 1)},
		{name: "refuses an unknown purpose code", body: strings.Replace(validConsentV4, `"GDSV"`, `"ZZZZ"`, 1)},
		{name: "refuses eight address lines", body: strings.Replace(validConsentV4, `["1 High St"]`, `["a","b","c","d","e","f","g","h"]`, 1)},
		{name: "refuses eleven regulatory reports", body: strings.Replace(validConsentV4, `[{"DebitCreditReportingIndicator": "CRED"}]`,
			"["+strings.Repeat(`{},`, 10)+`{}]`, 1)},
		{name: "refuses an unknown proxy code", body: strings.Replace(validConsentV4, `"TELE"`, `"XXXX"`, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.body), &v); err != nil {
				t.Fatal(err)
			}
			err := consent.VisitJSON(v, openapi3.VisitAsRequest(), openapi3.EnableFormatValidation())
			if (err == nil) != tt.ok {
				t.Errorf("VisitJSON = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestResponseBodiesV4 checks sample answers built from the generated types against the v4
// schemas: what the handlers will send validates, and the v3.1 shapes do not.
func TestResponseBodiesV4(t *testing.T) {
	doc := loadSpecV4(t)
	now := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	links := &obapi4.Links{Self: "http://localhost:8080/open-banking/v4.0/pisp/domestic-payments/p-1"}
	tests := []struct {
		name   string
		schema string
		body   any
		ok     bool
	}{
		{name: "rejected payment with a status reason", schema: "OBWriteDomesticResponse5", ok: true,
			body: obapi4.OBWriteDomesticResponse5{
				Data: obapi4.OBWriteDomesticResponse5Data{
					DomesticPaymentId: "p-1", ConsentId: "c-1", CreationDateTime: now, StatusUpdateDateTime: now,
					Status:       obapi4.OBWriteDomesticResponse5DataStatusRJCT,
					StatusReason: &[]obapi4.OBStatusReason{{StatusReasonCode: ptr("AM04"), StatusReasonDescription: ptr("InsufficientFunds")}},
					Initiation: obapi4.OBWriteDomestic2DataInitiation{
						InstructionIdentification: "i", EndToEndIdentification: "e",
						InstructedAmount: obapi4.OBActiveOrHistoricCurrencyAndAmount{Amount: "1.00", Currency: "GBP"},
						CreditorAccount: obapi4.OBWriteDomestic2DataInitiationCreditorAccount{
							SchemeName: "UK.OBIE.SortCodeAccountNumber", Identification: "04040012345678", Name: "Bob"},
					},
				},
				Links: links, Meta: &obapi4.Meta{},
			}},
		{name: "payment details of a rejected payment", schema: "OBWritePaymentDetailsResponse1", ok: true,
			body: obapi4.OBWritePaymentDetailsResponse1{
				Data: obapi4.OBWritePaymentDetailsResponse1Data{PaymentStatus: &[]obapi4.OBWritePaymentDetails1{{
					PaymentTransactionId: "p-1", Status: obapi4.OBWritePaymentDetails1StatusRJCT, StatusUpdateDateTime: now,
					StatusDetail: &obapi4.OBWritePaymentDetails1StatusDetail{Status: obapi4.OBWritePaymentDetails1StatusRJCT, StatusReason: ptr("AM04")},
				}}},
				Links: links, Meta: &obapi4.Meta{},
			}},
		{name: "balance", schema: "OBReadBalance1", ok: true,
			body: obapi4.OBReadBalance1{Data: obapi4.OBReadBalance1Data{Balance: []obapi4.OBReadBalance1DataBalance{{
				AccountId: "a-1", CreditDebitIndicator: obapi4.OBCreditDebitCodeCredit, Type: obapi4.OBBalanceType1CodeITAV, DateTime: now,
				Amount: obapi4.OBReadBalance1DataBalanceAmount{Amount: "1.00", Currency: "GBP", SubType: ptr(obapi4.OBExternalBalanceSubType1CodeBCUR)},
			}}}, Links: links, Meta: &obapi4.Meta{}}},
		{name: "account", schema: "OBReadAccount6", ok: true,
			body: obapi4.OBReadAccount6{Data: obapi4.OBReadAccount6Data{Account: &[]obapi4.OBAccount6{{
				AccountId: "a-1", Currency: ptr("GBP"), AccountCategory: ptr(obapi4.OBInternalAccountType1CodePersonal),
				AccountTypeCode: ptr(obapi4.OBExternalAccountSubType1CodeCACC),
			}}}, Links: links, Meta: &obapi4.Meta{}}},
		{name: "error with a four-character code", schema: "OBErrorResponse1", ok: true,
			body: obapi4.OBErrorResponse1{Errors: []obapi4.OBError1{{ErrorCode: "U029", Message: ptr("reused key"), Path: ptr("x-idempotency-key"),
				Url: ptr("http://localhost:8080/docs/idempotency")}}}},
		{name: "refuses a v3.1 error code", schema: "OBErrorResponse1",
			body: obapi4.OBErrorResponse1{Errors: []obapi4.OBError1{{ErrorCode: "UK.OBIE.Field.Missing"}}}},
		{name: "refuses an error body without errors", schema: "OBErrorResponse1",
			body: map[string]any{"Code": "400 BadRequest", "Message": "bad", "Errors": []any{}}},
		{name: "refuses a v3.1 balance type", schema: "OBReadBalance1",
			body: map[string]any{"Data": map[string]any{"Balance": []any{map[string]any{"AccountId": "a-1", "CreditDebitIndicator": "Credit",
				"Type": "InterimAvailable", "DateTime": "2026-01-31T10:00:00Z", "Amount": map[string]any{"Amount": "1.00", "Currency": "GBP"}}}}}},
		{name: "refuses an undefined response member", schema: "OBReadAccount6",
			body: map[string]any{"Data": map[string]any{"Account": []any{map[string]any{"AccountId": "a-1", "AccountType": "Personal"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			err = doc.Components.Schemas[tt.schema].Value.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.EnableFormatValidation())
			if (err == nil) != tt.ok {
				t.Errorf("%s.VisitJSON(%s) = %v, want ok %v", tt.schema, raw, err, tt.ok)
			}
		})
	}
}

func TestOpenAPIV4IsTheCommittedFileAndACopy(t *testing.T) {
	want, err := os.ReadFile("openapi-v4.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := OpenAPIV4()
	if !bytes.Equal(got, want) {
		t.Fatalf("OpenAPIV4() differs from openapi-v4.yaml")
	}
	got[0] ^= 0xff
	if !bytes.Equal(OpenAPIV4(), want) {
		t.Errorf("OpenAPIV4() returned the embedded slice itself; a caller changed it")
	}
}

// generatedModelsV4 maps every object schema of the v4 document to its generated Go type. A new
// object schema must be added here.
var generatedModelsV4 = map[string]any{
	"Links":                               obapi4.Links{},
	"Meta":                                obapi4.Meta{},
	"OBAccount6":                          obapi4.OBAccount6{},
	"OBAccount6Account":                   obapi4.OBAccount6Account{},
	"OBActiveOrHistoricCurrencyAndAmount": obapi4.OBActiveOrHistoricCurrencyAndAmount{},
	"OBCashAccountDebtor4":                obapi4.OBCashAccountDebtor4{},
	"OBCreditorReferenceInformation":      obapi4.OBCreditorReferenceInformation{},
	"OBError1":                            obapi4.OBError1{},
	"OBErrorResponse1":                    obapi4.OBErrorResponse1{},
	"OBExtendedProprietaryBankTransactionCode":                  obapi4.OBExtendedProprietaryBankTransactionCode{},
	"OBPostalAddress7":                                          obapi4.OBPostalAddress7{},
	"OBProxy1":                                                  obapi4.OBProxy1{},
	"OBReadAccount6":                                            obapi4.OBReadAccount6{},
	"OBReadAccount6Data":                                        obapi4.OBReadAccount6Data{},
	"OBReadBalance1":                                            obapi4.OBReadBalance1{},
	"OBReadBalance1Data":                                        obapi4.OBReadBalance1Data{},
	"OBReadBalance1DataBalance":                                 obapi4.OBReadBalance1DataBalance{},
	"OBReadBalance1DataBalanceAmount":                           obapi4.OBReadBalance1DataBalanceAmount{},
	"OBReadConsent1":                                            obapi4.OBReadConsent1{},
	"OBReadConsent1Data":                                        obapi4.OBReadConsent1Data{},
	"OBReadConsentResponse1":                                    obapi4.OBReadConsentResponse1{},
	"OBReadConsentResponse1Data":                                obapi4.OBReadConsentResponse1Data{},
	"OBReadTransaction6":                                        obapi4.OBReadTransaction6{},
	"OBReadTransaction6Data":                                    obapi4.OBReadTransaction6Data{},
	"OBReferredDocumentInformation":                             obapi4.OBReferredDocumentInformation{},
	"OBRegulatoryAuthority2":                                    obapi4.OBRegulatoryAuthority2{},
	"OBRegulatoryReporting1":                                    obapi4.OBRegulatoryReporting1{},
	"OBRemittanceInformation2":                                  obapi4.OBRemittanceInformation2{},
	"OBRemittanceInformationStructured":                         obapi4.OBRemittanceInformationStructured{},
	"OBRisk1":                                                   obapi4.OBRisk1{},
	"OBRisk2":                                                   obapi4.OBRisk2{},
	"OBSCASupportData1":                                         obapi4.OBSCASupportData1{},
	"OBStatusReason":                                            obapi4.OBStatusReason{},
	"OBStructuredRegulatoryReporting3":                          obapi4.OBStructuredRegulatoryReporting3{},
	"OBTransaction6":                                            obapi4.OBTransaction6{},
	"OBTransactionCashBalance":                                  obapi4.OBTransactionCashBalance{},
	"OBUltimateCreditor1":                                       obapi4.OBUltimateCreditor1{},
	"OBUltimateDebtor1":                                         obapi4.OBUltimateDebtor1{},
	"OBWriteDomestic2":                                          obapi4.OBWriteDomestic2{},
	"OBWriteDomestic2Data":                                      obapi4.OBWriteDomestic2Data{},
	"OBWriteDomestic2DataInitiation":                            obapi4.OBWriteDomestic2DataInitiation{},
	"OBWriteDomestic2DataInitiationCreditorAccount":             obapi4.OBWriteDomestic2DataInitiationCreditorAccount{},
	"OBWriteDomestic2DataInitiationCreditorAgent":               obapi4.OBWriteDomestic2DataInitiationCreditorAgent{},
	"OBWriteDomestic2DataInitiationDebtorAccount":               obapi4.OBWriteDomestic2DataInitiationDebtorAccount{},
	"OBWriteDomesticConsent4":                                   obapi4.OBWriteDomesticConsent4{},
	"OBWriteDomesticConsent4Data":                               obapi4.OBWriteDomesticConsent4Data{},
	"OBWriteDomesticConsent4DataAuthorisation":                  obapi4.OBWriteDomesticConsent4DataAuthorisation{},
	"OBWriteDomesticConsentResponse5":                           obapi4.OBWriteDomesticConsentResponse5{},
	"OBWriteDomesticConsentResponse5Data":                       obapi4.OBWriteDomesticConsentResponse5Data{},
	"OBWriteDomesticResponse5":                                  obapi4.OBWriteDomesticResponse5{},
	"OBWriteDomesticResponse5Data":                              obapi4.OBWriteDomesticResponse5Data{},
	"OBWriteFundsConfirmationResponse1":                         obapi4.OBWriteFundsConfirmationResponse1{},
	"OBWriteFundsConfirmationResponse1Data":                     obapi4.OBWriteFundsConfirmationResponse1Data{},
	"OBWriteFundsConfirmationResponse1DataFundsAvailableResult": obapi4.OBWriteFundsConfirmationResponse1DataFundsAvailableResult{},
	"OBWritePaymentDetails1":                                    obapi4.OBWritePaymentDetails1{},
	"OBWritePaymentDetails1StatusDetail":                        obapi4.OBWritePaymentDetails1StatusDetail{},
	"OBWritePaymentDetailsResponse1":                            obapi4.OBWritePaymentDetailsResponse1{},
	"OBWritePaymentDetailsResponse1Data":                        obapi4.OBWritePaymentDetailsResponse1Data{},
}

// TestOptionalFieldsAreOmittedNeverEmptyV4 checks the generated v4 models: a required member is
// a plain field, an optional one a pointer with omitempty, so it is omitted, never sent null.
func TestOptionalFieldsAreOmittedNeverEmptyV4(t *testing.T) {
	checkGeneratedModels(t, loadSpecV4(t), generatedModelsV4)
}
