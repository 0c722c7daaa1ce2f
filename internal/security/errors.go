package security

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Wire error codes carried in the WWW-Authenticate challenge (RFC 6750 §3.1,
// RFC 9449 §7.1 and §9).
const (
	CodeInvalidProof      = "invalid_dpop_proof"
	CodeInvalidToken      = "invalid_token"
	CodeUseNonce          = "use_dpop_nonce"
	CodeInvalidRequest    = "invalid_request"
	CodeInsufficientScope = "insufficient_scope"
)

// Fixed error descriptions. They never contain request input, and each uses
// only the characters RFC 6750 §3 allows in error_description.
const (
	descInvalidProof   = "Invalid DPoP proof"
	descInvalidToken   = "Invalid access token"
	descKeyBinding     = "Invalid DPoP key binding"
	descUseNonce       = "Resource server requires nonce in DPoP proof"
	descMultiple       = "Multiple methods used to include access token"
	descNoCredentials  = "DPoP access token required"
	descInsufficient   = "Insufficient scope"
	descAuthServerDown = "Authorization server unavailable"
	descReplayDown     = "Replay store unavailable"
)

// Error is the error type of every rejection: Verifier.Verify returns no
// other, and RequireScope and CheckScope return no other of their own. The
// middleware of NewMiddleware returns it too, except for a form-encoded body
// it cannot read (a 400 *echo.HTTPError) or that is larger than its scan
// bound (a 413 *echo.HTTPError); both middlewares also pass on whatever the
// next handler returns. The server's HTTP error handler renders it: Status, a
// WWW-Authenticate header with WWWAuthenticate() when that is not empty,
// DPoP-Nonce plus "Cache-Control: no-store" when Nonce is set, Retry-After
// (whole seconds) when RetryAfter > 0, and the OB error body built from
// Description. No field ever holds request input.
type Error struct {
	// Status is the HTTP status: 400, 401, 403 or 503.
	Status int
	// Code is the wire error code (one of the Code* constants), or "" for the
	// bare challenge sent when no usable credentials were presented.
	Code string
	// Description is a short, fixed, human-readable reason.
	Description string
	// Reason is a fixed machine-readable name of the failed check (for
	// example "htu_mismatch"); it feeds logs and metrics, never the response.
	Reason string
	// Nonce is a fresh DPoP-Nonce to send with the answer, if any.
	Nonce string
	// RetryAfter is the delay to advertise with a 503; zero means none.
	RetryAfter time.Duration
	// Scope is the scope the route requires (insufficient_scope only).
	Scope string

	algs     string // space-separated allowed algorithms, from configuration
	metadata string // RFC 9728 §5.1 resource_metadata URL (401 only), from configuration
}

// Error returns a fixed summary suitable for logs.
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = "no_credentials"
	}
	return fmt.Sprintf("security: %d %s (%s)", e.Status, code, e.Reason)
}

// WWWAuthenticate renders the value of the WWW-Authenticate header exactly as
// RFC 9449 §7.1 and RFC 6750 §3 shape it (docs/design.md section 4), with
// RFC 9728 §5.1's resource_metadata on 401 answers when the verifier was
// configured with one, or "" when no challenge belongs to the answer (503:
// the service, not the credentials, failed).
func (e *Error) WWWAuthenticate() string {
	var b strings.Builder
	b.WriteString("DPoP")
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(value)
		b.WriteByte('"')
		sep = ", "
	}
	switch e.Code {
	case "":
		if e.Status == 503 {
			return ""
		}
	case CodeUseNonce:
		// RFC 9449 Fig.24: error and description, and no algs.
		param("error", e.Code)
		param("error_description", quotable(e.Description))
		if e.metadata != "" {
			param("resource_metadata", e.metadata)
		}
		return b.String()
	case CodeInsufficientScope:
		// RFC 6750 §3.1: error and the scope the route needs.
		param("error", e.Code)
		if s := quotable(e.Scope); s != "" {
			param("scope", s)
		}
		return b.String()
	default:
		param("error", e.Code)
		param("error_description", quotable(e.Description))
	}
	if e.algs != "" {
		param("algs", e.algs)
	}
	if e.metadata != "" {
		// RFC 9728 §5.1: where to learn how to get a token for this API.
		param("resource_metadata", e.metadata)
	}
	return b.String()
}

// RetryAfterSeconds returns RetryAfter as the whole number of seconds the
// Retry-After header carries (rounded up), or "" when it is zero.
func (e *Error) RetryAfterSeconds() string {
	if e.RetryAfter <= 0 {
		return ""
	}
	s := int64((e.RetryAfter + time.Second - 1) / time.Second)
	return strconv.FormatInt(s, 10)
}

// quotable drops the value when it holds a character that RFC 6750 §3 does not
// allow inside a quoted challenge parameter (%x20-21 / %x23-5B / %x5D-7E).
// Descriptions and scopes are constants, so this is a second line of defence
// against header injection, not a formatter.
func quotable(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return ""
		}
	}
	return s
}

func (v *Verifier) fail(status int, code, desc, reason string) *Error {
	e := &Error{Status: status, Code: code, Description: desc, Reason: reason, algs: v.algsHeader}
	if status == 401 {
		e.metadata = v.metadata
	}
	return e
}

func (v *Verifier) proofError(reason string) *Error {
	return v.fail(401, CodeInvalidProof, descInvalidProof, reason)
}

func (v *Verifier) tokenError(reason string) *Error {
	return v.fail(401, CodeInvalidToken, descInvalidToken, reason)
}

func (v *Verifier) bindingError(reason string) *Error {
	return v.fail(401, CodeInvalidToken, descKeyBinding, reason)
}

func (v *Verifier) noCredentials(reason string) *Error {
	return v.fail(401, "", descNoCredentials, reason)
}

func (v *Verifier) multipleMethods(reason string) *Error {
	return v.fail(400, CodeInvalidRequest, descMultiple, reason)
}

func (v *Verifier) nonceError(reason string, now time.Time) *Error {
	e := v.fail(401, CodeUseNonce, descUseNonce, reason)
	e.Nonce = v.nonces.issue(now)
	return e
}

func (v *Verifier) unavailable(desc, reason string) *Error {
	e := v.fail(503, "", desc, reason)
	e.RetryAfter = v.retryAfter
	return e
}
