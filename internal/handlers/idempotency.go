package handlers

import (
	"crypto/sha256"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/openbanking"
)

// HeaderIdempotencyKey is the OB idempotency header.
const HeaderIdempotencyKey = "x-idempotency-key"

// requireIdempotencyKey checks x-idempotency-key before the generated wrapper
// binds it, so that a missing or malformed key gets its own OB error (the
// wrapper's would be a bare InvalidFormat): exactly one value that passes
// openbanking.CheckIdempotencyKey, the service's own rule. The value is never
// echoed.
func requireIdempotencyKey() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			vs := c.Request().Header.Values(HeaderIdempotencyKey)
			if len(vs) > 1 {
				return NewAPIError(http.StatusBadRequest, CodeHeaderInvalid, "x-idempotency-key must be sent once", HeaderIdempotencyKey)
			}
			var k string
			if len(vs) == 1 {
				k = vs[0]
			}
			var fe *openbanking.FieldError
			switch err := openbanking.CheckIdempotencyKey(k); {
			case err == nil:
				return next(c)
			case errors.As(err, &fe) && fe.Missing:
				return NewAPIError(http.StatusBadRequest, CodeHeaderMissing, "x-idempotency-key is required", HeaderIdempotencyKey)
			default:
				return NewAPIError(http.StatusBadRequest, CodeHeaderInvalid,
					"x-idempotency-key must be 1 to 40 characters without surrounding white space", HeaderIdempotencyKey)
			}
		}
	}
}

// idempotency pairs the request's key with the SHA-256 of its raw body.
func idempotency(key string, raw []byte) openbanking.Idempotency {
	return openbanking.Idempotency{Key: key, RequestHash: sha256.Sum256(raw)}
}
