package security

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// introspectionError is a failed introspection call: the request answers
// 503 and the failure is logged at ERROR (HTTPIntrospector.failed).
type introspectionError struct {
	outcome string // metric outcome, one of the error_* values (or canceled)
	status  int    // the authorization server's HTTP status; 0 when none came
	code    string // its RFC 6749 §5.2 error code, when it sent a well-formed one
	err     error  // the cause without a status, if any
}

func (e *introspectionError) Error() string {
	s := "security: introspection failed: " + e.outcome
	if e.status != 0 {
		s += " (status " + strconv.Itoa(e.status)
		if e.code != "" {
			s += ", error " + e.code
		}
		s += ")"
	}
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *introspectionError) Unwrap() error { return e.err }

// cause is what the ERROR log is rate limited by, e.g. "error_as_401_403 401
// invalid_client": one line per kind of failure.
func (e *introspectionError) cause() string {
	return e.outcome + " " + strconv.Itoa(e.status) + " " + e.code
}

// statusAnswer maps an answer other than 200 (RFC 7662 §2.3). 400 with
// error invalid_token or unsupported_token_type (RFC 6749 §5.2, RFC 7009
// §2.2.1) is how some servers say that the token is not one they will
// describe: for us an inactive token, which the caller caches and counts like
// any inactive answer. Every other status is a failure, 401 and 403 above all
// (the server refused our own client credentials).
func statusAnswer(status int, body []byte) (Introspection, error) {
	code := errorCode(body)
	if status == 400 && (code == "invalid_token" || code == "unsupported_token_type") {
		return Introspection{}, nil
	}
	outcome := outcomeASStatus
	switch {
	case status == 401 || status == 403:
		outcome = outcomeCredentials
	case status >= 400 && status < 500:
		outcome = outcomeAS4xx
	case status >= 500:
		outcome = outcomeAS5xx
	}
	return Introspection{}, &introspectionError{outcome: outcome, status: status, code: code}
}

// errorCode returns the error member of an RFC 6749 §5.2 error body, whatever
// its Content-Type, or "" when there is none or it is not a well-formed code
// (1 to 64 characters of %x20-21 / %x23-5B / %x5D-7E): it goes to the log and
// keys the log's rate limit, so the server cannot make it long or odd.
func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Error) == 0 || len(e.Error) > 64 {
		return ""
	}
	for i := 0; i < len(e.Error); i++ {
		if c := e.Error[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return ""
		}
	}
	return e.Error
}

// transportFailure classifies an error of the call or of reading its answer:
// the request went away (ctx canceled), the call timed out, or no answer came.
func transportFailure(ctx context.Context, err error) error {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return &introspectionError{outcome: outcomeCanceled, err: err}
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return &introspectionError{outcome: outcomeTimeout, err: err}
	}
	return &introspectionError{outcome: outcomeTransport, err: err}
}

// malformed is a 200 answer that is not an RFC 7662 §2.2 JSON answer.
func malformed(err error) error {
	return &introspectionError{outcome: outcomeMalformed, err: err}
}

// failed counts a failed call and logs it at ERROR (someone must act: the
// service answers 503 until the authorization server answers again), at most
// once per logEvery per cause, with the number of lines held back since the
// last one. The line carries the server's status and error code, never the
// token or our credentials. A request that went away is not logged.
func (in *HTTPIntrospector) failed(ctx context.Context, err error) {
	var ie *introspectionError
	if !errors.As(err, &ie) {
		ie = &introspectionError{outcome: outcomeRequest, err: err}
	}
	in.metrics.count(ie.outcome)
	if ie.outcome == outcomeCanceled {
		return
	}
	ok, suppressed := in.logLimit.allow(ie.cause(), in.now())
	if !ok {
		return
	}
	attrs := []slog.Attr{
		slog.String("outcome", ie.outcome),
		slog.Int("as_status", ie.status),
		slog.String("as_error", ie.code),
		slog.Int("suppressed", suppressed),
	}
	if ie.err != nil {
		attrs = append(attrs, slog.String("error", ie.err.Error()))
	}
	in.log.LogAttrs(ctx, slog.LevelError, "introspection failed", attrs...)
}

// logEvery is how often one cause of failure is logged at most.
const logEvery = 10 * time.Second

// maxLogCauses bounds the causes a logLimiter tracks; past it, new causes
// share one slot.
const maxLogCauses = 64

// logLimiter lets one line per cause through per interval and counts the
// lines it held back, so that an authorization server failing under load
// gives one ERROR line per cause every interval, not one per request. It is
// safe for concurrent use.
type logLimiter struct {
	every time.Duration

	mu     sync.Mutex
	causes map[string]*logSlot
}

type logSlot struct {
	last       time.Time // when the cause was last logged
	suppressed int       // lines held back since
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, causes: map[string]*logSlot{}}
}

// allow reports whether a line for cause may be logged at now, and how many
// lines for it were held back since the last one.
func (l *logLimiter) allow(cause string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.causes[cause]
	if !ok && len(l.causes) >= maxLogCauses {
		for k, old := range l.causes {
			if now.Sub(old.last) >= l.every {
				delete(l.causes, k)
			}
		}
		if len(l.causes) >= maxLogCauses {
			cause = "other"
			s, ok = l.causes[cause]
		}
	}
	if !ok {
		l.causes[cause] = &logSlot{last: now}
		return true, 0
	}
	if now.Sub(s.last) < l.every {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.last, s.suppressed = now, 0
	return true, n
}
