package devauth

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// introspect serves POST /oauth2/introspect (RFC 7662 §2): a resource server
// client, authenticated like at the token endpoint, sends token=<token> and
// gets the answer of Tokens.Introspect; an unknown, expired or revoked token
// is {"active":false}.
func (s *Server) introspect(c echo.Context) error {
	form, e := parseForm(c)
	if e != nil && form == nil {
		return s.refuse(c, "introspect", "", e)
	}
	cl, ae := s.authenticate(c.Request(), form, s.introspectURL)
	if ae != nil {
		return s.refuse(c, "introspect", "", ae)
	}
	if e != nil { // repeated parameters, judged once the client is known
		return s.refuse(c, "introspect", cl.id, e)
	}
	if !cl.resourceServer {
		return s.refuse(c, "introspect", cl.id, &oauthError{status: http.StatusForbidden, code: errUnauthorizedClient,
			description: "Client may not introspect tokens", reason: "not_resource_server"})
	}
	token := form.Get("token")
	if token == "" {
		return s.refuse(c, "introspect", cl.id, badRequest(errInvalidRequest, "token is required", "token_missing"))
	}
	info, err := s.tokens.Introspect(c.Request().Context(), token)
	if err != nil {
		return s.refuse(c, "introspect", cl.id, serverError("introspect"))
	}
	noStore(c)
	return c.JSON(http.StatusOK, info)
}
