package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/openbanking"
)

// v4Prefix is the path of the Open Banking v4.0 API: the error renderer
// answers every request under it with v4.0 error codes.
const v4Prefix = "/open-banking/v4.0"

// isV4Path reports whether a request path is under v4Prefix.
func isV4Path(path string) bool {
	return path == v4Prefix || strings.HasPrefix(path, v4Prefix+"/")
}

// Error codes of OB v4.0 (ErrorCode, exactly 4 characters, from the OB
// internal code set), the ones this service answers.
const (
	CodeV4Unexpected           = "U000"
	CodeV4FieldInvalid         = "U002"
	CodeV4FieldInvalidDate     = "U003"
	CodeV4FieldMissing         = "U004"
	CodeV4FieldUnexpected      = "U005"
	CodeV4HeaderInvalid        = "U006"
	CodeV4HeaderMissing        = "U007"
	CodeV4ConsentMismatch      = "U008"
	CodeV4InvalidConsentStatus = "U009"
	CodeV4InvalidFormat        = "U010"
	CodeV4NotFound             = "U011"
	CodeV4UnsupportedCurrency  = "U023"
	CodeV4UnsupportedScheme    = "U027"
	CodeV4IdempotencyReused    = "U029"
	CodeV4NotDisclosed         = "U042"
)

// More v3.1 codes, only translated to v4.0 here: no v3.1 answer of this
// service carries them today (an unknown creditor scheme is paid out through
// the settlement account like any external creditor, and no date has its
// own v3.1 code), but a detail that does is translated.
const (
	CodeFieldInvalidDate             = "UK.OBIE.Field.InvalidDate"
	CodeUnsupportedScheme            = "UK.OBIE.Unsupported.Scheme"
	CodeUnsupportedAccountIdentifier = "UK.OBIE.Unsupported.AccountIdentifier"
)

const (
	// pathIdempotencyDocs is where, under the public URL, a v4.0 answer to a
	// reused idempotency key points for the rules.
	pathIdempotencyDocs  = "/docs/idempotency"
	msgIdempotencyReused = "Idempotency key already used with another request body"
)

// v4Codes is the translation of the v3.1 codes of 400 answers (and of
// codes a 4xx of another status carries when v4StatusCodes has no row for
// its status).
var v4Codes = map[string]string{
	CodeFieldMissing:                 CodeV4FieldMissing,
	CodeFieldExpected:                CodeV4FieldMissing, // OB: a member expected here is absent
	CodeFieldInvalid:                 CodeV4FieldInvalid,
	CodeFieldInvalidDate:             CodeV4FieldInvalidDate,
	CodeFieldUnexpected:              CodeV4FieldUnexpected,
	CodeHeaderInvalid:                CodeV4HeaderInvalid,
	CodeHeaderMissing:                CodeV4HeaderMissing,
	CodeConsentMismatch:              CodeV4ConsentMismatch,
	CodeInvalidConsentStatus:         CodeV4InvalidConsentStatus,
	CodeResourceInvalidFormat:        CodeV4InvalidFormat,
	CodeResourceNotFound:             CodeV4NotFound,
	CodeUnsupportedCurrency:          CodeV4UnsupportedCurrency,
	CodeUnsupportedScheme:            CodeV4UnsupportedScheme,
	CodeUnsupportedAccountIdentifier: CodeV4UnsupportedScheme,
	CodeUnexpectedError:              CodeV4Unexpected,
}

// v4StatusCodes is the translation of answers whose status alone decides the
// v4.0 code, whatever their v3.1 code: the contract's U042 (reason not
// disclosed) for 401, 403, 404 (no such route), 405 and 429; U006 naming the
// header for 406 and 415; U010 for 413.
var v4StatusCodes = map[int]ErrorDetail{
	http.StatusUnauthorized:          {ErrorCode: CodeV4NotDisclosed},
	http.StatusForbidden:             {ErrorCode: CodeV4NotDisclosed},
	http.StatusNotFound:              {ErrorCode: CodeV4NotDisclosed},
	http.StatusMethodNotAllowed:      {ErrorCode: CodeV4NotDisclosed},
	http.StatusTooManyRequests:       {ErrorCode: CodeV4NotDisclosed},
	http.StatusNotAcceptable:         {ErrorCode: CodeV4HeaderInvalid, Path: echo.HeaderAccept},
	http.StatusUnsupportedMediaType:  {ErrorCode: CodeV4HeaderInvalid, Path: echo.HeaderContentType},
	http.StatusRequestEntityTooLarge: {ErrorCode: CodeV4InvalidFormat},
}

// toV4 translates one detail of a v3.1 answer with status to v4.0. code is
// the detail's code in DefaultNamespace (before Config.ErrorNamespace is
// applied). The message is kept, except where U042 hides the reason (its
// Path is kept); a Field.Invalid whose Path names a date member (see
// isDatePath) is U003, and a Field.Invalid without a Path (the body's root)
// is U010. Any other 4xx is U002; 5xx is U000.
func toV4(status int, d ErrorDetail) ErrorDetail {
	if s, ok := v4StatusCodes[status]; ok {
		out := ErrorDetail{ErrorCode: s.ErrorCode, Message: d.Message, Path: s.Path}
		if s.ErrorCode == CodeV4NotDisclosed {
			// The message, which would say why, is the status's; the Path
			// stays: Authorization on the 403 of a client-credentials
			// token where the customer's is needed, which the SDK reads.
			out.Message, out.Path = http.StatusText(status), d.Path
		}
		return withMessage(status, out)
	}
	if status >= http.StatusInternalServerError {
		return withMessage(status, ErrorDetail{ErrorCode: CodeV4Unexpected, Message: d.Message})
	}
	out := ErrorDetail{ErrorCode: CodeV4FieldInvalid, Message: d.Message, Path: d.Path, URL: d.URL}
	if code, ok := v4Codes[d.ErrorCode]; ok {
		out.ErrorCode = code
	}
	switch {
	case out.ErrorCode == CodeV4FieldInvalid && d.ErrorCode == CodeFieldInvalid && d.Path == "":
		// An invalid value without a Path is the body itself, at its root:
		// not an object (an array, a string, ...).
		out.ErrorCode = CodeV4InvalidFormat
	case out.ErrorCode == CodeV4FieldInvalid && isDatePath(d.Path):
		out.ErrorCode = CodeV4FieldInvalidDate
	case out.ErrorCode == CodeV4ConsentMismatch:
		// The whole Initiation and Risk are compared: no one member to name.
		out.Path = ""
	}
	return withMessage(status, out)
}

// isDatePath reports whether an error Path names a date member: its last
// segment ends in DateTime (ExpirationDateTime, fromBookingDateTime, ...) or
// Date (the Initiation's RelatedDate and RegulatoryReporting Details' Date),
// as every OB date member's name does.
func isDatePath(path string) bool {
	last := path[strings.LastIndexByte(path, '.')+1:]
	return strings.HasSuffix(last, "DateTime") || strings.HasSuffix(last, "Date")
}

// withMessage makes sure a v4.0 detail has a Message (optional in v4.0,
// always sent here).
func withMessage(status int, d ErrorDetail) ErrorDetail {
	if d.Message == "" {
		d.Message = http.StatusText(status)
	}
	return d
}

// v4Answer translates a v3.1 answer (status and details, codes in
// DefaultNamespace) to v4.0 for the error err. An idempotency key reused
// with another body is OB v4.0.1's 422 U029, with Url linking to the
// idempotency rules under publicURL (no Url when publicURL is ""); every
// other answer keeps its status, and each detail is translated by toV4.
func v4Answer(err error, status int, details []ErrorDetail, publicURL string) (int, []ErrorDetail) {
	if errors.Is(err, openbanking.ErrIdempotencyConflict) {
		d := ErrorDetail{ErrorCode: CodeV4IdempotencyReused, Message: msgIdempotencyReused, Path: HeaderIdempotencyKey}
		if publicURL != "" {
			d.URL = publicURL + pathIdempotencyDocs
		}
		return http.StatusUnprocessableEntity, []ErrorDetail{d}
	}
	out := make([]ErrorDetail, len(details))
	for i, d := range details {
		out[i] = toV4(status, d)
	}
	return status, out
}
