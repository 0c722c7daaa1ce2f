package security

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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
	jti, htm, htu, iat, ath, nonce, exp, nbf string
	hasNonce, hasExp, hasNbf                 bool
}

// decodeClaims performs P15, RFC 9449 §4.2 and §4.3 (3), for both kinds of
// proof: the payload is a JSON object with jti (1 to 256 bytes), htm and
// htu strings, a numeric iat, an ath string when withATH is set (RFC 9449
// §4.3 (12) applies only with an access token, so a token request's ath is
// not read), a string nonce if present and valid exp/nbf if present. Member
// names are matched exactly (not with encoding/json's case folding); unknown
// members are accepted.
//
// The payload is parsed in one pass without building a map (scanClaims),
// because this runs on every request.
func (v *Verifier) decodeClaims(segment string, now time.Time, withATH bool) (proofClaims, *Error) {
	var c proofClaims
	decoded, err := b64.DecodeString(segment)
	if err != nil {
		return c, v.proofError("payload_encoding")
	}
	// RFC 7519 §7.2 step 10 and RFC 8259 §8.1: the claims set is a UTF-8
	// JSON text, every byte of it (claims we ignore included), without a
	// byte order mark.
	if hasBOM(decoded) {
		return c, v.proofError("payload_bom")
	}
	if !utf8.Valid(decoded) {
		return c, v.proofError("payload_not_utf8")
	}
	// One copy into a string; the claims are substrings of it.
	raw := string(decoded)
	var m claimMembers
	if !scanClaims(raw, &m) {
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
	if m.hasNonce {
		if c.Nonce, ok = rawString(m.nonce); !ok {
			return c, v.proofError("claim_nonce")
		}
		c.hasNonce = true
	}
	// RFC 7519 §4.1.4 and §4.1.5 with the same skew as iat (a proof that
	// carries them is held to them).
	if m.hasExp {
		exp, ok := rawNumber(m.exp)
		if !ok || !afterSeconds(exp, now.Add(-v.skew)) {
			return c, v.proofError("claim_exp")
		}
	}
	if m.hasNbf {
		nbf, ok := rawNumber(m.nbf)
		if !ok || afterSeconds(nbf, now.Add(v.skew)) {
			return c, v.proofError("claim_nbf")
		}
	}
	return c, nil
}

// utf8BOM is the UTF-8 encoding of U+FEFF, the byte order mark.
const utf8BOM = "\xef\xbb\xbf"

// hasBOM reports whether a decoded JOSE header or payload starts with a byte
// order mark, which RFC 8259 §8.1 forbids in JSON exchanged between systems.
// Invalid UTF-8 is refused separately with utf8.Valid (RFC 3629: stray
// continuation bytes, overlong forms, surrogates, code points past U+10FFFF),
// which reads ASCII eight bytes at a time and so costs little next to the
// signature check.
func hasBOM(raw []byte) bool {
	return len(raw) >= len(utf8BOM) && string(raw[:len(utf8BOM)]) == utf8BOM
}

// scanClaims parses raw as one JSON text (RFC 8259) and records the value of
// each top-level member decodeClaims reads. It reports false when raw is not
// valid JSON or not an object. It accepts exactly what encoding/json accepts
// (any bytes from 0x20 up inside strings, nesting up to 10000 levels), so the
// verdict is the one json.Unmarshal would give, in one pass and without
// allocating.
func scanClaims(raw string, m *claimMembers) bool {
	p := jsonParser{b: raw}
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	p.object(m)
	p.space()
	return p.ok() && p.i == len(p.b)
}

// set records value under the member named by the JSON string key (quotes
// included). Escaped names are decoded first, so "\u006ati" is "jti", as
// with encoding/json.
func (m *claimMembers) set(key, value string) {
	name := key[1 : len(key)-1]
	if strings.IndexByte(name, '\\') >= 0 {
		if json.Unmarshal([]byte(key), &name) != nil {
			return
		}
	}
	switch name {
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
		m.nonce, m.hasNonce = value, true
	case "exp":
		m.exp, m.hasExp = value, true
	case "nbf":
		m.nbf, m.hasNbf = value, true
	}
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// jsonParser is a small validating JSON reader; bad is set at the first
// syntax error and every method then does nothing.
type jsonParser struct {
	b     string
	i     int
	depth int
	bad   bool
}

func (p *jsonParser) ok() bool { return !p.bad }

func (p *jsonParser) fail() { p.bad, p.i = true, len(p.b) }

func (p *jsonParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *jsonParser) expect(c byte) {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != c {
		p.fail()
		return
	}
	p.i++
}

// value reads any JSON value and returns its raw text.
func (p *jsonParser) value() string {
	p.space()
	if p.i >= len(p.b) {
		p.fail()
		return ""
	}
	start := p.i
	switch c := p.b[p.i]; {
	case c == '"':
		p.str()
	case c == '{':
		p.object(nil)
	case c == '[':
		p.array()
	case c == '-' || '0' <= c && c <= '9':
		p.number()
	case c == 't':
		p.literal("true")
	case c == 'f':
		p.literal("false")
	case c == 'n':
		p.literal("null")
	default:
		p.fail()
	}
	if p.bad {
		return ""
	}
	return p.b[start:p.i]
}

// object reads an object at p.b[p.i] == '{'; with m set, it records the
// claim members (the last of a repeated member wins, as in encoding/json).
func (p *jsonParser) object(m *claimMembers) {
	if p.depth++; p.depth > maxJSONDepth {
		p.fail()
		return
	}
	p.i++ // '{'
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		return
	}
	for !p.bad {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			p.fail()
			return
		}
		start := p.i
		p.str()
		key := p.b[start:p.i]
		p.expect(':')
		val := p.value()
		if p.bad {
			return
		}
		if m != nil {
			m.set(key, val)
		}
		if p.separator('}') {
			return
		}
	}
}

func (p *jsonParser) array() {
	if p.depth++; p.depth > maxJSONDepth {
		p.fail()
		return
	}
	p.i++ // '['
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
		return
	}
	for !p.bad {
		p.value()
		if p.separator(']') {
			return
		}
	}
}

// separator reads the ',' or the closing byte that follows a member or an
// element, and reports whether the container ended (or the input is bad).
func (p *jsonParser) separator(closing byte) bool {
	p.space()
	if p.i >= len(p.b) {
		p.fail()
		return true
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		return false
	case closing:
		p.i++
		p.depth--
		return true
	}
	p.fail()
	return true
}

// str reads a string at p.b[p.i] == '"': no control characters, only the
// escapes RFC 8259 §7 defines.
func (p *jsonParser) str() {
	for p.i++; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return
		case c < 0x20:
			p.fail()
			return
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				p.fail()
				return
			}
			switch p.b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if p.i+4 >= len(p.b) || !isHex(p.b[p.i+1]) || !isHex(p.b[p.i+2]) || !isHex(p.b[p.i+3]) || !isHex(p.b[p.i+4]) {
					p.fail()
					return
				}
				p.i += 4
			default:
				p.fail()
				return
			}
		}
	}
	p.fail() // unterminated
}

// number reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
func (p *jsonParser) number() {
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.i < len(p.b) && '1' <= p.b[p.i] && p.b[p.i] <= '9':
		p.digits()
	default:
		p.fail()
		return
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if !p.digits() {
			p.fail()
			return
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			p.fail()
		}
	}
}

func (p *jsonParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

func (p *jsonParser) literal(word string) {
	if len(p.b)-p.i < len(word) || p.b[p.i:p.i+len(word)] != word {
		p.fail()
		return
	}
	p.i += len(word)
}

// rawString returns a raw JSON value as a string; ok is false when it is
// absent or not a JSON string.
func rawString(raw string) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	// Fast path: the value came out of a validated JSON text, so a quoted
	// run without backslashes is the string itself.
	if simple := raw[1 : len(raw)-1]; strings.IndexByte(simple, '\\') < 0 {
		return simple, true
	}
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return "", false
	}
	return s, true
}

// rawNumber returns a finite JSON number (integer or fraction); a string,
// null, absence or any other type is refused.
func rawNumber(raw string) (float64, bool) {
	if len(raw) == 0 || !(raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') {
		return 0, false
	}
	// raw is a JSON number token (it came out of a validated JSON text and
	// starts with a digit or '-'), which strconv reads exactly; out of range
	// fails.
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
