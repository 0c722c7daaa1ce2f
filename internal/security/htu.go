package security

import (
	"errors"
	"strconv"
	"strings"
)

var errBadURL = errors.New("security: URL not acceptable as htu")

// normalizeHTU returns the RFC 3986 §6.2.2 (syntax-based) and §6.2.3
// (scheme-based) normal form of an http(s) URL for the RFC 9449 §4.3 (9) htu
// comparison: query and fragment removed (RFC 9449 §4.2 and §4.3 (9) ignore
// them on both sides), scheme and host lower-cased in ASCII only, the default
// port removed, percent-encodings upper-cased and unreserved ones decoded, dot
// segments removed and an empty path made "/". Reserved characters are never
// decoded (%2F stays %2F) and the path keeps its case.
//
// It refuses non-ASCII input, control characters, userinfo, an empty host and
// a host ending in a dot (RFC 3986 §6.2.2.1 folds ASCII case only): Unicode
// case folding would make
// "K" (U+212A) equal "k".
func normalizeHTU(raw string) (string, error) {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= 0x20 || c >= 0x7f {
			return "", errBadURL
		}
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	sep := strings.Index(raw, "://")
	if sep <= 0 {
		return "", errBadURL
	}
	scheme := asciiLower(raw[:sep])
	var defaultPort string
	switch scheme {
	case "https":
		defaultPort = "443"
	case "http":
		defaultPort = "80"
	default:
		return "", errBadURL
	}
	rest := raw[sep+3:]
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	host, port, err := splitAuthority(authority)
	if err != nil {
		return "", err
	}
	if port == defaultPort {
		port = ""
	}
	normPath, err := normalizePath(path)
	if err != nil {
		return "", err
	}
	if raw[:sep] == scheme && sameAuthority(authority, host, port) && normPath == path {
		return raw, nil // already in normal form: no copy
	}
	var b strings.Builder
	b.Grow(len(raw))
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(normPath)
	return b.String(), nil
}

// sameAuthority reports whether authority is spelled exactly host[:port].
func sameAuthority(authority, host, port string) bool {
	if port == "" {
		return authority == host
	}
	return len(authority) == len(host)+1+len(port) && authority[:len(host)] == host &&
		authority[len(host)] == ':' && authority[len(host)+1:] == port
}

// splitAuthority validates an authority without userinfo and returns the
// lower-cased host and the port without leading zeros ("" when absent or
// empty, RFC 3986 §6.2.3).
func splitAuthority(a string) (host, port string, err error) {
	if strings.ContainsAny(a, "@%") {
		return "", "", errBadURL
	}
	hostPart, portPart := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", errBadURL
		}
		hostPart = a[:end+1]
		switch after := a[end+1:]; {
		case after == "":
		case after[0] == ':':
			portPart = after[1:]
		default:
			return "", "", errBadURL
		}
		for i := 1; i < len(hostPart)-1; i++ {
			c := hostPart[i]
			if !(isHex(c) || c == ':' || c == '.') {
				return "", "", errBadURL
			}
		}
	} else {
		if i := strings.LastIndexByte(a, ':'); i >= 0 {
			hostPart, portPart = a[:i], a[i+1:]
		}
		for i := 0; i < len(hostPart); i++ {
			c := hostPart[i]
			if !(isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
				return "", "", errBadURL
			}
		}
	}
	if len(hostPart) == 0 || hostPart == "[]" || strings.HasSuffix(hostPart, ".") {
		return "", "", errBadURL
	}
	if portPart != "" {
		if len(portPart) > 5 {
			trimmed := strings.TrimLeft(portPart, "0")
			if len(trimmed) > 5 {
				return "", "", errBadURL
			}
			portPart = trimmed
		}
		n, err := strconv.ParseUint(portPart, 10, 16)
		if err != nil || n == 0 {
			return "", "", errBadURL
		}
		portPart = strconv.FormatUint(n, 10)
	}
	return asciiLower(hostPart), portPart, nil
}

// normalizePath upper-cases percent-encodings, decodes those of unreserved
// characters, refuses characters a path may not hold, removes dot segments
// (RFC 3986 §5.2.4) and turns an empty path into "/".
func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	plain := true // no percent-encoding: p is its own normal form so far
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			plain = false
		case isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/':
		default:
			return "", errBadURL
		}
	}
	if plain {
		return removeDotSegments(p), nil
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", errBadURL
		}
		d := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(d) {
			b.WriteByte(d)
		} else {
			b.WriteByte('%')
			b.WriteByte(asciiUpperByte(p[i+1]))
			b.WriteByte(asciiUpperByte(p[i+2]))
		}
		i += 2
	}
	return removeDotSegments(b.String()), nil
}

// removeDotSegments implements RFC 3986 §5.2.4 for an absolute path.
func removeDotSegments(in string) string {
	if !hasDotSegment(in) {
		return in
	}
	var out []string
	segs := strings.Split(in, "/")[1:] // in starts with "/"
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// hasDotSegment reports whether the absolute path p has a "." or ".."
// segment.
func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		seg := p[i+1:]
		if j := strings.IndexByte(seg, '/'); j >= 0 {
			seg = seg[:j]
		}
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func isUnreserved(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool {
	return strings.IndexByte("!$&'()*+,;=", c) >= 0
}

func asciiUpperByte(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// asciiLower lower-cases ASCII letters only; strings.ToLower would also fold
// non-ASCII letters such as the Kelvin sign.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// asciiEqualFold compares two strings ignoring ASCII case only.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
