package devauth

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/security"
)

// Metadata returns the sandbox's RFC 8414 §2 authorization server metadata.
// The issuer is the public URL; the sandbox signs nothing (its tokens are
// opaque), so there is no jwks_uri.
func (s *Server) Metadata() security.ASMetadata {
	return security.ASMetadata{
		Issuer:                                             s.issuer,
		AuthorizationEndpoint:                              s.issuer + "/oauth2/authorize",
		TokenEndpoint:                                      s.tokenURL,
		IntrospectionEndpoint:                              s.introspectURL,
		PushedAuthorizationRequestEndpoint:                 s.parURL,
		RequirePushedAuthorizationRequests:                 s.requirePAR,
		ScopesSupported:                                    []string{ScopeAccounts, ScopePayments, ScopeLedgerAdmin, ScopeConsentsAdmin},
		ResponseTypesSupported:                             []string{"code"},
		GrantTypesSupported:                                []string{"authorization_code", "refresh_token", "client_credentials"},
		CodeChallengeMethodsSupported:                      []string{"S256"},
		TokenEndpointAuthMethodsSupported:                  authMethods,
		TokenEndpointAuthSigningAlgValuesSupported:         assertionAlgNames,
		IntrospectionEndpointAuthMethodsSupported:          authMethods,
		IntrospectionEndpointAuthSigningAlgValuesSupported: assertionAlgNames,
		DPoPSigningAlgValuesSupported:                      strings.Fields(s.verifier.Algs()),
		AuthorizationResponseISSParameterSupported:         true,
		AuthorizationDetailsTypesSupported:                 []string{detailsType},
	}
}

// metadata serves GET /.well-known/oauth-authorization-server (RFC 8414 §3)
// and /.well-known/openid-configuration, the same document.
func (s *Server) metadata(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, s.Metadata())
}
