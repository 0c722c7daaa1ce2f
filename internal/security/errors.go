package security

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Wire error codes carried in the WWW-Authenticate challenge (RFC 6750 §3.1,
// RFC 9449 §7.1 and §9).
const (
	CodeInvalidProof      = "invalid_dpop_proof"
	CodeInvalidToken      = "invalid_token"
	CodeUseNonce          = "use_dpop_nonce"
	CodeInvalidRequest    = "invalid_request"
	CodeInsufficientScope = "insufficient_scope"
)

// Fixed error descriptions. They never contain request input, and each uses
// only the characters RFC 6750 §3 allows in error_description.
const (
	descInvalidProof   = "Invalid DPoP proof"
	descInvalidToken   = "Invalid access token"
	descUseNonce       = "Resource server requires nonce in DPoP proof"
	descMultiple       = "Multiple methods used to include access token"
	descNoCredentials  = "DPoP access token required"
	descInsufficient   = "Insufficient scope"
	descAuthServerDown = "Authorization server unavailable"
	descReplayDown     = "Replay store unavailable"
	descHTUMismatch    = "htu does not match this request"
)

// descriptions names, for each fixed Reason, the failed check in the words an
// answer carries in error_description and in the OB error body. The words are
// the server's own: never a claim, header or token from the request. A reason
// missing here (none should be; a test checks the reasons it drives) falls
// back to the generic description of its error code. Token errors are absent
// on purpose: an unknown, inactive, revoked or expired token must get the
// same answer (descInvalidToken), so the answer tells nothing about the token.
// The descriptions that depend on the configuration (alg, iat) or on the
// request's method and URL (htm, htu) are built by the verifier.
var descriptions = map[string]string{
	// P3, P2: one way of sending the token, once.
	"authorization_repeated":        descMultiple + ": send one Authorization header",
	"token_in_header_and_parameter": descMultiple + ": send it in the Authorization header only, not also as access_token",
	// P4, P5: the bare challenge (no error_description on the wire), so
	// these words reach only the OB error body.
	"no_authorization":        descNoCredentials + ": send Authorization: DPoP followed by the token, and a DPoP proof",
	"token_in_parameter_only": descNoCredentials + ": send it in the Authorization header, not as an access_token parameter",
	"scheme_not_dpop":         descNoCredentials + ": the Authorization scheme must be DPoP (a DPoP-bound token is never a Bearer token)",
	// P5, P6: the token's syntax, not its state.
	"token_too_long":  "Access token malformed: longer than 4096 characters",
	"token_malformed": "Access token malformed: Authorization must be DPoP, a space, then the token (token68 characters)",
	// P7, P8
	"proof_missing":     "DPoP proof missing: send exactly one DPoP header",
	"proof_repeated":    "More than one DPoP header: send exactly one",
	"proof_too_large":   "DPoP proof too large: at most 8192 bytes",
	"proof_not_compact": "DPoP proof is not a compact JWS: three base64url parts without padding, joined by dots",
	// P9
	"header_encoding":   "DPoP proof header is not base64url without padding",
	"header_bom":        "DPoP proof header starts with a byte order mark",
	"header_not_utf8":   "DPoP proof header is not valid UTF-8",
	"header_not_object": "DPoP proof header is not a JSON object",
	"typ":               "DPoP proof typ must be dpop+jwt",
	// P11, P12 (parseJWK)
	"jwk_missing":      "DPoP proof header has no jwk: embed the public key as a JSON object",
	"jwk_not_object":   "DPoP proof jwk is not a JSON object",
	"jwk_private":      "DPoP proof jwk holds private key members: embed the public key only",
	"jwk_kty":          "DPoP proof jwk kty must be EC, OKP or RSA",
	"alg_key_mismatch": "DPoP proof alg does not fit the jwk: ES256 needs an EC key, EdDSA and Ed25519 an OKP key, PS256 an RSA key",
	"jwk_curve":        "DPoP proof jwk curve does not fit alg: ES256 needs P-256, EdDSA and Ed25519 need Ed25519",
	"jwk_coordinates":  "DPoP proof jwk coordinates are missing or not full length",
	"jwk_not_on_curve": "DPoP proof jwk point is not on its curve",
	"jwk_rsa_params":   "DPoP proof jwk n or e is missing or malformed",
	"jwk_rsa_size":     "DPoP proof RSA key must have an odd modulus of 2048 to 8192 bits",
	"jwk_rsa_exponent": "DPoP proof RSA exponent must be odd and at least 3",
	// P13
	"crit": "DPoP proof header must not carry crit",
	"b64":  "DPoP proof header must not carry b64",
	"jku":  "DPoP proof key must be embedded as jwk, not referenced by jku",
	"x5u":  "DPoP proof key must be embedded as jwk, not referenced by x5u",
	// P14
	"signature": "DPoP proof signature does not verify with its jwk",
	// P15
	"payload_encoding":   "DPoP proof payload is not base64url without padding",
	"payload_bom":        "DPoP proof payload starts with a byte order mark",
	"payload_not_utf8":   "DPoP proof payload is not valid UTF-8",
	"payload_not_object": "DPoP proof payload is not a JSON object",
	"claim_jti":          "DPoP proof jti missing or not a string of 1 to 256 bytes",
	"claim_htm":          "DPoP proof htm missing or not a string",
	"claim_htu":          "DPoP proof htu missing or not a string",
	"claim_iat":          "DPoP proof iat missing or not a number of seconds since 1970",
	"claim_ath":          "DPoP proof ath missing or not a string: a request with an access token needs ath",
	"claim_nonce":        "DPoP proof nonce is not a string",
	"claim_exp":          "DPoP proof exp is not a number or has passed",
	"claim_nbf":          "DPoP proof nbf is not a number or is in the future",
	// P16, P17: see methodMismatch and targetMismatch.
	"htm_mismatch":       "htm does not match this request method",
	"htu_mismatch":       descHTUMismatch,
	"target_url_invalid": "htu cannot be checked: this request URL cannot be normalised",
	// P20
	"ath_mismatch": "ath does not match the access token: it must be the base64url SHA-256 of the token as sent",
	// P22: the token is active but not usable with this proof (RFC 9449
	// Fig.16 answers these with invalid_token too).
	"token_not_bound":      "Access token is not bound to a DPoP key (no cnf.jkt)",
	"key_binding_mismatch": "DPoP key does not match the token's cnf.jkt",
	// P23
	"replay": "DPoP proof jti already used: sign a new proof for every request",
}

// nonceDetails are the OB error body's words for a use_dpop_nonce answer,
// whose error_description stays RFC 9449 Fig.24's (descUseNonce).
var nonceDetails = map[string]string{
	"nonce_missing": "DPoP nonce missing: sign a new proof with the DPoP-Nonce of this answer and send the request again",
	"nonce_invalid": "DPoP nonce unknown or expired: sign a new proof with the DPoP-Nonce of this answer and send the request again",
}

// Error is the error type of every rejection: Verifier.Verify returns no
// other, and RequireScope and CheckScope return no other of their own. The
// middleware of NewMiddleware returns it too, except for a form-encoded body
// it cannot read (a 400 *echo.HTTPError) or that is larger than its scan
// bound (a 413 *echo.HTTPError); both middlewares also pass on whatever the
// next handler returns. The server's HTTP error handler renders it: Status, a
// WWW-Authenticate header with WWWAuthenticate() when that is not empty,
// DPoP-Nonce plus "Cache-Control: no-store" when Nonce is set, Retry-After
// (whole seconds) when RetryAfter > 0, and the OB error body built from
// Description. No field ever holds request input.
type Error struct {
	// Status is the HTTP status: 400, 401, 403 or 503.
	Status int
	// Code is the wire error code (one of the Code* constants), or "" for the
	// bare challenge sent when no usable credentials were presented.
	Code string
	// Description names the failed check in short, fixed words chosen by
	// the server (for example "DPoP proof typ must be dpop+jwt"); it goes to
	// error_description and, unless Detail is set, to the OB error body.
	// Answers about the token itself read the same whatever its state.
	Description string
	// Detail, when set, is a longer fixed explanation for the OB error body
	// where error_description must keep a standard wording (use_dpop_nonce,
	// RFC 9449 Fig.24).
	Detail string
	// Reason is a fixed machine-readable name of the failed check (for
	// example "htu_mismatch"); it feeds logs and metrics, never the response.
	Reason string
	// Nonce is a fresh DPoP-Nonce to send with the answer, if any.
	Nonce string
	// RetryAfter is the delay to advertise with a 503; zero means none.
	RetryAfter time.Duration
	// Scope is the scope the route requires (insufficient_scope only).
	Scope string

	algs     string // space-separated allowed algorithms, from configuration
	metadata string // RFC 9728 §5.1 resource_metadata URL (401 only), from configuration
}

// Error returns a fixed summary suitable for logs.
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = "no_credentials"
	}
	return fmt.Sprintf("security: %d %s (%s)", e.Status, code, e.Reason)
}

// WWWAuthenticate renders the value of the WWW-Authenticate header exactly as
// RFC 9449 §7.1 and RFC 6750 §3 shape it (docs/design.md section 4), with
// RFC 9728 §5.1's resource_metadata on 401 answers when the verifier was
// configured with one, or "" when no challenge belongs to the answer (503:
// the service, not the credentials, failed).
func (e *Error) WWWAuthenticate() string {
	var b strings.Builder
	b.WriteString("DPoP")
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(value)
		b.WriteByte('"')
		sep = ", "
	}
	switch e.Code {
	case "":
		if e.Status == 503 {
			return ""
		}
	case CodeUseNonce:
		// RFC 9449 Fig.24: error and description, and no algs.
		param("error", e.Code)
		param("error_description", quotable(e.Description))
		if e.metadata != "" {
			param("resource_metadata", e.metadata)
		}
		return b.String()
	case CodeInsufficientScope:
		// RFC 6750 §3.1: error and the scope the route needs.
		param("error", e.Code)
		if s := quotable(e.Scope); s != "" {
			param("scope", s)
		}
		return b.String()
	default:
		param("error", e.Code)
		param("error_description", quotable(e.Description))
	}
	if e.algs != "" {
		param("algs", e.algs)
	}
	if e.metadata != "" {
		// RFC 9728 §5.1: where to learn how to get a token for this API.
		param("resource_metadata", e.metadata)
	}
	return b.String()
}

// RetryAfterSeconds returns RetryAfter as the whole number of seconds the
// Retry-After header carries (rounded up), or "" when it is zero.
func (e *Error) RetryAfterSeconds() string {
	if e.RetryAfter <= 0 {
		return ""
	}
	s := int64((e.RetryAfter + time.Second - 1) / time.Second)
	return strconv.FormatInt(s, 10)
}

// quotable drops the value when it holds a character that RFC 6750 §3 does not
// allow inside a quoted challenge parameter (%x20-21 / %x23-5B / %x5D-7E).
// Descriptions and scopes are constants, so this is a second line of defence
// against header injection, not a formatter.
func quotable(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return ""
		}
	}
	return s
}

func (v *Verifier) fail(status int, code, desc, reason string) *Error {
	e := &Error{Status: status, Code: code, Description: desc, Reason: reason, algs: v.algsHeader}
	if status == 401 {
		e.metadata = v.metadata
	}
	return e
}

// describe returns the description of reason, or fallback when it has none.
func describe(reason, fallback string) string {
	if d, ok := descriptions[reason]; ok {
		return d
	}
	return fallback
}

func (v *Verifier) proofError(reason string) *Error {
	return v.fail(401, CodeInvalidProof, describe(reason, descInvalidProof), reason)
}

// tokenError answers a token that cannot be used. Its description is the
// same for every state of the token (unknown, inactive, revoked, expired,
// another audience, ...); only its syntax is named (token_too_long,
// token_malformed).
func (v *Verifier) tokenError(reason string) *Error {
	desc := descInvalidToken
	if reason == "token_too_long" || reason == "token_malformed" {
		desc = descriptions[reason]
	}
	return v.fail(401, CodeInvalidToken, desc, reason)
}

func (v *Verifier) bindingError(reason string) *Error {
	return v.fail(401, CodeInvalidToken, describe(reason, descInvalidToken), reason)
}

func (v *Verifier) noCredentials(reason string) *Error {
	return v.fail(401, "", describe(reason, descNoCredentials), reason)
}

func (v *Verifier) multipleMethods(reason string) *Error {
	return v.fail(400, CodeInvalidRequest, describe(reason, descMultiple), reason)
}

// nonceError keeps RFC 9449 Fig.24's error_description, which clients may
// compare, and says in Detail whether the nonce was missing or stale.
func (v *Verifier) nonceError(reason string, now time.Time) *Error {
	e := v.fail(401, CodeUseNonce, descUseNonce, reason)
	e.Detail = nonceDetails[reason]
	e.Nonce = v.nonces.issue(now)
	return e
}

func (v *Verifier) unavailable(desc, reason string) *Error {
	e := v.fail(503, "", desc, reason)
	e.RetryAfter = v.retryAfter
	return e
}
