package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/obapi"
	"github.com/obpay/payments/internal/obapi4"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/security"
)

// PaymentService is what the PISP handlers call.
type PaymentService interface {
	CreatePaymentConsent(ctx context.Context, c openbanking.Caller, k openbanking.Idempotency, req openbanking.PaymentConsentRequest) (openbanking.PaymentConsent, error)
	PaymentConsent(ctx context.Context, c openbanking.Caller, id string) (openbanking.PaymentConsent, error)
	FundsConfirmation(ctx context.Context, c openbanking.Caller, id string) (openbanking.FundsConfirmation, error)
	CreatePayment(ctx context.Context, c openbanking.Caller, k openbanking.Idempotency, req openbanking.PaymentRequest) (openbanking.Payment, error)
	Payment(ctx context.Context, c openbanking.Caller, id string) (openbanking.Payment, error)
}

// AccountService is what the AISP handlers call.
type AccountService interface {
	CreateAccountAccessConsent(ctx context.Context, c openbanking.Caller, req openbanking.AccountAccessRequest) (openbanking.AccountAccessConsent, error)
	AccountAccessConsent(ctx context.Context, c openbanking.Caller, id string) (openbanking.AccountAccessConsent, error)
	RevokeAccountAccessConsent(ctx context.Context, c openbanking.Caller, id string) error
	Accounts(ctx context.Context, c openbanking.Caller) ([]models.Account, openbanking.Grant, error)
	Account(ctx context.Context, c openbanking.Caller, accountID string) (models.Account, openbanking.Grant, error)
	Balance(ctx context.Context, c openbanking.Caller, accountID string) (models.Account, time.Time, error)
	Transactions(ctx context.Context, c openbanking.Caller, accountID string, q openbanking.TransactionsQuery) (openbanking.TransactionsPage, error)
}

// BackOfficeService is what the back office handlers call.
type BackOfficeService interface {
	OpenAccount(ctx context.Context, req openbanking.OpenAccountRequest) (models.Account, error)
	Reconcile(ctx context.Context) (ledger.Report, error)
	Authorise(ctx context.Context, consentID, psu, debtorAccount string) (openbanking.Decision, error)
	Reject(ctx context.Context, consentID string) (openbanking.Decision, error)
}

// Service is everything the API handlers call; *openbanking.Service
// implements it.
type Service interface {
	PaymentService
	AccountService
	BackOfficeService
}

// HandlerConfig configures NewHandler.
type HandlerConfig struct {
	// Service implements the resources (an *openbanking.Service). Required.
	Service Service
	// Logger receives handler-level events. Required.
	Logger *slog.Logger
	// PublicURL is the external base URL (PAYMENTS_PUBLIC_URL): an absolute
	// http(s) URL, optionally with a path prefix, without query or fragment.
	// Links.Self and Links.Next are built under it. Required.
	PublicURL string
	// Now is the clock for response times; nil means time.Now.
	Now func() time.Time
	// Location is the bank's timezone (PAYMENTS_TIMEZONE): the AISP query
	// date-times sent without an offset are read in it. Nil means UTC.
	Location *time.Location
}

// Handler implements obapi.ServerInterface: each method binds and validates
// the request, calls the service, and maps the result to the OB wire types.
// Errors are returned to the server's single error renderer.
type Handler struct {
	pay    PaymentService
	acc    AccountService
	office BackOfficeService
	log    *slog.Logger
	base   string
	now    func() time.Time
	loc    *time.Location
	bodies *bodyValidator
	// bodiesV4 validates Open Banking v4.0 request bodies (api/openapi-v4.yaml),
	// for the v4 handlers.
	bodiesV4 *bodyValidator
}

var (
	_ obapi.ServerInterface = (*Handler)(nil)
	_ Service               = (*openbanking.Service)(nil)
)

// NewHandler validates cfg and returns the API handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Service == nil || cfg.Logger == nil {
		return nil, errors.New("handlers: Service and Logger are required")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("handlers: PublicURL must be an absolute http(s) URL without query or fragment")
	}
	bodies, err := newSpecValidator(obapi.GetSpec)
	if err != nil {
		return nil, err
	}
	bodiesV4, err := newSpecValidator(obapi4.GetSpec)
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	return &Handler{
		pay: cfg.Service, acc: cfg.Service, office: cfg.Service, log: cfg.Logger,
		base: strings.TrimSuffix(cfg.PublicURL, "/"), now: now, loc: loc, bodies: bodies, bodiesV4: bodiesV4,
	}, nil
}

// caller returns the verified principal of the request as a Caller. Routes
// always run the DPoP middleware first; without a principal the request is
// refused, never served.
func caller(c echo.Context) (openbanking.Caller, error) {
	p, ok := security.PrincipalFrom(c.Request().Context())
	if !ok || p.ClientID == "" {
		return openbanking.Caller{}, NewAPIError(http.StatusUnauthorized, CodeUnauthorized, "Unauthorized", "")
	}
	return openbanking.Caller{ClientID: p.ClientID, PSU: p.Subject, ConsentID: p.ConsentID}, nil
}

// clientCaller is caller for operations that need a client-credentials token
// (no PSU).
func clientCaller(c echo.Context) (openbanking.Caller, error) {
	cl, err := caller(c)
	if err == nil && cl.PSU != "" {
		return openbanking.Caller{}, NewAPIError(http.StatusForbidden, CodeForbidden, "A client-credentials token is required", "")
	}
	return cl, err
}

// link returns the absolute URL of path (which starts with "/") under the
// public base URL.
func (h *Handler) link(path string) string { return h.base + path }

// self returns Links with Self set to the absolute URL of path.
func (h *Handler) self(path string) obapi.Links { return obapi.Links{Self: h.link(path)} }

// GetHealthz answers UP; the edge serves GET /healthz itself, so it is not
// routed here.
func (h *Handler) GetHealthz(c echo.Context, _ obapi.GetHealthzParams) error { return healthz(c) }

// GetReadyz is served by the edge (it needs the database ping); the API
// handler does not route it.
func (h *Handler) GetReadyz(echo.Context, obapi.GetReadyzParams) error {
	return echo.NewHTTPError(http.StatusNotImplemented)
}
