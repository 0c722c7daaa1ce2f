package devauth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	sdk "github.com/obpay/payments/client"
	"github.com/obpay/payments/internal/security"
)

func TestClientCredentialsIssues(t *testing.T) {
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(k, v string) url.Values {
		f := url.Values{"grant_type": {"client_credentials"}}
		f.Set(k, v)
		return f
	}
	cases := []struct {
		name      string
		form      url.Values
		opts      func(f *fixture) []func(*http.Request)
		alg       sdk.Algorithm
		wantScope string
		wantID    string
	}{
		{name: "basic auth, default scope", form: cc, wantScope: "accounts payments", wantID: "sandbox-tpp"},
		{name: "basic auth with form-urlencoded id", form: cc, wantScope: "accounts payments", wantID: "sandbox-tpp",
			opts: func(*fixture) []func(*http.Request) {
				enc := "Basic " + b64std("sandbox%2Dtpp:sandbox%2Dsecret")
				return []func(*http.Request){withHeader("Authorization", enc)}
			}},
		{name: "client_secret_post", wantScope: "accounts payments", wantID: "sandbox-tpp",
			form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"sandbox-tpp"}, "client_secret": {"sandbox-secret"}},
			opts: func(*fixture) []func(*http.Request) { return []func(*http.Request){withoutHeader("Authorization")} }},
		{name: "basic auth with a matching client_id field", form: with("client_id", "sandbox-tpp"),
			wantScope: "accounts payments", wantID: "sandbox-tpp"},
		{name: "narrower scope", form: with("scope", "payments"), wantScope: "payments", wantID: "sandbox-tpp"},
		{name: "repeated scope token", form: with("scope", "payments  payments"), wantScope: "payments", wantID: "sandbox-tpp"},
		{name: "second aggregator", form: cc, wantScope: "accounts payments", wantID: "sandbox-tpp-2",
			opts: func(*fixture) []func(*http.Request) {
				return []func(*http.Request){withHeader("Authorization", basic("sandbox-tpp-2", "sandbox-secret-2"))}
			}},
		{name: "admin client", form: cc, wantScope: "ledger:admin consents:admin", wantID: "sandbox-admin",
			opts: func(*fixture) []func(*http.Request) {
				return []func(*http.Request){withHeader("Authorization", basic("sandbox-admin", "admin-secret"))}
			}},
		{name: "EdDSA key", form: cc, alg: sdk.EdDSA, wantScope: "accounts payments", wantID: "sandbox-tpp"},
		{name: "PS256 key", form: cc, alg: sdk.PS256, wantScope: "accounts payments", wantID: "sandbox-tpp"},
		{name: "proof with a nonce and an ath claim", form: cc, wantScope: "accounts payments", wantID: "sandbox-tpp",
			opts: func(f *fixture) []func(*http.Request) {
				p, err := f.key.Proof(sdk.ProofRequest{Method: "POST", URL: testTokenURL, IssuedAt: f.now,
					Nonce: "a-nonce-of-the-resource-server", AccessToken: "some-token"})
				if err != nil {
					t.Fatal(err)
				}
				return []func(*http.Request){withHeader("DPoP", p)}
			}},
		{name: "header name dpop in lower case", form: cc, wantScope: "accounts payments", wantID: "sandbox-tpp",
			opts: func(f *fixture) []func(*http.Request) {
				return []func(*http.Request){func(r *http.Request) {
					p := r.Header.Get("DPoP")
					r.Header.Del("DPoP")
					r.Header["dpop"] = []string{p}
					// net/http canonicalises incoming names; emulate that.
					r.Header = cloneCanonical(r.Header)
				}}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.alg != "" {
				f.key = testKey(t, tc.alg)
			}
			var opts []func(*http.Request)
			if tc.opts != nil {
				opts = tc.opts(f)
			}
			w := f.tokenRequest(tc.form, opts...)
			b := decode(t, w)
			if w.Code != http.StatusOK {
				t.Fatalf("token = %d %s (%s), want 200", w.Code, b.Error, b.ErrorDescription)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if b.TokenType != "DPoP" || b.ExpiresIn != 300 || b.Scope != tc.wantScope || b.RefreshToken != "" || len(b.AccessToken) != 43 {
				t.Errorf("answer = %+v, want a DPoP token for %q, 300 s, no refresh token", b, tc.wantScope)
			}
			want := security.Introspection{
				Active: true, Scope: tc.wantScope, ClientID: tc.wantID, TokenType: "DPoP", CnfJKT: f.key.Thumbprint(),
				Iat: f.now.Unix(), Exp: f.now.Unix() + 300,
			}
			if diff := cmp.Diff(want, f.introspect(b.AccessToken)); diff != "" {
				t.Errorf("Introspect (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTokenEndpointRejects(t *testing.T) {
	cc := url.Values{"grant_type": {"client_credentials"}}
	auth := func(v string) []func(*http.Request) { return []func(*http.Request){withHeader("Authorization", v)} }
	cases := []struct {
		name   string
		form   url.Values
		opts   func(f *fixture) []func(*http.Request)
		status int
		code   string
		desc   string // the exact error_description, when the case names it
	}{
		// Request format (RFC 6749 §3.1, §3.2).
		{name: "JSON body", form: cc, status: 400, code: "invalid_request",
			opts: func(*fixture) []func(*http.Request) {
				return []func(*http.Request){withHeader("Content-Type", "application/json")}
			}},
		{name: "repeated parameter", form: url.Values{"grant_type": {"client_credentials", "client_credentials"}}, status: 400, code: "invalid_request"},
		{name: "no grant_type", form: url.Values{}, status: 400, code: "invalid_request"},
		{name: "password grant", form: url.Values{"grant_type": {"password"}}, status: 400, code: "unsupported_grant_type"},
		// Client authentication (§2.3, §5.2).
		{name: "wrong secret", form: cc, status: 401, code: "invalid_client",
			opts: func(*fixture) []func(*http.Request) { return auth(basic("sandbox-tpp", "sandbox-secret-2")) }},
		{name: "unknown client", form: cc, status: 401, code: "invalid_client",
			opts: func(*fixture) []func(*http.Request) { return auth(basic("stranger", "sandbox-secret")) }},
		{name: "another client's secret", form: cc, status: 401, code: "invalid_client",
			opts: func(*fixture) []func(*http.Request) { return auth(basic("sandbox-tpp-2", "sandbox-secret")) }},
		{name: "Basic without colon", form: cc, status: 401, code: "invalid_client",
			opts: func(*fixture) []func(*http.Request) { return auth("Basic " + b64std("sandbox-tpp")) }},
		{name: "Basic not base64", form: cc, status: 401, code: "invalid_client",
			opts: func(*fixture) []func(*http.Request) { return auth("Basic ***") }},
		{name: "no client authentication", form: cc, status: 401, code: "invalid_client",
			opts: func(*fixture) []func(*http.Request) { return []func(*http.Request){withoutHeader("Authorization")} }},
		{name: "client_id without secret", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"sandbox-tpp"}},
			status: 401, code: "invalid_client",
			opts: func(*fixture) []func(*http.Request) { return []func(*http.Request){withoutHeader("Authorization")} }},
		{name: "Basic and client_secret both", form: url.Values{"grant_type": {"client_credentials"}, "client_secret": {"sandbox-secret"}},
			status: 400, code: "invalid_request"},
		{name: "Basic and another client_id", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"sandbox-tpp-2"}},
			status: 400, code: "invalid_request"},
		{name: "two Authorization headers", form: cc, status: 400, code: "invalid_request",
			opts: func(*fixture) []func(*http.Request) {
				return []func(*http.Request){func(r *http.Request) { r.Header.Add("Authorization", basic("sandbox-tpp", "sandbox-secret")) }}
			}},
		// Scope (§3.3) and grant permissions.
		{name: "scope beyond the client's", form: url.Values{"grant_type": {"client_credentials"}, "scope": {"payments ledger:admin"}},
			status: 400, code: "invalid_scope"},
		{name: "empty scope", form: url.Values{"grant_type": {"client_credentials"}, "scope": {""}}, status: 400, code: "invalid_scope"},
		{name: "resource server client", form: cc, status: 400, code: "unauthorized_client",
			opts: func(*fixture) []func(*http.Request) {
				return auth(basic(ResourceServerClientID, ResourceServerClientSecret))
			}},
		// DPoP (RFC 9449 §5).
		{name: "no DPoP proof", form: cc, status: 400, code: "invalid_dpop_proof",
			desc: "DPoP proof missing: send exactly one DPoP header",
			opts: func(*fixture) []func(*http.Request) { return []func(*http.Request){withoutHeader("DPoP")} }},
		{name: "two DPoP proofs", form: cc, status: 400, code: "invalid_dpop_proof",
			desc: "More than one DPoP header: send exactly one",
			opts: func(f *fixture) []func(*http.Request) {
				return []func(*http.Request){func(r *http.Request) { r.Header.Add("DPoP", f.proof(f.key)) }}
			}},
		// The expected URL is the token endpoint's, built from the
		// configured public URL: the usual mistake is another host or port.
		{name: "proof for the resource server", form: cc, status: 400, code: "invalid_dpop_proof",
			desc: "htu does not match this request: expected " + testTokenURL,
			opts: func(f *fixture) []func(*http.Request) {
				p, _ := f.key.Proof(sdk.ProofRequest{Method: "POST", URL: testPublicURL + "/open-banking/v3.1/pisp/domestic-payments", IssuedAt: f.now})
				return []func(*http.Request){withHeader("DPoP", p)}
			}},
		{name: "proof for GET", form: cc, status: 400, code: "invalid_dpop_proof",
			desc: "htm does not match this request: expected POST",
			opts: func(f *fixture) []func(*http.Request) {
				p, _ := f.key.Proof(sdk.ProofRequest{Method: "GET", URL: testTokenURL, IssuedAt: f.now})
				return []func(*http.Request){withHeader("DPoP", p)}
			}},
		{name: "proof two minutes old", form: cc, status: 400, code: "invalid_dpop_proof",
			desc: "DPoP proof iat too old: a proof may be at most 60s old, so sign a new one for every request and check the client clock",
			opts: func(f *fixture) []func(*http.Request) {
				p, _ := f.key.Proof(sdk.ProofRequest{Method: "POST", URL: testTokenURL, IssuedAt: f.now.Add(-2 * time.Minute)})
				return []func(*http.Request){withHeader("DPoP", p)}
			}},
		{name: "tampered proof", form: cc, status: 400, code: "invalid_dpop_proof",
			desc: "DPoP proof signature does not verify with its jwk",
			opts: func(f *fixture) []func(*http.Request) {
				p := f.proof(f.key)
				return []func(*http.Request){withHeader("DPoP", p[:len(p)-4]+"AAAA")}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			var opts []func(*http.Request)
			if tc.opts != nil {
				opts = tc.opts(f)
			}
			w := f.tokenRequest(tc.form, opts...)
			b := decode(t, w)
			if w.Code != tc.status || b.Error != tc.code {
				t.Fatalf("token = %d %s (%s), want %d %s", w.Code, b.Error, b.ErrorDescription, tc.status, tc.code)
			}
			if b.AccessToken != "" || b.ErrorDescription == "" {
				t.Errorf("answer = %+v, want an error with a description and no token", b)
			}
			if tc.desc != "" && b.ErrorDescription != tc.desc {
				t.Errorf("error_description = %q, want %q", b.ErrorDescription, tc.desc)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			challenge := w.Header().Get("WWW-Authenticate")
			if (tc.code == "invalid_client") != (challenge == `Basic realm="sandbox"`) {
				t.Errorf("WWW-Authenticate = %q for %s", challenge, tc.code)
			}
			if a, r, c := f.tokens.size(); a != 0 || r != 0 || c != 0 {
				t.Errorf("store holds %d access, %d refresh tokens, %d codes; want none", a, r, c)
			}
		})
	}
}

// handSigner is the Ed25519 key of handProof (Ed25519 signatures are
// deterministic, so equal inputs give equal proofs).
var handSigner = func() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("devauth hand-written proofs"))
	return ed25519.NewKeyFromSeed(seed[:])
}()

// handProof returns a token request proof signed with handSigner whose
// header and claims are written byte by byte, so that they can hold what a
// JSON encoder never writes: each gets its prefix in front and its member
// (raw, with a trailing comma) first in the object.
func (f *fixture) handProof(hdrPrefix, hdrMember, clPrefix, clMember string) string {
	f.t.Helper()
	k, err := sdk.NewKey(handSigner)
	if err != nil {
		f.t.Fatal(err)
	}
	header := hdrPrefix + "{" + hdrMember + `"typ":"dpop+jwt","alg":"EdDSA","jwk":` + string(k.PublicJWK()) + "}"
	claims := clPrefix + "{" + clMember + `"jti":"hand-` + strconv.FormatInt(f.now.UnixNano(), 10) + `","htm":"POST","htu":"` +
		testTokenURL + `","iat":` + strconv.FormatInt(f.now.Unix(), 10) + "}"
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(header)) + "." + enc([]byte(claims))
	return input + "." + enc(ed25519.Sign(handSigner, []byte(input)))
}

// TestTokenEndpointRefusesNonUTF8Proofs: the token endpoint's proofs go
// through the same verifier as the resource server's, so a header or claims
// set that is not UTF-8 JSON (RFC 7515 §5.2 step 3, RFC 7519 §7.2 steps 4 and
// 10), even in a member nobody reads, or that starts with a byte order mark
// (RFC 8259 §8.1), gets 400 invalid_dpop_proof and no token.
func TestTokenEndpointRefusesNonUTF8Proofs(t *testing.T) {
	cc := url.Values{"grant_type": {"client_credentials"}}
	t.Run("hand-written proof with non-ASCII UTF-8 is accepted", func(t *testing.T) {
		f := newFixture(t)
		b := f.mustToken(cc, withHeader("DPoP", f.handProof("", `"kid":"clé-€",`, "", `"note":"naïve ✓ `+"\U0001F511"+`",`)))
		k, _ := sdk.NewKey(handSigner)
		if got := f.introspect(b.AccessToken).CnfJKT; got != k.Thumbprint() {
			t.Errorf("cnf.jkt = %q, want the hand key's %q", got, k.Thumbprint())
		}
	})
	cases := []struct {
		name                                   string
		hdrPrefix, hdrMember, clPrefix, member string
		reason                                 string
	}{
		{name: "invalid UTF-8 in an ignored header member", hdrMember: `"kid":"` + "\xff" + `",`, reason: "dpop_header_not_utf8"},
		{name: "encoded surrogate in a header member name", hdrMember: `"x` + "\xed\xa0\x80" + `":1,`, reason: "dpop_header_not_utf8"},
		{name: "byte order mark before the header", hdrPrefix: "\xef\xbb\xbf", reason: "dpop_header_bom"},
		{name: "invalid UTF-8 in an ignored claim", member: `"note":"` + "\xc3\x28" + `",`, reason: "dpop_payload_not_utf8"},
		{name: "overlong encoding in an ignored claim", member: `"note":"` + "\xc0\xaf" + `",`, reason: "dpop_payload_not_utf8"},
		{name: "byte order mark before the claims", clPrefix: "\xef\xbb\xbf", reason: "dpop_payload_bom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			f := newFixture(t, func(_ *security.Config, d *Config) {
				d.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			})
			w := f.tokenRequest(cc, withHeader("DPoP", f.handProof(tc.hdrPrefix, tc.hdrMember, tc.clPrefix, tc.member)))
			b := decode(t, w)
			if w.Code != http.StatusBadRequest || b.Error != "invalid_dpop_proof" || b.AccessToken != "" {
				t.Fatalf("token = %d %s (%s), want 400 invalid_dpop_proof", w.Code, b.Error, b.ErrorDescription)
			}
			if got := refusalReason(t, logs.String()); got != tc.reason {
				t.Errorf("logged reason = %q, want %q", got, tc.reason)
			}
			if a, r, c := f.tokens.size(); a != 0 || r != 0 || c != 0 {
				t.Errorf("store holds %d access, %d refresh tokens, %d codes; want none", a, r, c)
			}
		})
	}
}

// refusalReason returns the reason of the last "oauth request refused" line
// of a JSON log.
func refusalReason(t *testing.T, log string) string {
	t.Helper()
	reason := ""
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec struct{ Msg, Reason string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v", err)
		}
		if rec.Msg == "oauth request refused" {
			reason = rec.Reason
		}
	}
	return reason
}

func TestTokenEndpointReplayedProof(t *testing.T) {
	f := newFixture(t)
	p := f.proof(f.key)
	cc := url.Values{"grant_type": {"client_credentials"}}
	f.mustToken(cc, withHeader("DPoP", p))
	w := f.tokenRequest(cc, withHeader("DPoP", p))
	if b := decode(t, w); w.Code != 400 || b.Error != "invalid_dpop_proof" {
		t.Errorf("replayed proof = %d %s, want 400 invalid_dpop_proof", w.Code, b.Error)
	}
}

func TestTokenEndpointFailsClosed(t *testing.T) {
	f := newFixture(t, func(s *security.Config, _ *Config) { s.ReplayStore = downStore{} })
	w := f.tokenRequest(url.Values{"grant_type": {"client_credentials"}})
	b := decode(t, w)
	if w.Code != http.StatusServiceUnavailable || b.Error != "temporarily_unavailable" || w.Header().Get("Retry-After") == "" {
		t.Errorf("token with the replay store down = %d %s, Retry-After %q; want 503 temporarily_unavailable with Retry-After",
			w.Code, b.Error, w.Header().Get("Retry-After"))
	}
	if a, _, _ := f.tokens.size(); a != 0 {
		t.Errorf("%d tokens issued, want none", a)
	}
}

func TestTokenStoreFull(t *testing.T) {
	f := newFixture(t)
	f.tokens.store.(*MemoryStore).maxEntries = 2
	cc := url.Values{"grant_type": {"client_credentials"}}
	f.mustToken(cc)
	f.mustToken(cc, withHeader("Authorization", basic("sandbox-tpp-2", "sandbox-secret-2")))
	w := f.tokenRequest(cc)
	if b := decode(t, w); w.Code != http.StatusServiceUnavailable || b.Error != "temporarily_unavailable" {
		t.Fatalf("third token = %d %s, want 503 temporarily_unavailable", w.Code, b.Error)
	}
	// Once the first two expire, they make room.
	f.now = f.now.Add(5 * time.Minute)
	f.mustToken(cc)
	if a, _, _ := f.tokens.size(); a != 1 {
		t.Errorf("store holds %d access tokens after expiry, want 1", a)
	}
}

func TestTokenCapPerClient(t *testing.T) {
	f := newFixture(t)
	f.tokens.maxPerClient = 2
	cc := url.Values{"grant_type": {"client_credentials"}}
	f.mustToken(cc)
	f.mustToken(cc)
	w := f.tokenRequest(cc)
	b := decode(t, w)
	if w.Code != http.StatusTooManyRequests || b.Error != "temporarily_unavailable" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("token past the client's cap = %d %s, Retry-After %q; want 429 temporarily_unavailable with Retry-After",
			w.Code, b.Error, w.Header().Get("Retry-After"))
	}
	// Other clients, the admin client above all, still get tokens.
	f.mustToken(cc, withHeader("Authorization", basic("sandbox-tpp-2", "sandbox-secret-2")))
	f.mustToken(url.Values{"grant_type": {"client_credentials"}, "scope": {"ledger:admin"}},
		withHeader("Authorization", basic("sandbox-admin", "admin-secret")))
	// Once its tokens expire, the client gets new ones.
	f.now = f.now.Add(5 * time.Minute)
	f.mustToken(cc)
}

func TestAccessTokenExpires(t *testing.T) {
	f := newFixture(t, func(_ *security.Config, c *Config) { c.TokenLifetime = 2 * time.Minute })
	b := f.mustToken(url.Values{"grant_type": {"client_credentials"}})
	if b.ExpiresIn != 120 {
		t.Errorf("expires_in = %d, want 120", b.ExpiresIn)
	}
	f.now = f.now.Add(2*time.Minute - time.Second)
	if !f.introspect(b.AccessToken).Active {
		t.Error("token inactive 1 s before its expiry")
	}
	f.now = f.now.Add(time.Second)
	if got := f.introspect(b.AccessToken); got.Active || got.ClientID != "" || got.CnfJKT != "" {
		t.Errorf("Introspect at expiry = %+v, want only active=false", got)
	}
	if got := f.introspect("unknown-token"); got.Active {
		t.Errorf("Introspect(unknown) = %+v, want inactive", got)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no verifier", Config{Consents: f.consents}},
		{"no consent authoriser", Config{Verifier: f.verifier}},
		{"token lifetime over an hour", Config{Verifier: f.verifier, Consents: f.consents, TokenLifetime: 2 * time.Hour}},
		{"negative token lifetime", Config{Verifier: f.verifier, Consents: f.consents, TokenLifetime: -time.Second}},
		{"refresh shorter than access", Config{Verifier: f.verifier, Consents: f.consents, TokenLifetime: 10 * time.Minute, RefreshLifetime: time.Minute}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Errorf("New(%s) succeeded, want an error", tc.name)
			}
		})
	}
	if _, err := New(Config{Verifier: f.verifier, Consents: f.consents}); err != nil {
		t.Errorf("New(minimal) = %v", err)
	}
}

// downStore is a replay store that cannot record anything.
type downStore struct{}

func (downStore) Seen(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("store down")
}

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func cloneCanonical(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		for _, x := range v {
			out.Add(k, x)
		}
	}
	return out
}
