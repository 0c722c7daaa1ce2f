package devauth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	sdk "github.com/obpay/payments/client"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/security"
)

func TestAuthorizationCodeFlow(t *testing.T) {
	cases := []struct {
		name        string
		query       func(url.Values)
		wantCall    authoriseCall
		wantScope   string
		wantConsent string
	}{
		{name: "payment consent", wantCall: authoriseCall{"pay-1", "alice", "acc-alice"}, wantScope: "payments", wantConsent: "pay-1"},
		{name: "account access consent", query: func(q url.Values) {
			q.Set("consent_id", "acc-1")
			q.Set("scope", "accounts")
			q.Del("debtor_account")
		}, wantCall: authoriseCall{"acc-1", "alice", ""}, wantScope: "accounts", wantConsent: "acc-1"},
		{name: "both scopes for a payment consent grant payments only", query: func(q url.Values) { q.Set("scope", "accounts payments") },
			wantCall: authoriseCall{"pay-1", "alice", "acc-alice"}, wantScope: "payments", wantConsent: "pay-1"},
		{name: "redirect on localhost without port", query: func(q url.Values) { q.Set("redirect_uri", "http://localhost/cb?x=1") },
			wantCall: authoriseCall{"pay-1", "alice", "acc-alice"}, wantScope: "payments", wantConsent: "pay-1"},
		{name: "bound to the DPoP key with dpop_jkt", query: func(q url.Values) { q.Set("dpop_jkt", testKey(t, sdk.ES256).Thumbprint()) },
			wantCall: authoriseCall{"pay-1", "alice", "acc-alice"}, wantScope: "payments", wantConsent: "pay-1"},
		{name: "consent named by authorization_details", query: func(q url.Values) {
			q.Del("consent_id")
			q.Set("authorization_details", `[{"type":"openbanking_intent","openbanking_intent_id":"pay-1"}]`)
		}, wantCall: authoriseCall{"pay-1", "alice", "acc-alice"}, wantScope: "payments", wantConsent: "pay-1"},
		{name: "consent named both ways, the same", query: func(q url.Values) {
			q.Set("authorization_details", `[{"type":"openbanking_intent","openbanking_intent_id":"pay-1"}]`)
		}, wantCall: authoriseCall{"pay-1", "alice", "acc-alice"}, wantScope: "payments", wantConsent: "pay-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			q := authorizeQuery()
			if tc.query != nil {
				tc.query(q)
			}
			w := f.authorize(q, true)
			ans := decode(t, w)
			if w.Code != http.StatusOK || ans.Code == "" || ans.State != "xyz" || ans.Iss != testPublicURL {
				t.Fatalf("authorize = %d %+v, want 200 with a code, state xyz and iss", w.Code, ans)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Error("authorization answer is cacheable")
			}
			if diff := cmp.Diff([]authoriseCall{tc.wantCall}, f.consents.calls, cmp.AllowUnexported(authoriseCall{})); diff != "" {
				t.Errorf("AuthoriseConsent calls (-want +got):\n%s", diff)
			}
			form := exchangeForm(ans.Code)
			form.Set("redirect_uri", q.Get("redirect_uri"))
			tok := f.mustToken(form)
			details := `[{"openbanking_intent_id":"` + tc.wantConsent + `","type":"openbanking_intent"}]`
			if tok.TokenType != "DPoP" || tok.Scope != tc.wantScope || tok.RefreshToken == "" || tok.ExpiresIn != 300 ||
				tok.ConsentID != tc.wantConsent || string(tok.AuthorizationDetails) != details {
				t.Errorf("token answer = %+v", tok)
			}
			want := security.Introspection{
				Active: true, Scope: tc.wantScope, ClientID: "sandbox-tpp", Subject: "alice", ConsentID: tc.wantConsent,
				TokenType: "DPoP", CnfJKT: f.key.Thumbprint(), Iat: f.now.Unix(), Exp: f.now.Unix() + 300,
				AuthorizationDetails: json.RawMessage(details),
			}
			if diff := cmp.Diff(want, f.introspect(tok.AccessToken)); diff != "" {
				t.Errorf("Introspect (-want +got):\n%s", diff)
			}
			if f.introspect(tok.RefreshToken).Active {
				t.Error("the refresh token introspects as an access token")
			}
		})
	}
}

func TestAuthorizeRedirects(t *testing.T) {
	f := newFixture(t)
	q := authorizeQuery()
	q.Set("redirect_uri", "http://127.0.0.1:9000/cb?keep=1")
	q.Set("state", "a b&c=d\r\nSet-Cookie: x=y")
	w := f.authorize(q, false)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("authorize = %d, want 303", w.Code)
	}
	loc := w.Header().Get("Location")
	if strings.ContainsAny(loc, "\r\n ") {
		t.Fatalf("Location %q carries raw request input", loc)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host != "127.0.0.1:9000" || u.Path != "/cb" {
		t.Fatalf("Location = %q", loc)
	}
	got := u.Query()
	if got.Get("keep") != "1" || got.Get("state") != q.Get("state") || got.Get("code") == "" || got.Get("iss") != testPublicURL {
		t.Errorf("Location query = %v, want keep, state, code and iss", got)
	}
	form := exchangeForm(got.Get("code"))
	form.Set("redirect_uri", q.Get("redirect_uri"))
	f.mustToken(form)

	// An error after the client and redirect URI were checked goes to the
	// client too (RFC 6749 §4.1.2.1).
	q.Set("consent_id", "done-1")
	w = f.authorize(q, false)
	u, _ = url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusSeeOther || u.Query().Get("error") != "access_denied" || u.Query().Get("code") != "" ||
		u.Query().Get("state") != q.Get("state") || u.Query().Get("iss") != testPublicURL {
		t.Errorf("authorize(authorised consent) = %d %q, want 303 with error=access_denied, state and iss", w.Code, w.Header().Get("Location"))
	}
}

func TestAuthorizeRejects(t *testing.T) {
	set := func(k, v string) func(url.Values) { return func(q url.Values) { q.Set(k, v) } }
	del := func(k string) func(url.Values) { return func(q url.Values) { q.Del(k) } }
	cases := []struct {
		name      string
		query     func(url.Values)
		fail      error // fake consent layer error
		status    int
		code      string
		redirects bool // whether a browser request (no Accept JSON) is redirected
		hookCalls int
	}{
		// Never redirected: the client or its redirect URI is in doubt.
		{name: "unknown client", query: set("client_id", "stranger"), status: 400, code: "invalid_request"},
		{name: "admin client", query: set("client_id", "sandbox-admin"), status: 400, code: "invalid_request"},
		{name: "resource server client", query: set("client_id", ResourceServerClientID), status: 400, code: "invalid_request"},
		{name: "https redirect", query: set("redirect_uri", "https://127.0.0.1/cb"), status: 400, code: "invalid_request"},
		{name: "redirect to another host", query: set("redirect_uri", "http://attacker.example/cb"), status: 400, code: "invalid_request"},
		{name: "redirect to a lookalike host", query: set("redirect_uri", "http://127.0.0.1.attacker.example/cb"), status: 400, code: "invalid_request"},
		{name: "redirect with userinfo", query: set("redirect_uri", "http://user@127.0.0.1/cb"), status: 400, code: "invalid_request"},
		{name: "redirect with fragment", query: set("redirect_uri", "http://127.0.0.1/cb#x"), status: 400, code: "invalid_request"},
		{name: "no redirect", query: del("redirect_uri"), status: 400, code: "invalid_request"},
		{name: "repeated parameter", query: func(q url.Values) { q.Add("redirect_uri", "http://localhost/other") }, status: 400, code: "invalid_request"},
		// Redirected to the client.
		{name: "response_type token", query: set("response_type", "token"), status: 400, code: "unsupported_response_type", redirects: true},
		{name: "no response_type", query: del("response_type"), status: 400, code: "invalid_request", redirects: true},
		{name: "authorization_details of another type", query: set("authorization_details", `[{"type":"payment_initiation","openbanking_intent_id":"pay-1"}]`),
			status: 400, code: "invalid_authorization_details", redirects: true},
		{name: "authorization_details without an intent id", query: set("authorization_details", `[{"type":"openbanking_intent"}]`),
			status: 400, code: "invalid_authorization_details", redirects: true},
		{name: "authorization_details with two intents", query: set("authorization_details",
			`[{"type":"openbanking_intent","openbanking_intent_id":"pay-1"},{"type":"openbanking_intent","openbanking_intent_id":"acc-1"}]`),
			status: 400, code: "invalid_authorization_details", redirects: true},
		{name: "authorization_details not an array", query: set("authorization_details", `{"type":"openbanking_intent","openbanking_intent_id":"pay-1"}`),
			status: 400, code: "invalid_authorization_details", redirects: true},
		{name: "consent_id and authorization_details differ", query: set("authorization_details", `[{"type":"openbanking_intent","openbanking_intent_id":"pay-2"}]`),
			status: 400, code: "invalid_request", redirects: true},
		{name: "another client's consent by authorization_details", query: func(q url.Values) {
			q.Del("consent_id")
			q.Set("authorization_details", `[{"type":"openbanking_intent","openbanking_intent_id":"pay-2"}]`)
		}, status: 400, code: "invalid_request", redirects: true},
		{name: "no code_challenge", query: del("code_challenge"), status: 400, code: "invalid_request", redirects: true},
		{name: "plain PKCE", query: set("code_challenge_method", "plain"), status: 400, code: "invalid_request", redirects: true},
		{name: "no PKCE method", query: del("code_challenge_method"), status: 400, code: "invalid_request", redirects: true},
		{name: "short code_challenge", query: set("code_challenge", "abc"), status: 400, code: "invalid_request", redirects: true},
		{name: "malformed dpop_jkt", query: set("dpop_jkt", "x"), status: 400, code: "invalid_request", redirects: true},
		{name: "no consent_id", query: del("consent_id"), status: 400, code: "invalid_request", redirects: true},
		{name: "no psu", query: del("psu"), status: 400, code: "invalid_request", redirects: true},
		{name: "no scope", query: del("scope"), status: 400, code: "invalid_scope", redirects: true},
		{name: "admin scope", query: set("scope", "payments ledger:admin"), status: 400, code: "invalid_scope", redirects: true},
		{name: "unknown consent", query: set("consent_id", "nope"), status: 400, code: "invalid_request", redirects: true},
		{name: "another client's consent", query: set("consent_id", "pay-2"), status: 400, code: "invalid_request", redirects: true},
		{name: "accounts scope for a payment consent", query: set("scope", "accounts"), status: 400, code: "invalid_scope", redirects: true},
		{name: "NUL in psu", query: set("psu", "ali\x00ce"), status: 400, code: "invalid_request", redirects: true},
		{name: "NUL in debtor_account", query: set("debtor_account", "acct\x00"), status: 400, code: "invalid_request", redirects: true},
		{name: "invalid UTF-8 in psu", query: set("psu", "ali\xffce"), status: 400, code: "invalid_request", redirects: true},
		{name: "payments scope for an account access consent", query: func(q url.Values) { q.Set("consent_id", "acc-1"); q.Del("debtor_account") },
			status: 400, code: "invalid_scope", redirects: true},
		// Refused by the consent layer.
		{name: "consent already authorised", query: set("consent_id", "done-1"), status: 400, code: "access_denied", redirects: true},
		{name: "payment without debtor account", query: del("debtor_account"), status: 400, code: "invalid_request", redirects: true, hookCalls: 1},
		{name: "psu too long", query: set("psu", strings.Repeat("p", 129)), status: 400, code: "invalid_request", redirects: true, hookCalls: 1},
		{name: "consent store down", fail: openbanking.ErrStorage, status: 500, code: "server_error"},
		{name: "consent database unreachable", fail: openbanking.ErrUnavailable, status: 503, code: "temporarily_unavailable"},
	}
	for _, tc := range cases {
		for _, asJSON := range []bool{true, false} {
			name := tc.name + map[bool]string{true: " (JSON)", false: " (browser)"}[asJSON]
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				f.consents.fail = tc.fail
				q := authorizeQuery()
				if tc.query != nil {
					tc.query(q)
				}
				w := f.authorize(q, asJSON)
				var code string
				if !asJSON && tc.redirects {
					u, err := url.Parse(w.Header().Get("Location"))
					if w.Code != http.StatusSeeOther || err != nil {
						t.Fatalf("authorize = %d, Location %q; want a 303 to the client", w.Code, w.Header().Get("Location"))
					}
					if u.Query().Get("code") != "" || u.Query().Get("state") != "xyz" || u.Query().Get("error_description") == "" ||
						u.Query().Get("iss") != testPublicURL {
						t.Errorf("Location query = %v, want an error with description, state and iss, no code", u.Query())
					}
					code = u.Query().Get("error")
				} else {
					b := decode(t, w)
					if w.Code != tc.status || b.Code != "" {
						t.Fatalf("authorize = %d %+v, want %d without a code", w.Code, b, tc.status)
					}
					if w.Header().Get("Location") != "" {
						t.Errorf("Location = %q, want none", w.Header().Get("Location"))
					}
					code = b.Error
				}
				if code != tc.code {
					t.Errorf("error = %q, want %q", code, tc.code)
				}
				if got := f.consents.callCount(); got != tc.hookCalls {
					t.Errorf("AuthoriseConsent called %d times, want %d", got, tc.hookCalls)
				}
				if _, _, codes := f.tokens.size(); codes != 0 {
					t.Errorf("%d codes issued, want none", codes)
				}
			})
		}
	}
}

func TestCodeExchangeRejects(t *testing.T) {
	cases := []struct {
		name   string
		query  func(url.Values) // authorization request changes
		form   func(url.Values) // token request changes
		opts   func(f *fixture) []func(*http.Request)
		before func(f *fixture)
		status int
		code   string
	}{
		{name: "wrong verifier", form: func(v url.Values) { v.Set("code_verifier", strings.Repeat("a", 43)) }, status: 400, code: "invalid_grant"},
		{name: "verifier too short", form: func(v url.Values) { v.Set("code_verifier", "abc") }, status: 400, code: "invalid_request"},
		{name: "no verifier", form: func(v url.Values) { v.Del("code_verifier") }, status: 400, code: "invalid_request"},
		{name: "challenge sent as verifier", form: func(v url.Values) { v.Set("code_verifier", testChallenge) }, status: 400, code: "invalid_grant"},
		{name: "other redirect_uri", form: func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:8765/other") }, status: 400, code: "invalid_grant"},
		{name: "no redirect_uri", form: func(v url.Values) { v.Del("redirect_uri") }, status: 400, code: "invalid_request"},
		{name: "unknown code", form: func(v url.Values) { v.Set("code", "not-a-code") }, status: 400, code: "invalid_grant"},
		{name: "code of another client", status: 400, code: "invalid_grant",
			opts: func(*fixture) []func(*http.Request) {
				return []func(*http.Request){withHeader("Authorization", basic("sandbox-tpp-2", "sandbox-secret-2"))}
			}},
		{name: "expired code", before: func(f *fixture) { f.now = f.now.Add(61 * time.Second) }, status: 400, code: "invalid_grant"},
		{name: "key other than dpop_jkt", query: func(q url.Values) { q.Set("dpop_jkt", testKey(t, sdk.ES256).Thumbprint()) },
			before: func(f *fixture) { f.key = otherKey(t, sdk.ES256) }, status: 400, code: "invalid_grant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			q := authorizeQuery()
			if tc.query != nil {
				tc.query(q)
			}
			code := f.code(q)
			form := exchangeForm(code)
			if tc.form != nil {
				tc.form(form)
			}
			if tc.before != nil {
				tc.before(f)
			}
			var opts []func(*http.Request)
			if tc.opts != nil {
				opts = tc.opts(f)
			}
			w := f.tokenRequest(form, opts...)
			if b := decode(t, w); w.Code != tc.status || b.Error != tc.code || b.AccessToken != "" {
				t.Fatalf("exchange = %d %s (%s), want %d %s", w.Code, b.Error, b.ErrorDescription, tc.status, tc.code)
			}
			if a, r, _ := f.tokens.size(); a != 0 || r != 0 {
				t.Errorf("store holds %d access and %d refresh tokens, want none", a, r)
			}
		})
	}
}

func TestCodeIsSpentOnFirstAttempt(t *testing.T) {
	t.Run("wrong verifier spends the code", func(t *testing.T) {
		f := newFixture(t)
		code := f.code(authorizeQuery())
		bad := exchangeForm(code)
		bad.Set("code_verifier", strings.Repeat("b", 43))
		if w := f.tokenRequest(bad); w.Code != 400 {
			t.Fatalf("exchange with a wrong verifier = %d, want 400", w.Code)
		}
		w := f.tokenRequest(exchangeForm(code))
		if b := decode(t, w); w.Code != 400 || b.Error != "invalid_grant" {
			t.Errorf("exchange after a failed attempt = %d %s, want 400 invalid_grant", w.Code, b.Error)
		}
	})
	t.Run("reuse revokes the tokens issued from the code", func(t *testing.T) {
		f := newFixture(t)
		code := f.code(authorizeQuery())
		first := f.mustToken(exchangeForm(code))
		other := f.mustToken(url.Values{"grant_type": {"client_credentials"}})
		w := f.tokenRequest(exchangeForm(code))
		if b := decode(t, w); w.Code != 400 || b.Error != "invalid_grant" {
			t.Fatalf("second exchange = %d %s, want 400 invalid_grant", w.Code, b.Error)
		}
		if f.introspect(first.AccessToken).Active {
			t.Error("the access token of a reused code is still active")
		}
		w = f.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}})
		if w.Code != 400 {
			t.Errorf("refresh with the revoked refresh token = %d, want 400", w.Code)
		}
		if !f.introspect(other.AccessToken).Active {
			t.Error("an unrelated token was revoked")
		}
	})
}

func TestRefresh(t *testing.T) {
	grant := func(rt string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	}
	t.Run("is not rotated and keeps the binding", func(t *testing.T) {
		f := newFixture(t)
		first := f.mustToken(exchangeForm(f.code(authorizeQuery())))
		f.now = f.now.Add(4 * time.Minute)
		second := f.mustToken(grant(first.RefreshToken))
		if second.RefreshToken != "" || second.AccessToken == first.AccessToken || second.ConsentID != "pay-1" {
			t.Fatalf("refresh answer = %+v, want a new access token, no refresh token, the consent", second)
		}
		info := f.introspect(second.AccessToken)
		if !info.Active || info.Subject != "alice" || info.ConsentID != "pay-1" || info.Scope != "payments" ||
			info.CnfJKT != f.key.Thumbprint() || info.Exp != f.now.Unix()+300 {
			t.Errorf("refreshed token = %+v", info)
		}
		// FAPI 2.0: the same refresh token keeps working.
		third := f.mustToken(grant(first.RefreshToken))
		if third.AccessToken == second.AccessToken || !f.introspect(second.AccessToken).Active {
			t.Errorf("second refresh = %+v; the earlier access token must stay active", third)
		}
	})
	t.Run("same scope named explicitly", func(t *testing.T) {
		f := newFixture(t)
		first := f.mustToken(exchangeForm(f.code(authorizeQuery())))
		form := grant(first.RefreshToken)
		form.Set("scope", "payments")
		if got := f.mustToken(form); got.Scope != "payments" {
			t.Errorf("scope = %q, want payments", got.Scope)
		}
	})

	refused := []struct {
		name   string
		change func(f *fixture, form url.Values) []func(*http.Request)
		code   string
	}{
		{name: "another DPoP key", code: "invalid_grant", change: func(f *fixture, _ url.Values) []func(*http.Request) {
			return []func(*http.Request){withHeader("DPoP", f.proof(otherKey(t, sdk.ES256)))}
		}},
		{name: "another client", code: "invalid_grant", change: func(*fixture, url.Values) []func(*http.Request) {
			return []func(*http.Request){withHeader("Authorization", basic("sandbox-tpp-2", "sandbox-secret-2"))}
		}},
		{name: "wider scope", code: "invalid_scope", change: func(_ *fixture, form url.Values) []func(*http.Request) {
			form.Set("scope", "payments accounts")
			return nil
		}},
		{name: "unknown refresh token", code: "invalid_grant", change: func(_ *fixture, form url.Values) []func(*http.Request) {
			form.Set("refresh_token", "unknown")
			return nil
		}},
		{name: "no refresh token", code: "invalid_request", change: func(_ *fixture, form url.Values) []func(*http.Request) {
			form.Del("refresh_token")
			return nil
		}},
		{name: "access token as refresh token", code: "invalid_grant", change: func(f *fixture, form url.Values) []func(*http.Request) {
			form.Set("refresh_token", form.Get("access_token_for_test"))
			return nil
		}},
	}
	for _, tc := range refused {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			f := newFixture(t)
			first := f.mustToken(exchangeForm(f.code(authorizeQuery())))
			form := grant(first.RefreshToken)
			form.Set("access_token_for_test", first.AccessToken)
			opts := tc.change(f, form)
			form.Del("access_token_for_test")
			w := f.tokenRequest(form, opts...)
			if b := decode(t, w); w.Code != 400 || b.Error != tc.code {
				t.Fatalf("refresh = %d %s, want 400 %s", w.Code, b.Error, tc.code)
			}
			// The owner can still use it: a refused attempt does not spend it.
			f.mustToken(grant(first.RefreshToken))
		})
	}

	t.Run("expires", func(t *testing.T) {
		f := newFixture(t, func(_ *security.Config, c *Config) { c.RefreshLifetime = 10 * time.Minute })
		first := f.mustToken(exchangeForm(f.code(authorizeQuery())))
		f.now = f.now.Add(8 * time.Minute)
		second := f.mustToken(grant(first.RefreshToken))
		if second.ExpiresIn != 120 {
			t.Errorf("expires_in = %d, want 120 (capped at the refresh token's end)", second.ExpiresIn)
		}
		f.now = f.now.Add(2 * time.Minute)
		if w := f.tokenRequest(grant(first.RefreshToken)); w.Code != 400 {
			t.Errorf("refresh after the grant's end = %d, want 400", w.Code)
		}
	})
	t.Run("client credentials tokens have none", func(t *testing.T) {
		f := newFixture(t)
		if b := f.mustToken(url.Values{"grant_type": {"client_credentials"}}); b.RefreshToken != "" {
			t.Error("client credentials answer has a refresh token")
		}
	})
}
