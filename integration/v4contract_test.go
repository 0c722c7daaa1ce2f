package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// v4Contract is an http.RoundTripper that checks every answer it carries against
// api/openapi-v4.yaml (status, headers and body, with kin-openapi's ValidateResponse) and
// fails the test on any mismatch. Put it under the SDK's DPoP transport
// (client.WithHTTPClient) and it sees every answer, the nonce challenges included. It is
// safe for concurrent use.
type v4Contract struct {
	errorf func(format string, args ...any) // t.Errorf
	next   http.RoundTripper
	router routers.Router

	mu      sync.Mutex
	checked map[string]int // "METHOD /path/template status" -> answers checked
}

// newV4Contract loads the v4 contract for the server at base and sends through
// http.DefaultTransport.
func newV4Contract(t *testing.T, base string) *v4Contract {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("../api/openapi-v4.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The contract names the sandbox's usual URL; the answers come from this test's server.
	doc.Servers = openapi3.Servers{{URL: base}}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi-v4.yaml: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &v4Contract{errorf: t.Errorf, next: http.DefaultTransport, router: router, checked: map[string]int{}}
}

// Client returns an *http.Client that sends through c, for client.WithHTTPClient.
func (c *v4Contract) Client() *http.Client { return &http.Client{Transport: c} }

func (c *v4Contract) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	c.check(req, res, body)
	return res, nil
}

func (c *v4Contract) check(req *http.Request, res *http.Response, body []byte) {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		c.errorf("%s %s: no operation of openapi-v4.yaml: %v", req.Method, req.URL.Path, err)
		return
	}
	err = openapi3filter.ValidateResponse(req.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if err != nil {
		c.errorf("%s %s answered %d, not as openapi-v4.yaml says: %v\nbody: %s", req.Method, req.URL.Path, res.StatusCode, err, body)
	}
	c.mu.Lock()
	c.checked[fmt.Sprintf("%s %s %d", req.Method, route.Path, res.StatusCode)]++
	c.mu.Unlock()
}

// Checked returns the answers checked so far, one "METHOD /path/template status" each,
// sorted.
func (c *v4Contract) Checked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.checked))
	for k := range c.checked {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// roundTripFunc is an http.RoundTripper of one function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The contract check refuses what openapi-v4.yaml does not allow, so that a pass of the
// flow test means something.
func TestV4ContractRefusesAnswersTheContractDoesNot(t *testing.T) {
	const base = "http://127.0.0.1:8080"
	url := base + "/open-banking/v4.0/pisp/domestic-payment-consents/c-1/funds-confirmation"
	good := `{"Data":{"FundsAvailableResult":{"FundsAvailable":true,"FundsAvailableDateTime":"2026-01-02T03:04:05Z"}},` +
		`"Links":{"Self":"` + url + `"},"Meta":{}}`
	tests := []struct {
		name   string
		status int
		header map[string]string
		body   string
		ok     bool
	}{
		{"a valid answer", 200, nil, good, true},
		{"a member the contract does not define", 200, nil, `{"Data":{"Extra":1},"Links":{"Self":"` + url + `"},"Meta":{}}`, false},
		{"no x-fapi-interaction-id", 200, map[string]string{"x-fapi-interaction-id": ""}, good, false},
		{"a status the operation does not declare", 418, nil, good, false},
		{"a v3.1 error code", 400, nil, `{"Errors":[{"ErrorCode":"UK.OBIE.Field.Invalid","Message":"bad"}]}`, false},
		{"a v4.0 error code", 400, nil, `{"Errors":[{"ErrorCode":"U002","Message":"bad"}]}`, true},
	}
	contract := newV4Contract(t, base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var failures []string
			contract.errorf = func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }
			contract.next = roundTripFunc(func(r *http.Request) (*http.Response, error) {
				h := http.Header{"Content-Type": {"application/json; charset=UTF-8"}, "X-Fapi-Interaction-Id": {"6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a"}}
				for k, v := range tc.header {
					if v == "" {
						h.Del(k)
					} else {
						h.Set(k, v)
					}
				}
				return &http.Response{StatusCode: tc.status, Header: h, Body: io.NopCloser(bytes.NewBufferString(tc.body)), Request: r}, nil
			})
			res, err := contract.Client().Get(url)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if ok := len(failures) == 0; ok != tc.ok {
				t.Errorf("contract check ok = %v, want %v: %q", ok, tc.ok, failures)
			}
		})
	}
}
