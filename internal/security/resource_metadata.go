package security

import (
	"errors"
	"net/url"
	"strings"
)

// checkResourceMetadata validates Config.ResourceMetadata, the URL that 401
// challenges carry in resource_metadata (RFC 9728 §5.1), and returns it
// unchanged; "" is valid and means none. The value is configuration, never
// request input, but it is written into a quoted-string (RFC 9110 §5.6.4), so
// anything quotable would drop is refused here rather than silently lost.
func checkResourceMetadata(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	bad := err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || u.Fragment != "" || strings.Contains(s, "#") ||
		strings.ContainsAny(s, " ,") || quotable(s) != s
	if bad {
		return "", errors.New("security: resource metadata URL must be an absolute http(s) URL without userinfo, fragment, spaces, commas, quotes or backslashes")
	}
	return s, nil
}
