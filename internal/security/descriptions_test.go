package security

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wantDescriptions is the exact error_description (and OB error body
// message) of each rejection, by reason, with the default configuration and
// a refused POST to testURL. TestMiddlewareRejects holds every case to it; a
// case whose words depend on its configuration sets its own.
var wantDescriptions = map[string]string{
	"authorization_repeated":        "Multiple methods used to include access token: send one Authorization header",
	"token_in_header_and_parameter": "Multiple methods used to include access token: send it in the Authorization header only, not also as access_token",
	"no_authorization":              "DPoP access token required: send Authorization: DPoP followed by the token, and a DPoP proof",
	"token_in_parameter_only":       "DPoP access token required: send it in the Authorization header, not as an access_token parameter",
	"scheme_not_dpop":               "DPoP access token required: the Authorization scheme must be DPoP (a DPoP-bound token is never a Bearer token)",
	"token_too_long":                "Access token malformed: longer than 4096 characters",
	"token_malformed":               "Access token malformed: Authorization must be DPoP, a space, then the token (token68 characters)",
	"proof_missing":                 "DPoP proof missing: send exactly one DPoP header",
	"proof_repeated":                "More than one DPoP header: send exactly one",
	"proof_too_large":               "DPoP proof too large: at most 8192 bytes",
	"proof_not_compact":             "DPoP proof is not a compact JWS: three base64url parts without padding, joined by dots",
	"header_encoding":               "DPoP proof header is not base64url without padding",
	"header_bom":                    "DPoP proof header starts with a byte order mark",
	"header_not_utf8":               "DPoP proof header is not valid UTF-8",
	"header_not_object":             "DPoP proof header is not a JSON object",
	"typ":                           "DPoP proof typ must be dpop+jwt",
	"alg_not_allowed":               "DPoP proof alg not allowed: use one of ES256 EdDSA Ed25519 PS256",
	"jwk_missing":                   "DPoP proof header has no jwk: embed the public key as a JSON object",
	"jwk_private":                   "DPoP proof jwk holds private key members: embed the public key only",
	"jwk_kty":                       "DPoP proof jwk kty must be EC, OKP or RSA",
	"alg_key_mismatch":              "DPoP proof alg does not fit the jwk: ES256 needs an EC key, EdDSA and Ed25519 an OKP key, PS256 an RSA key",
	"jwk_curve":                     "DPoP proof jwk curve does not fit alg: ES256 needs P-256, EdDSA and Ed25519 need Ed25519",
	"jwk_coordinates":               "DPoP proof jwk coordinates are missing or not full length",
	"jwk_not_on_curve":              "DPoP proof jwk point is not on its curve",
	"jwk_rsa_params":                "DPoP proof jwk n or e is missing or malformed",
	"jwk_rsa_size":                  "DPoP proof RSA key must have an odd modulus of 2048 to 8192 bits",
	"jwk_rsa_exponent":              "DPoP proof RSA exponent must be odd and at least 3",
	"crit":                          "DPoP proof header must not carry crit",
	"b64":                           "DPoP proof header must not carry b64",
	"jku":                           "DPoP proof key must be embedded as jwk, not referenced by jku",
	"x5u":                           "DPoP proof key must be embedded as jwk, not referenced by x5u",
	"signature":                     "DPoP proof signature does not verify with its jwk",
	"payload_encoding":              "DPoP proof payload is not base64url without padding",
	"payload_bom":                   "DPoP proof payload starts with a byte order mark",
	"payload_not_utf8":              "DPoP proof payload is not valid UTF-8",
	"payload_not_object":            "DPoP proof payload is not a JSON object",
	"claim_jti":                     "DPoP proof jti missing or not a string of 1 to 256 bytes",
	"claim_htm":                     "DPoP proof htm missing or not a string",
	"claim_htu":                     "DPoP proof htu missing or not a string",
	"claim_iat":                     "DPoP proof iat missing or not a number of seconds since 1970",
	"claim_ath":                     "DPoP proof ath missing or not a string: a request with an access token needs ath",
	"claim_nonce":                   "DPoP proof nonce is not a string",
	"claim_exp":                     "DPoP proof exp is not a number or has passed",
	"claim_nbf":                     "DPoP proof nbf is not a number or is in the future",
	"htm_mismatch":                  "htm does not match this request: expected POST",
	"htu_mismatch":                  "htu does not match this request: expected " + testURL,
	"nonce_missing":                 "Resource server requires nonce in DPoP proof",
	"nonce_invalid":                 "Resource server requires nonce in DPoP proof",
	"iat_in_future":                 "DPoP proof iat in the future: at most 10s ahead of the server clock is allowed, so check the client clock",
	"iat_too_old":                   "DPoP proof iat too old: a proof may be at most 60s old, so sign a new one for every request and check the client clock",
	"ath_mismatch":                  "ath does not match the access token: it must be the base64url SHA-256 of the token as sent",
	// Every state of the token reads the same.
	"token_inactive":            "Invalid access token",
	"token_type":                "Invalid access token",
	"token_expired":             "Invalid access token",
	"token_not_yet_valid":       "Invalid access token",
	"token_audience":            "Invalid access token",
	"token_not_bound":           "Access token is not bound to a DPoP key (no cnf.jkt)",
	"key_binding_mismatch":      "DPoP key does not match the token's cnf.jkt",
	"introspection_unavailable": "Authorization server unavailable",
	"replay":                    "DPoP proof jti already used: sign a new proof for every request",
	"replay_store_unavailable":  "Replay store unavailable",
	"insufficient_scope":        "Insufficient scope",
}

// wantNonceDetails is the OB error body's message of a use_dpop_nonce answer,
// whose error_description stays RFC 9449 Fig.24's.
var wantNonceDetails = map[string]string{
	"nonce_missing": "DPoP nonce missing: sign a new proof with the DPoP-Nonce of this answer and send the request again",
	"nonce_invalid": "DPoP nonce unknown or expired: sign a new proof with the DPoP-Nonce of this answer and send the request again",
}

// wantChallenge is the exact WWW-Authenticate of a rejection with code and
// description, from a verifier whose algs are algs (no resource metadata).
func wantChallenge(status int, code, desc, algs, scope string) string {
	switch {
	case status == http.StatusServiceUnavailable:
		return ""
	case code == "":
		return `DPoP algs="` + algs + `"`
	case code == CodeUseNonce:
		return `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`
	case code == CodeInsufficientScope:
		return `DPoP error="insufficient_scope", scope="` + scope + `"`
	}
	return `DPoP error="` + code + `", error_description="` + desc + `", algs="` + algs + `"`
}

// rfc6750Text reports whether s uses only the characters RFC 6750 §3 allows
// in error_description: %x20-21 / %x23-5B / %x5D-7E.
func rfc6750Text(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// TestDescriptionsAreQuotable: every fixed description, and every one a
// verifier builds from its configuration, may stand in a challenge as it is
// (quotable would otherwise drop it).
func TestDescriptionsAreQuotable(t *testing.T) {
	f := newFixture(t, "ES256", func(c *Config) { c.MaxAge = 5 * time.Minute; c.Skew = 90 * time.Second / 2 })
	all := map[string]string{
		"alg (built)": f.v.descAlg, "iat old (built)": f.v.descIATOld, "iat future (built)": f.v.descIATFuture,
		"htm (built)": methodMismatch("PATCH"), "htu (built)": targetMismatch(testURL),
	}
	for r, d := range descriptions {
		all[r] = d
	}
	for r, d := range nonceDetails {
		all[r+" (detail)"] = d
	}
	for name, d := range all {
		if !rfc6750Text(d) || quotable(d) != d {
			t.Errorf("%s: %q is not RFC 6750 §3 text", name, d)
		}
		if len(d) > 160 {
			t.Errorf("%s: %q is longer than 160 characters", name, d)
		}
	}
	if want := "DPoP proof iat too old: a proof may be at most 5m old, so sign a new one for every request and check the client clock"; f.v.descIATOld != want {
		t.Errorf("iat old = %q, want %q", f.v.descIATOld, want)
	}
	if want := "DPoP proof iat in the future: at most 45s ahead of the server clock is allowed, so check the client clock"; f.v.descIATFuture != want {
		t.Errorf("iat future = %q, want %q", f.v.descIATFuture, want)
	}
}

// TestTargetMismatchNamesOnlySafeURLs: the expected URL is named only when
// it may stand in a quoted string and is not too long.
func TestTargetMismatchNamesOnlySafeURLs(t *testing.T) {
	cases := []struct{ want, got string }{
		{"http://localhost:8080/oauth2/token", "htu does not match this request: expected http://localhost:8080/oauth2/token"},
		{"https://api.bank.example/a%22b", "htu does not match this request: expected https://api.bank.example/a%22b"},
		{`https://api.bank.example/a"b`, "htu does not match this request"},
		{"https://api.bank.example/a\\b", "htu does not match this request"},
		{"https://api.bank.example/a\r\nX-Evil: 1", "htu does not match this request"},
		{"https://api.bank.example/" + strings.Repeat("a", maxExpectedURL), "htu does not match this request"},
	}
	for _, tc := range cases {
		if got := targetMismatch(tc.want); got != tc.got {
			t.Errorf("targetMismatch(%q) = %q, want %q", tc.want, got, tc.got)
		}
	}
	if got := methodMismatch("BREW"); got != "htm does not match this request method" {
		t.Errorf("methodMismatch(BREW) = %q, want the general words", got)
	}
}

// TestTokenAnswersAreIdentical: whatever the state of the token (unknown,
// inactive, revoked, expired, throttled, another audience, not yet valid,
// refused as a JWT), the answer is the same; only the logged reason differs.
func TestTokenAnswersAreIdentical(t *testing.T) {
	states := map[string]func(*fixture){
		"unknown":           func(f *fixture) { f.intro.res = Introspection{} },
		"revoked":           func(f *fixture) { f.intro.res = Introspection{Active: false, ClientID: "tpp-1"} },
		"expired":           func(f *fixture) { f.intro.res.Exp = testNow.Unix() - 1 },
		"not yet valid":     func(f *fixture) { f.intro.res.Nbf = testNow.Unix() + 600 },
		"Bearer token type": func(f *fixture) { f.intro.res.TokenType = "Bearer" },
		"throttled":         func(f *fixture) { f.intro.err = ErrIntrospectionThrottled },
		"refused JWT":       func(f *fixture) { f.intro.err = &AccessTokenError{Reason: "jwt_signature"} },
	}
	var first *Error
	var firstName string
	for name, setup := range states {
		f := newFixture(t, "ES256", nil)
		setup(f)
		_, _, err := f.v.Verify(context.Background(), f.request(f.proof()))
		e := errorOf(t, err)
		if first == nil {
			first, firstName = e, name
			continue
		}
		if e.Status != first.Status || e.Code != first.Code || e.Description != first.Description || e.Detail != first.Detail ||
			e.WWWAuthenticate() != first.WWWAuthenticate() || e.Nonce != first.Nonce {
			t.Errorf("%s answers %d %s %q, %s answers %d %s %q", name, e.Status, e.Code, e.Description,
				firstName, first.Status, first.Code, first.Description)
		}
	}
	if first.Status != 401 || first.Code != CodeInvalidToken || first.Description != "Invalid access token" {
		t.Errorf("token answer = %d %s %q, want 401 invalid_token %q", first.Status, first.Code, first.Description, "Invalid access token")
	}
}

// TestRefusalEchoesNoRequestInput: claims, headers and the token never reach
// the answer, however they are spelled.
func TestRefusalEchoesNoRequestInput(t *testing.T) {
	const marker = "zq7MARKERzq7"
	f := newFixture(t, "ES256", nil)
	s := newServer(t, f)
	reqs := map[string]*http.Request{
		"htu":   f.post(f.signed(nil, func(c map[string]any) { c["htu"] = "https://" + marker + ".example" + testPath })),
		"htm":   f.post(f.signed(nil, func(c map[string]any) { c["htm"] = marker })),
		"typ":   f.post(f.signed(func(h map[string]any) { h["typ"] = marker }, nil)),
		"alg":   f.post(f.signed(func(h map[string]any) { h["alg"] = marker }, nil)),
		"jti":   f.post(f.signed(nil, func(c map[string]any) { c["iat"] = testNow.Unix() - 600; c["jti"] = marker })),
		"ath":   f.post(f.signed(nil, func(c map[string]any) { c["ath"] = marker })),
		"nonce": f.post(f.signed(nil, func(c map[string]any) { c["nonce"] = marker })),
		"token": httpReq(http.MethodPost, testPath, []string{"DPoP " + marker + `"`}, []string{f.proof()}),
	}
	for name, r := range reqs {
		w := s.do(r)
		if w.Code < 400 {
			t.Fatalf("%s: status %d, want a refusal", name, w.Code)
		}
		for k, vs := range w.Header() {
			for _, v := range vs {
				if strings.Contains(strings.ToLower(v), strings.ToLower(marker)) {
					t.Errorf("%s: header %s echoes the request: %q", name, k, v)
				}
			}
		}
		if strings.Contains(strings.ToLower(w.Body.String()), strings.ToLower(marker)) {
			t.Errorf("%s: body echoes the request: %s", name, w.Body)
		}
	}
}
