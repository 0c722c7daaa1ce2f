package security

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// maxFormScan bounds how much of a form-encoded body the middleware reads to
// look for an access_token parameter.
const maxFormScan = 64 << 10

// MiddlewareConfig configures NewMiddleware.
type MiddlewareConfig struct {
	// Verifier does the checks; required.
	Verifier *Verifier
	// Skipper selects requests that bypass the check; nil skips nothing.
	Skipper middleware.Skipper
	// PublicURL overrides the verifier's public base URL; "" uses it.
	PublicURL string
	// Tracer, when set, records each verification as a span "dpop.verify"
	// whose only attribute is its outcome ("accepted" or the refusal's
	// reason, fixed words). Nil: no span.
	Tracer trace.TracerProvider
}

// NewMiddleware returns the echo middleware that protects a route group with
// DPoP. It computes the expected htu from the public base URL and the path
// echo dispatched (never Host or X-Forwarded-*), verifies the request, stores
// the Principal in the request context (read it with PrincipalFrom), and sets
// DPoP-Nonce with Cache-Control: no-store when a fresh nonce should ride on the
// answer. Failures are returned as *Error for the server's error handler.
func NewMiddleware(cfg MiddlewareConfig) (echo.MiddlewareFunc, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("security: middleware needs a verifier")
	}
	skipper := cfg.Skipper
	if skipper == nil {
		skipper = middleware.DefaultSkipper
	}
	base := cfg.Verifier.PublicURL()
	if cfg.PublicURL != "" {
		n, err := normalizeHTU(cfg.PublicURL)
		if err != nil || strings.ContainsAny(cfg.PublicURL, "?#") {
			return nil, errors.New("security: middleware public URL must be an absolute http(s) URL without query or fragment")
		}
		base = strings.TrimSuffix(n, "/")
	}
	v := cfg.Verifier
	var tracer trace.Tracer
	if cfg.Tracer != nil {
		tracer = cfg.Tracer.Tracer("github.com/obpay/payments/internal/security")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if skipper(c) {
				return next(c)
			}
			r := c.Request()
			inParam, err := tokenParameter(r)
			if err != nil {
				return err
			}
			ctx := r.Context()
			var span trace.Span
			if tracer != nil {
				ctx, span = tracer.Start(ctx, "dpop.verify")
			}
			p, res, err := v.Verify(ctx, Request{
				Method:         r.Method,
				URL:            base + r.URL.EscapedPath(),
				Base:           base,
				Route:          c.Path(),
				Authorization:  r.Header.Values("Authorization"),
				DPoP:           r.Header.Values("DPoP"),
				TokenParameter: inParam,
			})
			if span != nil {
				endVerifySpan(span, err)
			}
			if err != nil {
				return err
			}
			if res.Nonce != "" {
				h := c.Response().Header()
				h.Set("DPoP-Nonce", res.Nonce)
				h.Set("Cache-Control", "no-store")
			}
			c.SetRequest(r.WithContext(WithPrincipal(r.Context(), p)))
			return next(c)
		}
	}, nil
}

// endVerifySpan records the verification's outcome on span and ends it.
func endVerifySpan(span trace.Span, err error) {
	outcome := "accepted"
	var e *Error
	switch {
	case errors.As(err, &e):
		outcome = e.Reason
	case err != nil:
		outcome = "error"
	}
	span.SetAttributes(attribute.String("dpop.outcome", outcome))
	if err != nil {
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}

// tokenParameter reports whether the request carries access_token in its
// query (RFC 6750 §2.3) or in a form-encoded body (RFC 6750 §2.2). The body
// is read up to a bound and put back for the handler.
func tokenParameter(r *http.Request) (bool, error) {
	if _, ok := r.URL.Query()["access_token"]; ok {
		return true, nil
	}
	if r.Body == nil || r.Body == http.NoBody {
		return false, nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return false, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormScan+1))
	if err != nil {
		return false, echo.NewHTTPError(http.StatusBadRequest, "unreadable request body")
	}
	if len(body) > maxFormScan {
		return false, echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return false, nil
	}
	_, ok := form["access_token"]
	return ok, nil
}

// RequireScope returns middleware that lets a request through only when the
// verified principal holds scope (RFC 6750 §3.1); otherwise it returns a 403
// insufficient_scope *Error. Without a principal (the DPoP middleware did not
// run) it returns a 401 invalid_token *Error: it never fails open. scope must
// be a plain scope token (no quotes, backslashes or control characters).
func RequireScope(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if e := CheckScope(c.Request().Context(), scope); e != nil {
				return e
			}
			return next(c)
		}
	}
}
