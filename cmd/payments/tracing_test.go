package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/obpay/payments/client"
)

// secretRecorder wraps a transport and keeps every credential that crosses
// it: Authorization and DPoP header values and the tokens and codes of
// token and authorization answers.
type secretRecorder struct {
	base    http.RoundTripper
	mu      sync.Mutex
	secrets map[string]bool
}

func (r *secretRecorder) keep(s string) {
	if len(s) >= 8 {
		r.mu.Lock()
		r.secrets[s] = true
		r.mu.Unlock()
	}
}

func (r *secretRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	for _, v := range req.Header.Values("Authorization") {
		_, cred, _ := strings.Cut(v, " ")
		r.keep(cred)
	}
	for _, v := range req.Header.Values("DPoP") {
		r.keep(v)
	}
	res, err := r.base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		for _, k := range []string{"access_token", "refresh_token", "code"} {
			if s, ok := m[k].(string); ok {
				r.keep(s)
			}
		}
	}
	return res, nil
}

// A sandbox payment with tracing on: each request is a server span named by
// its route with the interaction id and client id, verification and the
// statements are its children, and no credential appears anywhere in a
// span.
func TestTracesOfASandboxPayment(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())

	rec := &secretRecorder{base: http.DefaultTransport, secrets: map[string]bool{"admin-secret": true, "sandbox-secret": true}}
	http.DefaultTransport = rec
	defer func() { http.DefaultTransport = rec.base }()

	port := freeLoopbackPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	stop := serveInProcessWith(t, map[string]string{
		"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
		"PAYMENTS_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "PAYMENTS_PUBLIC_URL": base,
	}, &serveHooks{tracer: tp})
	var out bytes.Buffer
	if err := sandboxPay(context.Background(), sandboxRun{base: base, amount: "1.00", alg: client.ES256, out: &out}); err != nil {
		t.Fatalf("sandbox pay: %v\n%s", err, out.String())
	}
	stop()

	spans := exp.GetSpans()
	byID := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID().String()] = s
	}
	var payment *tracetest.SpanStub
	for i, s := range spans {
		if s.Name == "POST /open-banking/v3.1/pisp/domestic-payments" && attr(s, "http.response.status_code") == "201" {
			payment = &spans[i]
		}
	}
	if payment == nil {
		t.Fatalf("no server span of the payment among %d spans", len(spans))
	}
	for _, k := range []string{"http.route", "fapi.interaction_id", "client.id"} {
		if attr(*payment, k) == "" {
			t.Errorf("the payment's span has no %s", k)
		}
	}
	children := map[string]bool{}
	for _, s := range spans {
		if s.Parent.SpanID() == payment.SpanContext.SpanID() {
			children[s.Name] = true
		}
	}
	t.Logf("%d spans; the payment's children: %v; %d credentials checked", len(spans), children, len(rec.secrets))
	if !children["dpop.verify"] || !children["db SELECT"] {
		t.Errorf("children of the payment's span = %v, want dpop.verify and database statements", children)
	}
	for _, s := range spans {
		texts := []string{s.Name}
		for _, a := range s.Attributes {
			texts = append(texts, a.Value.String())
		}
		for _, e := range s.Events {
			for _, a := range e.Attributes {
				texts = append(texts, a.Value.String())
			}
		}
		for secret := range rec.secrets {
			for _, text := range texts {
				if strings.Contains(text, secret) {
					t.Errorf("span %q carries a credential", s.Name)
				}
			}
		}
	}
	if len(rec.secrets) < 6 {
		t.Fatalf("only %d credentials recorded: the check above proves little", len(rec.secrets))
	}
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if a.Key == attribute.Key(key) {
			return a.Value.String()
		}
	}
	return ""
}

// The introspection client carries the trace on: the authorization server
// sees traceparent with the caller's trace id, and the call is a span.
func TestIntrospectionCallsCarryTheTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	got := make(chan string, 1)
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":false}`)
	}))
	defer as.Close()

	ctx, span := tp.Tracer("test").Start(context.Background(), "dpop.verify")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, as.URL, strings.NewReader("token=x"))
	res, err := introspectionClient(tp).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	span.End()
	tp2 := <-got
	if !strings.Contains(tp2, span.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent %q does not carry trace %s", tp2, span.SpanContext().TraceID())
	}
	if len(exp.GetSpans()) < 2 {
		t.Fatalf("the introspection call left no client span: %d spans", len(exp.GetSpans()))
	}
	if introspectionClient(nil) != nil {
		t.Fatal("without tracing the introspector keeps its own client")
	}
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, serve sends its spans to the
// collector there (OTLP over HTTP, /v1/traces).
func TestServeExportsTracesOverOTLP(t *testing.T) {
	posts := make(chan string, 100)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	port := freeLoopbackPort(t)
	stop := serveInProcess(t, map[string]string{
		"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
		"PAYMENTS_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "PAYMENTS_PUBLIC_URL": fmt.Sprintf("http://127.0.0.1:%d", port),
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
	})
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/openapi.yaml", port))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	stop() // flushes the batch
	select {
	case got := <-posts:
		if got != "POST /v1/traces application/x-protobuf" {
			t.Fatalf("the collector got %q", got)
		}
	default:
		t.Fatal("no spans reached the collector")
	}
}
