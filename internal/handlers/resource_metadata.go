package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// APIBase is the path, under the public URL, of the Open Banking v3.1 API:
// the second resource identifier the service publishes metadata for (PathV4,
// the v4.0 API, is the third).
const APIBase = "/open-banking/v3.1"

// wellKnownResource is RFC 9728 §3's well-known URI suffix.
const wellKnownResource = "/.well-known/oauth-protected-resource"

// resourceMetadataMaxAge is how long clients and caches may reuse a metadata
// document (seconds): the documents change only with the configuration.
const resourceMetadataMaxAge = "300"

// ResourceMetadataConfig describes the service to the clients of its
// protected-resource metadata (RFC 9728). RegisterResourceMetadata reads it
// once.
type ResourceMetadataConfig struct {
	// PublicURL is the external base URL clients call (PAYMENTS_PUBLIC_URL):
	// an absolute http(s) URL with an optional path prefix and no query or
	// fragment. Required. It is the first resource identifier; PublicURL
	// plus APIBase is the second.
	PublicURL string
	// AuthorizationServers are the issuer identifiers (RFC 8414 §2) of the
	// authorization servers whose tokens the service accepts. Optional:
	// empty leaves authorization_servers out of the documents.
	AuthorizationServers []string
	// DPoPAlgs are the proof algorithms the verifier accepts
	// (PAYMENTS_DPOP_ALGS). Required.
	DPoPAlgs []string
}

// resourceMetadata is the document of RFC 9728 §2, with the members this
// service can state truthfully.
type resourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	ScopesSupported      []string `json:"scopes_supported"`
	BearerMethods        []string `json:"bearer_methods_supported"`
	ResourceName         string   `json:"resource_name"`
	// AuthorizationDetailsTypes: the RFC 9396 type whose
	// openbanking_intent_id names the consent a customer token carries.
	AuthorizationDetailsTypes []string `json:"authorization_details_types_supported"`
	DPoPAlgs                  []string `json:"dpop_signing_alg_values_supported"`
	DPoPRequired              bool     `json:"dpop_bound_access_tokens_required"`
}

// aggregatorScopes are the scopes an aggregator asks for. The back-office
// scopes (ledger:admin, consents:admin) are left out on purpose: the
// documents are public and the back office is not for aggregators.
var aggregatorScopes = []string{"accounts", "payments"}

// resourceID returns the resource identifier PublicURL names (RFC 9728 §1.2:
// https, no query or fragment; http is allowed for local development) and
// its parsed form. A trailing slash is dropped, so the identifier is the
// same string clients build by appending paths to PAYMENTS_PUBLIC_URL.
func resourceID(publicURL string) (string, *url.URL, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(publicURL, "?#") {
		return "", nil, errors.New("handlers: public URL must be an absolute http(s) URL without userinfo, query or fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return strings.TrimSuffix(publicURL, "/"), u, nil
}

// wellKnownPath returns the path at which RFC 9728 §3.1 puts the metadata of
// the resource identified by u plus suffix: the well-known segment goes
// between the host and the identifier's path.
func wellKnownPath(u *url.URL, suffix string) string {
	return wellKnownResource + u.EscapedPath() + suffix
}

// ResourceMetadataURL returns the URL of the metadata document of the
// resource identified by publicURL (RFC 9728 §3.1), the value of
// resource_metadata in the service's 401 challenges (RFC 9728 §5.1). Its
// resource, the public URL, is a prefix of every URL the service protects.
// It fails when publicURL is not an absolute http(s) URL without userinfo,
// query or fragment.
func ResourceMetadataURL(publicURL string) (string, error) {
	_, u, err := resourceID(publicURL)
	if err != nil {
		return "", err
	}
	return u.Scheme + "://" + u.Host + wellKnownPath(u, ""), nil
}

// RegisterResourceMetadata serves the protected-resource metadata (RFC 9728
// §3) of the three resource identifiers the service publishes: the public
// URL itself, at /.well-known/oauth-protected-resource plus the public URL's
// path, and the Open Banking APIs (the public URL plus APIBase or PathV4),
// at the same path plus APIBase or PathV4. Each document's resource is the identifier its URL was
// derived from (RFC 9728 §3.3). The documents are public, need no token,
// and may be cached for five minutes. It fails when cfg is incomplete.
//
// With a path prefix in the public URL (https://bank.example/payments) the
// documents live outside it (/.well-known/oauth-protected-resource/payments),
// so the proxy must forward that path unchanged.
func RegisterResourceMetadata(e *echo.Echo, cfg ResourceMetadataConfig) error {
	if e == nil {
		return errors.New("handlers: RegisterResourceMetadata needs the server")
	}
	id, u, err := resourceID(cfg.PublicURL)
	if err != nil {
		return err
	}
	if len(cfg.DPoPAlgs) == 0 {
		return errors.New("handlers: resource metadata needs the DPoP algorithms")
	}
	for _, as := range cfg.AuthorizationServers {
		if a, err := url.Parse(as); err != nil || (a.Scheme != "https" && a.Scheme != "http") || a.Host == "" {
			return errors.New("handlers: authorization servers must be absolute http(s) URLs")
		}
	}
	for _, r := range []struct{ resource, path string }{
		{id, wellKnownPath(u, "")},
		{id + APIBase, wellKnownPath(u, APIBase)},
		{id + PathV4, wellKnownPath(u, PathV4)},
	} {
		body, err := json.Marshal(resourceMetadata{
			Resource:                  r.resource,
			AuthorizationServers:      cfg.AuthorizationServers,
			ScopesSupported:           aggregatorScopes,
			BearerMethods:             []string{"header"},
			ResourceName:              "Open Banking API",
			AuthorizationDetailsTypes: []string{"openbanking_intent"},
			DPoPAlgs:                  cfg.DPoPAlgs,
			DPoPRequired:              true,
		})
		if err != nil {
			return err
		}
		e.GET(r.path, serveResourceMetadata(body))
	}
	return nil
}

// serveResourceMetadata answers with one precomputed document (RFC 9728 §3.2).
func serveResourceMetadata(body []byte) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age="+resourceMetadataMaxAge)
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
	}
}
