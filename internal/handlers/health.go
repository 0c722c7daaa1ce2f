package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// readyTimeout bounds the checks of GET /readyz: a dependency that does not
// answer within it is down as far as readiness is concerned.
const readyTimeout = time.Second

// retryAfterSeconds is the Retry-After of the 503s that say the database
// cannot serve now: /readyz's failed ping, and any route's request that met
// ledger.ErrUnavailable or an exhausted transaction conflict (see obError).
const retryAfterSeconds = "1"

// ReadyCheck is one dependency readiness needs. Name appears in the 503 body
// ("<Name> unreachable") and in the log, never the error itself, which may
// name hosts.
type ReadyCheck struct {
	Name string
	Ping func(context.Context) error
}

// msgShuttingDown is the 503 message of /readyz while the node drains.
const msgShuttingDown = "Shutting down"

type healthStatus struct {
	Status     string            `json:"Status"`
	Components map[string]string `json:"Components,omitempty"`
}

// healthz answers 200 while the process serves HTTP.
func healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, healthStatus{Status: "UP"})
}

// readyz answers 200 when every check succeeds within readyTimeout and the
// node is not draining, else 503 with an OB error body that has one entry
// per cause ("Database unreachable", "Redis unreachable", "Shutting down").
// The checks run concurrently. status, when not nil, fills the ready body's
// Components: reported, never failing readiness (a node whose authorization
// server is down still serves what needs no token, and leaving the load
// balancer would not bring the server back). A change between ready and not
// ready is logged once (WARN with the causes, INFO when ready again); the
// probes themselves are access-logged at DEBUG only.
func readyz(checks []ReadyCheck, draining func() bool, status func(context.Context) map[string]string, log *slog.Logger) echo.HandlerFunc {
	var notReady atomic.Bool
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		defer cancel()
		failed := make([]bool, len(checks))
		var wg sync.WaitGroup
		for i, ch := range checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				failed[i] = ch.Ping(ctx) != nil
			}()
		}
		wg.Wait()
		var details []ErrorDetail
		var causes []string
		if draining != nil && draining() {
			details = append(details, ErrorDetail{ErrorCode: CodeServiceUnavailable, Message: msgShuttingDown})
			causes = append(causes, msgShuttingDown)
		}
		for i, ch := range checks {
			if failed[i] {
				msg := ch.Name + " unreachable"
				details = append(details, ErrorDetail{ErrorCode: CodeServiceUnavailable, Message: msg})
				causes = append(causes, msg)
			}
		}
		if len(details) > 0 {
			if log != nil && !notReady.Swap(true) {
				log.WarnContext(c.Request().Context(), "not ready", "causes", strings.Join(causes, "; "))
			}
			return &APIError{
				Status:  http.StatusServiceUnavailable,
				Details: details,
				Header:  http.Header{echo.HeaderRetryAfter: []string{retryAfterSeconds}},
			}
		}
		if log != nil && notReady.Swap(false) {
			log.InfoContext(c.Request().Context(), "ready again")
		}
		body := healthStatus{Status: "READY"}
		if status != nil {
			body.Components = status(ctx)
		}
		return c.JSON(http.StatusOK, body)
	}
}
