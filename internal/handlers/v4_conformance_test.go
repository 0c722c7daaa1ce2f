package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/internal/obapi4"
)

// The acceptance tests of the v4.0 surface: each row of the contract's
// field changes, status vocabulary, error codes and cross-version rules,
// through the real handlers, service and ledger. Every v4.0 answer they
// receive is checked against api/openapi-v4.yaml (v4Spec), and every request
// they send as valid is checked against it first.

const (
	v4Consents       = PathV4 + "/pisp/domestic-payment-consents"
	v4Payments       = PathV4 + "/pisp/domestic-payments"
	v4AccessConsents = PathV4 + "/aisp/account-access-consents"
	v4Accounts       = PathV4 + "/aisp/accounts"
	v3Consents       = "/open-banking/v3.1/pisp/domestic-payment-consents"
	v3Payments       = "/open-banking/v3.1/pisp/domestic-payments"
	v3AccessConsents = "/open-banking/v3.1/aisp/account-access-consents"
	v3Accounts       = "/open-banking/v3.1/aisp/accounts"
	unknownID        = "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a"
)

// v4Spec checks requests and answers of the v4.0 API against
// api/openapi-v4.yaml with kin-openapi. It is safe for concurrent use.
type v4Spec struct {
	router routers.Router
	errors *openapi3.Schema // OBErrorResponse1, for answers no operation declares
}

var (
	v4SpecOnce sync.Once
	v4SpecVal  *v4Spec
	v4SpecErr  error
)

// specV4 loads the v4.0 document once per test binary.
func specV4(t testing.TB) *v4Spec {
	t.Helper()
	v4SpecOnce.Do(func() {
		doc, err := obapi4.GetSpec()
		if err != nil {
			v4SpecErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			v4SpecErr = err
			return
		}
		router, err := legacy.NewRouter(doc)
		if err != nil {
			v4SpecErr = err
			return
		}
		ref := doc.Components.Schemas["OBErrorResponse1"]
		if ref == nil || ref.Value == nil {
			v4SpecErr = errors.New("api/openapi-v4.yaml has no OBErrorResponse1")
			return
		}
		v4SpecVal = &v4Spec{router: router, errors: ref.Value}
	})
	if v4SpecErr != nil {
		t.Fatalf("load api/openapi-v4.yaml: %v", v4SpecErr)
	}
	return v4SpecVal
}

// specRequest is the request as the document's router sees it: on the
// document's server, with the headers the test sends.
func specRequest(method, path, body string, h hdr) *http.Request {
	req := httptest.NewRequest(method, "http://localhost:8080"+path, strings.NewReader(body))
	req.Header.Set("DPoP", "test-proof")
	req.Header.Set("Authorization", "DPoP test-token")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	return req
}

// checkRequest fails t unless the request is valid under the document.
func (s *v4Spec) checkRequest(t testing.TB, method, path, body string, h hdr) {
	t.Helper()
	req := specRequest(method, path, body, h)
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s: no operation in api/openapi-v4.yaml: %v", method, path, err)
	}
	if err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}); err != nil {
		t.Fatalf("%s %s: request %s is not valid under api/openapi-v4.yaml: %v", method, path, body, err)
	}
}

// checkResponse fails t unless rec is an answer api/openapi-v4.yaml
// declares for the request: its status, headers and body. An answer to a
// request no operation matches (404 route, 405) must be an
// OBErrorResponse1.
func (s *v4Spec) checkResponse(t testing.TB, method, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	req := specRequest(method, path, "", nil)
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		if rec.Code < 400 {
			t.Fatalf("%s %s = %d, an answer to a request api/openapi-v4.yaml has no operation for (%v)", method, path, rec.Code, err)
		}
		var v any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s %s = %d, body not JSON: %s", method, path, rec.Code, rec.Body)
		}
		if err := s.errors.VisitJSON(v); err != nil {
			t.Fatalf("%s %s = %d %s: not an OBErrorResponse1: %v", method, path, rec.Code, rec.Body, err)
		}
		return
	}
	if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}); err != nil {
		t.Fatalf("%s %s = %d %s: not valid under api/openapi-v4.yaml: %v", method, path, rec.Code, rec.Body, err)
	}
}

// v4API is the test API with the v4.0 document's checks.
type v4API struct {
	*api
	spec *v4Spec
}

func newV4API(t *testing.T) *v4API {
	t.Helper()
	return &v4API{api: newAPI(t), spec: specV4(t)}
}

// in is s for the (sub)test t: its helpers fail t.
func (s *v4API) in(t *testing.T) *v4API {
	a := *s.api
	a.t = t
	return &v4API{api: &a, spec: s.spec}
}

// call sends a request to the v4.0 API (valid or not) and checks the answer
// against the document.
func (s *v4API) call(method, path, body string, h hdr) *httptest.ResponseRecorder {
	s.t.Helper()
	rec := s.do(method, path, body, h)
	s.spec.checkResponse(s.t, method, path, rec)
	if rec.Code == http.StatusOK || rec.Code == http.StatusCreated {
		// Every v4.0 resource answer has Meta (maybe {}) and an absolute
		// Links.Self under the v4.0 base.
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			s.t.Fatalf("%s %s: %v", method, path, err)
		}
		self, _ := member(v, "Links.Self").(string)
		if _, ok := v["Meta"].(map[string]any); !ok || !strings.HasPrefix(self, testBase+PathV4+"/") {
			s.t.Fatalf("%s %s = Meta %v, Links.Self %q: want Meta and a Self under %s", method, path, v["Meta"], self, testBase+PathV4)
		}
	}
	return rec
}

// send is call for a request that must be valid under the document.
func (s *v4API) send(method, path, body string, h hdr) *httptest.ResponseRecorder {
	s.t.Helper()
	s.spec.checkRequest(s.t, method, path, body, h)
	return s.call(method, path, body, h)
}

// get decodes the 200 answer of a valid v4.0 GET into a generic value.
func (s *v4API) get(path string, h hdr) map[string]any {
	s.t.Helper()
	var v map[string]any
	s.want(s.send(http.MethodGet, path, "", h), http.StatusOK, &v)
	return v
}

// wantError checks an error answer: status, one detail with code and path.
func wantError(t testing.TB, rec *httptest.ResponseRecorder, status int, code, path string) ErrorDetail {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	var b ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || len(b.Errors) != 1 {
		t.Fatalf("error body %s: %v, want one error", rec.Body, err)
	}
	if d := b.Errors[0]; d.ErrorCode != code || d.Path != path {
		t.Fatalf("error = %s at %q (%s), want %s at %q", d.ErrorCode, d.Path, d.Message, code, path)
	}
	return b.Errors[0]
}

// state is what a refused write must leave as it was: every balance, the
// transfers, payments and idempotency keys, and each consent's status.
func (a *api) state() string {
	a.t.Helper()
	var s string
	err := a.db.Raw(`SELECT
		(SELECT coalesce(string_agg(id::text || '=' || balance, ',' ORDER BY id), '') FROM accounts) || '|' ||
		(SELECT count(*) FROM transfers) || '|' || (SELECT count(*) FROM entries) || '|' ||
		(SELECT count(*) FROM payments) || '|' || (SELECT count(*) FROM idempotency_keys) || '|' ||
		(SELECT coalesce(string_agg(id::text || '=' || status || '@' || status_updated_at::text, ',' ORDER BY id), '') FROM consents)`).
		Scan(&s).Error
	if err != nil {
		a.t.Fatal(err)
	}
	return s
}

// reconciled fails unless the ledger balances with no drift.
func (a *api) reconciled() {
	a.t.Helper()
	var rep struct {
		Balanced bool
		Drift    []any
		Totals   []struct{ Currency, Net string }
	}
	a.want(a.do(http.MethodGet, "/internal/v1/ledger/reconcile", "", admin), http.StatusOK, &rep)
	if !rep.Balanced || len(rep.Drift) != 0 {
		a.t.Fatalf("reconcile = %+v, want balanced without drift", rep)
	}
	for _, c := range rep.Totals {
		if c.Net != "0.00" {
			a.t.Fatalf("reconcile = %+v, want every net 0.00", rep)
		}
	}
}

// obj is a JSON object under construction.
type obj = map[string]any

// v4ConsentBody is a valid v4.0 payment consent request paying amount GBP to
// the account identified by creditor.
func v4ConsentBody(amount, creditor string) obj {
	return obj{
		"Data": obj{"Initiation": obj{
			"InstructionIdentification": "ACME412", "EndToEndIdentification": "E2E-1",
			"InstructedAmount": obj{"Amount": amount, "Currency": "GBP"},
			"CreditorAccount":  obj{"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": creditor, "Name": "Bob"},
			"RemittanceInformation": obj{
				"Structured":   []any{obj{"CreditorReferenceInformation": obj{"Reference": "INV-1"}}},
				"Unstructured": []any{"For March", "and April"},
			},
		}},
		"Risk": obj{"PaymentContextCode": "TransferToThirdParty"},
	}
}

// clone is a deep copy of a JSON value.
func clone(v obj) obj {
	var out obj
	b, _ := json.Marshal(v)
	_ = json.Unmarshal(b, &out)
	return out
}

// with is a copy of o with the member at a dotted path set to v (nil:
// removed).
func with(o obj, path string, v any) obj {
	out := clone(o)
	m := out
	names := strings.Split(path, ".")
	for _, n := range names[:len(names)-1] {
		next, ok := m[n].(obj)
		if !ok {
			next = obj{}
			m[n] = next
		}
		m = next
	}
	if v == nil {
		delete(m, names[len(names)-1])
	} else {
		m[names[len(names)-1]] = v
	}
	return out
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // test data only
	}
	return string(b)
}

// member is the value at a dotted path of a decoded JSON object (nil when
// absent).
func member(v any, path string) any {
	for _, n := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[n]
	}
	return v
}

// decoded decodes the JSON text s.
func decoded(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// v4PaymentBody is the payment request for consentID with the consent body's
// Initiation and Risk.
func v4PaymentBody(consent obj, consentID string) obj {
	return with(consent, "Data.ConsentId", consentID)
}

var v4Key int

// key is a fresh idempotency key.
func key() string {
	v4Key++
	return fmt.Sprintf("k4-%d-%d", time.Now().UnixNano(), v4Key)
}

// consentV4 creates a v4.0 payment consent of client tpp-a and returns its id.
func (s *v4API) consentV4(body obj) string {
	s.t.Helper()
	var out consentResp
	s.want(s.send(http.MethodPost, v4Consents, js(body), tpp("tpp-a", "payments").with(HeaderIdempotencyKey, key())), http.StatusCreated, &out)
	return out.Data.ConsentId
}

// accessConsent creates an account access consent of tpp-a on the API
// version at base and returns its id.
func (s *v4API) accessConsent(base string, permissions ...string) string {
	s.t.Helper()
	body := js(obj{"Data": obj{"Permissions": permissions}, "Risk": obj{}})
	var out consentResp
	if strings.HasPrefix(base, PathV4) {
		s.want(s.send(http.MethodPost, base, body, tpp("tpp-a", "accounts")), http.StatusCreated, &out)
	} else {
		s.want(s.do(http.MethodPost, base, body, tpp("tpp-a", "accounts")), http.StatusCreated, &out)
	}
	return out.Data.ConsentId
}

// v4Fixture is a v4 API with the accounts the tests pay from and to.
type v4Fixture struct {
	*v4API
	alice, bob, bobIdent string
}

func newV4Fixture(t *testing.T) *v4Fixture {
	s := newV4API(t)
	alice, _ := s.openAccount("alice", "1000.00")
	bob, bobIdent := s.openAccount("bob", "")
	return &v4Fixture{v4API: s, alice: alice, bob: bob, bobIdent: bobIdent}
}

func (f *v4Fixture) in(t *testing.T) *v4Fixture {
	return &v4Fixture{v4API: f.v4API.in(t), alice: f.alice, bob: f.bob, bobIdent: f.bobIdent}
}

// authorisedV4 is a v4.0 consent for body, authorised by alice from her
// account, and her PSU token for it.
func (f *v4Fixture) authorisedV4(body obj) (string, hdr) {
	f.t.Helper()
	id := f.consentV4(body)
	f.authorise(id, "alice", f.alice)
	return id, psuToken("tpp-a", "alice", id, "payments")
}

// TestV4FieldChanges covers the contract's field changes (section 3): the
// v4.0 request shapes accepted, stored and echoed exactly, and v3.1's shapes
// refused with the member's Path, nothing written.
func TestV4FieldChanges(t *testing.T) {
	f := newV4Fixture(t)
	base := v4ConsentBody("10.00", f.bobIdent)
	tppKey := func() hdr { return tpp("tpp-a", "payments").with(HeaderIdempotencyKey, key()) }

	refused := []struct {
		name   string
		body   obj
		code   string
		path   string
		status int
	}{
		{"RemittanceInformation.Reference is v3.1's", with(base, "Data.Initiation.RemittanceInformation.Reference", "INV-1"),
			CodeV4FieldUnexpected, "Data.Initiation.RemittanceInformation.Reference", 400},
		{"Unstructured as a string is v3.1's", with(base, "Data.Initiation.RemittanceInformation.Unstructured", "For March"),
			CodeV4FieldInvalid, "Data.Initiation.RemittanceInformation.Unstructured", 400},
		{"an Unstructured line over 140", with(base, "Data.Initiation.RemittanceInformation.Unstructured", []any{strings.Repeat("x", 141)}),
			CodeV4FieldInvalid, "Data.Initiation.RemittanceInformation.Unstructured.0", 400},
		{"a creditor reference over 35", with(base, "Data.Initiation.RemittanceInformation.Structured",
			[]any{obj{"CreditorReferenceInformation": obj{"Reference": strings.Repeat("r", 36)}}}),
			CodeV4FieldInvalid, "Data.Initiation.RemittanceInformation.Structured.0.CreditorReferenceInformation.Reference", 400},
		{"CreditorAccount.Name missing", with(base, "Data.Initiation.CreditorAccount.Name", nil),
			CodeV4FieldMissing, "Data.Initiation.CreditorAccount.Name", 400},
		{"Risk.ContractPresentInidicator is v3.1's", with(base, "Risk.ContractPresentInidicator", true),
			CodeV4FieldUnexpected, "Risk.ContractPresentInidicator", 400},
		{"PaymentContextCode PartyToParty is v3.1's", with(base, "Risk.PaymentContextCode", "PartyToParty"),
			CodeV4FieldInvalid, "Risk.PaymentContextCode", 400},
		{"more than 10 RegulatoryReporting", with(base, "Data.Initiation.RegulatoryReporting",
			[]any{obj{}, obj{}, obj{}, obj{}, obj{}, obj{}, obj{}, obj{}, obj{}, obj{}, obj{}}),
			CodeV4FieldInvalid, "Data.Initiation.RegulatoryReporting", 400},
		{"a DeliveryAddress with 8 lines", with(base, "Risk.DeliveryAddress", obj{"AddressLine": []any{"1", "2", "3", "4", "5", "6", "7", "8"}}),
			CodeV4FieldInvalid, "Risk.DeliveryAddress.AddressLine", 400},
	}
	for _, tc := range refused {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			s := f.in(t)
			before := s.state()
			wantError(t, s.call(http.MethodPost, v4Consents, js(tc.body), tppKey()), tc.status, tc.code, tc.path)
			if after := s.state(); after != before {
				t.Fatalf("state changed:\n%s\n%s", before, after)
			}
		})
	}

	t.Run("accepts ContractPresentIndicator and Unstructured as an array", func(t *testing.T) {
		s := f.in(t)
		body := with(base, "Risk.ContractPresentIndicator", true)
		var got map[string]any
		s.want(s.send(http.MethodPost, v4Consents, js(body), tppKey()), http.StatusCreated, &got)
		if diff := cmp.Diff(body["Data"].(obj)["Initiation"], member(got, "Data.Initiation")); diff != "" {
			t.Errorf("Initiation echoed (-sent +got):\n%s", diff)
		}
		if diff := cmp.Diff(body["Risk"], got["Risk"]); diff != "" {
			t.Errorf("Risk echoed (-sent +got):\n%s", diff)
		}
	})

	t.Run("stores and echoes the new Initiation and Risk members exactly", func(t *testing.T) {
		s := f.in(t)
		aliceIdent := s.identification(f.alice)
		postal := obj{"AddressType": "BIZZ", "StreetName": "High Street", "BuildingNumber": "1", "PostCode": "EC1A 1BB",
			"TownName": "London", "Country": "GB", "AddressLine": []any{"Floor 2"}}
		body := with(base, "Data.Initiation.CreditorAgent", obj{"SchemeName": "UK.OBIE.BICFI", "Identification": "BARCGB22",
			"Name": "Bank", "LEI": "213800D1EI4B9WTWWD28", "PostalAddress": postal})
		body = with(body, "Data.Initiation.DebtorAccount", obj{"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": aliceIdent,
			"Name": "Alice", "Proxy": obj{"Identification": "+447700900123", "Code": "TELE", "Type": "mobile"}})
		body = with(body, "Data.Initiation.CreditorAccount.Proxy", obj{"Identification": "bob@example.com", "Code": "EMAL"})
		body = with(body, "Data.Initiation.CreditorAccount.SecondaryIdentification", "ROLL-1")
		body = with(body, "Data.Initiation.LocalInstrument", "UK.OBIE.FPS")
		body = with(body, "Data.Initiation.UltimateCreditor", obj{"Name": "Bob Ltd", "Identification": "B-1", "LEI": "213800D1EI4B9WTWWD28",
			"SchemeName": "UK.OBIE.SortCodeAccountNumber", "PostalAddress": postal})
		body = with(body, "Data.Initiation.UltimateDebtor", obj{"Name": "Alice Ltd", "Identification": "A-1"})
		body = with(body, "Data.Initiation.CreditorPostalAddress", postal)
		body = with(body, "Data.Initiation.RegulatoryReporting", []any{obj{"DebitCreditReportingIndicator": "CRED",
			"Authority": obj{"Name": "HMRC", "CountryCode": "GB"},
			"Details": []any{obj{"Type": "T1", "Date": "2026-03-01T00:00:00.000+00:00", "Country": "GB",
				"Amount": obj{"Amount": "10.00", "Currency": "GBP"}, "Information": []any{"info"}}}}})
		body = with(body, "Data.Initiation.RemittanceInformation.Structured", []any{obj{
			"ReferredDocumentInformation":  []any{obj{"Code": "CINV", "Number": "INV-1", "RelatedDate": "2026-02-28T12:00:00+01:00", "LineDetails": []any{"l1"}}},
			"ReferredDocumentAmount":       1000,
			"CreditorReferenceInformation": obj{"Code": "SCOR", "Issuer": "Bob", "Reference": "RF18539007547034"},
			"Invoicer":                     "Bob", "Invoicee": "Alice", "TaxRemittance": "none", "AdditionalRemittanceInformation": []any{"more"},
		}})
		body = with(body, "Risk", obj{"PaymentContextCode": "BillingGoodsAndServicesInArrears", "MerchantCategoryCode": "5967",
			"MerchantCustomerIdentification": "053598653254", "ContractPresentIndicator": false, "BeneficiaryPrepopulatedIndicator": true,
			"PaymentPurposeCode": "GDDS", "CategoryPurposeCode": "SUPP", "BeneficiaryAccountType": "Business", "DeliveryAddress": postal})
		sent := decoded(t, js(body))
		wantInitiation, wantRisk := member(sent, "Data.Initiation"), member(sent, "Risk")
		echoes := func(where string, got map[string]any, risk bool) {
			t.Helper()
			if diff := cmp.Diff(wantInitiation, member(got, "Data.Initiation")); diff != "" {
				t.Errorf("%s: Initiation (-sent +got):\n%s", where, diff)
			}
			if risk {
				if diff := cmp.Diff(wantRisk, got["Risk"]); diff != "" {
					t.Errorf("%s: Risk (-sent +got):\n%s", where, diff)
				}
			}
		}
		var created map[string]any
		s.want(s.send(http.MethodPost, v4Consents, js(body), tppKey()), http.StatusCreated, &created)
		echoes("consent POST", created, true)
		id := created["Data"].(map[string]any)["ConsentId"].(string)
		echoes("consent GET", s.get(v4Consents+"/"+id, tpp("tpp-a", "payments")), true)

		s.authorise(id, "alice", f.alice)
		psu := psuToken("tpp-a", "alice", id, "payments")
		var paid map[string]any
		s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(body, id)), psu.with(HeaderIdempotencyKey, key())), http.StatusCreated, &paid)
		echoes("payment POST", paid, false)
		paymentID := member(paid, "Data.DomesticPaymentId").(string)
		echoes("payment GET", s.get(v4Payments+"/"+paymentID, tpp("tpp-a", "payments")), false)

		// The ledger books the structured creditor reference.
		var reference string
		s.db.Raw(`SELECT t.reference FROM transfers t JOIN payments p ON p.transfer_id = t.id WHERE p.id = ?`, paymentID).Scan(&reference)
		if reference != "RF18539007547034" {
			t.Errorf("booked reference = %q, want the structured creditor reference", reference)
		}
	})

	t.Run("the payment's Initiation must be the consent's", func(t *testing.T) {
		s := f.in(t)
		id, psu := f.in(t).authorisedV4(base)
		before := s.state()
		changed := with(v4PaymentBody(base, id), "Data.Initiation.RemittanceInformation.Unstructured", []any{"For March"})
		wantError(t, s.send(http.MethodPost, v4Payments, js(changed), psu.with(HeaderIdempotencyKey, key())), 400, CodeV4ConsentMismatch, "")
		if after := s.state(); after != before {
			t.Fatalf("state changed:\n%s\n%s", before, after)
		}
	})
	f.in(t).reconciled()
}

// identification is the sort code and account number of a ledger account.
func (a *api) identification(id string) string {
	a.t.Helper()
	var ident string
	if err := a.db.Raw(`SELECT identification FROM accounts WHERE id = ?`, id).Scan(&ident).Error; err != nil || ident == "" {
		a.t.Fatalf("identification of %s: %v", id, err)
	}
	return ident
}

// status is Data.Status of a decoded answer.
func status(v map[string]any) string {
	s, _ := member(v, "Data.Status").(string)
	return s
}

// TestV4Statuses covers the contract's status vocabulary (section 4): the
// v4.0 codes of consents and payments, RCVD for a new payment and the
// current status everywhere else, AM04 on a payment rejected for funds, the
// payment-details history, and the account classification, balance types
// and entry status of the AIS reads.
func TestV4Statuses(t *testing.T) {
	f := newV4Fixture(t)
	cc := tpp("tpp-a", "payments")
	body := v4ConsentBody("30.00", f.bobIdent)

	t.Run("payment consent AWAU AUTH COND, payment RCVD then ACCC", func(t *testing.T) {
		s := f.in(t)
		var created map[string]any
		s.want(s.send(http.MethodPost, v4Consents, js(body), cc.with(HeaderIdempotencyKey, key())), http.StatusCreated, &created)
		id, _ := member(created, "Data.ConsentId").(string)
		if status(created) != "AWAU" || member(created, "Links.Self") != testBase+v4Consents+"/"+id {
			t.Fatalf("created consent = %v, want AWAU with its link", created)
		}
		if got := s.get(v4Consents+"/"+id, cc); status(got) != "AWAU" {
			t.Fatalf("GET consent = %s, want AWAU", status(got))
		}
		s.authorise(id, "alice", f.alice)
		got := s.get(v4Consents+"/"+id, cc)
		if status(got) != "AUTH" || member(got, "Data.StatusReason") != nil {
			t.Fatalf("GET consent = %v, want AUTH without StatusReason", got)
		}
		psu := psuToken("tpp-a", "alice", id, "payments")
		funds := s.get(v4Consents+"/"+id+"/funds-confirmation", psu)
		if member(funds, "Data.FundsAvailableResult.FundsAvailable") != true {
			t.Fatalf("funds-confirmation = %v, want FundsAvailable", funds)
		}

		k := psu.with(HeaderIdempotencyKey, key())
		before := s.balance(f.alice)
		var paid map[string]any
		s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(body, id)), k), http.StatusCreated, &paid)
		paymentID, _ := member(paid, "Data.DomesticPaymentId").(string)
		if status(paid) != "RCVD" || member(paid, "Data.StatusReason") != nil || member(paid, "Data.ConsentId") != id ||
			member(paid, "Links.Self") != testBase+v4Payments+"/"+paymentID {
			t.Fatalf("new payment = %v, want RCVD without StatusReason", paid)
		}
		if got := s.balance(f.alice); before != "1000.00" || got != "970.00" {
			t.Fatalf("alice = %s -> %s, want 1000.00 -> 970.00", before, got)
		}
		if got := s.get(v4Consents+"/"+id, cc); status(got) != "COND" {
			t.Fatalf("GET consumed consent = %s, want COND", status(got))
		}
		if got := s.get(v4Payments+"/"+paymentID, cc); status(got) != "ACCC" || member(got, "Data.StatusReason") != nil {
			t.Fatalf("GET payment = %v, want ACCC", got)
		}
		state := s.state()
		var replay map[string]any
		s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(body, id)), k), http.StatusCreated, &replay)
		if status(replay) != "ACCC" || member(replay, "Data.DomesticPaymentId") != paymentID {
			t.Fatalf("replay = %v, want the payment in its current status ACCC", replay)
		}
		if s.state() != state {
			t.Fatalf("the replay wrote something")
		}

		var transfer string
		s.db.Raw(`SELECT transfer_id::text FROM payments WHERE id = ?`, paymentID).Scan(&transfer)
		details := s.get(v4Payments+"/"+paymentID+"/payment-details", cc)
		history, _ := member(details, "Data.PaymentStatus").([]any)
		if len(history) != 1 {
			t.Fatalf("payment-details = %v, want one status", details)
		}
		d := history[0].(map[string]any)
		if transfer == "" || d["PaymentTransactionId"] != transfer || d["Status"] != "ACCC" || d["StatusDetail"] != nil || d["StatusUpdateDateTime"] == nil {
			t.Fatalf("payment-details = %v, want ACCC on ledger transfer %s", d, transfer)
		}
	})

	t.Run("payment to another bank ACSC", func(t *testing.T) {
		s := f.in(t)
		external := with(body, "Data.Initiation.CreditorAccount.Identification", "60161331926819")
		id, psu := s.authorisedV4(external)
		var paid map[string]any
		s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(external, id)), psu.with(HeaderIdempotencyKey, key())), http.StatusCreated, &paid)
		paymentID, _ := member(paid, "Data.DomesticPaymentId").(string)
		if status(paid) != "RCVD" {
			t.Fatalf("new payment = %s, want RCVD", status(paid))
		}
		if got := s.get(v4Payments+"/"+paymentID, cc); status(got) != "ACSC" {
			t.Fatalf("GET payment = %s, want ACSC", status(got))
		}
		d, _ := member(s.get(v4Payments+"/"+paymentID+"/payment-details", cc), "Data.PaymentStatus").([]any)
		if len(d) != 1 || d[0].(map[string]any)["Status"] != "ACSC" {
			t.Fatalf("payment-details = %v, want ACSC", d)
		}
	})

	t.Run("insufficient funds RJCT AM04 on POST, replay, GET and payment-details", func(t *testing.T) {
		s := f.in(t)
		big := v4ConsentBody("5000.00", f.bobIdent)
		id, psu := s.authorisedV4(big)
		k := psu.with(HeaderIdempotencyKey, key())
		balances := s.balance(f.alice) + "/" + s.balance(f.bob)
		transfers := s.count("transfers")
		am04 := []any{map[string]any{"StatusReasonCode": "AM04", "StatusReasonDescription": "InsufficientFunds"}}
		rejected := func(where string, v map[string]any) string {
			t.Helper()
			if status(v) != "RJCT" {
				t.Fatalf("%s: Status = %s, want RJCT", where, status(v))
			}
			if diff := cmp.Diff(am04, member(v, "Data.StatusReason")); diff != "" {
				t.Fatalf("%s: StatusReason (-want +got):\n%s", where, diff)
			}
			id, _ := member(v, "Data.DomesticPaymentId").(string)
			return id
		}
		var paid, replay map[string]any
		s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(big, id)), k), http.StatusCreated, &paid)
		paymentID := rejected("POST", paid)
		s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(big, id)), k), http.StatusCreated, &replay)
		if rejected("replay", replay) != paymentID {
			t.Fatalf("replay answered another payment")
		}
		rejected("GET", s.get(v4Payments+"/"+paymentID, cc))
		if got := s.balance(f.alice) + "/" + s.balance(f.bob); got != balances || s.count("transfers") != transfers {
			t.Fatalf("balances %s -> %s: money moved", balances, got)
		}
		if got := s.get(v4Consents+"/"+id, cc); status(got) != "COND" {
			t.Fatalf("consent of a rejected payment = %s, want COND", status(got))
		}
		hist, _ := member(s.get(v4Payments+"/"+paymentID+"/payment-details", cc), "Data.PaymentStatus").([]any)
		if len(hist) != 1 {
			t.Fatalf("payment-details = %v, want one status", hist)
		}
		got := hist[0].(map[string]any)
		want := map[string]any{"PaymentTransactionId": paymentID, "Status": "RJCT",
			"StatusDetail":         map[string]any{"Status": "RJCT", "StatusReason": "AM04"},
			"StatusUpdateDateTime": member(paid, "Data.StatusUpdateDateTime")}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("payment-details (-want +got):\n%s", diff)
		}
	})

	t.Run("payment consent RJCT", func(t *testing.T) {
		s := f.in(t)
		id := s.consentV4(body)
		s.want(s.do(http.MethodPost, "/internal/v1/consents/"+id+"/reject", "", admin), http.StatusOK, nil)
		if got := s.get(v4Consents+"/"+id, cc); status(got) != "RJCT" || member(got, "Data.StatusReason") != nil {
			t.Fatalf("GET rejected consent = %v, want RJCT", got)
		}
	})

	ac := tpp("tpp-a", "accounts")
	t.Run("account access consent AWAU AUTH, CANC after DELETE", func(t *testing.T) {
		s := f.in(t)
		id := s.accessConsent(v4AccessConsents, "ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail")
		if got := s.get(v4AccessConsents+"/"+id, ac); status(got) != "AWAU" || member(got, "Links.Self") != testBase+v4AccessConsents+"/"+id {
			t.Fatalf("GET = %v, want AWAU", got)
		}
		s.authorise(id, "alice", "")
		if got := s.get(v4AccessConsents+"/"+id, ac); status(got) != "AUTH" {
			t.Fatalf("GET = %s, want AUTH", status(got))
		}
		reader := psuToken("tpp-a", "alice", id, "accounts")
		s.get(v4Accounts, reader)
		s.want(s.send(http.MethodDelete, v4AccessConsents+"/"+id, "", ac), http.StatusNoContent, nil)
		if got := s.get(v4AccessConsents+"/"+id, ac); status(got) != "CANC" {
			t.Fatalf("GET after DELETE = %s, want CANC", status(got))
		}
		wantError(t, s.call(http.MethodGet, v4Accounts, "", reader), http.StatusForbidden, CodeV4NotDisclosed, "")
	})

	t.Run("account access consent RJCT", func(t *testing.T) {
		s := f.in(t)
		id := s.accessConsent(v4AccessConsents, "ReadAccountsBasic")
		s.want(s.do(http.MethodPost, "/internal/v1/consents/"+id+"/reject", "", admin), http.StatusOK, nil)
		if got := s.get(v4AccessConsents+"/"+id, ac); status(got) != "RJCT" {
			t.Fatalf("GET = %s, want RJCT", status(got))
		}
	})

	t.Run("an expired account access consent is EXPD and gives no data", func(t *testing.T) {
		s := f.in(t)
		expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		var created map[string]any
		s.want(s.send(http.MethodPost, v4AccessConsents, js(obj{"Data": obj{"Permissions": []any{"ReadAccountsBasic", "ReadBalances"},
			"ExpirationDateTime": expires}, "Risk": obj{}}), ac), http.StatusCreated, &created)
		id, _ := member(created, "Data.ConsentId").(string)
		s.authorise(id, "alice", "")
		reader := psuToken("tpp-a", "alice", id, "accounts")
		s.get(v4Accounts+"/"+f.alice+"/balances", reader)
		// The hour passes.
		if err := s.db.Exec(`UPDATE consents SET expires_at = now() - interval '1 second' WHERE id = ?`, id).Error; err != nil {
			t.Fatal(err)
		}
		if got := s.get(v4AccessConsents+"/"+id, ac); status(got) != "EXPD" {
			t.Fatalf("GET = %s, want EXPD", status(got))
		}
		for _, path := range []string{v4Accounts, v4Accounts + "/" + f.alice, v4Accounts + "/" + f.alice + "/balances", v4Accounts + "/" + f.alice + "/transactions"} {
			wantError(t, s.call(http.MethodGet, path, "", reader), http.StatusForbidden, CodeV4NotDisclosed, "")
		}
		var v3 consentResp
		s.want(s.do(http.MethodGet, v3AccessConsents+"/"+id, "", ac), http.StatusOK, &v3)
		if v3.Data.Status != "Authorised" {
			t.Fatalf("v3.1 GET of an expired consent = %s, want Authorised", v3.Data.Status)
		}
	})

	t.Run("accounts Personal CACC, balances ITAV ITBD, transactions BOOK", func(t *testing.T) {
		s := f.in(t)
		id := s.accessConsent(v4AccessConsents, "ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail")
		s.authorise(id, "alice", "")
		reader := psuToken("tpp-a", "alice", id, "accounts")
		for _, path := range []string{v4Accounts, v4Accounts + "/" + f.alice} {
			accts, _ := member(s.get(path, reader), "Data.Account").([]any)
			if len(accts) != 1 {
				t.Fatalf("GET %s = %v, want alice's account", path, accts)
			}
			a := accts[0].(map[string]any)
			if a["AccountId"] != f.alice || a["AccountCategory"] != "Personal" || a["AccountTypeCode"] != "CACC" ||
				a["AccountType"] != nil || a["AccountSubType"] != nil {
				t.Fatalf("GET %s = %v, want Personal CACC", path, a)
			}
		}
		bal, _ := member(s.get(v4Accounts+"/"+f.alice+"/balances", reader), "Data.Balance").([]any)
		var types []any
		for _, b := range bal {
			types = append(types, b.(map[string]any)["Type"])
		}
		if diff := cmp.Diff([]any{"ITAV", "ITBD"}, types); diff != "" {
			t.Fatalf("balance types (-want +got):\n%s", diff)
		}
		txs, _ := member(s.get(v4Accounts+"/"+f.alice+"/transactions", reader), "Data.Transaction").([]any)
		if len(txs) == 0 {
			t.Fatalf("no transactions")
		}
		for _, tx := range txs {
			if m := tx.(map[string]any); m["Status"] != "BOOK" || member(m, "Balance.Type") != "ITBD" {
				t.Fatalf("transaction = %v, want BOOK with an ITBD balance", m)
			}
		}
	})

	t.Run("basic permissions show no details", func(t *testing.T) {
		s := f.in(t)
		id := s.accessConsent(v4AccessConsents, "ReadAccountsBasic", "ReadTransactionsBasic", "ReadTransactionsDebits")
		s.authorise(id, "alice", "")
		reader := psuToken("tpp-a", "alice", id, "accounts")
		accts, _ := member(s.get(v4Accounts, reader), "Data.Account").([]any)
		if len(accts) != 1 || accts[0].(map[string]any)["Account"] != nil || accts[0].(map[string]any)["AccountTypeCode"] != "CACC" {
			t.Fatalf("accounts = %v, want alice's without Account details", accts)
		}
		txs, _ := member(s.get(v4Accounts+"/"+f.alice+"/transactions", reader), "Data.Transaction").([]any)
		for _, tx := range txs {
			if m := tx.(map[string]any); m["Status"] != "BOOK" || m["Balance"] != nil || m["TransactionInformation"] != nil {
				t.Fatalf("transaction = %v, want BOOK without details", m)
			}
		}
	})
	f.in(t).reconciled()
}

// TestV4ErrorCodes covers the contract's error codes (section 5): each case
// answers its status, one error with its four-character code and Path, and
// leaves every balance, transfer, payment, idempotency key and consent as it
// was.
func TestV4ErrorCodes(t *testing.T) {
	f := newV4Fixture(t)
	s := f.in(t)
	body := v4ConsentBody("10.00", f.bobIdent)
	waiting := s.consentV4(body)
	rejected := s.consentV4(body)
	s.want(s.do(http.MethodPost, "/internal/v1/consents/"+rejected+"/reject", "", admin), http.StatusOK, nil)
	ready, readyPSU := s.authorisedV4(body)
	used, usedPSU := s.authorisedV4(body)
	var paid map[string]any
	s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(body, used)), usedPSU.with(HeaderIdempotencyKey, "k-used")), http.StatusCreated, &paid)
	paymentID, _ := member(paid, "Data.DomesticPaymentId").(string)
	v3 := s.paymentConsent("tpp-a", consentBody("10.00", f.bobIdent))
	s.authorise(v3, "alice", f.alice)
	v3PSU := psuToken("tpp-a", "alice", v3, "payments")
	v3AsV4 := with(body, "Data.Initiation.RemittanceInformation", obj{"Structured": []any{obj{"CreditorReferenceInformation": obj{"Reference": "INV-1"}}}})
	basic := s.accessConsent(v4AccessConsents, "ReadAccountsBasic")
	s.authorise(basic, "alice", "")
	basicReader := psuToken("tpp-a", "alice", basic, "accounts")

	cc := tpp("tpp-a", "payments")
	ccKey := cc.with(HeaderIdempotencyKey, "k1")
	pay := readyPSU.with(HeaderIdempotencyKey, "k-pay")
	access := tpp("tpp-a", "accounts")
	consent := js(body)
	payment := js(v4PaymentBody(body, ready))
	accessBody := func(data obj) string { return js(obj{"Data": data, "Risk": obj{}}) }
	tests := []struct {
		name         string
		method, path string
		body         string
		h            hdr
		status       int
		code, where  string
	}{
		{"unknown payment consent", "GET", v4Consents + "/" + unknownID, "", cc, 400, "U011", ""},
		{"malformed payment consent id", "GET", v4Consents + "/not-a-uuid", "", cc, 400, "U011", ""},
		{"unknown payment", "GET", v4Payments + "/" + unknownID, "", cc, 400, "U011", ""},
		{"payment-details of an unknown payment", "GET", v4Payments + "/" + unknownID + "/payment-details", "", cc, 400, "U011", ""},
		{"unknown account access consent", "GET", v4AccessConsents + "/" + unknownID, "", access, 400, "U011", ""},
		{"DELETE of an unknown account access consent", "DELETE", v4AccessConsents + "/" + unknownID, "", access, 400, "U011", ""},
		{"unknown account", "GET", v4Accounts + "/" + unknownID, "", basicReader, 400, "U011", ""},

		{"no CreditorAccount.Name", "POST", v4Consents, js(with(body, "Data.Initiation.CreditorAccount.Name", nil)), ccKey, 400, "U004", "Data.Initiation.CreditorAccount.Name"},
		{"no InstructedAmount", "POST", v4Consents, js(with(body, "Data.Initiation.InstructedAmount", nil)), ccKey, 400, "U004", "Data.Initiation.InstructedAmount"},
		{"no Risk", "POST", v4Consents, js(with(body, "Risk", nil)), ccKey, 400, "U004", "Risk"},
		{"payment without ConsentId", "POST", v4Payments, consent, pay, 400, "U004", "Data.ConsentId"},
		{"account access consent without Permissions", "POST", v4AccessConsents, accessBody(obj{}), access, 400, "U004", "Data.Permissions"},

		{"amount with three decimals in GBP", "POST", v4Consents, js(with(body, "Data.Initiation.InstructedAmount.Amount", "10.001")), ccKey, 400, "U002", "Data.Initiation.InstructedAmount.Amount"},
		{"amount as a number", "POST", v4Consents, js(with(body, "Data.Initiation.InstructedAmount.Amount", 10)), ccKey, 400, "U002", "Data.Initiation.InstructedAmount.Amount"},
		{"zero amount", "POST", v4Consents, js(with(body, "Data.Initiation.InstructedAmount.Amount", "0")), ccKey, 400, "U002", "Data.Initiation.InstructedAmount.Amount"},
		{"v3.1 PaymentContextCode", "POST", v4Consents, js(with(body, "Risk.PaymentContextCode", "PartyToParty")), ccKey, 400, "U002", "Risk.PaymentContextCode"},
		{"InstructionIdentification over 35", "POST", v4Consents, js(with(body, "Data.Initiation.InstructionIdentification", strings.Repeat("i", 36))), ccKey, 400, "U002", "Data.Initiation.InstructionIdentification"},
		{"unsupported permission", "POST", v4AccessConsents, accessBody(obj{"Permissions": []any{"ReadBeneficiariesDetail"}}), access, 400, "U002", "Data.Permissions.0"},
		{"no permission", "POST", v4AccessConsents, accessBody(obj{"Permissions": []any{}}), access, 400, "U002", "Data.Permissions"},

		{"fromBookingDateTime garbage", "GET", v4Accounts + "/" + f.alice + "/transactions?fromBookingDateTime=garbage", "", basicReader, 400, "U003", "fromBookingDateTime"},
		{"toBookingDateTime garbage", "GET", v4Accounts + "/" + f.alice + "/transactions?toBookingDateTime=garbage", "", basicReader, 400, "U003", "toBookingDateTime"},
		{"ExpirationDateTime garbage", "POST", v4AccessConsents, accessBody(obj{"Permissions": []any{"ReadAccountsBasic"}, "ExpirationDateTime": "garbage"}), access, 400, "U003", "Data.ExpirationDateTime"},
		{"ExpirationDateTime in the past", "POST", v4AccessConsents, accessBody(obj{"Permissions": []any{"ReadAccountsBasic"}, "ExpirationDateTime": "2020-01-01T00:00:00Z"}), access, 400, "U003", "Data.ExpirationDateTime"},
		{"CompletionDateTime garbage", "POST", v4Consents, js(with(body, "Data.Authorisation", obj{"AuthorisationType": "Single", "CompletionDateTime": "garbage"})), ccKey, 400, "U003", "Data.Authorisation.CompletionDateTime"},
		{"RegulatoryReporting Date garbage", "POST", v4Consents, js(with(body, "Data.Initiation.RegulatoryReporting", []any{obj{"Details": []any{obj{"Date": "garbage"}}}})), ccKey, 400, "U003", "Data.Initiation.RegulatoryReporting.0.Details.0.Date"},
		{"RelatedDate garbage", "POST", v4Consents, js(with(body, "Data.Initiation.RemittanceInformation.Structured", []any{obj{"ReferredDocumentInformation": []any{obj{"RelatedDate": "1 March"}}}})), ccKey, 400, "U003", "Data.Initiation.RemittanceInformation.Structured.0.ReferredDocumentInformation.0.RelatedDate"},

		{"v3.1 RemittanceInformation.Reference", "POST", v4Consents, js(with(body, "Data.Initiation.RemittanceInformation.Reference", "INV-1")), ccKey, 400, "U005", "Data.Initiation.RemittanceInformation.Reference"},
		{"v3.1 Risk.ContractPresentInidicator", "POST", v4Consents, js(with(body, "Risk.ContractPresentInidicator", true)), ccKey, 400, "U005", "Risk.ContractPresentInidicator"},
		{"undefined Initiation member", "POST", v4Consents, js(with(body, "Data.Initiation.Surprise", 1)), ccKey, 400, "U005", "Data.Initiation.Surprise"},
		{"v3.1 Reference in a payment", "POST", v4Payments, js(with(v4PaymentBody(body, ready), "Data.Initiation.RemittanceInformation.Reference", "INV-1")), pay, 400, "U005", "Data.Initiation.RemittanceInformation.Reference"},
		{"v3.1 ContractPresentInidicator in a payment", "POST", v4Payments, js(with(v4PaymentBody(body, ready), "Risk.ContractPresentInidicator", false)), pay, 400, "U005", "Risk.ContractPresentInidicator"},
		{"payment without CreditorAccount.Name", "POST", v4Payments, js(with(v4PaymentBody(body, ready), "Data.Initiation.CreditorAccount.Name", nil)), pay, 400, "U004", "Data.Initiation.CreditorAccount.Name"},
		{"undefined payment member", "POST", v4Payments, js(with(v4PaymentBody(body, ready), "Data.Surprise", 1)), pay, 400, "U005", "Data.Surprise"},
		{"undefined account access Risk member", "POST", v4AccessConsents, js(obj{"Data": obj{"Permissions": []any{"ReadAccountsBasic"}}, "Risk": obj{"Surprise": 1}}), access, 400, "U005", "Risk.Surprise"},

		{"body not JSON", "POST", v4Consents, `{"Data":`, ccKey, 400, "U010", ""},
		{"body an array", "POST", v4Consents, `[]`, ccKey, 400, "U010", ""},
		{"body a string", "POST", v4Payments, `"pay"`, pay, 400, "U010", ""},
		{"body not UTF-8", "POST", v4Consents, strings.Replace(consent, "For March", "For \xff", 1), ccKey, 400, "U010", ""},
		{"account access body not JSON", "POST", v4AccessConsents, `{`, access, 400, "U010", ""},

		{"consent without x-idempotency-key", "POST", v4Consents, consent, cc, 400, "U007", HeaderIdempotencyKey},
		{"payment without x-idempotency-key", "POST", v4Payments, payment, readyPSU, 400, "U007", HeaderIdempotencyKey},
		{"x-idempotency-key over 40", "POST", v4Consents, consent, cc.with(HeaderIdempotencyKey, strings.Repeat("k", 41)), 400, "U006", HeaderIdempotencyKey},
		{"x-idempotency-key with a leading space", "POST", v4Consents, consent, cc.with(HeaderIdempotencyKey, " k"), 400, "U006", HeaderIdempotencyKey},
		{"x-idempotency-key with a trailing space", "POST", v4Payments, payment, readyPSU.with(HeaderIdempotencyKey, "k "), 400, "U006", HeaderIdempotencyKey},

		{"payment with another amount", "POST", v4Payments, js(v4PaymentBody(with(body, "Data.Initiation.InstructedAmount.Amount", "10.01"), ready)), pay, 400, "U008", ""},
		{"payment with another Risk", "POST", v4Payments, js(v4PaymentBody(with(body, "Risk.PaymentContextCode", "TransferToSelf"), ready)), pay, 400, "U008", ""},

		{"payment on a consent awaiting authorisation", "POST", v4Payments, js(v4PaymentBody(body, waiting)), psuToken("tpp-a", "alice", waiting, "payments").with(HeaderIdempotencyKey, "k2"), 400, "U009", ""},
		{"payment on a rejected consent", "POST", v4Payments, js(v4PaymentBody(body, rejected)), psuToken("tpp-a", "alice", rejected, "payments").with(HeaderIdempotencyKey, "k3"), 400, "U009", ""},
		{"payment on another client's consent awaiting authorisation", "POST", v4Payments, js(v4PaymentBody(body, waiting)), psuToken("tpp-b", "alice", waiting, "payments").with(HeaderIdempotencyKey, "k12"), 403, "U042", ""},
		{"payment on a consent awaiting authorisation with a token for another", "POST", v4Payments, js(v4PaymentBody(body, waiting)), readyPSU.with(HeaderIdempotencyKey, "k13"), 403, "U042", ""},
		{"payment on a consumed consent", "POST", v4Payments, js(v4PaymentBody(body, used)), usedPSU.with(HeaderIdempotencyKey, "k4"), 400, "U009", ""},
		{"payment on a consent created on v3.1", "POST", v4Payments, js(v4PaymentBody(v3AsV4, v3)), v3PSU.with(HeaderIdempotencyKey, "k5"), 400, "U009", ""},
		{"funds confirmation on a consumed consent", "GET", v4Consents + "/" + used + "/funds-confirmation", "", usedPSU, 400, "U009", ""},
		{"funds confirmation on a consent awaiting authorisation", "GET", v4Consents + "/" + waiting + "/funds-confirmation", "", psuToken("tpp-a", "alice", waiting, "payments"), 400, "U009", ""},
		{"funds confirmation on a rejected consent", "GET", v4Consents + "/" + rejected + "/funds-confirmation", "", psuToken("tpp-a", "alice", rejected, "payments"), 400, "U009", ""},

		{"unsupported currency", "POST", v4Consents, js(with(body, "Data.Initiation.InstructedAmount.Currency", "XXX")), ccKey, 400, "U023", "Data.Initiation.InstructedAmount.Currency"},
		{"unsupported creditor scheme", "POST", v4Consents, js(with(body, "Data.Initiation.CreditorAccount.SchemeName", "XX.BANK.AccountNumber")), ccKey, 400, "U027", "Data.Initiation.CreditorAccount.SchemeName"},
		{"unsupported debtor scheme", "POST", v4Consents, js(with(body, "Data.Initiation.DebtorAccount", obj{"SchemeName": "XX.BANK.AccountNumber", "Identification": "1"})), ccKey, 400, "U027", "Data.Initiation.DebtorAccount.SchemeName"},

		{"no token", "POST", v4Consents, consent, hdr{HeaderIdempotencyKey: "k6"}, 401, "U042", ""},
		{"no token on an AIS read", "GET", v4Accounts, "", nil, 401, "U042", ""},
		{"consent without the payments scope", "POST", v4Consents, consent, access.with(HeaderIdempotencyKey, "k7"), 403, "U042", ""},
		{"consent with a PSU token", "POST", v4Consents, consent, readyPSU.with(HeaderIdempotencyKey, "k8"), 403, "U042", ""},
		{"another client's consent", "GET", v4Consents + "/" + ready, "", tpp("tpp-b", "payments"), 403, "U042", ""},
		{"another client's payment", "GET", v4Payments + "/" + paymentID, "", tpp("tpp-b", "payments"), 403, "U042", ""},
		{"payment with another client's PSU token", "POST", v4Payments, payment, psuToken("tpp-b", "alice", ready, "payments").with(HeaderIdempotencyKey, "k9"), 403, "U042", ""},
		{"payment with a token for another consent", "POST", v4Payments, payment, usedPSU.with(HeaderIdempotencyKey, "k10"), 403, "U042", ""},
		{"funds confirmation with a client-credentials token", "GET", v4Consents + "/" + ready + "/funds-confirmation", "", cc, 403, "U042", "Authorization"},
		{"payment with a client-credentials token", "POST", v4Payments, payment, cc.with(HeaderIdempotencyKey, "k11"), 403, "U042", "Authorization"},
		{"accounts with a client-credentials token", "GET", v4Accounts, "", access, 403, "U042", "Authorization"},
		{"balances without ReadBalances", "GET", v4Accounts + "/" + f.alice + "/balances", "", basicReader, 403, "U042", ""},
		{"another PSU's account", "GET", v4Accounts + "/" + f.bob, "", basicReader, 403, "U042", ""},

		{"no such route", "GET", PathV4 + "/pisp/nothing", "", cc, 404, "U042", ""},
		{"no such sub-path of a payment", "GET", v4Payments + "/" + paymentID + "/xyz", "", cc, 404, "U042", ""},
		{"PUT on payments", "PUT", v4Payments, payment, pay, 405, "U042", ""},
		{"DELETE of a payment consent", "DELETE", v4Consents + "/" + ready, "", cc, 405, "U042", ""},
		{"Accept XML", "GET", v4Consents + "/" + ready, "", cc.with("Accept", "application/xml"), 406, "U006", "Accept"},
		{"Content-Type text/plain", "POST", v4Consents, consent, ccKey.with("Content-Type", "text/plain"), 415, "U006", "Content-Type"},
		{"body too large", "POST", v4Consents, js(with(body, "Data.Initiation.RemittanceInformation.Unstructured", []any{strings.Repeat("x", 5000)})), ccKey, 413, "U010", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := f.in(t)
			before := s.state()
			logged := len(s.log.String())
			rec := s.call(tc.method, tc.path, tc.body, tc.h)
			d := wantError(t, rec, tc.status, tc.code, tc.where)
			if d.Message == "" {
				t.Errorf("no Message")
			}
			if tc.code == CodeV4NotDisclosed && d.Message != http.StatusText(tc.status) {
				t.Errorf("U042 Message = %q, want %q (the reason is not disclosed)", d.Message, http.StatusText(tc.status))
			}
			if l := s.log.String()[logged:]; strings.Contains(l, `"level":"ERROR"`) {
				t.Errorf("a refusal logged at ERROR:\n%s", l)
			}
			if after := s.state(); after != before {
				t.Fatalf("state changed:\n%s\n%s", before, after)
			}
			if tc.status == http.StatusUnauthorized {
				// The challenge is v3.1's, unchanged.
				v3 := s.do(tc.method, strings.Replace(tc.path, PathV4, "/open-banking/v3.1", 1), tc.body, tc.h)
				got, want := rec.Header().Get("WWW-Authenticate"), v3.Header().Get("WWW-Authenticate")
				if v3.Code != http.StatusUnauthorized || want == "" || got != want {
					t.Errorf("WWW-Authenticate = %q, want v3.1's %q", got, want)
				}
			}
		})
	}
	if got := s.get(v4Consents+"/"+ready, cc); status(got) != "AUTH" {
		t.Fatalf("the consent the refused payments named is %s, want AUTH", status(got))
	}
	s.reconciled()
}

// TestV4ReusedIdempotencyKey covers OB v4.0.1's answer to an idempotency
// key reused with another body: 422 U029 at x-idempotency-key with a Url,
// nothing written, the original untouched, and the original request still
// replayed with 201. An account access consent, which takes no key, ignores
// one.
func TestV4ReusedIdempotencyKey(t *testing.T) {
	f := newV4Fixture(t)
	s := f.in(t)
	cc := tpp("tpp-a", "payments")
	body := v4ConsentBody("10.00", f.bobIdent)
	other := with(body, "Data.Initiation.InstructedAmount.Amount", "11.00")
	reused := func(rec *httptest.ResponseRecorder) {
		t.Helper()
		d := wantError(t, rec, http.StatusUnprocessableEntity, CodeV4IdempotencyReused, HeaderIdempotencyKey)
		if d.URL != testBase+"/docs/idempotency" {
			t.Fatalf("Url = %q, want the idempotency rules under the public URL", d.URL)
		}
		if page := s.do(http.MethodGet, strings.TrimPrefix(d.URL, testBase), "", nil); page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "U029") {
			t.Fatalf("GET %s = %d %s, want the rules", d.URL, page.Code, page.Body)
		}
	}

	consentKey := cc.with(HeaderIdempotencyKey, "consent-key")
	var created map[string]any
	s.want(s.send(http.MethodPost, v4Consents, js(body), consentKey), http.StatusCreated, &created)
	id, _ := member(created, "Data.ConsentId").(string)
	original := s.get(v4Consents+"/"+id, cc)
	before := s.state()
	reused(s.send(http.MethodPost, v4Consents, js(other), consentKey))
	if after := s.state(); after != before {
		t.Fatalf("state changed:\n%s\n%s", before, after)
	}
	if diff := cmp.Diff(original, s.get(v4Consents+"/"+id, cc)); diff != "" {
		t.Fatalf("consent after the 422 (-before +after):\n%s", diff)
	}
	var replay map[string]any
	s.want(s.send(http.MethodPost, v4Consents, js(body), consentKey), http.StatusCreated, &replay)
	if member(replay, "Data.ConsentId") != id || s.state() != before {
		t.Fatalf("replay = %v, want consent %s and nothing written", replay, id)
	}

	s.authorise(id, "alice", f.alice)
	s.want(s.send(http.MethodPost, v4Consents, js(body), consentKey), http.StatusCreated, &replay)
	if member(replay, "Data.ConsentId") != id || status(replay) != "AUTH" {
		t.Fatalf("replay after the authorisation = %v, want consent %s in its current status AUTH", replay, id)
	}
	psu := psuToken("tpp-a", "alice", id, "payments").with(HeaderIdempotencyKey, "payment-key")
	var paid map[string]any
	s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(body, id)), psu), http.StatusCreated, &paid)
	paymentID, _ := member(paid, "Data.DomesticPaymentId").(string)
	before = s.state()
	reused(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(other, id)), psu))
	if after := s.state(); after != before {
		t.Fatalf("state changed:\n%s\n%s", before, after)
	}
	s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(body, id)), psu), http.StatusCreated, &replay)
	if member(replay, "Data.DomesticPaymentId") != paymentID || status(replay) != "ACCC" || s.state() != before {
		t.Fatalf("replay = %v, want payment %s in status ACCC and nothing written", replay, paymentID)
	}

	access := tpp("tpp-a", "accounts").with(HeaderIdempotencyKey, "access-key")
	var first, second consentResp
	s.want(s.call(http.MethodPost, v4AccessConsents, js(obj{"Data": obj{"Permissions": []any{"ReadAccountsBasic"}}, "Risk": obj{}}), access), http.StatusCreated, &first)
	s.want(s.call(http.MethodPost, v4AccessConsents, js(obj{"Data": obj{"Permissions": []any{"ReadBalances"}}, "Risk": obj{}}), access), http.StatusCreated, &second)
	if first.Data.ConsentId == second.Data.ConsentId {
		t.Fatalf("an account access consent's key was not ignored")
	}
	s.reconciled()
}

// TestV4AcrossVersions covers the contract's rules across versions (section
// 6): one consents table and one ledger, each resource shown in the
// vocabulary of the version that reads it, or refused where that version
// cannot show it, and no payment on the other version's consent.
func TestV4AcrossVersions(t *testing.T) {
	f := newV4Fixture(t)
	cc := tpp("tpp-a", "payments")
	ac := tpp("tpp-a", "accounts")
	v3Status := func(s *v4Fixture, path string, h hdr) string {
		t.Helper()
		var got consentResp
		s.want(s.do(http.MethodGet, path, "", h), http.StatusOK, &got)
		return got.Data.Status
	}

	t.Run("a v3.1 account access consent and its PSU token on v4.0", func(t *testing.T) {
		s := f.in(t)
		id := s.accessConsent(v3AccessConsents, "ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail")
		if got := s.get(v4AccessConsents+"/"+id, ac); status(got) != "AWAU" {
			t.Fatalf("v4.0 GET = %s, want AWAU", status(got))
		}
		s.authorise(id, "alice", "")
		if got := s.get(v4AccessConsents+"/"+id, ac); status(got) != "AUTH" {
			t.Fatalf("v4.0 GET = %s, want AUTH", status(got))
		}
		reader := psuToken("tpp-a", "alice", id, "accounts")
		if a := member(s.get(v4Accounts+"/"+f.alice, reader), "Data.Account"); len(a.([]any)) != 1 {
			t.Fatalf("v4.0 account = %v", a)
		}
		s.get(v4Accounts+"/"+f.alice+"/balances", reader)
		s.get(v4Accounts+"/"+f.alice+"/transactions", reader)
		s.want(s.send(http.MethodDelete, v4AccessConsents+"/"+id, "", ac), http.StatusNoContent, nil)
		if got := s.get(v4AccessConsents+"/"+id, ac); status(got) != "CANC" {
			t.Fatalf("v4.0 GET after DELETE = %s, want CANC", status(got))
		}
		if got := v3Status(s, v3AccessConsents+"/"+id, ac); got != "Revoked" {
			t.Fatalf("v3.1 GET after the v4.0 DELETE = %s, want Revoked", got)
		}
	})

	t.Run("a v4.0 account access consent and its PSU token on v3.1", func(t *testing.T) {
		s := f.in(t)
		id := s.accessConsent(v4AccessConsents, "ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail")
		if got := v3Status(s, v3AccessConsents+"/"+id, ac); got != "AwaitingAuthorisation" {
			t.Fatalf("v3.1 GET = %s, want AwaitingAuthorisation", got)
		}
		s.authorise(id, "alice", "")
		if got := v3Status(s, v3AccessConsents+"/"+id, ac); got != "Authorised" {
			t.Fatalf("v3.1 GET = %s, want Authorised", got)
		}
		reader := psuToken("tpp-a", "alice", id, "accounts")
		for _, path := range []string{v3Accounts, v3Accounts + "/" + f.alice + "/balances", v3Accounts + "/" + f.alice + "/transactions"} {
			s.want(s.do(http.MethodGet, path, "", reader), http.StatusOK, nil)
		}
		s.want(s.do(http.MethodDelete, v3AccessConsents+"/"+id, "", ac), http.StatusNoContent, nil)
		if got := s.get(v4AccessConsents+"/"+id, ac); status(got) != "CANC" {
			t.Fatalf("v4.0 GET after the v3.1 DELETE = %s, want CANC", status(got))
		}
	})

	// A v3.1 consent with every v3.1 remittance member, paid on v3.1.
	v3Body := strings.Replace(consentBody("20.00", f.bobIdent), `{"Reference":"INV-1"}`, `{"Reference":"INV-1","Unstructured":"For March"}`, 1)
	v4Shape := obj{
		"InstructionIdentification": "ACME412", "EndToEndIdentification": "E2E-1",
		"InstructedAmount": obj{"Amount": "20.00", "Currency": "GBP"},
		"CreditorAccount":  obj{"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": f.bobIdent, "Name": "Bob"},
		"RemittanceInformation": obj{
			"Structured":   []any{obj{"CreditorReferenceInformation": obj{"Reference": "INV-1"}}},
			"Unstructured": []any{"For March"},
		},
	}
	wantV4Shape := decoded(t, js(v4Shape))

	t.Run("a v3.1 payment and its consent read on v4.0", func(t *testing.T) {
		s := f.in(t)
		id := s.paymentConsent("tpp-a", v3Body)
		s.authorise(id, "alice", f.alice)
		psu := psuToken("tpp-a", "alice", id, "payments")
		consent := s.get(v4Consents+"/"+id, cc)
		if status(consent) != "AUTH" || member(consent, "Risk.PaymentContextCode") != "TransferToThirdParty" {
			t.Fatalf("v4.0 GET of the v3.1 consent = %v, want AUTH with the v4.0 context code", consent)
		}
		if diff := cmp.Diff(wantV4Shape, member(consent, "Data.Initiation")); diff != "" {
			t.Fatalf("Initiation of the v3.1 consent on v4.0 (-want +got):\n%s", diff)
		}
		if funds := s.get(v4Consents+"/"+id+"/funds-confirmation", psu); member(funds, "Data.FundsAvailableResult.FundsAvailable") != true {
			t.Fatalf("v4.0 funds-confirmation of the v3.1 consent = %v", funds)
		}
		var paid paymentResp
		s.want(s.do(http.MethodPost, v3Payments, paymentBody(v3Body, id), psu.with(HeaderIdempotencyKey, key())), http.StatusCreated, &paid)
		payment := s.get(v4Payments+"/"+paid.Data.DomesticPaymentId, cc)
		if status(payment) != "ACCC" || member(payment, "Data.ConsentId") != id {
			t.Fatalf("v4.0 GET of the v3.1 payment = %v, want ACCC", payment)
		}
		if diff := cmp.Diff(wantV4Shape, member(payment, "Data.Initiation")); diff != "" {
			t.Fatalf("Initiation of the v3.1 payment on v4.0 (-want +got):\n%s", diff)
		}
		d, _ := member(s.get(v4Payments+"/"+paid.Data.DomesticPaymentId+"/payment-details", cc), "Data.PaymentStatus").([]any)
		if len(d) != 1 || d[0].(map[string]any)["Status"] != "ACCC" {
			t.Fatalf("v4.0 payment-details of the v3.1 payment = %v", d)
		}
		if got := s.get(v4Consents+"/"+id, cc); status(got) != "COND" {
			t.Fatalf("v4.0 GET of the consumed v3.1 consent = %s, want COND", status(got))
		}
	})

	t.Run("a v3.1 Initiation without a creditor name is not shown on v4.0", func(t *testing.T) {
		// v4.0 requires CreditorAccount.Name, which v3.1 let out: the
		// consent and the payment cannot be shown in the v4.0 shape, and
		// answer NotFound there; what shows no Initiation is served.
		s := f.in(t)
		nameless := strings.Replace(v3Body, `,"Name":"Bob"`, "", 1)
		id := s.paymentConsent("tpp-a", nameless)
		wantError(t, s.call(http.MethodGet, v4Consents+"/"+id, "", cc), http.StatusBadRequest, CodeV4NotFound, "")
		s.authorise(id, "alice", f.alice)
		psu := psuToken("tpp-a", "alice", id, "payments")
		s.get(v4Consents+"/"+id+"/funds-confirmation", psu)
		var paid paymentResp
		s.want(s.do(http.MethodPost, v3Payments, paymentBody(nameless, id), psu.with(HeaderIdempotencyKey, key())), http.StatusCreated, &paid)
		wantError(t, s.call(http.MethodGet, v4Payments+"/"+paid.Data.DomesticPaymentId, "", cc), http.StatusBadRequest, CodeV4NotFound, "")
		d, _ := member(s.get(v4Payments+"/"+paid.Data.DomesticPaymentId+"/payment-details", cc), "Data.PaymentStatus").([]any)
		if len(d) != 1 || d[0].(map[string]any)["Status"] != "ACCC" {
			t.Fatalf("v4.0 payment-details of the v3.1 payment = %v", d)
		}
	})

	t.Run("v4.0 payment resources are not shown on v3.1", func(t *testing.T) {
		s := f.in(t)
		body := v4ConsentBody("5.00", f.bobIdent)
		id, psu := s.authorisedV4(body)
		other, otherPSU := s.authorisedV4(body)
		var paid map[string]any
		s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(body, id)), psu.with(HeaderIdempotencyKey, key())), http.StatusCreated, &paid)
		paymentID, _ := member(paid, "Data.DomesticPaymentId").(string)
		for _, r := range []struct {
			path string
			h    hdr
		}{
			{v3Consents + "/" + id, cc},
			{v3Consents + "/" + other + "/funds-confirmation", otherPSU},
			{v3Payments + "/" + paymentID, cc},
			{v3Payments + "/" + paymentID + "/payment-details", cc},
		} {
			rec := s.do(http.MethodGet, r.path, "", r.h)
			wantError(t, rec, http.StatusBadRequest, CodeResourceNotFound, "")
		}
	})

	t.Run("no payment with the other version's consent", func(t *testing.T) {
		s := f.in(t)
		v3 := s.paymentConsent("tpp-a", v3Body)
		s.authorise(v3, "alice", f.alice)
		v3PSU := psuToken("tpp-a", "alice", v3, "payments")
		v4Body := with(obj{"Data": obj{"Initiation": v4Shape}}, "Risk", obj{"PaymentContextCode": "TransferToThirdParty"})
		v4, v4PSU := s.authorisedV4(v4Body)

		before := s.state()
		wantError(t, s.send(http.MethodPost, v4Payments, js(v4PaymentBody(v4Body, v3)), v3PSU.with(HeaderIdempotencyKey, "cross-1")),
			http.StatusBadRequest, CodeV4InvalidConsentStatus, "")
		wantError(t, s.do(http.MethodPost, v3Payments, paymentBody(v3Body, v4), v4PSU.with(HeaderIdempotencyKey, "cross-2")),
			http.StatusBadRequest, CodeInvalidConsentStatus, "")
		if after := s.state(); after != before {
			t.Fatalf("state changed:\n%s\n%s", before, after)
		}
		if got := v3Status(s, v3Consents+"/"+v3, cc); got != "Authorised" {
			t.Fatalf("the v3.1 consent after the v4.0 refusal = %s, want Authorised", got)
		}
		if got := s.get(v4Consents+"/"+v4, cc); status(got) != "AUTH" {
			t.Fatalf("the v4.0 consent after the v3.1 refusal = %s, want AUTH", status(got))
		}
		// Each is still payable on its own version, with the same keys.
		var v3Paid paymentResp
		s.want(s.do(http.MethodPost, v3Payments, paymentBody(v3Body, v3), v3PSU.with(HeaderIdempotencyKey, "cross-1")), http.StatusCreated, &v3Paid)
		if v3Paid.Data.Status != "AcceptedCreditSettlementCompleted" {
			t.Fatalf("v3.1 payment = %s", v3Paid.Data.Status)
		}
		var v4Paid map[string]any
		s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(v4Body, v4)), v4PSU.with(HeaderIdempotencyKey, "cross-2")), http.StatusCreated, &v4Paid)
		if status(v4Paid) != "RCVD" {
			t.Fatalf("v4.0 payment = %s, want RCVD", status(v4Paid))
		}
	})

	t.Run("balances and transactions are the same entries on both versions", func(t *testing.T) {
		s := f.in(t)
		id := s.accessConsent(v4AccessConsents, "ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail")
		s.authorise(id, "alice", "")
		reader := psuToken("tpp-a", "alice", id, "accounts")
		type entry struct {
			TransactionId, CreditDebitIndicator, BookingDateTime, TransactionInformation string
			Amount                                                                       struct{ Amount, Currency string }
			Balance                                                                      struct{ Amount struct{ Amount string } }
		}
		var v3, v4 struct {
			Data  struct{ Transaction []entry }
			Links struct{ Next string }
		}
		s.want(s.do(http.MethodGet, v3Accounts+"/"+f.alice+"/transactions", "", reader), http.StatusOK, &v3)
		s.want(s.send(http.MethodGet, v4Accounts+"/"+f.alice+"/transactions", "", reader), http.StatusOK, &v4)
		if len(v4.Data.Transaction) < 2 {
			t.Fatalf("v4.0 transactions = %+v, want the payments of these tests", v4.Data.Transaction)
		}
		if diff := cmp.Diff(v3.Data.Transaction, v4.Data.Transaction); diff != "" {
			t.Fatalf("transactions (-v3.1 +v4.0):\n%s", diff)
		}
		if v3.Links.Next != "" || v4.Links.Next != "" {
			if strings.Replace(v3.Links.Next, "/open-banking/v3.1/", PathV4+"/", 1) != v4.Links.Next {
				t.Fatalf("Links.Next v3.1 %q, v4.0 %q", v3.Links.Next, v4.Links.Next)
			}
		}
		var b3, b4 struct {
			Data struct {
				Balance []struct {
					Amount   struct{ Amount, Currency string }
					DateTime string
				}
			}
		}
		s.want(s.do(http.MethodGet, v3Accounts+"/"+f.alice+"/balances", "", reader), http.StatusOK, &b3)
		s.want(s.send(http.MethodGet, v4Accounts+"/"+f.alice+"/balances", "", reader), http.StatusOK, &b4)
		if len(b3.Data.Balance) != 2 || len(b4.Data.Balance) != 2 || b3.Data.Balance[0].Amount != b4.Data.Balance[0].Amount ||
			b3.Data.Balance[1].Amount != b4.Data.Balance[1].Amount || b4.Data.Balance[0].Amount.Amount != s.balance(f.alice) {
			t.Fatalf("balances v3.1 %+v, v4.0 %+v, ledger %s", b3.Data.Balance, b4.Data.Balance, s.balance(f.alice))
		}
	})
	f.in(t).reconciled()
}

// TestV4KeepsTheDPoPChallenges sends the same refused request to v3.1 and
// to v4.0 through the real DPoP verifier: each v4.0 answer has v3.1's
// status, WWW-Authenticate challenge and DPoP-Nonce, and U042 with the
// reason not disclosed, and is valid under api/openapi-v4.yaml.
func TestV4KeepsTheDPoPChallenges(t *testing.T) {
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(5 * time.Minute).Unix()
	tokens := answers{
		"cc":       {Active: true, Scope: "payments", ClientID: "tpp-a", Subject: "tpp-a", TokenType: "DPoP", Exp: exp, CnfJKT: key.Thumbprint()},
		"accounts": {Active: true, Scope: "accounts", ClientID: "tpp-a", Subject: "tpp-a", TokenType: "DPoP", Exp: exp, CnfJKT: key.Thumbprint()},
		"revoked":  {Active: false},
	}
	dpop := realDPoP(t, tokens)
	s := &v4API{api: newAPIWith(t, dpop), spec: specV4(t)}

	const rest = "/pisp/domestic-payment-consents/" + unknownID
	nonce := ""
	send := func(s *v4API, base, token, scheme string, withNonce bool, extra hdr) *httptest.ResponseRecorder {
		s.t.Helper()
		h := hdr{"DPoP": ""}
		if token != "" {
			h["Authorization"] = scheme + " " + token
			r := client.ProofRequest{Method: http.MethodGet, URL: testBase + base + rest, AccessToken: token}
			if withNonce {
				r.Nonce = nonce
			}
			p, err := key.Proof(r)
			if err != nil {
				s.t.Fatal(err)
			}
			h["DPoP"] = p
		}
		for k, v := range extra {
			h[k] = v
		}
		if base == PathV4 {
			return s.call(http.MethodGet, base+rest, "", h)
		}
		return s.do(http.MethodGet, base+rest, "", h)
	}
	first := send(s, PathV4, "cc", "DPoP", false, nil)
	if nonce = first.Header().Get("DPoP-Nonce"); first.Code != http.StatusUnauthorized || nonce == "" {
		t.Fatalf("first request = %d (nonce %q), want 401 use_dpop_nonce", first.Code, nonce)
	}

	tests := []struct {
		name      string
		token     string
		scheme    string
		nonce     bool
		extra     hdr
		status    int
		code, det string
	}{
		{"no credentials", "", "", false, nil, 401, "U042", ""},
		{"a Bearer token", "cc", "Bearer", true, nil, 401, "U042", ""},
		{"no nonce", "cc", "DPoP", false, nil, 401, "U042", ""},
		{"an inactive token", "revoked", "DPoP", true, nil, 401, "U042", ""},
		{"a malformed proof", "cc", "DPoP", true, hdr{"DPoP": "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}, 401, "U042", ""},
		{"a token without the scope", "accounts", "DPoP", true, nil, 403, "U042", ""},
		{"the known token passes", "cc", "DPoP", true, nil, 400, "U011", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := s.in(t)
			v3 := send(s, "/open-banking/v3.1", tc.token, tc.scheme, tc.nonce, tc.extra)
			v4 := send(s, PathV4, tc.token, tc.scheme, tc.nonce, tc.extra)
			d := wantError(t, v4, tc.status, tc.code, tc.det)
			if v3.Code != v4.Code {
				t.Fatalf("v3.1 = %d, v4.0 = %d", v3.Code, v4.Code)
			}
			for _, h := range []string{"WWW-Authenticate", "DPoP-Nonce", "Cache-Control"} {
				got, want := v4.Header().Get(h), v3.Header().Get(h)
				if h == "DPoP-Nonce" && (got == "") != (want == "") || h != "DPoP-Nonce" && got != want {
					t.Errorf("%s = %q, v3.1's %q", h, got, want)
				}
			}
			if (tc.status == 401 || tc.status == 403) && v4.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("no WWW-Authenticate challenge")
			}
			if tc.code == CodeV4NotDisclosed && d.Message != http.StatusText(tc.status) {
				t.Errorf("Message = %q, want %q", d.Message, http.StatusText(tc.status))
			}
		})
	}
}

// TestV4TransactionPages reads more transactions than a page holds on v4.0:
// Links.Self and Links.Next stay under /open-banking/v4.0 and carry the
// filters, the pages together hold every entry once, as v3.1's do.
func TestV4TransactionPages(t *testing.T) {
	f := newV4Fixture(t)
	s := f.in(t)
	body := v4ConsentBody("1.00", f.bobIdent)
	for range 26 {
		id, psu := s.authorisedV4(body)
		s.want(s.send(http.MethodPost, v4Payments, js(v4PaymentBody(body, id)), psu.with(HeaderIdempotencyKey, key())), http.StatusCreated, nil)
	}
	access := s.accessConsent(v4AccessConsents, "ReadTransactionsDetail")
	s.authorise(access, "alice", "")
	reader := psuToken("tpp-a", "alice", access, "accounts").with(HeaderInteractionID, "0d1e4a3c-6d8e-4d4f-9a3b-2c1d0e9f8a7b")
	const from = "2000-01-01T00:00:00"
	path := v4Accounts + "/" + f.alice + "/transactions?fromBookingDateTime=" + from
	seen := map[string]bool{}
	pages := 0
	for path != "" {
		var page struct {
			Data struct {
				Transaction []struct{ TransactionId string }
			}
			Links struct{ Self, Next string }
		}
		rec := s.send(http.MethodGet, path, "", reader)
		s.want(rec, http.StatusOK, &page)
		if got := rec.Header().Get(HeaderInteractionID); got != "0d1e4a3c-6d8e-4d4f-9a3b-2c1d0e9f8a7b" {
			t.Fatalf("x-fapi-interaction-id = %q, want the request's", got)
		}
		pages++
		self, err := url.Parse(page.Links.Self)
		want, _ := url.Parse(testBase + path)
		if err != nil || self.Host != want.Host || self.Path != want.Path || !cmp.Equal(self.Query(), want.Query()) {
			t.Fatalf("Links.Self = %q, want %q", page.Links.Self, want)
		}
		for _, tx := range page.Data.Transaction {
			if seen[tx.TransactionId] {
				t.Fatalf("transaction %s on two pages", tx.TransactionId)
			}
			seen[tx.TransactionId] = true
		}
		path = ""
		if page.Links.Next != "" {
			next, ok := strings.CutPrefix(page.Links.Next, testBase+v4Accounts+"/"+f.alice+"/transactions?")
			if !ok || !strings.Contains(next, "fromBookingDateTime=2000-01-01T00%3A00%3A00") || !strings.Contains(next, "cursor=") {
				t.Fatalf("Links.Next = %q, want the v4.0 transactions with the filter and a cursor", page.Links.Next)
			}
			path = strings.TrimPrefix(page.Links.Next, testBase)
		}
	}
	if want := 27; pages != 2 || len(seen) != want {
		t.Fatalf("%d transactions on %d pages, want %d on 2", len(seen), pages, want)
	}
	s.reconciled()
}

// TestV4TooManyRequests: past its burst a client gets v3.1's 429 with
// Retry-After on v4.0 too, as U042, valid under api/openapi-v4.yaml.
func TestV4TooManyRequests(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimitConfig{Rate: 0.5, Burst: 1, Registerer: prometheus.NewRegistry()})
	limit := l.Middleware()
	s := &v4API{api: newAPIWith(t, func(next echo.HandlerFunc) echo.HandlerFunc { return fakeDPoP(limit(next)) }), spec: specV4(t)}
	path := v4Consents + "/" + unknownID
	wantError(t, s.call(http.MethodGet, path, "", tpp("busy-tpp", "payments")), http.StatusBadRequest, CodeV4NotFound, "")
	rec := s.call(http.MethodGet, path, "", tpp("busy-tpp", "payments"))
	if d := wantError(t, rec, http.StatusTooManyRequests, CodeV4NotDisclosed, ""); d.Message != http.StatusText(http.StatusTooManyRequests) {
		t.Errorf("Message = %q", d.Message)
	}
	if rec.Header().Get("Retry-After") != "2" {
		t.Errorf("Retry-After = %q, want 2", rec.Header().Get("Retry-After"))
	}
}
