package security

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// proofClaims are the typed claims of RFC 9449 §4.2.
type proofClaims struct {
	JTI             string
	Method          string
	URL             string
	IssuedAt        float64
	AccessTokenHash string
	Nonce           string
	hasNonce        bool
}

// claimMembers holds the raw JSON values of the members a proof's payload is
// checked for; nil means absent. A repeated member keeps its last value, as
// encoding/json does (RFC 7515 §4, RFC 7519 §4: reject or use the last).
type claimMembers struct {
	jti, htm, htu, iat, ath, nonce, exp, nbf []byte
}

// decodeClaims performs P15, RFC 9449 §4.2 and §4.3 (3), for both kinds of
// proof: the payload is a JSON object with jti (1..256 characters), htm and
// htu strings, a numeric iat, an ath string when withATH is set (RFC 9449
// §4.3 (12) applies only with an access token, so a token request's ath is
// not read), a string nonce if present and valid exp/nbf if present. Member
// names are matched exactly (not with encoding/json's case folding); unknown
// members are accepted.
//
// The payload is validated with json.Valid and then walked once without
// building a map, because this runs on every request.
func (v *Verifier) decodeClaims(segment string, now time.Time, withATH bool) (proofClaims, *Error) {
	var c proofClaims
	raw, err := b64.DecodeString(segment)
	if err != nil {
		return c, v.proofError("payload_encoding")
	}
	var m claimMembers
	if !json.Valid(raw) || !scanClaims(raw, &m) {
		return c, v.proofError("payload_not_object")
	}
	var ok bool
	if c.JTI, ok = rawString(m.jti); !ok || c.JTI == "" || len(c.JTI) > maxJTILen {
		return c, v.proofError("claim_jti")
	}
	if c.Method, ok = rawString(m.htm); !ok {
		return c, v.proofError("claim_htm")
	}
	if c.URL, ok = rawString(m.htu); !ok {
		return c, v.proofError("claim_htu")
	}
	if c.IssuedAt, ok = rawNumber(m.iat); !ok {
		return c, v.proofError("claim_iat")
	}
	if withATH {
		if c.AccessTokenHash, ok = rawString(m.ath); !ok {
			return c, v.proofError("claim_ath")
		}
	}
	if m.nonce != nil {
		if c.Nonce, ok = rawString(m.nonce); !ok {
			return c, v.proofError("claim_nonce")
		}
		c.hasNonce = true
	}
	// RFC 7519 §4.1.4 and §4.1.5 with the same skew as iat (DPOP-RULES 1.4.6).
	if m.exp != nil {
		exp, ok := rawNumber(m.exp)
		if !ok || !afterSeconds(exp, now.Add(-v.skew)) {
			return c, v.proofError("claim_exp")
		}
	}
	if m.nbf != nil {
		nbf, ok := rawNumber(m.nbf)
		if !ok || afterSeconds(nbf, now.Add(v.skew)) {
			return c, v.proofError("claim_nbf")
		}
	}
	return c, nil
}

// scanClaims walks the top level of raw, which json.Valid accepted, and
// records the value of each member decodeClaims reads. It reports false when
// raw is not an object.
func scanClaims(raw []byte, m *claimMembers) bool {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return true
	}
	for i < len(raw) {
		// raw is valid JSON, so a member is: string, ':', value, then ',' or '}'.
		keyEnd := skipString(raw, i)
		key := raw[i:keyEnd]
		i = skipSpace(raw, keyEnd)
		i = skipSpace(raw, i+1) // past ':'
		valEnd := skipValue(raw, i)
		m.set(key, raw[i:valEnd])
		i = skipSpace(raw, valEnd)
		if i >= len(raw) || raw[i] == '}' {
			return true
		}
		i = skipSpace(raw, i+1) // past ','
	}
	return true
}

// set records value under the member named by the JSON string key (quotes
// included). Escaped names are decoded first, so "\u006ati" is "jti", as
// with encoding/json.
func (m *claimMembers) set(key, value []byte) {
	name := key[1 : len(key)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		var s string
		if json.Unmarshal(key, &s) != nil {
			return
		}
		name = []byte(s)
	}
	switch string(name) {
	case "jti":
		m.jti = value
	case "htm":
		m.htm = value
	case "htu":
		m.htu = value
	case "iat":
		m.iat = value
	case "ath":
		m.ath = value
	case "nonce":
		m.nonce = value
	case "exp":
		m.exp = value
	case "nbf":
		m.nbf = value
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' &&
			b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
	}
}

// rawString returns a raw JSON value as a string; ok is false when it is
// absent or not a JSON string.
func rawString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	// Fast path: the value came out of a validated JSON text, so a quoted
	// run without backslashes is the string itself.
	if simple := raw[1 : len(raw)-1]; bytes.IndexByte(simple, '\\') < 0 {
		return string(simple), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// rawNumber returns a finite JSON number (integer or fraction); a string,
// null, absence or any other type is refused.
func rawNumber(raw []byte) (float64, bool) {
	if len(raw) == 0 || !(raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') {
		return 0, false
	}
	// raw is a JSON number token (it came out of a validated JSON text and
	// starts with a digit or '-'), which strconv reads exactly; out of range
	// fails.
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
