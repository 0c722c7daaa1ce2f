package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/obapi"
)

// riskBody is a valid payment consent body whose Risk holds n unknown members.
func riskBody(n int) string {
	extra := members(n)
	if extra != "" {
		extra = "," + extra
	}
	return strings.Replace(consentBody("10.00", "04040012345678"), `"Risk":{"PaymentContextCode":"PartyToParty"`,
		`"Risk":{"PaymentContextCode":"PartyToParty"`+extra, 1)
}

func decodeRequest(t testing.TB, v *bodyValidator, ctx context.Context, body string) ([]byte, error) {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c := echo.New().NewContext(req, httptest.NewRecorder())
	// Decoded as JSON values, whichever version's validator checks it.
	var dst any
	return v.decode(c, "CreateDomesticPaymentConsents", &dst)
}

func mustValidator(t testing.TB) *bodyValidator {
	t.Helper()
	v, err := newSpecValidator(obapi.GetSpec)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidatorUnknownMembers(t *testing.T) {
	v := mustValidator(t)
	_, err := decodeRequest(t, v, context.Background(), riskBody(5000))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Fatalf("decode = %v, want a 400 APIError", err)
	}
	var want []ErrorDetail
	for i := range maxBodyErrors {
		want = append(want, ErrorDetail{ErrorCode: CodeFieldUnexpected, Message: "Unexpected field", Path: fmt.Sprintf("Risk.m%05d", i)})
	}
	if diff := cmp.Diff(want, ae.Details); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}
}

// linearBodies are the bodies the cost tests grow, n members at a time: v3.1
// and v4.0 consents with n unknown Risk members (refused), and a v4.0 consent
// with n members in SupplementaryData, which OB leaves open (accepted).
//
// visits bounds what the walk visits for 10,000 members: each unknown member
// once (its value is not looked at), each member of SupplementaryData twice
// (the member, then its free-form value, whose text is checked).
var linearBodies = []struct {
	name   string
	v4     bool
	build  func(n int) string
	valid  bool
	visits int
}{
	{"v3.1 unknown members", false, riskBody, false, 10100},
	{"v4.0 unknown members", true, func(n int) string {
		return strings.Replace(consentBodyV4, `"Risk":{`, `"Risk":{`+members(n)+`,`, 1)
	}, false, 10150},
	{"v4.0 supplementary data", true, func(n int) string {
		return strings.Replace(consentBodyV4, `"SupplementaryData":{}`, `"SupplementaryData":{`+members(n)+`}`, 1)
	}, true, 20150},
}

// members is n JSON members m00000:1, m00001:1, ... without braces.
func members(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"m%05d":1`, i)
	}
	return b.String()
}

// TestValidatorCostIsLinear fails when the allocations of one validation
// grow faster than the body: ten times the members may cost at most about ten
// times the allocations (quadratic work would be a hundred times). The walk
// visits each value once. Both versions' validators, refused and accepted
// bodies.
func TestValidatorCostIsLinear(t *testing.T) {
	for _, tc := range linearBodies {
		t.Run(tc.name, func(t *testing.T) {
			v := mustValidator(t)
			if tc.v4 {
				v = mustValidatorV4(t)
			}
			allocs := func(n int) float64 {
				body := tc.build(n)
				return testing.AllocsPerRun(5, func() { _, _ = decodeRequest(t, v, context.Background(), body) })
			}
			small, large := allocs(1000), allocs(10000)
			if ratio := large / small; ratio > 13 {
				t.Errorf("allocations: %.0f for 1,000 members, %.0f for 10,000 (x%.1f), want at most x13", small, large, ratio)
			}
			if _, err := decodeRequest(t, v, context.Background(), tc.build(100)); (err == nil) != tc.valid {
				t.Errorf("decode of 100 members = %v, want accepted: %v", err, tc.valid)
			}
			var doc any
			if err := json.Unmarshal([]byte(tc.build(10000)), &doc); err != nil {
				t.Fatal(err)
			}
			w := &bodyWalk{ctx: context.Background()}
			w.value(v.schemas["CreateDomesticPaymentConsents"], doc)
			if w.visited > tc.visits {
				t.Errorf("visited %d values for 10,000 members, want at most %d", w.visited, tc.visits)
			}
		})
	}
}

func TestValidatorHonoursContext(t *testing.T) {
	v := mustValidator(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := decodeRequest(t, v, ctx, riskBody(5000)); !errors.Is(err, context.Canceled) {
		t.Fatalf("decode with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestValidatorRefusesUnstorableText(t *testing.T) {
	v := mustValidator(t)
	base := consentBody("10.00", "04040012345678")
	tests := []struct {
		name string
		body string
		code string
		path string
	}{
		{"NUL in the reference", strings.Replace(base, `"INV-1"`, `"INV\u00001"`, 1), CodeFieldInvalid, "Data.Initiation.RemittanceInformation.Reference"},
		{"NUL in the creditor identification", strings.Replace(base, `"04040012345678"`, `"0404\u0000"`, 1), CodeFieldInvalid, "Data.Initiation.CreditorAccount.Identification"},
		{"NUL in the creditor name", strings.Replace(base, `"Bob"`, `"B\u0000b"`, 1), CodeFieldInvalid, "Data.Initiation.CreditorAccount.Name"},
		{"NUL in an unknown key", strings.Replace(base, `"PaymentContextCode"`, `"x\u0000":1,"PaymentContextCode"`, 1), CodeFieldUnexpected, "Risk"},
		{"invalid UTF-8", strings.Replace(base, "INV-1", "INV\xff1", 1), CodeResourceInvalidFormat, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeRequest(t, v, context.Background(), tc.body)
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
				t.Fatalf("decode = %v, want a 400 APIError", err)
			}
			if d := ae.Details[0]; d.ErrorCode != tc.code || d.Path != tc.path {
				t.Errorf("detail = %s at %q, want %s at %q", d.ErrorCode, d.Path, tc.code, tc.path)
			}
		})
	}
}

// TestValidatorAgreesWithKin checks the compiled validator against
// kin-openapi's general one on the contract's own schemas: the same bodies
// are accepted, apart from text the service cannot store.
func TestValidatorAgreesWithKin(t *testing.T) {
	v := mustValidator(t)
	base := consentBody("10.00", "04040012345678")
	bodies := []string{
		base,
		riskBody(3),
		strings.Replace(base, `"10.00"`, `10`, 1),
		strings.Replace(base, `"10.00"`, `"10.0.0"`, 1),
		strings.Replace(base, `"GBP"`, `"gbp"`, 1),
		strings.Replace(base, `"PartyToParty"`, `"Nope"`, 1),
		strings.Replace(base, `"INV-1"`, `"`+strings.Repeat("r", 36)+`"`, 1),
		strings.Replace(base, `"INV-1"`, `null`, 1),
		strings.Replace(base, `"Risk":{"PaymentContextCode":"PartyToParty"}`, `"Risk":[]`, 1),
		strings.Replace(base, `"Risk":{"PaymentContextCode":"PartyToParty"}`, `"Risk":{}`, 1),
		strings.Replace(base, `"InstructionIdentification":"ACME412",`, ``, 1),
		strings.Replace(base, `"Data":{`, `"Data":{"Authorisation":{"AuthorisationType":"Single","CompletionDateTime":"2030-01-01T00:00:00Z"},`, 1),
		strings.Replace(base, `"Data":{`, `"Data":{"Authorisation":{"AuthorisationType":"Single","CompletionDateTime":"2030-01-01T00:00:00"},`, 1),
		strings.Replace(base, `"Data":{`, `"Data":{"Authorisation":{"AuthorisationType":"Single","CompletionDateTime":"2030-01-01"},`, 1),
		`{}`, `[]`, `"x"`, `null`,
	}
	doc, err := obapi.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	kin := doc.Paths.Find("/open-banking/v3.1/pisp/domestic-payment-consents").Post.RequestBody.Value.Content.Get(echo.MIMEApplicationJSON).Schema.Value
	for i, body := range bodies {
		var doc any
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		kinErr := kin.VisitJSON(doc, openapi3.VisitAsRequest(), openapi3.EnableFormatValidation())
		details, err := validateBody(context.Background(), v.schemas["CreateDomesticPaymentConsents"], doc)
		if err != nil {
			t.Fatal(err)
		}
		if (kinErr == nil) != (len(details) == 0) {
			t.Errorf("body %d: kin-openapi says %v, we say %v\n%s", i, kinErr, details, body)
		}
	}
}

// FuzzValidateBody checks on arbitrary bodies that the compiled validator
// never accepts what kin-openapi refuses, and refuses what kin-openapi
// accepts only for text the service cannot store.
func FuzzValidateBody(f *testing.F) {
	base := consentBody("10.00", "04040012345678")
	f.Add(base)
	f.Add(riskBody(20))
	f.Add(strings.Replace(base, `"INV-1"`, `"INV\u00001"`, 1))
	f.Add(`{"Data":{"Initiation":{}},"Risk":{"x":[1,{"y":null}]}}`)
	fuzzAgainstKin(f, mustValidator(f), obapi.GetSpec, "/open-banking/v3.1/pisp/domestic-payment-consents")
}

// fuzzAgainstKin runs the fuzz target shared by both versions: on arbitrary
// bodies of the payment consent POST at path, v's compiled schema never
// accepts what kin-openapi refuses under the document spec loads, refuses
// what kin-openapi accepts only for text the service cannot store, and never
// answers more than maxBodyErrors details.
func fuzzAgainstKin(f *testing.F, v *bodyValidator, spec func() (*openapi3.T, error), path string) {
	doc, err := spec()
	if err != nil {
		f.Fatal(err)
	}
	kin := doc.Paths.Find(path).Post.RequestBody.Value.Content.Get(echo.MIMEApplicationJSON).Schema.Value
	compiled := v.schemas["CreateDomesticPaymentConsents"]
	f.Fuzz(func(t *testing.T, body string) {
		var doc any
		if json.Unmarshal([]byte(body), &doc) != nil {
			return
		}
		details, err := validateBody(context.Background(), compiled, doc)
		if err != nil {
			t.Fatal(err)
		}
		if len(details) > maxBodyErrors {
			t.Fatalf("%d details, want at most %d", len(details), maxBodyErrors)
		}
		kinErr := kin.VisitJSON(doc, openapi3.VisitAsRequest(), openapi3.EnableFormatValidation())
		switch {
		case len(details) == 0 && kinErr != nil:
			t.Fatalf("accepted a body kin-openapi refuses (%v)", kinErr)
		case len(details) > 0 && kinErr == nil && !strings.Contains(body, `\u0000`):
			t.Fatalf("refused a body kin-openapi accepts: %v", details)
		}
	})
}

// BenchmarkValidateBody measures one validation of a consent body with 10,
// 1,000 and 10,000 members (linearBodies: unknown members under Risk on
// both versions, members of v4.0's open SupplementaryData): the cost grows
// linearly.
func BenchmarkValidateBody(b *testing.B) {
	for _, tc := range linearBodies {
		v := mustValidator(b)
		if tc.v4 {
			v = mustValidatorV4(b)
		}
		for _, n := range []int{10, 1000, 10000} {
			body := tc.build(n)
			b.Run(fmt.Sprintf("%s/members=%d", strings.ReplaceAll(tc.name, " ", "_"), n), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, err := decodeRequest(b, v, context.Background(), body); (err == nil) != tc.valid {
						b.Fatalf("decode = %v, want accepted: %v", err, tc.valid)
					}
				}
			})
		}
	}
}
