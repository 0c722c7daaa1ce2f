package handlers

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// acceptJSON answers 406 to a request whose Accept header excludes JSON,
// the only representation the API has (RFC 9110 §12.5.1): no Accept, or one
// naming application/json, application/* or */* with a non-zero weight,
// passes.
func acceptJSON() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			values := c.Request().Header.Values(echo.HeaderAccept)
			if len(values) == 0 || acceptsJSON(values) {
				return next(c)
			}
			return NewAPIError(http.StatusNotAcceptable, CodeNotAcceptable,
				"This API answers application/json only: send Accept: application/json (or none)", "Accept")
		}
	}
}

func acceptsJSON(values []string) bool {
	for _, v := range values {
		for _, r := range strings.Split(v, ",") {
			media, params, _ := strings.Cut(r, ";")
			media = strings.ToLower(strings.TrimSpace(media))
			if media != "application/json" && media != "application/*" && media != "*/*" {
				continue
			}
			if weight(params) > 0 {
				return true
			}
		}
	}
	return false
}

// weight is the q parameter of a media range's parameters (1 without one).
func weight(params string) float64 {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || q < 0 {
				return 0
			}
			return q
		}
	}
	return 1
}
