package handlers

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// officialCodes is the ErrorCode enumeration of UK Open Banking Read/Write
// API v3.1.11 (OBErrorResponse1).
var officialCodes = map[string]bool{
	"UK.OBIE.Field.Expected": true, "UK.OBIE.Field.Invalid": true, "UK.OBIE.Field.InvalidDate": true,
	"UK.OBIE.Field.Missing": true, "UK.OBIE.Field.Unexpected": true, "UK.OBIE.Header.Invalid": true,
	"UK.OBIE.Header.Missing": true, "UK.OBIE.Reauthenticate": true, "UK.OBIE.Resource.ConsentMismatch": true,
	"UK.OBIE.Resource.InvalidConsentStatus": true, "UK.OBIE.Resource.InvalidFormat": true,
	"UK.OBIE.Resource.NotFound": true, "UK.OBIE.Rules.AfterCutOffDateTime": true,
	"UK.OBIE.Rules.DuplicateReference": true, "UK.OBIE.Rules.ResourceAlreadyExists": true,
	"UK.OBIE.Signature.Invalid": true, "UK.OBIE.Signature.InvalidClaim": true, "UK.OBIE.Signature.Malformed": true,
	"UK.OBIE.Signature.Missing": true, "UK.OBIE.Signature.MissingClaim": true, "UK.OBIE.Signature.Unexpected": true,
	"UK.OBIE.UnexpectedError": true, "UK.OBIE.Unsupported.AccountIdentifier": true,
	"UK.OBIE.Unsupported.AccountSecondaryIdentifier": true, "UK.OBIE.Unsupported.Currency": true,
	"UK.OBIE.Unsupported.EventType": true, "UK.OBIE.Unsupported.Frequency": true,
	"UK.OBIE.Unsupported.LocalInstrument": true, "UK.OBIE.Unsupported.Scheme": true,
}

func TestEveryCodeIsOfficialOrOurs(t *testing.T) {
	for _, c := range []string{CodeFieldInvalid, CodeFieldMissing, CodeFieldExpected, CodeFieldUnexpected,
		CodeHeaderInvalid, CodeHeaderMissing, CodeResourceNotFound, CodeResourceInvalidFormat, CodeConsentMismatch,
		CodeInvalidConsentStatus, CodeUnexpectedError, CodeUnsupportedMediaType, CodeUnauthorized, CodeForbidden,
		CodeMethodNotAllowed, CodeNotImplemented, CodeServiceUnavailable, CodeRequestEntityTooLarge,
		CodeNotAcceptable, CodeTooManyRequests, CodeResourceInvalidRequest, CodeFieldInvalidDate, CodeUnsupportedScheme,
		CodeUnsupportedAccountIdentifier} {
		if !officialCodes[c] && !strings.HasPrefix(c, DefaultNamespace+".") {
			t.Errorf("%s is neither an official v3.1.11 code nor in %s", c, DefaultNamespace)
		}
	}
}

func TestOwnCodesTakeTheConfiguredNamespace(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = errorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), "BANKX", "")
	e.GET("/forbidden", func(echo.Context) error { return echo.NewHTTPError(http.StatusForbidden) })
	e.GET("/invalid", func(echo.Context) error { return NewAPIError(http.StatusBadRequest, CodeFieldInvalid, "bad", "Data") })
	for path, want := range map[string]string{"/forbidden": "BANKX.Forbidden", "/invalid": CodeFieldInvalid, "/nowhere": CodeResourceNotFound} {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		var body ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) == 0 {
			t.Fatalf("%s: body %s", path, w.Body)
		}
		if got := body.Errors[0].ErrorCode; got != want {
			t.Errorf("%s: ErrorCode = %s, want %s", path, got, want)
		}
	}
}
