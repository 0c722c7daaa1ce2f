package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obpay/payments/internal/models"
)

// HeaderInteractionID is the FAPI interaction id header, echoed on every
// response.
const HeaderInteractionID = "x-fapi-interaction-id"

type ctxKey int

const (
	interactionKey ctxKey = iota
	requestIDKey
)

// InteractionID returns the x-fapi-interaction-id of the request, or "".
func InteractionID(ctx context.Context) string {
	s, _ := ctx.Value(interactionKey).(string)
	return s
}

// RequestID returns the server-generated request id, or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

func withValue(c echo.Context, key ctxKey, v string) {
	r := c.Request()
	c.SetRequest(r.WithContext(context.WithValue(r.Context(), key, v)))
}

// recoverPanics turns a panic into a 500 OB error and logs it at ERROR: a
// panic is a bug. It is the outermost middleware.
func recoverPanics(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				r := recover()
				if r == nil {
					return
				}
				if r == http.ErrAbortHandler {
					panic(r)
				}
				log.ErrorContext(c.Request().Context(), "panic while serving request",
					"panic", panicString(r), "method", c.Request().Method, "route", c.Path(),
					"interaction_id", InteractionID(c.Request().Context()))
				err = echo.NewHTTPError(http.StatusInternalServerError)
			}()
			return next(c)
		}
	}
}

func panicString(r any) string {
	switch v := r.(type) {
	case error:
		return v.Error()
	case string:
		return v
	default:
		return "non-error panic value"
	}
}

// requestID gives every request a server-generated id (X-Request-Id). A
// client-supplied value is not trusted or echoed.
func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := uuid.NewString()
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			withValue(c, requestIDKey, id)
			return next(c)
		}
	}
}

// interactionID echoes the request's x-fapi-interaction-id when it is a UUID
// (RFC 4122 form) and otherwise generates one. The header is set before the
// handler runs, so it is on every response, errors and 404s included.
func interactionID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := c.Request().Header.Get(HeaderInteractionID)
			if _, ok := models.CanonicalID(id); !ok {
				id = uuid.NewString()
			}
			c.Response().Header().Set(HeaderInteractionID, id)
			withValue(c, interactionKey, id)
			return next(c)
		}
	}
}

// deadline bounds the request's context to d (zero: no bound), so that a
// request whose client is gone, or which runs past the point where its
// answer could still be written, stops using the node.
func deadline(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if d == 0 {
			return next
		}
		return func(c echo.Context) error {
			r := c.Request()
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			c.SetRequest(r.WithContext(ctx))
			return next(c)
		}
	}
}

// accessLog writes one structured line per request. It logs the route
// template and the path without its query (a query may carry a token), never
// a header value: Authorization, DPoP, Cookie and the like cannot reach the
// log through it.
func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			req, res := c.Request(), c.Response()
			level := slog.LevelInfo
			switch {
			case res.Status == http.StatusInternalServerError:
				level = slog.LevelError // a bug
			case isProbe(c):
				// A load balancer or kubelet asks every few seconds: at
				// INFO that would drown the log. readyz logs its changes.
				level = slog.LevelDebug
			case res.Status >= 500:
				level = slog.LevelWarn // a dependency down or a request abandoned
			}
			log.LogAttrs(req.Context(), level, "http request",
				slog.String("method", req.Method),
				slog.String("route", routeLabel(c)),
				slog.String("path", req.URL.EscapedPath()),
				slog.Int("status", res.Status),
				slog.Int64("bytes_out", res.Size),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote_ip", c.RealIP()),
				slog.String("interaction_id", InteractionID(req.Context())),
				slog.String("request_id", RequestID(req.Context())),
			)
			return nil
		}
	}
}

// isProbe reports whether the request was routed to a health or readiness
// probe.
func isProbe(c echo.Context) bool {
	p := c.Path()
	return p == "/healthz" || p == "/readyz"
}

func routeLabel(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "unmatched"
}

// httpMetrics counts requests and observes latency by route template, method
// and status, and counts error answers by route and OB error code.
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	refusals *prometheus.CounterVec
}

// errorCodeKey is where the error handler leaves the OB error code of its
// answer for httpMetrics.
const errorCodeKey = "payments.ob_error_code"

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_http_requests_total",
			Help: "HTTP requests served, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "payments_http_request_duration_seconds",
			Help:    "HTTP request latency, by route template, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_api_errors_total",
			Help: "Error answers, by route template and OB error code (the first of the body's Errors).",
		}, []string{"route", "code"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.refusals} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *httpMetrics) middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status := strconv.Itoa(c.Response().Status)
			labels := []string{routeLabel(c), methodLabel(c.Request().Method), status}
			m.requests.WithLabelValues(labels...).Inc()
			m.latency.WithLabelValues(labels...).Observe(time.Since(start).Seconds())
			if c.Response().Status >= http.StatusBadRequest {
				if code, ok := c.Get(errorCodeKey).(string); ok {
					m.refusals.WithLabelValues(labels[0], code).Inc()
				}
			}
			return nil
		}
	}
}

// methodLabel bounds the label's cardinality: unknown methods share one value.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
