package handlers

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/obpay/payments/internal/obapi4"
	"github.com/obpay/payments/internal/openbanking"
)

func TestPaymentConsentStatusV4(t *testing.T) {
	tests := []struct {
		in      openbanking.ConsentStatus
		want    string
		wantErr error
	}{
		{openbanking.StatusAwaitingAuthorisation, "AWAU", nil},
		{openbanking.StatusAuthorised, "AUTH", nil},
		{openbanking.StatusRejected, "RJCT", nil},
		{openbanking.StatusConsumed, "COND", nil},
		{openbanking.StatusRevoked, "", errNoV4Code},
		{"Unknown", "", errNoV4Code},
	}
	for _, tc := range tests {
		t.Run(string(tc.in), func(t *testing.T) {
			got, err := paymentConsentStatusV4(tc.in)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Fatalf("paymentConsentStatusV4(%s) = %q, %v, want %q, %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestAccessConsentStatusV4(t *testing.T) {
	now := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Second)
	tests := []struct {
		name    string
		status  openbanking.ConsentStatus
		expires *time.Time
		want    string
		wantErr error
	}{
		{"awaiting", openbanking.StatusAwaitingAuthorisation, nil, "AWAU", nil},
		{"authorised", openbanking.StatusAuthorised, &future, "AUTH", nil},
		{"authorised without expiry", openbanking.StatusAuthorised, nil, "AUTH", nil},
		{"rejected", openbanking.StatusRejected, nil, "RJCT", nil},
		{"revoked", openbanking.StatusRevoked, nil, "CANC", nil},
		{"authorised past its expiry", openbanking.StatusAuthorised, &past, "EXPD", nil},
		{"authorised at its expiry", openbanking.StatusAuthorised, &now, "EXPD", nil},
		{"awaiting past its expiry", openbanking.StatusAwaitingAuthorisation, &past, "EXPD", nil},
		{"rejected past its expiry stays rejected", openbanking.StatusRejected, &past, "RJCT", nil},
		{"revoked past its expiry stays revoked", openbanking.StatusRevoked, &past, "CANC", nil},
		{"consumed", openbanking.StatusConsumed, nil, "", errNoV4Code},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := accessConsentStatusV4(openbanking.AccountAccessConsent{Status: tc.status, ExpiresAt: tc.expires}, now)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Fatalf("accessConsentStatusV4(%s) = %q, %v, want %q, %v", tc.status, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestPaymentStatusV4(t *testing.T) {
	tests := []struct {
		in                  openbanking.PaymentStatus
		current, created    string
		reason, description string
		wantErr             error
	}{
		{openbanking.PaymentAcceptedCreditSettlementCompleted, "ACCC", "RCVD", "", "", nil},
		{openbanking.PaymentAcceptedSettlementCompleted, "ACSC", "RCVD", "", "", nil},
		{openbanking.PaymentRejected, "RJCT", "RJCT", "AM04", "InsufficientFunds", nil},
		{"Pending", "", "", "", "", errNoV4Code},
	}
	for _, tc := range tests {
		t.Run(string(tc.in), func(t *testing.T) {
			current, err := paymentStatusV4(tc.in)
			if current != tc.current || !errors.Is(err, tc.wantErr) {
				t.Fatalf("paymentStatusV4(%s) = %q, %v, want %q, %v", tc.in, current, err, tc.current, tc.wantErr)
			}
			created, err := createdPaymentStatusV4(tc.in)
			if created != tc.created || !errors.Is(err, tc.wantErr) {
				t.Fatalf("createdPaymentStatusV4(%s) = %q, %v, want %q, %v", tc.in, created, err, tc.created, tc.wantErr)
			}
			code, description, ok := paymentStatusReasonV4(tc.in)
			if code != tc.reason || description != tc.description || ok != (tc.reason != "") {
				t.Fatalf("paymentStatusReasonV4(%s) = %q, %q, %v, want %q, %q", tc.in, code, description, ok, tc.reason, tc.description)
			}
		})
	}
}

// jsonValue decodes JSON text for comparison (member order aside).
func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestInitiationToV4(t *testing.T) {
	const head = `"InstructionIdentification":"I-1","EndToEndIdentification":"E2E-1","LocalInstrument":"UK.OBIE.FPS",
		"InstructedAmount":{"Amount":"10.00","Currency":"GBP"},
		"DebtorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"40400112345678"},
		"CreditorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"40400187654321","Name":"Bob","SecondaryIdentification":"R1"}`
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{"reference and unstructured",
			`{` + head + `,"RemittanceInformation":{"Reference":"INV-1","Unstructured":"For March"}}`,
			`{` + head + `,"RemittanceInformation":{"Structured":[{"CreditorReferenceInformation":{"Reference":"INV-1"}}],"Unstructured":["For March"]}}`, nil},
		{"reference only", `{` + head + `,"RemittanceInformation":{"Reference":"INV-1"}}`,
			`{` + head + `,"RemittanceInformation":{"Structured":[{"CreditorReferenceInformation":{"Reference":"INV-1"}}]}}`, nil},
		{"unstructured only", `{` + head + `,"RemittanceInformation":{"Unstructured":"For March"}}`,
			`{` + head + `,"RemittanceInformation":{"Unstructured":["For March"]}}`, nil},
		{"empty remittance information is dropped", `{` + head + `,"RemittanceInformation":{}}`, `{` + head + `}`, nil},
		{"no remittance information", `{` + head + `}`, `{` + head + `}`, nil},
		{"creditor without a name", `{"InstructionIdentification":"I-1","EndToEndIdentification":"E2E-1",
			"InstructedAmount":{"Amount":"10.00","Currency":"GBP"},
			"CreditorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"40400187654321"}}`, "", errNoV4Shape},
		{"unknown member", `{` + head + `,"SupplementaryData":{}}`, "", errNoV4Shape},
		{"unknown remittance member", `{` + head + `,"RemittanceInformation":{"Other":"x"}}`, "", errNoV4Shape},
		{"not an object", `[]`, "", errNoV4Shape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := initiationToV4([]byte(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("initiationToV4 = %s, %v, want %v", got, err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if diff := cmp.Diff(jsonValue(t, []byte(tc.want)), jsonValue(t, got)); diff != "" {
				t.Fatalf("initiationToV4 mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRiskToV4(t *testing.T) {
	iso := func(s string) bool { return s == "CASH" }
	tests := []struct {
		name      string
		in        string
		purposeOK func(string) bool
		want      string
		wantErr   error
	}{
		{"empty", `{}`, nil, `{}`, nil},
		{"indicator renamed", `{"ContractPresentInidicator":true,"BeneficiaryPrepopulatedIndicator":false}`, nil,
			`{"ContractPresentIndicator":true,"BeneficiaryPrepopulatedIndicator":false}`, nil},
		{"bill payment", `{"PaymentContextCode":"BillPayment"}`, nil, `{"PaymentContextCode":"BillingGoodsAndServicesInArrears"}`, nil},
		{"e-commerce goods", `{"PaymentContextCode":"EcommerceGoods","MerchantCategoryCode":"5967","MerchantCustomerIdentification":"053598653254"}`, nil,
			`{"PaymentContextCode":"EcommerceMerchantInitiatedPayment","MerchantCategoryCode":"5967","MerchantCustomerIdentification":"053598653254"}`, nil},
		{"e-commerce services", `{"PaymentContextCode":"EcommerceServices"}`, nil, `{"PaymentContextCode":"EcommerceMerchantInitiatedPayment"}`, nil},
		{"party to party", `{"PaymentContextCode":"PartyToParty"}`, nil, `{"PaymentContextCode":"TransferToThirdParty"}`, nil},
		{"other is dropped", `{"PaymentContextCode":"Other","BeneficiaryAccountType":"Personal"}`, nil, `{"BeneficiaryAccountType":"Personal"}`, nil},
		{"purpose code v4.0 knows", `{"PaymentPurposeCode":"CASH"}`, iso, `{"PaymentPurposeCode":"CASH"}`, nil},
		{"purpose code v4.0 does not know", `{"PaymentPurposeCode":"XYZ"}`, iso, `{}`, nil},
		{"purpose code without a check", `{"PaymentPurposeCode":"CASH"}`, nil, `{}`, nil},
		{"beneficiary account types v4.0 has", `{"BeneficiaryAccountType":"JointPersonal"}`, nil, `{"BeneficiaryAccountType":"JointPersonal"}`, nil},
		{"beneficiary account types v4.0 does not have", `{"BeneficiaryAccountType":"JointBusiness"}`, nil, `{}`, nil},
		{"delivery address", `{"DeliveryAddress":{"AddressLine":["1 High St"],"TownName":"Leeds","Country":"GB"}}`, nil,
			`{"DeliveryAddress":{"AddressLine":["1 High St"],"TownName":"Leeds","Country":"GB"}}`, nil},
		{"unknown member", `{"Unknown":1}`, nil, "", errNoV4Shape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := riskToV4([]byte(tc.in), tc.purposeOK)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("riskToV4 = %s, %v, want %v", got, err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if diff := cmp.Diff(jsonValue(t, []byte(tc.want)), jsonValue(t, got)); diff != "" {
				t.Fatalf("riskToV4 mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReferenceV4(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"structured first", `{"EndToEndIdentification":"E2E","RemittanceInformation":{"Structured":[{"CreditorReferenceInformation":{"Reference":"INV-1"}}],"Unstructured":["text"]}}`, "INV-1"},
		{"only the first structured", `{"EndToEndIdentification":"E2E","RemittanceInformation":{"Structured":[{"Invoicer":"ACME"},{"CreditorReferenceInformation":{"Reference":"INV-2"}}],"Unstructured":["text"]}}`, "text"},
		{"unstructured next", `{"EndToEndIdentification":"E2E","RemittanceInformation":{"Unstructured":["text","more"]}}`, "text"},
		{"end-to-end id last", `{"EndToEndIdentification":"E2E","RemittanceInformation":{}}`, "E2E"},
		{"no remittance information", `{"EndToEndIdentification":"E2E"}`, "E2E"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in obapi4.OBWriteDomestic2DataInitiation
			if err := json.Unmarshal([]byte(tc.in), &in); err != nil {
				t.Fatal(err)
			}
			if got := referenceV4(in); got != tc.want {
				t.Fatalf("referenceV4(%s) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
