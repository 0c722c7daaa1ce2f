package handlers

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/openbanking"
)

// HeaderIdempotencyKey is the OB idempotency header.
const HeaderIdempotencyKey = "x-idempotency-key"

// requireIdempotencyKey checks x-idempotency-key before the generated wrapper
// binds it, so that a missing or malformed key gets its own OB error (the
// wrapper's would be a bare InvalidFormat): exactly one value of 1 to 40
// characters, valid UTF-8, without leading or trailing white space. The value
// is never echoed.
func requireIdempotencyKey() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			vs := c.Request().Header.Values(HeaderIdempotencyKey)
			switch {
			case len(vs) == 0 || (len(vs) == 1 && vs[0] == ""):
				return NewAPIError(http.StatusBadRequest, CodeHeaderMissing, "x-idempotency-key is required", HeaderIdempotencyKey)
			case len(vs) > 1:
				return NewAPIError(http.StatusBadRequest, CodeHeaderInvalid, "x-idempotency-key must be sent once", HeaderIdempotencyKey)
			}
			k := vs[0]
			if !utf8.ValidString(k) || utf8.RuneCountInString(k) > openbanking.MaxIdempotencyKeyLen ||
				strings.TrimFunc(k, unicode.IsSpace) != k {
				return NewAPIError(http.StatusBadRequest, CodeHeaderInvalid,
					"x-idempotency-key must be 1 to 40 characters without surrounding white space", HeaderIdempotencyKey)
			}
			return next(c)
		}
	}
}

// idempotency pairs the request's key with the SHA-256 of its raw body.
func idempotency(key string, raw []byte) openbanking.Idempotency {
	return openbanking.Idempotency{Key: key, RequestHash: sha256.Sum256(raw)}
}
