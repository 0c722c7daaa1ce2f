package handlers

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/security"
)

// OB error codes (UK Open Banking Read/Write API v3.1.11, the ErrorCode
// enumeration) used by this service. The answers OB gives no code for
// (401, 403, 405, 406, 413, 415, 429, 501, 503, ...) carry codes of the
// service's own namespace, never an invented UK.OBIE one: DefaultNamespace
// here, replaced at render time by Config.ErrorNamespace.
const (
	CodeFieldInvalid          = "UK.OBIE.Field.Invalid"
	CodeFieldMissing          = "UK.OBIE.Field.Missing"
	CodeFieldExpected         = "UK.OBIE.Field.Expected"
	CodeFieldUnexpected       = "UK.OBIE.Field.Unexpected"
	CodeHeaderInvalid         = "UK.OBIE.Header.Invalid"
	CodeHeaderMissing         = "UK.OBIE.Header.Missing"
	CodeResourceNotFound      = "UK.OBIE.Resource.NotFound"
	CodeResourceInvalidFormat = "UK.OBIE.Resource.InvalidFormat"
	CodeConsentMismatch       = "UK.OBIE.Resource.ConsentMismatch"
	CodeInvalidConsentStatus  = "UK.OBIE.Resource.InvalidConsentStatus"
	CodeUnexpectedError       = "UK.OBIE.UnexpectedError"

	// The service's own codes, in DefaultNamespace.
	CodeUnsupportedMediaType   = DefaultNamespace + ".UnsupportedMediaType"
	CodeUnauthorized           = DefaultNamespace + ".Unauthorized"
	CodeForbidden              = DefaultNamespace + ".Forbidden"
	CodeMethodNotAllowed       = DefaultNamespace + ".MethodNotAllowed"
	CodeNotImplemented         = DefaultNamespace + ".NotImplemented"
	CodeServiceUnavailable     = DefaultNamespace + ".ServiceUnavailable"
	CodeRequestEntityTooLarge  = DefaultNamespace + ".RequestTooLarge"
	CodeNotAcceptable          = DefaultNamespace + ".NotAcceptable"
	CodeTooManyRequests        = DefaultNamespace + ".TooManyRequests"
	CodeResourceInvalidRequest = DefaultNamespace + ".InvalidRequest"
)

// DefaultNamespace is the namespace of the service's own error codes when
// Config.ErrorNamespace is empty.
const DefaultNamespace = "OBPAY"

// inNamespace writes code, when it is one of the service's own, in ns.
func inNamespace(code, ns string) string {
	if ns == DefaultNamespace || ns == "" {
		return code
	}
	if rest, ok := strings.CutPrefix(code, DefaultNamespace+"."); ok {
		return ns + "." + rest
	}
	return code
}

// ErrorDetail is one entry of OBErrorResponse1.Errors.
type ErrorDetail struct {
	ErrorCode string `json:"ErrorCode"`
	Message   string `json:"Message"`
	Path      string `json:"Path,omitempty"`
	URL       string `json:"Url,omitempty"` // v4.0 answers only
}

// ErrorBody is the OBErrorResponse1 body written for every error.
type ErrorBody struct {
	Code    string        `json:"Code"`
	ID      string        `json:"Id,omitempty"`
	Message string        `json:"Message"`
	Errors  []ErrorDetail `json:"Errors"`
}

// APIError is an error a handler returns to answer with a given status and
// OB error body. Its messages are fixed strings or validated values, never
// unchecked request input that could be reflected. Err, when set, is the
// service error it answers: the renderer's v4.0 translation reads it where
// the v3.1 code alone cannot tell (an idempotency key reused with another
// body).
type APIError struct {
	Status  int
	Details []ErrorDetail
	Header  http.Header // extra response headers, e.g. Retry-After
	Err     error
}

func (e *APIError) Unwrap() error { return e.Err }

func (e *APIError) Error() string {
	if len(e.Details) == 0 {
		return fmt.Sprintf("api error %d", e.Status)
	}
	return fmt.Sprintf("api error %d: %s: %s", e.Status, e.Details[0].ErrorCode, e.Details[0].Message)
}

// NewAPIError returns an APIError with one detail.
func NewAPIError(status int, code, message, path string) *APIError {
	return &APIError{Status: status, Details: []ErrorDetail{{ErrorCode: code, Message: message, Path: path}}}
}

// errorHandler is the server's single error renderer (echo.HTTPErrorHandler).
// It maps every error to a status and an OBErrorResponse1 body; anything it
// does not know becomes a 500 with a fixed message, and the cause goes only to
// the log. A request under /open-banking/v4.0 gets the v4.0 codes (see
// v4Answer; publicURL is the base of the Url it links); any other gets the
// v3.1 codes, the service's own ones in namespace.
func errorHandler(log *slog.Logger, namespace, publicURL string) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, details := http.StatusInternalServerError, []ErrorDetail(nil)
		h := c.Response().Header()

		var (
			apiErr  *APIError
			secErr  *security.Error
			httpErr *echo.HTTPError
		)
		switch {
		case errors.As(err, &apiErr):
			status, details = apiErr.Status, apiErr.Details
			for k, vs := range apiErr.Header {
				for _, v := range vs {
					h.Add(k, v)
				}
			}
		case errors.As(err, &secErr):
			status = secErr.Status
			if v := secErr.WWWAuthenticate(); v != "" {
				h.Set(echo.HeaderWWWAuthenticate, v)
			}
			if secErr.Nonce != "" {
				h.Set("DPoP-Nonce", secErr.Nonce)
				h.Set("Cache-Control", "no-store")
			}
			if secErr.RetryAfter > 0 {
				h.Set(echo.HeaderRetryAfter, strconv.Itoa(int((secErr.RetryAfter+999_999_999)/1_000_000_000)))
			}
			details = []ErrorDetail{securityDetail(secErr)}
		case errors.As(err, &httpErr):
			status = httpErr.Code
			details = []ErrorDetail{httpDetail(httpErr)}
			if httpErr.Internal != nil {
				log.InfoContext(c.Request().Context(), "request rejected", "status", status, "cause", httpErr.Internal.Error())
			}
		}
		if details == nil && c.Request().Context().Err() != nil {
			// The request outlived its deadline or its client went away, and
			// the handler stopped: nothing is broken, and whoever is still
			// listening may retry.
			status = http.StatusServiceUnavailable
			details = []ErrorDetail{{ErrorCode: CodeUnexpectedError, Message: "The request was abandoned before it completed; retry"}}
			h.Set(echo.HeaderRetryAfter, "1")
			log.InfoContext(c.Request().Context(), "request abandoned", "cause", err.Error(),
				"interaction_id", InteractionID(c.Request().Context()))
		}
		if status == http.StatusInternalServerError && details == nil {
			log.ErrorContext(c.Request().Context(), "unhandled error", "error", err.Error(),
				"interaction_id", InteractionID(c.Request().Context()))
			details = []ErrorDetail{{ErrorCode: CodeUnexpectedError, Message: "Internal error"}}
		}
		if isV4Path(c.Request().URL.Path) {
			status, details = v4Answer(err, status, details, publicURL)
		} else {
			own := make([]ErrorDetail, len(details))
			for i, d := range details {
				d.ErrorCode = inNamespace(d.ErrorCode, namespace)
				own[i] = d
			}
			details = own
		}
		c.Set(errorCodeKey, details[0].ErrorCode) // for httpMetrics
		body := ErrorBody{
			Code:    fmt.Sprintf("%d %s", status, http.StatusText(status)),
			ID:      InteractionID(c.Request().Context()),
			Message: http.StatusText(status),
			Errors:  details,
		}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(status)
		} else {
			err = c.JSON(status, body)
		}
		if err != nil {
			log.WarnContext(c.Request().Context(), "write error response", "error", err.Error())
		}
	}
}

// securityDetail maps a DPoP/token verdict to an OB error detail. The message
// is the verdict's fixed description (its Detail when it has one), which names
// the failed check in the server's words; nothing from the request is echoed.
func securityDetail(e *security.Error) ErrorDetail {
	d := ErrorDetail{Message: e.Description}
	if e.Detail != "" {
		d.Message = e.Detail
	}
	if d.Message == "" {
		d.Message = http.StatusText(e.Status)
	}
	switch e.Status {
	case http.StatusForbidden:
		d.ErrorCode = CodeForbidden
	case http.StatusServiceUnavailable:
		d.ErrorCode = CodeServiceUnavailable
	case http.StatusBadRequest:
		d.ErrorCode, d.Path = CodeHeaderInvalid, "Authorization"
	default:
		d.ErrorCode = CodeUnauthorized
	}
	return d
}

// httpDetail maps echo's own errors (router, body limit, binder) to OB codes.
func httpDetail(e *echo.HTTPError) ErrorDetail {
	switch e.Code {
	case http.StatusNotFound:
		return ErrorDetail{ErrorCode: CodeResourceNotFound, Message: "No such resource"}
	case http.StatusMethodNotAllowed:
		return ErrorDetail{ErrorCode: CodeMethodNotAllowed, Message: "Method not allowed on this resource"}
	case http.StatusRequestEntityTooLarge:
		return ErrorDetail{ErrorCode: CodeRequestEntityTooLarge, Message: "Request body too large"}
	case http.StatusUnsupportedMediaType:
		return ErrorDetail{ErrorCode: CodeUnsupportedMediaType, Message: "Content-Type must be application/json"}
	case http.StatusNotImplemented:
		return ErrorDetail{ErrorCode: CodeNotImplemented, Message: "Not implemented yet"}
	case http.StatusServiceUnavailable:
		return ErrorDetail{ErrorCode: CodeServiceUnavailable, Message: "Service unavailable"}
	case http.StatusBadRequest:
		return ErrorDetail{ErrorCode: CodeResourceInvalidFormat, Message: "Malformed request"}
	case http.StatusUnauthorized:
		return ErrorDetail{ErrorCode: CodeUnauthorized, Message: "Unauthorized"}
	case http.StatusForbidden:
		return ErrorDetail{ErrorCode: CodeForbidden, Message: "Forbidden"}
	case http.StatusTooManyRequests:
		return ErrorDetail{ErrorCode: CodeTooManyRequests, Message: "Too many requests"}
	}
	if e.Code >= 500 {
		return ErrorDetail{ErrorCode: CodeUnexpectedError, Message: "Internal error"}
	}
	return ErrorDetail{ErrorCode: CodeResourceInvalidRequest, Message: http.StatusText(e.Code)}
}
