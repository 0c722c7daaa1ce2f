package security

import (
	"errors"
	"net/http"
	"testing"
)

const testMetadataURL = testPublicURL + "/.well-known/oauth-protected-resource"

// TestChallengeNamesResourceMetadata checks that every 401 challenge of the
// middleware carries RFC 9728 §5.1's resource_metadata, as the last
// parameter and a valid quoted-string, that answers other than 401 do not,
// and that nothing past the failed check ran.
func TestChallengeNamesResourceMetadata(t *testing.T) {
	const algs = `algs="ES256 EdDSA Ed25519 PS256"`
	const rm = `resource_metadata="` + testMetadataURL + `"`
	withMetadata := func(c *Config) { c.ResourceMetadata = testMetadataURL }
	tests := []struct {
		name   string
		setup  func(*fixture)
		build  func(*fixture) *http.Request
		status int
		want   string
	}{
		{name: "no credentials", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, nil, []string{f.proof()})
		}, status: 401, want: `DPoP ` + algs + `, ` + rm},
		{name: "bearer scheme", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"Bearer " + f.token}, []string{f.proof()})
		}, status: 401, want: `DPoP ` + algs + `, ` + rm},
		{name: "invalid proof", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"DPoP " + f.token}, nil)
		}, status: 401, want: `DPoP error="invalid_dpop_proof", error_description="DPoP proof missing: send exactly one DPoP header", ` + algs + `, ` + rm},
		{name: "nonce missing", build: func(f *fixture) *http.Request {
			return f.post(f.signed(nil, func(c map[string]any) { delete(c, "nonce") }))
		}, status: 401, want: `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", ` + rm},
		{name: "inactive token", setup: func(f *fixture) { f.intro.res = Introspection{Active: false} },
			build: func(f *fixture) *http.Request { return f.post(f.proof()) }, status: 401,
			want: `DPoP error="invalid_token", error_description="Invalid access token", ` + algs + `, ` + rm},
		{name: "token not bound to a key", setup: func(f *fixture) { f.intro.res.CnfJKT = "other" },
			build: func(f *fixture) *http.Request { return f.post(f.proof()) }, status: 401,
			want: `DPoP error="invalid_token", error_description="Access token is not bound to a DPoP key (no cnf.jkt)", ` + algs + `, ` + rm},
		{name: "two Authorization headers (400)", build: func(f *fixture) *http.Request {
			return httpReq(http.MethodPost, testPath, []string{"DPoP " + f.token, "DPoP " + f.token}, []string{f.proof()})
		}, status: 400, want: `DPoP error="invalid_request", error_description="Multiple methods used to include access token: send one Authorization header", ` + algs},
		{name: "insufficient scope (403)", setup: func(f *fixture) { f.intro.res.Scope = "accounts" },
			build: func(f *fixture) *http.Request { return f.post(f.proof()) }, status: 403,
			want: `DPoP error="insufficient_scope", scope="payments"`},
		{name: "introspection down (503)", setup: func(f *fixture) { f.intro.err = errors.New("down") },
			build: func(f *fixture) *http.Request { return f.post(f.proof()) }, status: 503, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, algES256, withMetadata)
			if tt.setup != nil {
				tt.setup(f)
			}
			s := newServer(t, f)
			w := s.do(tt.build(f))
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d", w.Code, tt.status)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.want)
			}
			if tt.want != "" {
				if _, err := parseChallenge(tt.want); err != nil {
					t.Errorf("parseChallenge(%q) = %v", tt.want, err)
				}
			}
			if n := s.handled.Load(); n != 0 {
				t.Errorf("handler ran %d times, want 0", n)
			}
		})
	}
}

// TestChallengeWithoutResourceMetadata checks that a verifier configured
// without the URL keeps the challenges as they were.
func TestChallengeWithoutResourceMetadata(t *testing.T) {
	f := newFixture(t, algES256, nil)
	w := newServer(t, f).do(httpReq(http.MethodPost, testPath, nil, []string{f.proof()}))
	if got, want := w.Header().Get("WWW-Authenticate"), `DPoP algs="ES256 EdDSA Ed25519 PS256"`; w.Code != 401 || got != want {
		t.Errorf("answer = %d %q, want 401 %q", w.Code, got, want)
	}
}

func TestNewVerifierRejectsBadResourceMetadata(t *testing.T) {
	store, _ := NewMemoryReplayStore()
	for _, tt := range []struct{ name, url string }{
		{"relative", "/.well-known/oauth-protected-resource"},
		{"other scheme", "ftp://api.bank.example/.well-known/oauth-protected-resource"},
		{"no host", "https:///.well-known/oauth-protected-resource"},
		{"userinfo", "https://u:p@api.bank.example/.well-known/oauth-protected-resource"},
		{"fragment", "https://api.bank.example/.well-known/oauth-protected-resource#x"},
		{"quote", `https://api.bank.example/.well-known/oauth-protected-resource"x`},
		{"backslash", `https://api.bank.example/.well-known/oauth-protected-resource\x`},
		{"comma", "https://api.bank.example/.well-known/oauth-protected-resource,x"},
		{"space", "https://api.bank.example/.well-known/oauth-protected resource"},
		{"control character", "https://api.bank.example/.well-known/oauth-protected-resource\r\nX: y"},
		{"non-ASCII", "https://api.bank.example/.well-known/oauth-protected-resourcé"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{PublicURL: testPublicURL, ReplayStore: store, Introspector: &fakeIntrospector{}, ResourceMetadata: tt.url}
			if _, err := NewVerifier(cfg); err == nil {
				t.Errorf("NewVerifier(ResourceMetadata %q) = nil error, want a refusal", tt.url)
			}
		})
	}
}

// parseChallenge parses one challenge as RFC 9110 §11.2 defines it:
// auth-scheme [ 1*SP #auth-param ], where every value here must be a
// quoted-string (RFC 6750 §3, RFC 9449 §7.1). It returns the parameters.
func parseChallenge(s string) (map[string]string, error) {
	isTchar := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~'
	}
	token := func(i int) int {
		for i < len(s) && isTchar(s[i]) {
			i++
		}
		return i
	}
	i := token(0)
	if i == 0 {
		return nil, errors.New("no auth-scheme")
	}
	params := map[string]string{}
	if i == len(s) {
		return params, nil
	}
	if s[i] != ' ' {
		return nil, errors.New("no space after the scheme")
	}
	i++
	for {
		j := token(i)
		if j == i || j >= len(s) || s[j] != '=' {
			return nil, errors.New("bad auth-param name")
		}
		name := s[i:j]
		i = j + 1
		if i >= len(s) || s[i] != '"' {
			return nil, errors.New("value is not a quoted-string")
		}
		i++
		start := i
		for i < len(s) && s[i] != '"' {
			c := s[i]
			if c == '\\' || c < 0x20 || c > 0x7e {
				return nil, errors.New("character outside RFC 6750 §3's quoted value")
			}
			i++
		}
		if i >= len(s) {
			return nil, errors.New("unterminated quoted-string")
		}
		if _, dup := params[name]; dup {
			return nil, errors.New("repeated parameter")
		}
		params[name] = s[start:i]
		i++
		if i == len(s) {
			return params, nil
		}
		if !hasPrefixAt(s, i, ", ") {
			return nil, errors.New("parameters not separated by a comma")
		}
		i += 2
	}
}

func hasPrefixAt(s string, i int, p string) bool { return len(s)-i >= len(p) && s[i:i+len(p)] == p }
