package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/obpay/payments/internal/openbanking"
)

// The v4.0 vocabulary of the resources both versions share (OB v4.0 uses
// ISO 20022 codes where v3.1 used words): pure functions from what the
// service stores to the strings v4.0 answers carry, so that they need no
// generated v4.0 type. The v4.0 schemas are closed: a function refuses
// (errNoV4Code, errNoV4Shape) rather than let a value or member v4.0 does not
// define into an answer.

// errNoV4Code: a stored status or type has no v4.0 code. The database and
// the service allow none such, so it is a bug, answered as a 500.
var errNoV4Code = errors.New("handlers: no v4.0 code")

// errNoV4Shape: a stored v3.1 Initiation or Risk cannot be written in the
// v4.0 shape: a member v4.0 does not define, or a member v4.0 requires is
// absent (v3.1 let CreditorAccount.Name out; v4.0 requires it).
var errNoV4Shape = errors.New("handlers: stored object has no v4.0 shape")

// Consent statuses of v4.0 (four-letter codes of the OB v4.0 code sets).
const (
	v4ConsentAwaitingAuthorisation = "AWAU"
	v4ConsentAuthorised            = "AUTH"
	v4ConsentRejected              = "RJCT"
	v4ConsentConsumed              = "COND"
	v4ConsentRevoked               = "CANC"
	v4ConsentExpired               = "EXPD"
)

// paymentConsentStatusV4 is a payment consent's status in v4.0: AWAU, AUTH,
// RJCT or COND. Errors: errNoV4Code (Revoked, which a payment consent never
// is, or an unknown status).
func paymentConsentStatusV4(s openbanking.ConsentStatus) (string, error) {
	switch s {
	case openbanking.StatusAwaitingAuthorisation:
		return v4ConsentAwaitingAuthorisation, nil
	case openbanking.StatusAuthorised:
		return v4ConsentAuthorised, nil
	case openbanking.StatusRejected:
		return v4ConsentRejected, nil
	case openbanking.StatusConsumed:
		return v4ConsentConsumed, nil
	}
	return "", fmt.Errorf("%w: payment consent status %q", errNoV4Code, string(s))
}

// accessConsentStatusV4 is an account access consent's status in v4.0 at
// time now (the service clock, read when the answer is written): EXPD for an
// AwaitingAuthorisation or Authorised consent whose ExpiresAt is not after
// now (the instant the service stops honouring it, see
// openbanking.Service.Authorise and the grant checks), else AWAU, AUTH, RJCT
// or CANC (Revoked). A Rejected or Revoked consent keeps that final status
// past its expiry. Errors: errNoV4Code (Consumed, which an account access
// consent never is, or an unknown status).
func accessConsentStatusV4(ac openbanking.AccountAccessConsent, now time.Time) (string, error) {
	expired := ac.ExpiresAt != nil && !now.Before(*ac.ExpiresAt)
	switch ac.Status {
	case openbanking.StatusAwaitingAuthorisation, openbanking.StatusAuthorised:
		if expired {
			return v4ConsentExpired, nil
		}
		if ac.Status == openbanking.StatusAuthorised {
			return v4ConsentAuthorised, nil
		}
		return v4ConsentAwaitingAuthorisation, nil
	case openbanking.StatusRejected:
		return v4ConsentRejected, nil
	case openbanking.StatusRevoked:
		return v4ConsentRevoked, nil
	}
	return "", fmt.Errorf("%w: account access consent status %q", errNoV4Code, string(ac.Status))
}

// Payment statuses of v4.0 (ISO 20022 ExternalPaymentTransactionStatus1Code).
const (
	v4PaymentReceived      = "RCVD"
	v4PaymentCreditSettled = "ACCC"
	v4PaymentSettled       = "ACSC"
	v4PaymentRejected      = "RJCT"
)

// paymentStatusV4 is a payment's current status in v4.0, as GET,
// payment-details and an idempotent replay of the POST show it: ACCC, ACSC
// or RJCT. Errors: errNoV4Code.
func paymentStatusV4(s openbanking.PaymentStatus) (string, error) {
	switch s {
	case openbanking.PaymentAcceptedCreditSettlementCompleted:
		return v4PaymentCreditSettled, nil
	case openbanking.PaymentAcceptedSettlementCompleted:
		return v4PaymentSettled, nil
	case openbanking.PaymentRejected:
		return v4PaymentRejected, nil
	}
	return "", fmt.Errorf("%w: payment status %q", errNoV4Code, string(s))
}

// createdPaymentStatusV4 is the status of the answer to a POST that created
// the payment (not a replay): v4.0 allows only RCVD or RJCT there, so a
// settled payment answers RCVD and a rejected one RJCT. Errors: errNoV4Code.
func createdPaymentStatusV4(s openbanking.PaymentStatus) (string, error) {
	code, err := paymentStatusV4(s)
	if err != nil || code == v4PaymentRejected {
		return code, err
	}
	return v4PaymentReceived, nil
}

// The StatusReason of a payment rejected for insufficient funds (ISO 20022
// ExternalStatusReason1Code AM04 and its name).
const (
	v4ReasonInsufficientFunds     = "AM04"
	v4ReasonInsufficientFundsName = "InsufficientFunds"
)

// paymentStatusReasonV4 is the StatusReason a payment in status s carries in
// v4.0 (POST, replay, GET, and payment-details' StatusDetail): AM04
// InsufficientFunds for a Rejected payment; ok is false for any other
// status, whose answers omit StatusReason.
//
// Rejected means insufficient funds, and only that: a payment is Rejected
// exactly when the ledger refused its posting for insufficient funds
// (openbanking.PaymentStatusFor with funded false, the insufficient_funds
// outcome in ob_create_payment); every other refusal of the posting writes
// nothing and answers an error. A new reason for rejecting a payment needs
// its own stored reason before this function can tell them apart.
func paymentStatusReasonV4(s openbanking.PaymentStatus) (code, description string, ok bool) {
	if s != openbanking.PaymentRejected {
		return "", "", false
	}
	return v4ReasonInsufficientFunds, v4ReasonInsufficientFundsName, true
}

// decodeObject decodes a stored JSON object, keeping numbers as they were
// written (json.Number).
func decodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: not a JSON object", errNoV4Shape)
	}
	return m, nil
}

// v3InitiationMembers are the members of a v3.1 Initiation as this service
// stores it (api/openapi.yaml's OBWriteDomestic2DataInitiation, closed):
// each one v4.0 also defines, with the same content, except
// RemittanceInformation, which initiationToV4 rewrites.
var v3InitiationMembers = map[string]bool{
	"InstructionIdentification": true, "EndToEndIdentification": true, "LocalInstrument": true,
	"InstructedAmount": true, "DebtorAccount": true, "CreditorAccount": true, "RemittanceInformation": true,
}

// initiationToV4 writes the stored Initiation of a payment consent created
// on v3.1 in the v4.0 shape, for a v4.0 read of it or of its payment:
// RemittanceInformation.Reference becomes
// Structured[0].CreditorReferenceInformation.Reference and the Unstructured
// string a one-element array; every other member is kept as stored.
// Errors: errNoV4Shape (a member this function does not know, or no
// CreditorAccount.Name, which v4.0 requires).
func initiationToV4(v3 []byte) ([]byte, error) {
	m, err := decodeObject(v3)
	if err != nil {
		return nil, err
	}
	for k := range m {
		if !v3InitiationMembers[k] {
			return nil, fmt.Errorf("%w: Initiation member %q", errNoV4Shape, k)
		}
	}
	creditor, _ := m["CreditorAccount"].(map[string]any)
	if name, _ := creditor["Name"].(string); name == "" {
		return nil, fmt.Errorf("%w: Initiation.CreditorAccount.Name is absent", errNoV4Shape)
	}
	if ri, ok := m["RemittanceInformation"]; ok {
		v4, err := remittanceToV4(ri)
		if err != nil {
			return nil, err
		}
		if len(v4) == 0 {
			delete(m, "RemittanceInformation")
		} else {
			m["RemittanceInformation"] = v4
		}
	}
	return json.Marshal(m)
}

// remittanceToV4 rewrites a v3.1 RemittanceInformation {Unstructured,
// Reference} in the v4.0 shape {Unstructured: [...], Structured: [...]}.
func remittanceToV4(v3 any) (map[string]any, error) {
	ri, ok := v3.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: RemittanceInformation is not an object", errNoV4Shape)
	}
	out := map[string]any{}
	for k, v := range ri {
		s, ok := v.(string)
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: RemittanceInformation.%s is not a string", errNoV4Shape, k)
		case k == "Unstructured":
			out["Unstructured"] = []any{s}
		case k == "Reference":
			out["Structured"] = []any{map[string]any{"CreditorReferenceInformation": map[string]any{"Reference": s}}}
		default:
			return nil, fmt.Errorf("%w: RemittanceInformation member %q", errNoV4Shape, k)
		}
	}
	return out, nil
}

// paymentContextV4 maps the v3.1 Risk.PaymentContextCode values to v4.0's;
// a value without an entry (Other: v4.0 has no catch-all) is dropped, the
// member being optional. BillPayment pays for what was billed, so after the
// goods or services; both e-commerce contexts are a payment initiated from
// a merchant's checkout; a payment to another party is a transfer to a
// third party.
var paymentContextV4 = map[string]string{
	"BillPayment":       "BillingGoodsAndServicesInArrears",
	"EcommerceGoods":    "EcommerceMerchantInitiatedPayment",
	"EcommerceServices": "EcommerceMerchantInitiatedPayment",
	"PartyToParty":      "TransferToThirdParty",
}

// v3RiskMembers are the members of a v3.1 Risk as this service stores it
// (api/openapi.yaml's OBRisk1, closed) that riskToV4 keeps as they are: v4.0
// defines each with the same content (v3.1's DeliveryAddress members are a
// subset of v4.0's OBPostalAddress7).
var v3RiskMembers = map[string]bool{
	"MerchantCategoryCode": true, "MerchantCustomerIdentification": true, "BeneficiaryPrepopulatedIndicator": true,
	"DeliveryAddress": true,
}

// beneficiaryAccountTypesV4 are the v3.1 Risk.BeneficiaryAccountType values
// v4.0 also has (OBInternalExtendedAccountType1Code); v3.1's JointBusiness
// and Prepaid are not among them, and riskToV4 drops them.
var beneficiaryAccountTypesV4 = map[string]bool{
	"Business": true, "BusinessSavingsAccount": true, "Charity": true, "Collection": true, "Corporate": true,
	"Ewallet": true, "Government": true, "Investment": true, "ISA": true, "JointPersonal": true, "Pension": true,
	"Personal": true, "PersonalSavingsAccount": true,
}

// riskToV4 writes the stored Risk of a payment consent created on v3.1 in
// the v4.0 shape: ContractPresentInidicator (sic) becomes
// ContractPresentIndicator, PaymentContextCode is mapped by
// paymentContextV4 (or dropped), a BeneficiaryAccountType v4.0 does not have
// is dropped, and PaymentPurposeCode, free text in v3.1
// and an ISO 20022 code in v4.0, is kept only when purposeOK accepts it (nil:
// always dropped). Errors: errNoV4Shape (a member this function does not
// know).
func riskToV4(v3 []byte, purposeOK func(string) bool) ([]byte, error) {
	m, err := decodeObject(v3)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for k, v := range m {
		switch {
		case v3RiskMembers[k]:
			out[k] = v
		case k == "ContractPresentInidicator":
			out["ContractPresentIndicator"] = v
		case k == "PaymentContextCode":
			if s, _ := v.(string); paymentContextV4[s] != "" {
				out[k] = paymentContextV4[s]
			}
		case k == "BeneficiaryAccountType":
			if s, _ := v.(string); beneficiaryAccountTypesV4[s] {
				out[k] = s
			}
		case k == "PaymentPurposeCode":
			if s, _ := v.(string); purposeOK != nil && purposeOK(s) {
				out[k] = s
			}
		default:
			return nil, fmt.Errorf("%w: Risk member %q", errNoV4Shape, k)
		}
	}
	return json.Marshal(out)
}
