package security

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// referenceClaims is the straightforward decoder the scanner replaced:
// encoding/json into a map of raw members, matched by exact name. The
// scanner must reach the same verdict on every payload.
func referenceClaims(v *Verifier, raw []byte, now time.Time, withATH bool) (proofClaims, string) {
	var c proofClaims
	// RFC 8259 §8.1, checked before parsing: encoding/json would read
	// invalid UTF-8 as U+FFFD, and refuses a byte order mark only as a
	// syntax error.
	if bytes.HasPrefix(raw, []byte("\xef\xbb\xbf")) {
		return c, "payload_bom"
	}
	if !utf8.Valid(raw) {
		return c, "payload_not_utf8"
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return c, "payload_not_object"
	}
	str := func(name string) (string, bool) {
		r, ok := m[name]
		if !ok {
			return "", false
		}
		if r[0] != '"' {
			return "", false
		}
		// Without escapes the bytes are taken as they are; they are valid
		// UTF-8 (checked above), so encoding/json would read the same.
		if inner := r[1 : len(r)-1]; !strings.Contains(string(inner), `\`) {
			return string(inner), true
		}
		var s string
		if json.Unmarshal(r, &s) != nil {
			return "", false
		}
		return s, true
	}
	num := func(name string) (float64, bool) {
		r, ok := m[name]
		if !ok || !(r[0] == '-' || '0' <= r[0] && r[0] <= '9') {
			return 0, false
		}
		f, err := strconv.ParseFloat(string(r), 64)
		return f, err == nil && !math.IsInf(f, 0)
	}
	var ok bool
	if c.JTI, ok = str("jti"); !ok || c.JTI == "" || len(c.JTI) > maxJTILen {
		return c, "claim_jti"
	}
	if c.Method, ok = str("htm"); !ok {
		return c, "claim_htm"
	}
	if c.URL, ok = str("htu"); !ok {
		return c, "claim_htu"
	}
	if c.IssuedAt, ok = num("iat"); !ok {
		return c, "claim_iat"
	}
	if withATH {
		if c.AccessTokenHash, ok = str("ath"); !ok {
			return c, "claim_ath"
		}
	}
	if _, present := m["nonce"]; present {
		if c.Nonce, ok = str("nonce"); !ok {
			return c, "claim_nonce"
		}
		c.hasNonce = true
	}
	if _, present := m["exp"]; present {
		if exp, ok := num("exp"); !ok || !afterSeconds(exp, now.Add(-v.skew)) {
			return c, "claim_exp"
		}
	}
	if _, present := m["nbf"]; present {
		if nbf, ok := num("nbf"); !ok || afterSeconds(nbf, now.Add(v.skew)) {
			return c, "claim_nbf"
		}
	}
	return c, ""
}

// claimPayloads are payloads whose parsing is easy to get wrong by hand.
var claimPayloads = []string{
	`{"jti":"a","htm":"POST","htu":"https://x.example/p","iat":1800000000,"ath":"h"}`,
	` { "jti" : "a" , "htm" : "POST" , "htu" : "u" , "iat" : 1800000000 , "ath" : "h" } `,
	"{\n\t\"jti\":\"a\",\r\n\"htm\":\"GET\",\"htu\":\"u\",\"iat\":1.8e9,\"ath\":\"h\"}",
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","nonce":"n"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","nonce":null}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","exp":1800000300,"nbf":1800000000}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","exp":"1800000300"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","nbf":1800000100}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":"1800000000","ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":-1,"ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1e400,"ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":true,"ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000}`,
	`{"JTI":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h"}`,
	`{"\u006a\u0074\u0069":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h"}`,
	`{"jti":"\u0061\"b","htm":"PO\u0053T","htu":"u","iat":1800000000,"ath":"h"}`,
	`{"jti":"first","jti":"last","htm":"POST","htu":"u","iat":1800000000,"ath":"h"}`,
	`{"jti":"a","jti":7,"htm":"POST","htu":"u","iat":1800000000,"ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","x":{"jti":"inner","y":[1,"}",{"z":"]"}]}}`,
	`{"x":["\"","\\",{}],"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h"}`,
	`{"jti":"","htm":"POST","htu":"u","iat":1800000000,"ath":"h"}`,
	`{"jti":["a"],"htm":"POST","htu":"u","iat":1800000000,"ath":"h"}`,
	`{}`,
	`[]`,
	`null`,
	`"jti"`,
	`{"jti":"a",}`,
	`{"jti":"a"`,
	`{"jti":"a"}x`,
	`{"jti" "a"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":01,"ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1.,"ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":-,"ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1e,"ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":+1,"ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":-0.5e+3,"ath":"h"}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","x":tru}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","x":[1,]}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","x":[1 2]}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","x":{"a" 1}}`,
	`{"jti":"\x","htm":"POST","htu":"u","iat":1800000000,"ath":"h"}`,
	`{"jti":"\u12G4","htm":"POST","htu":"u","iat":1800000000,"ath":"h"}`,
	`{"jti":"\ud800","htm":"POST","htu":"u","iat":1800000000,"ath":"h"}`,
	"{\"jti\":\"a\tb\",\"htm\":\"POST\",\"htu\":\"u\",\"iat\":1800000000,\"ath\":\"h\"}",
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","x":[[[[{"y":[null,true,false]}]]]]}`,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h"} `,
	`{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h"}{}`,
	`{"jti":"a" , }`,
	`{,"jti":"a"}`,
	``,
	` `,
	"{\"jti\":\"a\xff\",\"htm\":\"POST\",\"htu\":\"u\",\"iat\":1800000000,\"ath\":\"h\"}",
	// RFC 8259 §8.1: UTF-8 only, members we ignore included, no byte order mark.
	"\xef\xbb\xbf{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"u\",\"iat\":1800000000,\"ath\":\"h\"}",
	"\xef\xbb{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"u\",\"iat\":1800000000,\"ath\":\"h\"}",
	"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"u\",\"iat\":1800000000,\"ath\":\"h\",\"x\":\"\xed\xa0\x80\"}",
	"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"u\",\"iat\":1800000000,\"ath\":\"h\",\"x\xc0\xaf\":1}",
	"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"u\",\"iat\":1800000000,\"ath\":\"h\",\"x\":[\"\xf4\x90\x80\x80\"]}",
	"{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"u\",\"iat\":1800000000,\"ath\":\"h\",\"x\":\"\xe2\x82\"}",
	"{\"jti\":\"\xef\xbb\xbfa\",\"htm\":\"POST\",\"htu\":\"u\",\"iat\":1800000000,\"ath\":\"h\",\"x\":\"na\xc3\xafve \xe2\x9c\x93 \xf0\x9f\x94\x91\"}",
}

// TestDecodeClaimsMatchesReference checks the scanner against encoding/json
// on tricky payloads: whitespace, escapes in names and values, repeated
// members, nested values holding claim names and delimiters, wrong types
// and malformed JSON.
func TestDecodeClaimsMatchesReference(t *testing.T) {
	f := newFixture(t, "ES256", nil)
	deep := func(n int) string {
		return `{"jti":"a","htm":"POST","htu":"u","iat":1800000000,"ath":"h","x":` +
			strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
	}
	payloads := append([]string{deep(9999), deep(10000)}, claimPayloads...)
	for _, p := range payloads {
		t.Run(fmt.Sprintf("%.80s", p), func(t *testing.T) {
			compareWithReference(t, f.v, []byte(p))
		})
	}
}

// FuzzDecodeClaims compares the scanner with encoding/json on any payload.
func FuzzDecodeClaims(f *testing.F) {
	for _, p := range claimPayloads {
		f.Add([]byte(p))
	}
	fx := newFixture(f, "ES256", nil)
	f.Fuzz(func(t *testing.T, payload []byte) {
		compareWithReference(t, fx.v, payload)
	})
}

func compareWithReference(t *testing.T, v *Verifier, payload []byte) {
	t.Helper()
	for _, withATH := range []bool{true, false} {
		want, wantReason := referenceClaims(v, payload, testNow, withATH)
		got, e := v.decodeClaims(base64.RawURLEncoding.EncodeToString(payload), testNow, withATH)
		gotReason := ""
		if e != nil {
			gotReason = e.Reason
		}
		if gotReason != wantReason {
			t.Fatalf("decodeClaims(%q, ath %v) reason = %q, want %q", payload, withATH, gotReason, wantReason)
		}
		if wantReason == "" && got != want {
			t.Fatalf("decodeClaims(%q, ath %v) = %+v, want %+v", payload, withATH, got, want)
		}
	}
}
