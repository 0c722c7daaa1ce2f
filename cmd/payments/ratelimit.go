package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obpay/payments/internal/handlers"
)

// rateLimit is PAYMENTS_RATE_LIMIT: requests per second and burst per client
// id; the zero value is off.
type rateLimit struct {
	PerSecond float64
	Burst     int
}

func (r rateLimit) on() bool { return r.PerSecond > 0 }

// Bounds of PAYMENTS_RATE_LIMIT's numbers.
const maxRateLimitCount = 1_000_000

const rateLimitForm = `must be "off" or N/s or N/m with an optional ",burst=B", e.g. 50/s,burst=100 (N and B from 1 to 1000000)`

// parseRateLimit reads "off", or "N/s" or "N/m" (N requests per second or
// per minute) followed optionally by ",burst=B". Without a burst, B is N:
// a client may spend one period's requests at once.
func parseRateLimit(v string) (rateLimit, error) {
	if v == "off" {
		return rateLimit{}, nil
	}
	spec, burstPart, hasBurst := strings.Cut(v, ",")
	count, unit, ok := strings.Cut(strings.TrimSpace(spec), "/")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if !ok || err != nil || n < 1 || n > maxRateLimitCount {
		return rateLimit{}, errors.New(rateLimitForm)
	}
	r := rateLimit{Burst: n}
	switch strings.TrimSpace(unit) {
	case "s":
		r.PerSecond = float64(n)
	case "m":
		r.PerSecond = float64(n) / 60
	default:
		return rateLimit{}, errors.New(rateLimitForm)
	}
	if hasBurst {
		b, found := strings.CutPrefix(strings.TrimSpace(burstPart), "burst=")
		burst, err := strconv.Atoi(b)
		if !found || err != nil || burst < 1 || burst > maxRateLimitCount {
			return rateLimit{}, errors.New(rateLimitForm)
		}
		r.Burst = burst
	}
	return r, nil
}

// withRateLimit puts the per-client rate limit after each of the DPoP
// middlewares dpops points to (the client id is known once DPoP and the
// token are verified) when PAYMENTS_RATE_LIMIT is on, else leaves them
// unchanged; nil ones are skipped. One limiter serves them all, so a client
// has one budget whichever listener it calls.
func withRateLimit(r rateLimit, reg prometheus.Registerer, dpops ...*echo.MiddlewareFunc) error {
	if !r.on() {
		return nil
	}
	l, err := handlers.NewRateLimiter(handlers.RateLimitConfig{Rate: r.PerSecond, Burst: r.Burst, Registerer: reg})
	if err != nil {
		return err
	}
	limit := l.Middleware()
	for _, p := range dpops {
		if dpop := *p; dpop != nil {
			*p = func(next echo.HandlerFunc) echo.HandlerFunc { return dpop(limit(next)) }
		}
	}
	return nil
}
