package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// idempotencyRules is the page a v4.0 answer to a reused idempotency key
// (422 U029) links to in its Url: the rules, in plain text, for the
// developer who reads the link.
const idempotencyRules = `Idempotency keys

Every POST that creates a payment consent or a payment carries an
x-idempotency-key header: 1 to 40 characters, no leading or trailing space,
unique per client, per operation and per API version for 24 hours.

- The same key with the same body (byte for byte) within 24 hours answers
  201 with the resource the first request created, in its current state.
  Nothing is created or booked a second time.
- The same key with another body is refused and nothing is written: on
  /open-banking/v4.0 with 422 and ErrorCode U029, on /open-banking/v3.1
  with 400 UK.OBIE.Field.Invalid, both with Path x-idempotency-key. The
  resource the key first created is unchanged, and the first body sent
  again with the key still answers 201.
- After a network error, a timeout or a 5xx, the outcome is unknown: send
  the same body with the same key. A payment is booked at most once.
- Make a new key for every new operation; keep it until the operation has
  an answer.
`

// idempotencyDocs serves idempotencyRules to anyone: no token, cacheable.
func idempotencyDocs(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", contractMaxAge)
	return c.String(http.StatusOK, idempotencyRules)
}
