package handlers

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/obpay/payments/internal/security"
)

// DefaultRateLimitClients is how many clients a RateLimiter tracks at most
// when RateLimitConfig.MaxClients is zero.
const DefaultRateLimitClients = 10_000

// RateLimitConfig configures NewRateLimiter.
type RateLimitConfig struct {
	// Rate is the sustained number of requests per second one client may
	// make; Burst how many it may make at once (the bucket's size). Both
	// must be positive.
	Rate  float64
	Burst int
	// MaxClients bounds the clients tracked at once; zero means
	// DefaultRateLimitClients.
	MaxClients int
	// Registerer receives payments_rate_limited_total; nil registers
	// nothing.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// RateLimiter limits the requests of each client, by the client id of its
// verified token, with a token bucket per client: Rate requests per second
// sustained, Burst at once. It is per process: N nodes behind a balancer let
// a client make up to N times the rate.
//
// Memory is bounded: at most MaxClients buckets. A bucket unused for
// Burst/Rate seconds is full again, the same as a new one, so such idle
// buckets are dropped without changing any answer; only when every tracked
// client is active does a new one take the place of the least recently seen
// (which then starts again with a full bucket).
type RateLimiter struct {
	limit     rate.Limit
	burst     int
	max       int
	idle      time.Duration // a bucket unused this long is full
	now       func() time.Time
	refused   prometheus.Counter
	mu        sync.RWMutex
	clients   map[string]*clientBucket
	lastSweep time.Time // under mu (write)
}

type clientBucket struct {
	lim  *rate.Limiter
	seen atomic.Int64 // unix nanoseconds of the last request
}

// NewRateLimiter returns a limiter for cfg.
func NewRateLimiter(cfg RateLimitConfig) (*RateLimiter, error) {
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) || cfg.Burst <= 0 {
		return nil, errors.New("handlers: rate limit needs a positive rate and burst")
	}
	if cfg.MaxClients < 0 {
		return nil, errors.New("handlers: rate limit MaxClients is negative")
	}
	l := &RateLimiter{
		limit:   rate.Limit(cfg.Rate),
		burst:   cfg.Burst,
		max:     cfg.MaxClients,
		now:     cfg.Now,
		clients: make(map[string]*clientBucket),
	}
	if l.max == 0 {
		l.max = DefaultRateLimitClients
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.idle = time.Duration(float64(cfg.Burst) / cfg.Rate * float64(time.Second))
	if l.idle < time.Second {
		l.idle = time.Second
	}
	l.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "payments_rate_limited_total",
		Help: "Requests refused with 429 because their client exceeded PAYMENTS_RATE_LIMIT on this node.",
	})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(l.refused); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Middleware returns the echo middleware. It must run after the DPoP
// middleware, which stores the verified principal; a request without one is
// not limited here (it did not pass the DPoP check, or the route is not
// protected). A client over its limit gets 429 with Retry-After (whole
// seconds until its next request is allowed) and an OB error body.
func (l *RateLimiter) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok := security.PrincipalFrom(c.Request().Context())
			if !ok {
				return next(c)
			}
			if wait, ok := l.allow(p.ClientID); !ok {
				l.refused.Inc()
				e := NewAPIError(http.StatusTooManyRequests, CodeTooManyRequests,
					"Too many requests from this client; retry after the number of seconds in Retry-After", "")
				e.Header = http.Header{echo.HeaderRetryAfter: []string{retryAfter(wait)}}
				return e
			}
			return next(c)
		}
	}
}

// allow takes one token from client's bucket. When there is none it returns
// false and how long until there is one.
func (l *RateLimiter) allow(client string) (time.Duration, bool) {
	now := l.now()
	l.mu.RLock()
	b := l.clients[client]
	l.mu.RUnlock()
	if b == nil {
		b = l.add(client, now)
	}
	b.seen.Store(now.UnixNano())
	if b.lim.AllowN(now, 1) {
		return 0, true
	}
	missing := 1 - b.lim.TokensAt(now)
	return time.Duration(missing / float64(l.limit) * float64(time.Second)), false
}

// add returns client's bucket, creating it. It drops idle buckets first when
// the last sweep is older than the idle time or the table is full, and the
// least recently seen bucket when it is still full.
func (l *RateLimiter) add(client string, now time.Time) *clientBucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.clients[client]; b != nil {
		return b
	}
	if len(l.clients) >= l.max || now.Sub(l.lastSweep) >= l.idle {
		l.sweep(now)
	}
	if len(l.clients) >= l.max {
		var oldest string
		least := int64(math.MaxInt64)
		for k, b := range l.clients {
			if s := b.seen.Load(); s < least {
				oldest, least = k, s
			}
		}
		delete(l.clients, oldest)
	}
	b := &clientBucket{lim: rate.NewLimiter(l.limit, l.burst)}
	b.seen.Store(now.UnixNano())
	l.clients[client] = b
	return b
}

// sweep drops the buckets unused for the idle time: they are full, like a
// new one. Called with l.mu held.
func (l *RateLimiter) sweep(now time.Time) {
	l.lastSweep = now
	cutoff := now.Add(-l.idle).UnixNano()
	for k, b := range l.clients {
		if b.seen.Load() <= cutoff {
			delete(l.clients, k)
		}
	}
}

// Tracked reports how many clients have a bucket.
func (l *RateLimiter) Tracked() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.clients)
}

// retryAfter writes a wait as Retry-After's whole seconds, rounded up, at
// least 1.
func retryAfter(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
