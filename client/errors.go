package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/obpay/payments/client/obapi"
)

// Causes that ResponseError, CheckPayment and the TokenClient's *OAuthError can name. Test
// for them with errors.Is; the error's text says what to do.
var (
	// ErrNoSuchEndpoint means the server answered 404: no route has this path. With this
	// service every operation of the SDK exists, so the base URL is wrong (another host or
	// port, or a path prefix added twice).
	ErrNoSuchEndpoint = errors.New("no such endpoint")
	// ErrCustomerTokenRequired means a client-credentials token was sent to an operation that
	// acts for the customer (a payment, a funds confirmation, an account read): it needs the
	// token the customer authorised (authorization code grant, TokenClient.Exchange).
	ErrCustomerTokenRequired = errors.New("the call needs the token the customer authorised")
	// ErrDebtorAccountUnknown means the debtor account named at authorisation does not exist.
	ErrDebtorAccountUnknown = errors.New("debtor account unknown")
	// ErrDebtorAccountNotCustomers means the debtor account is not one of the customer's
	// accounts (or, rarely, cannot pay this consent for another reason the message names).
	ErrDebtorAccountNotCustomers = errors.New("debtor account not the customer's")
	// ErrDebtorAccountCurrency means the debtor account is not in the consent's currency.
	ErrDebtorAccountCurrency = errors.New("debtor account in another currency")
	// ErrInsufficientFunds means a payment was created Rejected: its debtor account could not
	// fund it when it was executed (CheckPayment).
	ErrInsufficientFunds = errors.New("insufficient funds")
)

// The OB error codes and paths the causes are read from (api/openapi.yaml).
const (
	// obForbidden ends the code of a 403 in the bank's own namespace (OB
	// defines none for it): "OBPAY.Forbidden" unless the bank chose another.
	obForbidden           = ".Forbidden"
	obV4Forbidden         = "U042" // v4.0: 401 and 403 share one code
	obFieldInvalid        = "UK.OBIE.Field.Invalid"
	obResourceNotFound    = "UK.OBIE.Resource.NotFound"
	obUnsupportedCurrency = "UK.OBIE.Unsupported.Currency"
	pathAuthorization     = "Authorization"
	pathDebtorAccount     = "DebtorAccount"
)

// APIError is an error answer (status 400 or above) of the API, read by ResponseError: the
// status, the first entry of its OB error body, its DPoP challenge when it has one, and the
// Cause when the SDK can tell it. Use errors.As to read it and errors.Is to test its Cause.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Method and URL are the request's (the URL without user info).
	Method, URL string
	// ErrorCode, Message and Path are the first entry of the OB error body's Errors, e.g.
	// "UK.OBIE.Field.Invalid", "...", "Data.Initiation.InstructedAmount.Amount".
	ErrorCode, Message, Path string
	// Challenge and Description are the error and error_description of the answer's DPoP
	// challenge (WWW-Authenticate), e.g. "invalid_dpop_proof" and "htu does not match this
	// request: expected https://api.bank.example/open-banking/v3.1/pisp/domestic-payments".
	Challenge, Description string
	// InteractionID is the answer's x-fapi-interaction-id: quote it to the bank.
	InteractionID string
	// Cause is one of ErrNoSuchEndpoint, ErrCustomerTokenRequired, ErrDebtorAccountUnknown,
	// ErrDebtorAccountNotCustomers and ErrDebtorAccountCurrency, or nil.
	Cause error
}

// Error says what failed and, when the cause is known, what to do.
func (e *APIError) Error() string {
	switch e.Cause {
	case ErrNoSuchEndpoint:
		return fmt.Sprintf("HTTP %d: no such endpoint at %s: check the client's BaseURL (it should be the service's PAYMENTS_PUBLIC_URL)",
			e.StatusCode, e.URL)
	case ErrCustomerTokenRequired:
		return fmt.Sprintf("%s %s: HTTP %d: this call needs a token the customer authorised (authorization code), not a client-credentials token",
			e.Method, e.URL, e.StatusCode)
	case ErrDebtorAccountUnknown:
		return fmt.Sprintf("%s %s: HTTP %d: the debtor account is unknown: no account has this AccountId", e.Method, e.URL, e.StatusCode)
	case ErrDebtorAccountNotCustomers:
		return fmt.Sprintf("%s %s: HTTP %d: the debtor account is not the customer's (%s)", e.Method, e.URL, e.StatusCode, e.Message)
	case ErrDebtorAccountCurrency:
		return fmt.Sprintf("%s %s: HTTP %d: the debtor account is not in the consent's currency", e.Method, e.URL, e.StatusCode)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	switch {
	case e.Challenge != "":
		b.WriteString(" " + e.Challenge)
	case e.ErrorCode != "":
		b.WriteString(" " + e.ErrorCode)
	}
	if e.Path != "" {
		b.WriteString(" at " + e.Path)
	}
	switch {
	case e.Description != "":
		b.WriteString(": " + e.Description)
	case e.Message != "":
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Unwrap returns the Cause.
func (e *APIError) Unwrap() error { return e.Cause }

// dpopDescriptionParam finds the error_description of a DPoP challenge; its value holds no
// quote (RFC 6750 §3).
var dpopDescriptionParam = regexp.MustCompile(`(?i)(?:^|[\s,])error_description\s*=\s*"([^"]*)"`)

// ResponseError returns nil for an answer below 400 and an *APIError for any other. Pass the
// typed client's response fields:
//
//	res, err := api.CreateDomesticPaymentsWithResponse(ctx, params, body)
//	if err != nil {
//		return err // the request did not get an answer
//	}
//	if err := client.ResponseError(res.HTTPResponse, res.Body); err != nil {
//		return err // e.g. errors.Is(err, client.ErrCustomerTokenRequired)
//	}
//
// The Cause is read from the status and the OB error body's code and path: 404 is
// ErrNoSuchEndpoint; 403 <namespace>.Forbidden on Authorization is ErrCustomerTokenRequired; 400 on
// DebtorAccount is ErrDebtorAccountUnknown (UK.OBIE.Resource.NotFound),
// ErrDebtorAccountCurrency (UK.OBIE.Unsupported.Currency) or ErrDebtorAccountNotCustomers
// (UK.OBIE.Field.Invalid).
func ResponseError(res *http.Response, body []byte) error {
	if res == nil || res.StatusCode < http.StatusBadRequest {
		return nil
	}
	e := &APIError{StatusCode: res.StatusCode, InteractionID: res.Header.Get("x-fapi-interaction-id")}
	if res.Request != nil {
		e.Method = res.Request.Method
		if res.Request.URL != nil {
			e.URL = res.Request.URL.Redacted()
		}
	}
	var ob obapi.OBErrorResponse1
	if json.Unmarshal(body, &ob) == nil && len(ob.Errors) > 0 {
		first := ob.Errors[0]
		e.ErrorCode, e.Message = first.ErrorCode, first.Message
		if first.Path != nil {
			e.Path = *first.Path
		}
	}
	for _, v := range res.Header.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "DPoP") {
			continue
		}
		if m := dpopErrorParam.FindStringSubmatch(params); m != nil {
			e.Challenge = m[1]
		}
		if m := dpopDescriptionParam.FindStringSubmatch(params); m != nil {
			e.Description = m[1]
		}
		break
	}
	switch {
	case res.StatusCode == http.StatusNotFound:
		e.Cause = ErrNoSuchEndpoint
	case res.StatusCode == http.StatusForbidden && e.Path == pathAuthorization &&
		(strings.HasSuffix(e.ErrorCode, obForbidden) || e.ErrorCode == obV4Forbidden):
		e.Cause = ErrCustomerTokenRequired
	case res.StatusCode == http.StatusBadRequest && e.Path == pathDebtorAccount:
		switch e.ErrorCode {
		case obResourceNotFound:
			e.Cause = ErrDebtorAccountUnknown
		case obUnsupportedCurrency:
			e.Cause = ErrDebtorAccountCurrency
		case obFieldInvalid:
			e.Cause = ErrDebtorAccountNotCustomers
		}
	}
	return e
}

// CheckPayment returns nil unless the payment is Rejected, and then an error that wraps
// ErrInsufficientFunds: this service rejects a payment only when its debtor account cannot
// fund it at execution. Nothing was booked, and the consent is spent: to pay, create a new
// consent once the customer has the funds. The answer carries no reason field (the OB v3.1
// payment resource has none); this is the service's documented rule.
func CheckPayment(p *obapi.OBWriteDomesticResponse5) error {
	if p == nil || p.Data.Status != obapi.OBWriteDomesticResponse5DataStatusRejected {
		return nil
	}
	return fmt.Errorf("payment %s was Rejected: %w in the debtor account when it was executed; nothing was booked and consent %s is spent, so create a new consent to pay",
		p.Data.DomesticPaymentId, ErrInsufficientFunds, p.Data.ConsentId)
}
