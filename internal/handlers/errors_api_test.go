package handlers

import (
	"net/http"
	"strings"
	"testing"
)

// TestAPIErrorsMoveNoMoney drives each refusal of the API and checks the
// status, the OB ErrorCode and Path, and that no money moved and no payment
// was written.
func TestAPIErrorsMoveNoMoney(t *testing.T) {
	a := newAPI(t)
	alice, _ := a.openAccount("alice", "100.00")
	_, bobIdent := a.openAccount("bob", "")
	body := consentBody("10.00", bobIdent)

	waiting := a.paymentConsent("tpp-a", body)
	ready := a.paymentConsent("tpp-a", body)
	a.authorise(ready, "alice", alice)
	used := a.paymentConsent("tpp-a", body)
	a.authorise(used, "alice", alice)
	usedPSU := psuToken("tpp-a", "alice", used, "payments")
	a.want(a.do(http.MethodPost, "/open-banking/v3.1/pisp/domestic-payments", paymentBody(body, used), usedPSU.with("x-idempotency-key", "k-used")), http.StatusCreated, nil)
	readyPSU := psuToken("tpp-a", "alice", ready, "payments")
	var balOnly consentResp
	a.want(a.do(http.MethodPost, "/open-banking/v3.1/aisp/account-access-consents", `{"Data":{"Permissions":["ReadAccountsBasic"]},"Risk":{}}`, tpp("tpp-a", "accounts")), http.StatusCreated, &balOnly)
	a.authorise(balOnly.Data.ConsentId, "alice", "")
	basicReader := psuToken("tpp-a", "alice", balOnly.Data.ConsentId, "accounts")
	var aliceEUR struct{ AccountId string }
	a.want(a.do(http.MethodPost, "/internal/v1/accounts", `{"Owner":"alice","Currency":"EUR","Nickname":"alice euro"}`, admin), http.StatusCreated, &aliceEUR)

	const (
		consents = "/open-banking/v3.1/pisp/domestic-payment-consents"
		payments = "/open-banking/v3.1/pisp/domestic-payments"
		unknown  = "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a"
	)
	tppA := tpp("tpp-a", "payments").with("x-idempotency-key", "k1")
	pay := readyPSU.with("x-idempotency-key", "k-pay")
	tests := []struct {
		name         string
		method, path string
		body         string
		h            hdr
		status       int
		code, path2  string
	}{
		{"consent without idempotency key", "POST", consents, body, tpp("tpp-a", "payments"), 400, CodeHeaderMissing, "x-idempotency-key"},
		{"consent with a 41-character key", "POST", consents, body, tppA.with("x-idempotency-key", strings.Repeat("k", 41)), 400, CodeHeaderInvalid, "x-idempotency-key"},
		{"consent with a padded key", "POST", consents, body, tppA.with("x-idempotency-key", "k "), 400, CodeHeaderInvalid, "x-idempotency-key"},
		{"consent with text/plain", "POST", consents, body, tppA.with("Content-Type", "text/plain"), 415, CodeUnsupportedMediaType, ""},
		{"consent with malformed JSON", "POST", consents, `{"Data":`, tppA, 400, CodeResourceInvalidFormat, ""},
		{"consent without CreditorAccount", "POST", consents, strings.Replace(body, `"CreditorAccount"`, `"DebtorAccount"`, 1), tppA, 400, CodeFieldMissing, "Data.Initiation.CreditorAccount"},
		{"consent without Risk", "POST", consents, strings.Replace(body, ",\n\t\t\"Risk\":{\"PaymentContextCode\":\"PartyToParty\"}", "", 1), tppA, 400, CodeFieldMissing, "Risk"},
		{"consent with an unknown field", "POST", consents, strings.Replace(body, `"ACME412",`, `"ACME412","Surprise":1,`, 1), tppA, 400, CodeFieldUnexpected, "Data.Initiation.Surprise"},
		{"consent with a numeric amount", "POST", consents, strings.Replace(body, `"10.00"`, `10.00`, 1), tppA, 400, CodeFieldInvalid, "Data.Initiation.InstructedAmount.Amount"},
		{"consent with three decimals in GBP", "POST", consents, consentBody("10.001", bobIdent), tppA, 400, CodeFieldInvalid, "Data.Initiation.InstructedAmount.Amount"},
		{"consent with a zero amount", "POST", consents, consentBody("0", bobIdent), tppA, 400, CodeFieldInvalid, "Data.Initiation.InstructedAmount.Amount"},
		{"consent with an unknown currency", "POST", consents, strings.Replace(body, `"GBP"`, `"XXX"`, 1), tppA, 400, CodeUnsupportedCurrency, "Data.Initiation.InstructedAmount.Currency"},
		{"consent with a PSU token", "POST", consents, body, readyPSU.with("x-idempotency-key", "k2"), 403, CodeForbidden, ""},
		{"consent without the payments scope", "POST", consents, body, tpp("tpp-a", "accounts").with("x-idempotency-key", "k3"), 403, CodeForbidden, ""},
		{"consent without a token", "POST", consents, body, hdr{"x-idempotency-key": "k4"}, 401, CodeUnauthorized, ""},
		{"consent body too large", "POST", consents, `{"Data":"` + strings.Repeat("x", 5000) + `"}`, tppA, 413, CodeRequestEntityTooLarge, ""},
		{"unknown consent", "GET", consents + "/" + unknown, "", tpp("tpp-a", "payments"), 400, CodeResourceNotFound, ""},
		{"malformed consent id", "GET", consents + "/not-a-uuid", "", tpp("tpp-a", "payments"), 400, CodeResourceNotFound, ""},
		{"another client's consent", "GET", consents + "/" + ready, "", tpp("tpp-b", "payments"), 403, CodeForbidden, ""},
		{"funds confirmation with a client token", "GET", consents + "/" + ready + "/funds-confirmation", "", tpp("tpp-a", "payments"), 403, CodeForbidden, "Authorization"},
		{"funds confirmation on a consumed consent", "GET", consents + "/" + used + "/funds-confirmation", "", usedPSU, 400, CodeInvalidConsentStatus, ""},
		{"payment on a consent awaiting authorisation", "POST", payments, paymentBody(body, waiting), psuToken("tpp-a", "alice", waiting, "payments").with("x-idempotency-key", "k5"), 403, CodeForbidden, ""},
		{"payment with a changed amount", "POST", payments, paymentBody(consentBody("10.01", bobIdent), ready), pay, 400, CodeConsentMismatch, "Data.Initiation"},
		{"payment with changed risk", "POST", payments, paymentBody(strings.Replace(body, "PartyToParty", "Other", 1), ready), pay, 400, CodeConsentMismatch, "Data.Initiation"},
		{"payment on a consumed consent", "POST", payments, paymentBody(body, used), usedPSU.with("x-idempotency-key", "k-other"), 400, CodeInvalidConsentStatus, ""},
		{"payment replay with another body", "POST", payments, paymentBody(consentBody("99.00", bobIdent), used), usedPSU.with("x-idempotency-key", "k-used"), 400, CodeFieldInvalid, "x-idempotency-key"},
		{"payment with a client-credentials token", "POST", payments, paymentBody(body, ready), tpp("tpp-a", "payments").with("x-idempotency-key", "k6"), 403, CodeForbidden, "Authorization"},
		{"payment with another client's PSU token", "POST", payments, paymentBody(body, ready), psuToken("tpp-b", "alice", ready, "payments").with("x-idempotency-key", "k7"), 403, CodeForbidden, ""},
		{"payment with a token for another consent", "POST", payments, paymentBody(body, ready), usedPSU.with("x-idempotency-key", "k8"), 403, CodeForbidden, ""},
		{"payment without ConsentId", "POST", payments, body, pay, 400, CodeFieldMissing, "Data.ConsentId"},
		{"unknown payment", "GET", payments + "/" + unknown, "", tpp("tpp-a", "payments"), 400, CodeResourceNotFound, ""},
		{"accounts with a client-credentials token", "GET", "/open-banking/v3.1/aisp/accounts", "", tpp("tpp-a", "accounts"), 403, CodeForbidden, "Authorization"},
		{"balances without ReadBalances", "GET", "/open-banking/v3.1/aisp/accounts/" + alice + "/balances", "", basicReader, 403, CodeForbidden, ""},
		{"transactions with a bad date", "GET", "/open-banking/v3.1/aisp/accounts/" + alice + "/transactions?fromBookingDateTime=yesterday", "", basicReader, 400, CodeFieldInvalid, "fromBookingDateTime"},
		{"account consent without permissions", "POST", "/open-banking/v3.1/aisp/account-access-consents", `{"Data":{"Permissions":[]},"Risk":{}}`, tpp("tpp-a", "accounts"), 400, CodeFieldInvalid, "Data.Permissions"},
		// The code says why the debtor account cannot pay.
		{"authorise with another PSU's account", "POST", "/internal/v1/consents/" + waiting + "/authorise", `{"Psu":"mallory","DebtorAccount":"` + alice + `"}`, admin, 400, CodeFieldInvalid, "DebtorAccount"},
		{"authorise with an unknown account", "POST", "/internal/v1/consents/" + waiting + "/authorise", `{"Psu":"alice","DebtorAccount":"` + unknown + `"}`, admin, 400, CodeResourceNotFound, "DebtorAccount"},
		{"authorise with an account in another currency", "POST", "/internal/v1/consents/" + waiting + "/authorise", `{"Psu":"alice","DebtorAccount":"` + aliceEUR.AccountId + `"}`, admin, 400, CodeUnsupportedCurrency, "DebtorAccount"},
		{"authorise without the admin scope", "POST", "/internal/v1/consents/" + waiting + "/authorise", `{"Psu":"alice","DebtorAccount":"` + alice + `"}`, tpp("tpp-a", "payments"), 403, CodeForbidden, ""},
		{"authorise an authorised consent", "POST", "/internal/v1/consents/" + ready + "/authorise", `{"Psu":"alice","DebtorAccount":"` + alice + `"}`, admin, 400, CodeInvalidConsentStatus, ""},
		{"reject a consumed consent", "POST", "/internal/v1/consents/" + used + "/reject", "", admin, 400, CodeInvalidConsentStatus, ""},
		{"open an account without ledger:admin", "POST", "/internal/v1/accounts", `{"Owner":"x","Currency":"GBP","Nickname":"n"}`, tpp("tpp-a", "consents:admin"), 403, CodeForbidden, ""},
		{"open an account with too many decimals", "POST", "/internal/v1/accounts", `{"Owner":"x","Currency":"GBP","Nickname":"n","OpeningBalance":"1.001"}`, admin, 400, CodeFieldInvalid, "OpeningBalance"},
		{"unknown route", "GET", "/open-banking/v3.1/nothing", "", nil, 404, CodeResourceNotFound, ""},
		// Text the database cannot store is the client's mistake, never a 500.
		{"NUL in the reference", "POST", consents, strings.Replace(body, `"INV-1"`, `"INV\u00001"`, 1), tppA, 400, CodeFieldInvalid, "Data.Initiation.RemittanceInformation.Reference"},
		{"NUL in the creditor identification", "POST", consents, strings.Replace(body, bobIdent, bobIdent[:6]+`\u0000`, 1), tppA, 400, CodeFieldInvalid, "Data.Initiation.CreditorAccount.Identification"},
		{"NUL in the risk", "POST", consents, strings.Replace(body, `"PartyToParty"`, `"PartyToParty","DeliveryAddress":{"TownName":"L\u0000","Country":"GB","AddressLine":["x"]}`, 1), tppA, 400, CodeFieldInvalid, "Risk.DeliveryAddress.TownName"},
		{"NUL in the payment's reference", "POST", payments, paymentBody(strings.Replace(body, `"INV-1"`, `"INV\u0000"`, 1), ready), pay, 400, CodeFieldInvalid, "Data.Initiation.RemittanceInformation.Reference"},
		{"NUL in the PSU of an authorisation", "POST", "/internal/v1/consents/" + waiting + "/authorise", `{"Psu":"ali\u0000ce","DebtorAccount":"` + alice + `"}`, admin, 400, CodeFieldInvalid, "Psu"},
		{"NUL in an account owner", "POST", "/internal/v1/accounts", `{"Owner":"x\u0000","Currency":"GBP","Nickname":"n"}`, admin, 400, CodeFieldInvalid, "Owner"},
		{"invalid UTF-8 in a body", "POST", consents, strings.Replace(body, "INV-1", "INV\xff", 1), tppA, 400, CodeResourceInvalidFormat, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, paymentsBefore, consentsBefore := a.balance(alice), a.count("payments"), a.count("consents")
			logged := len(a.log.String())
			rec := a.do(tc.method, tc.path, tc.body, tc.h)
			if l := a.log.String()[logged:]; strings.Contains(l, `"level":"ERROR"`) {
				t.Errorf("a refusal logged at ERROR:\n%s", l)
			}
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.status, rec.Body.String())
			}
			b := decodeError(t, rec)
			if b.Errors[0].ErrorCode != tc.code || b.Errors[0].Path != tc.path2 {
				t.Errorf("error = %s at %q, want %s at %q", b.Errors[0].ErrorCode, b.Errors[0].Path, tc.code, tc.path2)
			}
			if rec.Header().Get(HeaderInteractionID) == "" || b.ID != rec.Header().Get(HeaderInteractionID) {
				t.Errorf("x-fapi-interaction-id %q, body Id %q", rec.Header().Get(HeaderInteractionID), b.ID)
			}
			if got := a.balance(alice); got != before {
				t.Errorf("alice = %s, want %s: money moved", got, before)
			}
			if a.count("payments") != paymentsBefore || a.count("consents") != consentsBefore {
				t.Errorf("a payment or consent was written")
			}
		})
	}
}

// TestClientTokenOnACustomerCallSaysWhichTokenItNeeds: a client-credentials
// token on a call that acts for the customer gets a 403 whose message says
// which token the call needs, with Path naming the Authorization header.
func TestClientTokenOnACustomerCallSaysWhichTokenItNeeds(t *testing.T) {
	a := newAPI(t)
	rec := a.do(http.MethodGet, "/open-banking/v3.1/aisp/accounts", "", tpp("tpp-a", "accounts"))
	if rec.Code != http.StatusForbidden {
		t.Fatalf("status = %d, want 403; body %s", rec.Code, rec.Body)
	}
	want := ErrorDetail{ErrorCode: CodeForbidden, Path: "Authorization",
		Message: "This call needs a token the customer authorised (authorization code grant), not a client-credentials token"}
	if got := decodeError(t, rec).Errors[0]; got != want {
		t.Errorf("error = %+v, want %+v", got, want)
	}
}
