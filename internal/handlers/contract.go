package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// contractMaxAge is how long a client may reuse GET /openapi.yaml without
// asking again; after that the ETag makes asking cheap (304).
const contractMaxAge = "public, max-age=300"

// contractType is the media type of the contract (RFC 9512).
const contractType = "application/yaml"

// contract serves one of the API's own contracts (api/openapi.yaml or
// api/openapi-v4.yaml as committed, body) under name to anyone: no token, a
// strong ETag, cacheable, GET and HEAD (and conditional and range requests,
// through http.ServeContent).
func contract(name string, body []byte) echo.HandlerFunc {
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, contractType)
		h.Set("Cache-Control", contractMaxAge)
		h.Set("ETag", etag)
		http.ServeContent(c.Response(), c.Request(), name, time.Time{}, bytes.NewReader(body))
		return nil
	}
}
