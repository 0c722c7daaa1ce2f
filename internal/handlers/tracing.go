package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/obpay/payments/internal/security"
)

// traceRequests starts one server span per request, named by its method and
// route template, continuing a trace the caller propagated (W3C
// traceparent). Its attributes are the route, the status, the
// x-fapi-interaction-id and, once the request is verified, the client id:
// never a header value, a token or a body.
func traceRequests(tp trace.TracerProvider) echo.MiddlewareFunc {
	tracer := tp.Tracer("github.com/obpay/payments/internal/handlers")
	prop := propagation.TraceContext{}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			route := routeLabel(c)
			ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := tracer.Start(ctx, methodLabel(r.Method)+" "+route, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					attribute.String("http.request.method", methodLabel(r.Method)),
					attribute.String("http.route", route),
					attribute.String("fapi.interaction_id", InteractionID(r.Context())),
				))
			defer span.End()
			c.SetRequest(r.WithContext(ctx))
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if p, ok := security.PrincipalFrom(c.Request().Context()); ok {
				span.SetAttributes(attribute.String("client.id", p.ClientID))
			}
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			return nil
		}
	}
}
