package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// readyTimeout bounds the database ping of GET /readyz.
const readyTimeout = time.Second

// retryAfterSeconds is the Retry-After of the 503s that say the database
// cannot serve now: /readyz's failed ping, and any route's request that met
// ledger.ErrUnavailable or an exhausted transaction conflict (see obError).
const retryAfterSeconds = "1"

type healthStatus struct {
	Status     string            `json:"Status"`
	Components map[string]string `json:"Components,omitempty"`
}

// healthz answers 200 while the process serves HTTP.
func healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, healthStatus{Status: "UP"})
}

// readyz answers 200 when ping succeeds within readyTimeout, else 503 with an
// OB error body. status, when not nil, fills the ready body's Components:
// reported, never failing readiness (a node whose authorization server is
// down still serves what needs no token, and leaving the load balancer would
// not bring the server back).
func readyz(ping func(context.Context) error, status func(context.Context) map[string]string) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		defer cancel()
		if err := ping(ctx); err != nil {
			return &APIError{
				Status:  http.StatusServiceUnavailable,
				Details: []ErrorDetail{{ErrorCode: CodeServiceUnavailable, Message: "Database unreachable"}},
				Header:  http.Header{echo.HeaderRetryAfter: []string{retryAfterSeconds}},
			}
		}
		body := healthStatus{Status: "READY"}
		if status != nil {
			body.Components = status(ctx)
		}
		return c.JSON(http.StatusOK, body)
	}
}
