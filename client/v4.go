package client

import (
	"fmt"
	"net/http"

	"github.com/obpay/payments/client/obapi4"
)

// ClientV4 is Client for UK Open Banking v4.0 (the operations under "/open-banking/v4.0"):
// the generated v4 client (package obapi4) over the same DPoP Transport. The service serves
// v3.1 and v4.0 from one ledger, with the same tokens and keys; a consent is paid on the
// version it was created on.
//
// A ClientV4 is safe for concurrent use.
type ClientV4 struct {
	*obapi4.ClientWithResponses

	transport *Transport
	http      *http.Client
}

// NewV4 returns a ClientV4 for the API at baseURL (without the "/open-banking/v4.0" prefix,
// which the operations add). Its arguments and errors are New's.
func NewV4(baseURL string, key *Key, tokens TokenSource, opts ...Option) (*ClientV4, error) {
	tr, hc, err := dpopHTTPClient(baseURL, key, tokens, opts)
	if err != nil {
		return nil, err
	}
	api, err := obapi4.NewClientWithResponses(baseURL, obapi4.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &ClientV4{ClientWithResponses: api, transport: tr, http: hc}, nil
}

// HTTPClient returns the client's *http.Client, with the DPoP transport, for requests the
// typed methods do not cover.
func (c *ClientV4) HTTPClient() *http.Client { return c.http }

// Transport returns the client's DPoP transport, e.g. to read the latest nonce.
func (c *ClientV4) Transport() *Transport { return c.transport }

// CheckPaymentV4 is CheckPayment for a v4 payment: an error wrapping ErrInsufficientFunds when
// the payment is RJCT (its StatusReason says AM04, insufficient funds), nil otherwise.
func CheckPaymentV4(p *obapi4.OBWriteDomesticResponse5) error {
	if p == nil || p.Data.Status != obapi4.OBWriteDomesticResponse5DataStatusRJCT {
		return nil
	}
	return fmt.Errorf("payment %s is RJCT: %w in the debtor account when it was executed; nothing was booked and consent %s is spent, so create a new consent to pay",
		p.Data.DomesticPaymentId, ErrInsufficientFunds, p.Data.ConsentId)
}
