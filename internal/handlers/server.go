package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	// Named so: this package's tests have a type api.
	apicontract "github.com/obpay/payments/api"
)

// DefaultBodyLimit is the request body cap when Config.BodyLimit is zero.
const DefaultBodyLimit = 64 << 10

// Config wires the HTTP edge. It is read once by New.
type Config struct {
	// Logger receives the access log and error reports. Required.
	Logger *slog.Logger
	// Registry is served on GET /metrics and receives the HTTP metrics.
	// Required.
	Registry *prometheus.Registry
	// BodyLimit caps request bodies, in bytes; zero means DefaultBodyLimit.
	// Larger bodies answer 413 with an OB error body.
	BodyLimit int64
	// RequestTimeout is the longest a request may run: then its context
	// ends, so validation and database calls stop and the request is
	// abandoned with a 503. serve sets it to the server's write timeout,
	// after which no answer could be written anyway. Zero means no deadline.
	RequestTimeout time.Duration
	// Ping checks the database for GET /readyz. Required.
	Ping func(context.Context) error
	// Checks are the other dependencies readiness needs (e.g. the Redis
	// replay store): GET /readyz answers 503 naming each one whose check
	// fails within the readiness timeout. Optional.
	Checks []ReadyCheck
	// Draining, when set and true, makes GET /readyz answer 503 while every
	// other request is still served: the node is shutting down and asks
	// its load balancer to stop sending it traffic. Optional.
	Draining func() bool
	// Status, when set, adds components and their state to the body of a
	// ready /readyz answer (e.g. the authorization server, which is
	// reported but does not fail readiness). Optional.
	Status func(context.Context) map[string]string
	// Routes registers the API and sandbox routes on the prepared server
	// (see routes.go). Optional: without it only health and metrics exist.
	Routes func(e *echo.Echo) error
	// PublicURL is the external base URL (PAYMENTS_PUBLIC_URL), as
	// HandlerConfig.PublicURL: a v4.0 answer to an idempotency key reused
	// with another body links to PublicURL + "/docs/idempotency". Optional:
	// empty means that answer carries no Url.
	PublicURL string
	// ErrorNamespace is the namespace of the error codes the service uses
	// where OB defines none (e.g. "OBPAY.Forbidden"); empty means
	// DefaultNamespace. Never "UK.OBIE", which OB reserves.
	ErrorNamespace string
	// Tracer, when set, gives every request a server span (see
	// traceRequests). Nil: no tracing, and no cost.
	Tracer trace.TracerProvider
	// AdminRoutes, when set, asks NewEdge for a second server, the admin
	// one: it serves GET /metrics, health and readiness, and what
	// AdminRoutes registers (the back office, the profiles); the public
	// server then has no /metrics. New refuses it.
	AdminRoutes func(e *echo.Echo) error
}

// Edge is the service's HTTP edge: Public serves the API; Admin, built only
// when Config.AdminRoutes is set, serves what only the bank's operators and
// back office may reach.
type Edge struct {
	Public *echo.Echo
	Admin  *echo.Echo
}

// New builds the echo server: outer middleware in the order recover, request
// id, x-fapi-interaction-id, request deadline, tracing (when configured),
// metrics, access log, body limit; the single
// OB error renderer; health, readiness and metrics endpoints, and the contract
// (GET /openapi.yaml); then the routes. It builds one server: with
// Config.AdminRoutes set, use NewEdge.
func New(cfg Config) (*echo.Echo, error) {
	if cfg.AdminRoutes != nil {
		return nil, errors.New("handlers: New builds one server; with AdminRoutes use NewEdge")
	}
	edge, err := NewEdge(cfg)
	if err != nil {
		return nil, err
	}
	return edge.Public, nil
}

// NewEdge builds the public server as New does and, when cfg.AdminRoutes is
// set, the admin server: the same middleware (one set of HTTP metrics, one
// access log), error renderer, health and readiness, GET /metrics, then
// AdminRoutes. GET /metrics is then served by the admin server only.
func NewEdge(cfg Config) (*Edge, error) {
	if cfg.Logger == nil || cfg.Registry == nil || cfg.Ping == nil {
		return nil, errors.New("handlers: Logger, Registry and Ping are required")
	}
	limit := cfg.BodyLimit
	if limit == 0 {
		limit = DefaultBodyLimit
	}
	if limit < 0 {
		return nil, fmt.Errorf("handlers: BodyLimit %d is negative", limit)
	}
	if cfg.RequestTimeout < 0 {
		return nil, fmt.Errorf("handlers: RequestTimeout %v is negative", cfg.RequestTimeout)
	}
	publicURL := strings.TrimSuffix(cfg.PublicURL, "/")
	if publicURL != "" {
		if u, err := url.Parse(publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, errors.New("handlers: PublicURL must be an absolute http(s) URL without query or fragment")
		}
	}
	metrics, err := newHTTPMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("handlers: register metrics: %w", err)
	}

	checks := append([]ReadyCheck{{Name: "Database", Ping: cfg.Ping}}, cfg.Checks...)
	ready := readyz(checks, cfg.Draining, cfg.Status, cfg.Logger)
	newServer := func() *echo.Echo {
		e := echo.New()
		e.HideBanner, e.HidePort = true, true
		// What echo logs by itself (errors only) goes to the same log, one
		// record per line, instead of standard output.
		e.Logger.SetOutput(slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn).Writer())
		e.HTTPErrorHandler = errorHandler(cfg.Logger, cfg.ErrorNamespace, publicURL)
		// Real client IPs only from the direct peer: forwarding headers are
		// not trusted for anything, logging included.
		e.IPExtractor = echo.ExtractIPDirect()
		e.Use(
			recoverPanics(cfg.Logger),
			requestID(),
			interactionID(),
			deadline(cfg.RequestTimeout),
		)
		if cfg.Tracer != nil {
			e.Use(traceRequests(cfg.Tracer))
		}
		e.Use(
			metrics.middleware(),
			accessLog(cfg.Logger),
			middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: fmt.Sprintf("%dB", limit)}),
		)
		e.GET("/healthz", healthz)
		e.GET("/readyz", ready)
		return e
	}
	metricsHandler := echo.WrapHandler(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))

	edge := &Edge{Public: newServer()}
	e := edge.Public
	if cfg.AdminRoutes == nil {
		e.GET("/metrics", metricsHandler)
	}
	e.Match([]string{http.MethodGet, http.MethodHead}, "/openapi.yaml", contract("openapi.yaml", apicontract.OpenAPI()))
	e.Match([]string{http.MethodGet, http.MethodHead}, "/openapi-v4.yaml", contract("openapi-v4.yaml", apicontract.OpenAPIV4()))
	e.Match([]string{http.MethodGet, http.MethodHead}, pathIdempotencyDocs, idempotencyDocs)
	if cfg.Routes != nil {
		if err := cfg.Routes(e); err != nil {
			return nil, err
		}
	}
	if cfg.AdminRoutes != nil {
		edge.Admin = newServer()
		edge.Admin.GET("/metrics", metricsHandler)
		if err := cfg.AdminRoutes(edge.Admin); err != nil {
			return nil, err
		}
	}
	return edge, nil
}

// HTTPServer returns the http.Server settings the service runs with: bounded
// header size and timeouts on every phase.
func HTTPServer(addr string, h http.Handler, t Timeouts) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    32 << 10,
	}
}
