package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// startTracing returns the tracer provider that exports spans over OTLP
// (HTTP/protobuf) to c.OTelEndpoint when it is set, and the function that
// flushes and stops it; without an endpoint it returns nil: nothing is
// traced. The exporter reads the other standard OTEL_EXPORTER_OTLP_*
// variables (headers, timeout, TLS), the resource OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES, and the sampler OTEL_TRACES_SAMPLER.
func startTracing(ctx context.Context, c config) (trace.TracerProvider, func(), error) {
	if c.OTelEndpoint == "" {
		return nil, func() {}, nil
	}
	if c.OTelProtocol != "" && c.OTelProtocol != "http/protobuf" {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf is supported", c.OTelProtocol)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(c.OTelEndpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithAttributes(
		attribute.String("service.name", "payments"), attribute.String("service.version", buildVersion())))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}
	return tp, stop, nil
}

// introspectionClient is the HTTP client of the introspection calls: nil
// (the introspector's own) without tracing.
func introspectionClient(tp trace.TracerProvider) *http.Client {
	if tp == nil {
		return nil
	}
	return tracedClient(tp)
}

// tracedClient is the HTTP client of the introspection calls when tracing
// is on: each call is a client span, and its trace context travels in
// traceparent. Like the untraced client, it follows no redirect.
func tracedClient(tp trace.TracerProvider) *http.Client {
	return &http.Client{
		Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(tp),
			otelhttp.WithPropagators(propagation.TraceContext{})),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
