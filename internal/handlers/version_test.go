package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// TestV3_1HidesWhatV4_0Created checks the v3.1 reads of payment resources
// created on v4.0: after the service's ownership checks, each answers 400
// UK.OBIE.Resource.NotFound, while account access consents serve on both
// versions.
func TestV3_1HidesWhatV4_0Created(t *testing.T) {
	a := newAPI(t)
	ctx := context.Background()
	alice, _ := a.openAccount("alice", "100.00")
	_, bobIdent := a.openAccount("bob", "")

	initiation, _ := json.Marshal(map[string]any{
		"InstructionIdentification": "I-1", "EndToEndIdentification": "E2E-1",
		"InstructedAmount": map[string]string{"Amount": "10.00", "Currency": "GBP"},
		"CreditorAccount":  map[string]string{"SchemeName": models.SchemeSortCodeAccountNumber, "Identification": bobIdent, "Name": "Bob"},
	})
	req := openbanking.PaymentConsentRequest{
		Version: openbanking.V4_0,
		Initiation: openbanking.Initiation{Amount: "10.00", Currency: "GBP",
			Creditor: openbanking.AccountRef{SchemeName: models.SchemeSortCodeAccountNumber, Identification: bobIdent, Name: "Bob"}},
		InitiationJSON: initiation, RiskJSON: []byte(`{}`),
	}
	client := openbanking.Caller{ClientID: "tpp-a"}
	pc, err := a.svc.CreatePaymentConsent(ctx, client, openbanking.Idempotency{Key: "v4-c", RequestHash: sha256.Sum256(initiation)}, req)
	if err != nil {
		t.Fatal(err)
	}
	a.authorise(pc.ID, "alice", alice)
	psu := psuToken("tpp-a", "alice", pc.ID, "payments")
	psuCaller := openbanking.Caller{ClientID: "tpp-a", PSU: "alice", ConsentID: pc.ID}
	p, err := a.svc.CreatePayment(ctx, psuCaller, openbanking.Idempotency{Key: "v4-p", RequestHash: sha256.Sum256(initiation)},
		openbanking.PaymentRequest{Version: openbanking.V4_0, ConsentID: pc.ID, InitiationJSON: initiation, RiskJSON: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	// A second v4.0 consent, still Authorised, for funds confirmation.
	pc2, err := a.svc.CreatePaymentConsent(ctx, client, openbanking.Idempotency{Key: "v4-c2", RequestHash: sha256.Sum256(initiation)}, req)
	if err != nil {
		t.Fatal(err)
	}
	a.authorise(pc2.ID, "alice", alice)
	psu2 := psuToken("tpp-a", "alice", pc2.ID, "payments")

	const pisp = "/open-banking/v3.1/pisp/"
	tests := []struct {
		name   string
		path   string
		token  hdr
		status int
		code   string
	}{
		{"payment consent", pisp + "domestic-payment-consents/" + pc.ID, tpp("tpp-a", "payments"), http.StatusBadRequest, CodeResourceNotFound},
		{"funds confirmation", pisp + "domestic-payment-consents/" + pc2.ID + "/funds-confirmation", psu2, http.StatusBadRequest, CodeResourceNotFound},
		{"payment", pisp + "domestic-payments/" + p.ID, tpp("tpp-a", "payments"), http.StatusBadRequest, CodeResourceNotFound},
		{"payment details", pisp + "domestic-payments/" + p.ID + "/payment-details", psu, http.StatusBadRequest, CodeResourceNotFound},
		{"another client's consent is still forbidden", pisp + "domestic-payment-consents/" + pc.ID, tpp("tpp-b", "payments"), http.StatusForbidden, CodeForbidden},
		{"another client's payment is still forbidden", pisp + "domestic-payments/" + p.ID, tpp("tpp-b", "payments"), http.StatusForbidden, CodeForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := a.do(http.MethodGet, tc.path, "", tc.token)
			var body ErrorBody
			if rec.Code != tc.status || json.Unmarshal(rec.Body.Bytes(), &body) != nil || len(body.Errors) != 1 || body.Errors[0].ErrorCode != tc.code {
				t.Fatalf("GET %s = %d %s, want %d %s", tc.path, rec.Code, rec.Body, tc.status, tc.code)
			}
		})
	}

	t.Run("account access consent created on v4.0 serves on v3.1", func(t *testing.T) {
		ac, err := a.svc.CreateAccountAccessConsent(ctx, openbanking.Caller{ClientID: "tpp-a"}, openbanking.AccountAccessRequest{
			Version: openbanking.V4_0, Permissions: []openbanking.Permission{openbanking.ReadBalances}})
		if err != nil {
			t.Fatal(err)
		}
		var got consentResp
		a.want(a.do(http.MethodGet, "/open-banking/v3.1/aisp/account-access-consents/"+ac.ID, "", tpp("tpp-a", "accounts")), http.StatusOK, &got)
		a.authorise(ac.ID, "alice", "")
		a.want(a.do(http.MethodGet, "/open-banking/v3.1/aisp/accounts/"+alice+"/balances", "", psuToken("tpp-a", "alice", ac.ID, "accounts")), http.StatusOK, nil)
	})

	t.Run("a v4.0 consent cannot be paid on v3.1", func(t *testing.T) {
		body := `{"Data":{"ConsentId":"` + pc2.ID + `","Initiation":` + string(initiation) + `},"Risk":{}}`
		rec := a.do(http.MethodPost, pisp+"domestic-payments", body, psu2.with("x-idempotency-key", "v3-p"))
		var got ErrorBody
		if rec.Code != http.StatusBadRequest || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.Errors[0].ErrorCode != CodeInvalidConsentStatus {
			t.Fatalf("POST payment = %d %s, want 400 %s", rec.Code, rec.Body, CodeInvalidConsentStatus)
		}
		if c, err := a.svc.PaymentConsent(ctx, client, pc2.ID); err != nil || c.Status != openbanking.StatusAuthorised {
			t.Fatalf("consent after the refusal = %s, %v, want Authorised", c.Status, err)
		}
	})
}
