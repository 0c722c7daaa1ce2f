package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/obpay/payments/client/obapi"
	"github.com/obpay/payments/client/obapi4"
)

// obAnswer writes an OB error body with one entry, as the service does.
func obAnswer(w http.ResponseWriter, status int, code, message, path string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-fapi-interaction-id", "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a")
	w.WriteHeader(status)
	p := ""
	if path != "" {
		p = `,"Path":"` + path + `"`
	}
	_, _ = w.Write([]byte(`{"Code":"` + http.StatusText(status) + `","Message":"` + http.StatusText(status) +
		`","Errors":[{"ErrorCode":"` + code + `","Message":"` + message + `"` + p + `}]}`))
}

// paymentBody is a payment request the fake servers never read.
var paymentBody = obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: "c-1",
	Initiation: obapi.OBWriteDomestic2DataInitiation{InstructionIdentification: "i", EndToEndIdentification: "e",
		InstructedAmount: obapi.OBActiveOrHistoricCurrencyAndAmount{Amount: "10.00", Currency: "GBP"},
		CreditorAccount:  obapi.OBCashAccountCreditor3{SchemeName: "UK.OBIE.SortCodeAccountNumber", Identification: "11223321325698"}}}}

// pay sends a payment through a Client for base and returns what ResponseError makes of the
// answer.
func pay(t *testing.T, base string) (*obapi.CreateDomesticPaymentsResponse, error) {
	t.Helper()
	c, err := New(base, mustKey(t, ES256), StaticToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.CreateDomesticPaymentsWithResponse(context.Background(),
		&obapi.CreateDomesticPaymentsParams{XIdempotencyKey: NewIdempotencyKey()}, paymentBody)
	if err != nil {
		t.Fatalf("the request got no answer: %v", err)
	}
	return res, ResponseError(res.HTTPResponse, res.Body)
}

// TestResponseErrorNoSuchEndpoint: a base URL that names the API prefix (added twice) or another
// server gives a 404, which the SDK reads as a wrong base URL.
func TestResponseErrorNoSuchEndpoint(t *testing.T) {
	const path = "/open-banking/v3.1/pisp/domestic-payments"
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			obAnswer(w, http.StatusBadRequest, obFieldInvalid, "not this test's", "")
			return
		}
		obAnswer(w, http.StatusNotFound, obResourceNotFound, "No such resource", "")
	}))
	defer service.Close()
	other := httptest.NewServer(http.NotFoundHandler()) // text/plain "404 page not found"
	defer other.Close()

	for _, base := range []string{service.URL + "/open-banking/v3.1", other.URL} {
		_, err := pay(t, base)
		if !errors.Is(err, ErrNoSuchEndpoint) {
			t.Fatalf("base %s: error = %v, want ErrNoSuchEndpoint", base, err)
		}
		want := "HTTP 404: no such endpoint at " + base + path +
			": check the client's BaseURL (it should be the service's PAYMENTS_PUBLIC_URL)"
		if err.Error() != want {
			t.Errorf("error = %q, want %q", err, want)
		}
	}
}

// TestResponseErrorCauses: each refusal the service tells apart by code and path gets its
// Cause and words; the others keep the server's message.
func TestResponseErrorCauses(t *testing.T) {
	tests := []struct {
		name                   string
		status                 int
		code, message, path    string
		challenge              string
		cause                  error
		want                   string // the error's text after "POST <url>: "
		wantChallenge, wantDsc string
	}{
		{name: "client-credentials token", status: 403, code: "OBPAY" + obForbidden, path: "Authorization",
			message: "This call needs a token the customer authorised (authorization code grant), not a client-credentials token",
			cause:   ErrCustomerTokenRequired,
			want:    "HTTP 403: this call needs a token the customer authorised (authorization code), not a client-credentials token"},
		{name: "client-credentials token, the bank's own namespace", status: 403, code: "BANKX.Forbidden", path: "Authorization",
			message: "This call needs a token the customer authorised", cause: ErrCustomerTokenRequired,
			want: "HTTP 403: this call needs a token the customer authorised (authorization code), not a client-credentials token"},
		{name: "client-credentials token, v4.0", status: 403, code: obV4Forbidden, path: "Authorization",
			message: "This call needs a token the customer authorised", cause: ErrCustomerTokenRequired,
			want: "HTTP 403: this call needs a token the customer authorised (authorization code), not a client-credentials token"},
		{name: "another client's consent, v4.0", status: 403, code: obV4Forbidden, message: "The token does not grant access to this resource",
			want: "HTTP 403 U042: The token does not grant access to this resource"},
		{name: "another client's consent", status: 403, code: "OBPAY" + obForbidden, message: "The token does not grant access to this resource",
			want: "HTTP 403 OBPAY.Forbidden: The token does not grant access to this resource"},
		{name: "unknown debtor account", status: 400, code: obResourceNotFound, path: "DebtorAccount", message: "unknown account",
			cause: ErrDebtorAccountUnknown, want: "HTTP 400: the debtor account is unknown: no account has this AccountId"},
		{name: "another customer's account", status: 400, code: obFieldInvalid, path: "DebtorAccount", message: "not an account of this PSU",
			cause: ErrDebtorAccountNotCustomers, want: "HTTP 400: the debtor account is not the customer's (not an account of this PSU)"},
		{name: "account in another currency", status: 400, code: obUnsupportedCurrency, path: "DebtorAccount",
			message: "account is not in the consent's currency",
			cause:   ErrDebtorAccountCurrency, want: "HTTP 400: the debtor account is not in the consent's currency"},
		{name: "an amount's field", status: 400, code: obFieldInvalid, path: "Data.Initiation.InstructedAmount.Amount", message: "too many decimals",
			want: "HTTP 400 UK.OBIE.Field.Invalid at Data.Initiation.InstructedAmount.Amount: too many decimals"},
		{name: "DPoP refusal", status: 401, code: "OBPAY.Unauthorized",
			message:       "htu does not match this request: expected https://api.bank.example/open-banking/v3.1/pisp/domestic-payments",
			challenge:     `DPoP error="invalid_dpop_proof", error_description="htu does not match this request: expected https://api.bank.example/open-banking/v3.1/pisp/domestic-payments", algs="ES256"`,
			want:          "HTTP 401 invalid_dpop_proof: htu does not match this request: expected https://api.bank.example/open-banking/v3.1/pisp/domestic-payments",
			wantChallenge: "invalid_dpop_proof", wantDsc: "htu does not match this request: expected https://api.bank.example/open-banking/v3.1/pisp/domestic-payments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.challenge != "" {
					w.Header().Set("WWW-Authenticate", tt.challenge)
				}
				obAnswer(w, tt.status, tt.code, tt.message, tt.path)
			}))
			defer srv.Close()
			_, err := pay(t, srv.URL)
			var e *APIError
			if !errors.As(err, &e) {
				t.Fatalf("error = %v, want an *APIError", err)
			}
			if e.Cause != tt.cause || (tt.cause != nil && !errors.Is(err, tt.cause)) {
				t.Errorf("cause = %v, want %v", e.Cause, tt.cause)
			}
			if want := "POST " + srv.URL + "/open-banking/v3.1/pisp/domestic-payments: " + tt.want; err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
			if e.StatusCode != tt.status || e.ErrorCode != tt.code || e.Path != tt.path || e.Message != tt.message ||
				e.Challenge != tt.wantChallenge || e.Description != tt.wantDsc || e.InteractionID == "" {
				t.Errorf("APIError = %+v", e)
			}
		})
	}
}

func TestResponseErrorIsNilBelow400(t *testing.T) {
	for _, status := range []int{200, 201, 204, 302} {
		if err := ResponseError(&http.Response{StatusCode: status}, nil); err != nil {
			t.Errorf("ResponseError(%d) = %v, want nil", status, err)
		}
	}
	if err := ResponseError(nil, nil); err != nil {
		t.Errorf("ResponseError(nil) = %v, want nil", err)
	}
}

func TestCheckPayment(t *testing.T) {
	p := &obapi.OBWriteDomesticResponse5{Data: obapi.OBWriteDomesticResponse5Data{DomesticPaymentId: "p-1", ConsentId: "c-1",
		Status: obapi.OBWriteDomesticResponse5DataStatusAcceptedSettlementCompleted}}
	if err := CheckPayment(p); err != nil {
		t.Errorf("CheckPayment(accepted) = %v, want nil", err)
	}
	p.Data.Status = obapi.OBWriteDomesticResponse5DataStatusRejected
	err := CheckPayment(p)
	if !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("CheckPayment(Rejected) = %v, want ErrInsufficientFunds", err)
	}
	want := "payment p-1 was Rejected: insufficient funds in the debtor account when it was executed; nothing was booked and consent c-1 is spent, so create a new consent to pay"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if err := CheckPayment(nil); err != nil {
		t.Errorf("CheckPayment(nil) = %v, want nil", err)
	}
}

func TestCheckPaymentV4(t *testing.T) {
	p := &obapi4.OBWriteDomesticResponse5{Data: obapi4.OBWriteDomesticResponse5Data{DomesticPaymentId: "p-1", ConsentId: "c-1",
		Status: obapi4.OBWriteDomesticResponse5DataStatusRCVD}}
	for _, ok := range []obapi4.OBWriteDomesticResponse5DataStatus{obapi4.OBWriteDomesticResponse5DataStatusRCVD,
		obapi4.OBWriteDomesticResponse5DataStatusACSC, obapi4.OBWriteDomesticResponse5DataStatusACCC} {
		p.Data.Status = ok
		if err := CheckPaymentV4(p); err != nil {
			t.Errorf("CheckPaymentV4(%s) = %v, want nil", ok, err)
		}
	}
	p.Data.Status = obapi4.OBWriteDomesticResponse5DataStatusRJCT
	err := CheckPaymentV4(p)
	if !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("CheckPaymentV4(RJCT) = %v, want ErrInsufficientFunds", err)
	}
	want := "payment p-1 is RJCT: insufficient funds in the debtor account when it was executed; nothing was booked and consent c-1 is spent, so create a new consent to pay"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if err := CheckPaymentV4(nil); err != nil {
		t.Errorf("CheckPaymentV4(nil) = %v, want nil", err)
	}
}

// TestTokenClientNoSuchEndpoint: a token client whose BaseURL names no authorization server
// (another port, or the sandbox turned off) says so.
func TestTokenClientNoSuchEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		obAnswer(w, http.StatusNotFound, obResourceNotFound, "No such resource", "")
	}))
	defer srv.Close()
	tc, err := NewTokenClient(TokenConfig{BaseURL: srv.URL, ClientID: "c", ClientSecret: "s", Key: mustKey(t, ES256)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.ClientCredentials(context.Background(), "payments")
	var oe *OAuthError
	if !errors.Is(err, ErrNoSuchEndpoint) || !errors.As(err, &oe) || oe.StatusCode != 404 {
		t.Fatalf("ClientCredentials = %v, want a 404 *OAuthError wrapping ErrNoSuchEndpoint", err)
	}
	want := "oauth2: server_error (HTTP 404): no such endpoint at " + srv.URL + "/oauth2/token" +
		": check the token client's BaseURL or endpoint URLs (the sandbox's BaseURL is the service's PAYMENTS_PUBLIC_URL)"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}
