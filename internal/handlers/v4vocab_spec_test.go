package handlers

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/obpay/payments/internal/obapi4"
	"github.com/obpay/payments/internal/openbanking"
)

// TestV4VocabularyMatchesTheContract checks every value the v4.0
// vocabulary produces against api/openapi-v4.yaml (embedded in obapi4):
// each code is in its enum, and v3.1 objects rewritten by initiationToV4
// and riskToV4 validate against the closed v4.0 schemas, for every value of
// the v3.1 enums they map.
func TestV4VocabularyMatchesTheContract(t *testing.T) {
	doc, err := obapi4.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	schema := func(name string) *openapi3.Schema {
		t.Helper()
		ref, ok := doc.Components.Schemas[name]
		if !ok || ref.Value == nil {
			t.Fatalf("api/openapi-v4.yaml has no schema %s", name)
		}
		return ref.Value
	}
	valid := func(name string, v any) {
		t.Helper()
		if err := schema(name).VisitJSON(v); err != nil {
			t.Errorf("%v is not a valid %s: %v", v, name, err)
		}
	}
	invalid := func(name string, v any) {
		t.Helper()
		if schema(name).VisitJSON(v) == nil {
			t.Errorf("%v is a valid %s, want it refused", v, name)
		}
	}
	must := func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	for _, s := range []openbanking.ConsentStatus{openbanking.StatusAwaitingAuthorisation, openbanking.StatusAuthorised,
		openbanking.StatusRejected, openbanking.StatusConsumed} {
		valid("OBWriteDomesticConsentResponse5DataStatus", must(paymentConsentStatusV4(s)))
	}
	now := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	for _, s := range []openbanking.ConsentStatus{openbanking.StatusAwaitingAuthorisation, openbanking.StatusAuthorised,
		openbanking.StatusRejected, openbanking.StatusRevoked} {
		for _, expires := range []*time.Time{nil, &now} {
			valid("OBReadConsentResponse1DataStatus", must(accessConsentStatusV4(openbanking.AccountAccessConsent{Status: s, ExpiresAt: expires}, now)))
		}
	}
	for _, s := range []openbanking.PaymentStatus{openbanking.PaymentAcceptedCreditSettlementCompleted,
		openbanking.PaymentAcceptedSettlementCompleted, openbanking.PaymentRejected} {
		valid("OBWriteDomesticResponse5DataStatus", must(createdPaymentStatusV4(s)))
		valid("OBWriteDomesticResponse5DataStatus", must(paymentStatusV4(s)))
		valid("OBWritePaymentDetails1Status", must(paymentStatusV4(s)))
		if code, description, ok := paymentStatusReasonV4(s); ok {
			valid("OBStatusReason", map[string]any{"StatusReasonCode": code, "StatusReasonDescription": description})
		}
	}

	initiation := `{"InstructionIdentification":"I-1","EndToEndIdentification":"E2E-1","LocalInstrument":"UK.OBIE.FPS",
		"InstructedAmount":{"Amount":"10.00","Currency":"GBP"},
		"DebtorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"40400112345678","Name":"Alice","SecondaryIdentification":"R1"},
		"CreditorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"40400187654321","Name":"Bob","SecondaryIdentification":"R2"},
		"RemittanceInformation":{"Reference":"INV-1","Unstructured":"For March"}}`
	// The v3.1 objects as stored are not v4.0 ones: the rewriting is needed.
	invalid("OBWriteDomestic2DataInitiation", jsonValue(t, []byte(initiation)))
	invalid("OBRisk1", map[string]any{"ContractPresentInidicator": true})
	invalid("OBRisk1", map[string]any{"PaymentContextCode": "PartyToParty"})
	invalid("OBRisk1", map[string]any{"BeneficiaryAccountType": "Prepaid"})

	v4, err := initiationToV4([]byte(initiation))
	if err != nil {
		t.Fatal(err)
	}
	valid("OBWriteDomestic2DataInitiation", jsonValue(t, v4))

	v3Contexts := []string{"BillPayment", "EcommerceGoods", "EcommerceServices", "Other", "PartyToParty"}
	v3AccountTypes := []string{"Personal", "JointPersonal", "PersonalSavingsAccount", "Business", "BusinessSavingsAccount",
		"Charity", "Collection", "Corporate", "Government", "Ewallet", "Investment", "ISA", "JointBusiness", "Pension", "Prepaid"}
	for i, context := range v3Contexts {
		for _, accountType := range v3AccountTypes[i*3 : i*3+3] {
			risk, _ := json.Marshal(map[string]any{
				"PaymentContextCode": context, "MerchantCategoryCode": "5967", "MerchantCustomerIdentification": "053598653254",
				"ContractPresentInidicator": true, "BeneficiaryPrepopulatedIndicator": false, "PaymentPurposeCode": "CASH",
				"BeneficiaryAccountType": accountType,
				"DeliveryAddress": map[string]any{"AddressLine": []string{"Flat 1", "1 High St"}, "StreetName": "High St",
					"BuildingNumber": "1", "PostCode": "LS1 1AA", "TownName": "Leeds", "CountrySubDivision": "West Yorkshire", "Country": "GB"},
			})
			for _, purposeOK := range []func(string) bool{nil, func(string) bool { return true }} {
				v4, err := riskToV4(risk, purposeOK)
				if err != nil {
					t.Fatal(err)
				}
				valid("OBRisk1", jsonValue(t, v4))
			}
		}
	}
}
