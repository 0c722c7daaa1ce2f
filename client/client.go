package client

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"time"

	"github.com/obpay/payments/client/obapi"
)

// Client is the typed Open Banking client (every operation of the API as a method of the
// embedded obapi.ClientWithResponses) wired with a DPoP Transport: each call carries the token
// source's access token and a fresh proof, and nonce challenges are answered without the
// caller seeing them. Leave the DPoP field of the params empty; the transport fills it.
//
// A Client is safe for concurrent use.
type Client struct {
	*obapi.ClientWithResponses

	transport *Transport
	http      *http.Client
}

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	httpClient *http.Client
}

// WithHTTPClient makes the Client send through hc: hc's Transport (nil means
// http.DefaultTransport) is wrapped with DPoP and its timeout and redirect policy are kept.
// Without it the Client uses a 30 s timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) { o.httpClient = hc }
}

// New returns a Client for the API at baseURL (e.g. "http://localhost:8080", without the
// "/open-banking/v3.1" prefix, which the operations add) that signs with key and sends the
// tokens of tokens, which must be bound to key. It returns ErrInvalidKey when key is nil,
// ErrInvalidURL when baseURL is not an absolute http(s) URL, and an error when tokens is nil.
// NewV4 is the same for Open Banking v4.0.
func New(baseURL string, key *Key, tokens TokenSource, opts ...Option) (*Client, error) {
	tr, hc, err := dpopHTTPClient(baseURL, key, tokens, opts)
	if err != nil {
		return nil, err
	}
	api, err := obapi.NewClientWithResponses(baseURL, obapi.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{ClientWithResponses: api, transport: tr, http: hc}, nil
}

// dpopHTTPClient checks New's arguments and returns the DPoP transport and the *http.Client
// that sends through it.
func dpopHTTPClient(baseURL string, key *Key, tokens TokenSource, opts []Option) (*Transport, *http.Client, error) {
	if _, err := TargetURI(baseURL); err != nil {
		return nil, nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if tokens == nil {
		return nil, nil, fmt.Errorf("client: nil token source")
	}
	o := options{httpClient: &http.Client{Timeout: 30 * time.Second}}
	for _, opt := range opts {
		opt(&o)
	}
	tr, err := NewTransport(key, tokens, o.httpClient.Transport)
	if err != nil {
		return nil, nil, err
	}
	hc := *o.httpClient
	hc.Transport = tr
	return tr, &hc, nil
}

// HTTPClient returns the client's *http.Client, with the DPoP transport, for requests the
// typed methods do not cover.
func (c *Client) HTTPClient() *http.Client { return c.http }

// Transport returns the client's DPoP transport, e.g. to read the latest nonce.
func (c *Client) Transport() *Transport { return c.transport }

// NewIdempotencyKey returns a new random `x-idempotency-key` (a UUID, 36 characters; the
// service allows 40). Make one per operation and keep it: to retry the same operation after a
// network error or a 5xx, send the same body with the same key, and the service answers with the
// resource it already created instead of creating a second one.
func NewIdempotencyKey() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (Go 1.24 and later).
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // RFC 9562 version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
