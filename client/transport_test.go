package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obpay/payments/internal/security"
)

// attempt is what a fake server saw of one request.
type attempt struct {
	proof          string
	claims         proofClaims
	authorization  string
	idempotencyKey string
	body           string
}

// scriptedServer answers each attempt with the reply function and records every attempt.
type scriptedServer struct {
	t     *testing.T
	reply func(n int, w http.ResponseWriter)

	mu       sync.Mutex
	attempts []attempt
}

func (s *scriptedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d, err := verifyProof(r.Header.Get("DPoP"))
	if err != nil {
		s.t.Errorf("attempt %d: proof does not verify: %v", len(s.attempts)+1, err)
	}
	s.mu.Lock()
	s.attempts = append(s.attempts, attempt{
		proof:          r.Header.Get("DPoP"),
		claims:         d.Claims,
		authorization:  r.Header.Get("Authorization"),
		idempotencyKey: r.Header.Get("x-idempotency-key"),
		body:           string(body),
	})
	n := len(s.attempts)
	s.mu.Unlock()
	s.reply(n, w)
}

func (s *scriptedServer) seen() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]attempt(nil), s.attempts...)
}

const nonceChallenge = `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`

func answer(w http.ResponseWriter, status int, nonce, challenge, body string) {
	if nonce != "" {
		w.Header().Set("DPoP-Nonce", nonce)
		w.Header().Set("Cache-Control", "no-store")
	}
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func TestTransportRetryDecisions(t *testing.T) {
	tests := []struct {
		name         string
		knownNonce   string // the nonce the transport holds before the call
		reply        func(n int, w http.ResponseWriter)
		wantAttempts int
		wantStatus   int
		wantBody     string
		wantNonce    string // the nonce the transport holds after the call
	}{
		{
			name: "retries a 401 use_dpop_nonce once with the new nonce",
			reply: func(n int, w http.ResponseWriter) {
				if n == 1 {
					answer(w, 401, "n-1", nonceChallenge, `{"Code":"401"}`)
					return
				}
				answer(w, 201, "", "", `{"ok":true}`)
			},
			wantAttempts: 2, wantStatus: 201, wantBody: `{"ok":true}`, wantNonce: "n-1",
		},
		{
			name: "retries at most once when every answer is a new challenge",
			reply: func(n int, w http.ResponseWriter) {
				answer(w, 401, fmt.Sprintf("n-%d", n), nonceChallenge, `{"Code":"401"}`)
			},
			wantAttempts: 2, wantStatus: 401, wantBody: `{"Code":"401"}`, wantNonce: "n-2",
		},
		{
			name: "does not retry a challenge without a DPoP-Nonce",
			reply: func(n int, w http.ResponseWriter) {
				answer(w, 401, "", nonceChallenge, `{"Code":"401"}`)
			},
			wantAttempts: 1, wantStatus: 401, wantBody: `{"Code":"401"}`,
		},
		{
			name:       "does not retry a challenge that repeats the nonce just sent",
			knownNonce: "n-0",
			reply: func(n int, w http.ResponseWriter) {
				answer(w, 401, "n-0", nonceChallenge, `{"Code":"401"}`)
			},
			wantAttempts: 1, wantStatus: 401, wantBody: `{"Code":"401"}`, wantNonce: "n-0",
		},
		{
			name: "does not retry invalid_token",
			reply: func(n int, w http.ResponseWriter) {
				answer(w, 401, "n-1", `DPoP error="invalid_token", error_description="Invalid token"`, `{"Code":"401"}`)
			},
			wantAttempts: 1, wantStatus: 401, wantBody: `{"Code":"401"}`, wantNonce: "n-1",
		},
		{
			name: "does not retry a Bearer challenge naming use_dpop_nonce",
			reply: func(n int, w http.ResponseWriter) {
				answer(w, 401, "n-1", `Bearer error="use_dpop_nonce"`, `{"Code":"401"}`)
			},
			wantAttempts: 1, wantStatus: 401, wantBody: `{"Code":"401"}`, wantNonce: "n-1",
		},
		{
			name: "retries an authorization server's 400 use_dpop_nonce once",
			reply: func(n int, w http.ResponseWriter) {
				if n == 1 {
					answer(w, 400, "as-1", "", `{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`)
					return
				}
				answer(w, 200, "", "", `{"access_token":"x"}`)
			},
			wantAttempts: 2, wantStatus: 200, wantBody: `{"access_token":"x"}`, wantNonce: "as-1",
		},
		{
			name: "returns another 400 with its body intact",
			reply: func(n int, w http.ResponseWriter) {
				answer(w, 400, "as-1", "", `{"error":"invalid_grant","error_description":"`+strings.Repeat("x", 40<<10)+`"}`)
			},
			wantAttempts: 1, wantStatus: 400, wantBody: `{"error":"invalid_grant","error_description":"` + strings.Repeat("x", 40<<10) + `"}`, wantNonce: "as-1",
		},
		{
			name: "does not retry a 503",
			reply: func(n int, w http.ResponseWriter) {
				answer(w, 503, "", "", `{"Code":"503"}`)
			},
			wantAttempts: 1, wantStatus: 503, wantBody: `{"Code":"503"}`,
		},
		{
			name: "remembers the nonce of a 2xx",
			reply: func(n int, w http.ResponseWriter) {
				answer(w, 201, "fresh", "", `{}`)
			},
			wantAttempts: 1, wantStatus: 201, wantBody: `{}`, wantNonce: "fresh",
		},
	}
	key := mustKey(t, ES256)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := &scriptedServer{t: t, reply: tc.reply}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			tr, err := NewTransport(key, StaticToken("at-0003"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.knownNonce != "" {
				tr.origins[originOf(mustParseURL(t, ts.URL))] = originState{nonce: tc.knownNonce}
			}
			const body = `{"Data":{"ConsentId":"c-1"}}`
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/open-banking/v3.1/pisp/domestic-payments?x=1#f", strings.NewReader(body))
			req.Header.Set("x-idempotency-key", "key-1")
			req.Header.Set("DPoP", "") // as the generated client sends it
			res, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.wantStatus || string(got) != tc.wantBody {
				t.Errorf("response = %d %.60q, want %d %.60q", res.StatusCode, got, tc.wantStatus, tc.wantBody)
			}
			seen := srv.seen()
			if len(seen) != tc.wantAttempts {
				t.Fatalf("server saw %d attempts, want %d", len(seen), tc.wantAttempts)
			}
			proofs := map[string]bool{}
			jtis := map[string]bool{}
			for i, a := range seen {
				if proofs[a.proof] || jtis[a.claims.ID] {
					t.Errorf("attempt %d re-sent a proof or a jti", i+1)
				}
				proofs[a.proof], jtis[a.claims.ID] = true, true
				if a.body != body || a.idempotencyKey != "key-1" || a.authorization != "DPoP at-0003" {
					t.Errorf("attempt %d: body %q, key %q, authorization %q; want the caller's", i+1, a.body, a.idempotencyKey, a.authorization)
				}
				if a.claims.AccessTokenHash != "fINH8EgkrTl_Kg-pgN0BW4tmCUZR1qrOnyaeg-qqEW0" {
					t.Errorf("attempt %d: ath = %q", i+1, a.claims.AccessTokenHash)
				}
				if want := ts.URL + "/open-banking/v3.1/pisp/domestic-payments"; a.claims.URL != want || a.claims.Method != "POST" {
					t.Errorf("attempt %d: htm %q htu %q, want POST %q", i+1, a.claims.Method, a.claims.URL, want)
				}
			}
			if seen[0].claims.Nonce != tc.knownNonce {
				t.Errorf("first attempt nonce = %q, want %q", seen[0].claims.Nonce, tc.knownNonce)
			}
			if len(seen) == 2 && seen[1].claims.Nonce == "" {
				t.Errorf("retry carries no nonce")
			}
			if n := tr.Nonce(ts.URL); n != tc.wantNonce {
				t.Errorf("Nonce() = %q after the call, want %q", n, tc.wantNonce)
			}
			if req.Header.Get("DPoP") != "" || req.Header.Get("Authorization") != "" {
				t.Errorf("the caller's request was modified")
			}
		})
	}
}

func TestTransportReplaysBodiesWithoutGetBody(t *testing.T) {
	srv := &scriptedServer{t: t, reply: func(n int, w http.ResponseWriter) {
		if n == 1 {
			answer(w, 401, "n-1", nonceChallenge, "")
			return
		}
		answer(w, 201, "", "", "")
	}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tr, err := NewTransport(mustKey(t, EdDSA), StaticToken("tok"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// io.MultiReader is not a type NewRequest knows, so the request has no GetBody.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/p", io.MultiReader(strings.NewReader("hello "), strings.NewReader("world")))
	if req.GetBody != nil {
		t.Fatal("test needs a request without GetBody")
	}
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	seen := srv.seen()
	if len(seen) != 2 || seen[0].body != "hello world" || seen[1].body != "hello world" {
		t.Errorf("bodies = %+v, want the same body twice", seen)
	}
}

func TestTransportTokenSourceErrors(t *testing.T) {
	tr, err := NewTransport(mustKey(t, ES256), failingSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/x", nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("RoundTrip = %v, want ErrTokenExpired from the token source", err)
	}
	if _, err := NewTransport(nil, nil, nil); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewTransport(nil key) = %v, want ErrInvalidKey", err)
	}
}

type failingSource struct{}

func (failingSource) Token(context.Context) (*Token, error) { return nil, ErrTokenExpired }

// fakeClock is a clock tests move by hand; safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// serviceRS is a fake resource server that checks every request with the service's own DPoP
// verifier (nonces required), and records what it saw.
type serviceRS struct {
	url    string
	v      *security.Verifier
	clock  *fakeClock
	step   time.Duration // how far the clock moves per request
	tokens *tokenTable

	mu          sync.Mutex
	proofs      map[string]bool
	perKey      map[string]int // attempts per x-idempotency-key
	challenges  int
	otherErrors int
	duplicates  int
}

func newServiceRS(t *testing.T, window, step time.Duration) (*serviceRS, *httptest.Server) {
	rs := &serviceRS{clock: &fakeClock{t: time.Now()}, step: step, tokens: &tokenTable{}, proofs: map[string]bool{}, perKey: map[string]int{}}
	ts := httptest.NewServer(rs)
	t.Cleanup(ts.Close)
	rs.url = ts.URL
	store, err := security.NewMemoryReplayStore(security.WithReplayClock(rs.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	rs.v, err = security.NewVerifier(security.Config{
		PublicURL: ts.URL, NonceMode: security.NonceRequired, NonceWindow: window,
		ReplayStore: store, Introspector: rs.tokens, Now: rs.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rs, ts
}

func (rs *serviceRS) setStep(d time.Duration) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.step = d
}

func (rs *serviceRS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	step := rs.step
	rs.mu.Unlock()
	rs.clock.Advance(step)
	body, _ := io.ReadAll(r.Body)
	proof := r.Header.Get("DPoP")
	rs.mu.Lock()
	if rs.proofs[proof] {
		rs.duplicates++
	}
	rs.proofs[proof] = true
	rs.perKey[r.Header.Get("x-idempotency-key")]++
	rs.mu.Unlock()
	w.Header().Set("Date", rs.clock.Now().UTC().Format(http.TimeFormat))
	_, res, err := rs.v.Verify(r.Context(), security.Request{
		Method:        r.Method,
		URL:           rs.url + r.URL.EscapedPath(),
		Authorization: r.Header.Values("Authorization"),
		DPoP:          r.Header.Values("DPoP"),
	})
	if err != nil {
		var se *security.Error
		rs.mu.Lock()
		if errors.As(err, &se) && se.Code == security.CodeUseNonce {
			rs.challenges++
		} else {
			rs.otherErrors++
		}
		rs.mu.Unlock()
		writeSecurityError(w, err)
		return
	}
	if res.Nonce != "" {
		w.Header().Set("DPoP-Nonce", res.Nonce)
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(http.StatusCreated)
	w.Write(body)
}

func TestTransportAgainstServiceVerifier(t *testing.T) {
	for _, alg := range []Algorithm{ES256, EdDSA, PS256} {
		t.Run(string(alg), func(t *testing.T) {
			// A 1 s nonce window and a clock that moves 150 ms per request, with idle pauses:
			// nonces rotate on successful answers and expire during pauses, so the transport
			// must both pick up rotated nonces and answer challenges.
			rs, ts := newServiceRS(t, time.Second, 150*time.Millisecond)
			key := mustKey(t, alg)
			rs.tokens.add("token-"+string(alg), key.Thumbprint())
			tr, err := NewTransport(key, StaticToken("token-"+string(alg)), nil)
			if err != nil {
				t.Fatal(err)
			}
			tr.now = rs.clock.Now
			hc := &http.Client{Transport: tr}
			call := func(i int) error {
				body := fmt.Sprintf(`{"n":%d}`, i)
				req, _ := http.NewRequest(http.MethodPost, ts.URL+"/open-banking/v3.1/pisp/domestic-payments", strings.NewReader(body))
				req.Header.Set("x-idempotency-key", fmt.Sprintf("%s-%d", alg, i))
				res, err := hc.Do(req)
				if err != nil {
					return err
				}
				defer res.Body.Close()
				got, _ := io.ReadAll(res.Body)
				if res.StatusCode != http.StatusCreated || string(got) != body {
					return fmt.Errorf("call %d: %d %s (WWW-Authenticate %q)", i, res.StatusCode, got, res.Header.Get("WWW-Authenticate"))
				}
				return nil
			}
			for i := range 100 {
				if i%10 == 9 {
					// An idle pause longer than two windows: the nonce the transport holds
					// expires and the next call is challenged.
					rs.clock.Advance(2500 * time.Millisecond)
				}
				if err := call(i); err != nil {
					t.Fatal(err)
				}
			}
			// Concurrent calls do not make time run faster: 50 calls and their retries span
			// about two windows.
			rs.setStep(20 * time.Millisecond)
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for i := 100; i < 150; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := call(i); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			rs.mu.Lock()
			defer rs.mu.Unlock()
			if rs.challenges < 10 {
				t.Errorf("the server challenged %d times, want at least 10: the test did not exercise the nonce dance", rs.challenges)
			}
			if rs.duplicates != 0 || rs.otherErrors != 0 {
				t.Errorf("duplicate proofs %d, other rejections %d; want 0 and 0", rs.duplicates, rs.otherErrors)
			}
			for k, n := range rs.perKey {
				if n > 2 {
					t.Errorf("request %s was sent %d times, want at most 2", k, n)
				}
			}
			t.Logf("%s: 150 calls, %d nonce challenges answered", alg, rs.challenges)
		})
	}
}

func TestTransportCorrectsClockSkew(t *testing.T) {
	rs, ts := newServiceRS(t, time.Minute, 0)
	key := mustKey(t, ES256)
	rs.tokens.add("tok", key.Thumbprint())
	tr, err := NewTransport(key, StaticToken("tok"), nil)
	if err != nil {
		t.Fatal(err)
	}
	local := &fakeClock{t: rs.clock.Now()}
	tr.now = local.Now
	get := func(step string) int {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/open-banking/v3.1/aisp/accounts", nil)
		req.Header.Set("x-idempotency-key", step)
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	steps := []struct {
		name    string
		advance time.Duration // move the local clock away from the server's
	}{
		{"clocks agree", 0},
		{"local clock 40 s ahead: refused once, then signed in server time", 40 * time.Second},
		{"local clock back in step", -40 * time.Second},
		{"local clock 70 s behind", -70 * time.Second},
	}
	for _, s := range steps {
		local.Advance(s.advance)
		if got := get(s.name); got != http.StatusCreated {
			t.Errorf("%s: status %d, want 201", s.name, got)
		}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.otherErrors == 0 {
		t.Errorf("no invalid_dpop_proof answer: the skew path was not exercised")
	}
	for k, n := range rs.perKey {
		if n > 2 {
			t.Errorf("request %q sent %d times", k, n)
		}
	}
}

func mustKey(t *testing.T, alg Algorithm) *Key {
	t.Helper()
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustParseURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

const refusedChallenge = `DPoP error="invalid_token", error_description="Invalid access token"`

// athOf is the `ath` a proof carries for token (RFC 9449 §4.2).
func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64.EncodeToString(sum[:])
}

// tokenRS is a fake resource server that answers each attempt by what it carries, and records
// every attempt.
type tokenRS struct {
	t     *testing.T
	reply func(a attempt, n int, w http.ResponseWriter)

	mu       sync.Mutex
	attempts []attempt
}

func (s *tokenRS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d, err := verifyProof(r.Header.Get("DPoP"))
	if err != nil {
		s.t.Errorf("proof does not verify: %v", err)
	}
	a := attempt{proof: r.Header.Get("DPoP"), claims: d.Claims, authorization: r.Header.Get("Authorization"),
		idempotencyKey: r.Header.Get("x-idempotency-key"), body: string(body)}
	s.mu.Lock()
	s.attempts = append(s.attempts, a)
	n := len(s.attempts)
	s.mu.Unlock()
	s.reply(a, n, w)
}

func (s *tokenRS) seen() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]attempt(nil), s.attempts...)
}

// tokenRequests returns how many requests the fake authorization server's token endpoint got.
func (as *fakeAS) tokenRequests() int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.requests
}

// post sends a POST with a body through tr, with GetBody unless noGetBody, and returns the
// status and body of the answer (0 after reporting a transport error).
func post(t *testing.T, tr *Transport, url string, noGetBody bool) (int, string) {
	t.Helper()
	var body io.Reader = strings.NewReader(`{"Data":{"ConsentId":"c-1"}}`)
	if noGetBody {
		// io.MultiReader is not a type NewRequest knows, so the request has no GetBody.
		body = io.MultiReader(strings.NewReader(`{"Data":`), strings.NewReader(`{"ConsentId":"c-1"}}`))
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/open-banking/v3.1/pisp/domestic-payments", body)
	req.Header.Set("x-idempotency-key", "key-1")
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Error(err) // not Fatal: concurrent callers run it in their own goroutines
		return 0, ""
	}
	defer res.Body.Close()
	got, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(got)
}

// acceptOnly answers 200 to the attempts carrying token and 401 invalid_token to the others.
func acceptOnly(token string) func(a attempt, n int, w http.ResponseWriter) {
	return func(a attempt, _ int, w http.ResponseWriter) {
		if a.authorization != "DPoP "+token {
			answer(w, 401, "", refusedChallenge, `{"Code":"401"}`)
			return
		}
		answer(w, 201, "", "", `{"ok":true}`)
	}
}

func TestTransportRenewsARefusedToken(t *testing.T) {
	for _, tc := range []struct {
		name      string
		noGetBody bool
	}{
		{"body with GetBody", false},
		{"body without GetBody", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as, _ := newFakeAS(t)
			key := mustKey(t, ES256)
			src := newTestTokenClient(t, as, key, false).ClientCredentialsSource("payments")
			rs := &tokenRS{t: t, reply: acceptOnly("at-2")}
			ts := httptest.NewServer(rs)
			defer ts.Close()
			tr, err := NewTransport(key, src, nil)
			if err != nil {
				t.Fatal(err)
			}

			status, body := post(t, tr, ts.URL, tc.noGetBody)
			if status != 201 || body != `{"ok":true}` {
				t.Fatalf("response = %d %s, want 201 from the retry with a new token", status, body)
			}
			if n := as.tokenRequests(); n != 2 {
				t.Errorf("token endpoint called %d times, want 2 (the first token and its replacement)", n)
			}
			seen := rs.seen()
			if len(seen) != 2 {
				t.Fatalf("resource server saw %d attempts, want 2", len(seen))
			}
			for i, want := range []string{"at-1", "at-2"} {
				a := seen[i]
				if a.authorization != "DPoP "+want || a.claims.AccessTokenHash != athOf(want) {
					t.Errorf("attempt %d: authorization %q, ath %q; want token %s and its ath", i+1, a.authorization, a.claims.AccessTokenHash, want)
				}
				if a.body != `{"Data":{"ConsentId":"c-1"}}` || a.idempotencyKey != "key-1" {
					t.Errorf("attempt %d: body %q, key %q; want the caller's", i+1, a.body, a.idempotencyKey)
				}
			}
			if seen[0].claims.ID == seen[1].claims.ID || seen[0].proof == seen[1].proof {
				t.Errorf("the retry re-sent the proof or its jti")
			}

			// The new token is kept: the next request uses it without a token request.
			if status, _ := post(t, tr, ts.URL, tc.noGetBody); status != 201 {
				t.Errorf("next request = %d, want 201", status)
			}
			if n := as.tokenRequests(); n != 2 {
				t.Errorf("token endpoint called %d times after the next request, want still 2", n)
			}
		})
	}
}

func TestTransportRenewsATokenOnceNeverInALoop(t *testing.T) {
	as, _ := newFakeAS(t)
	key := mustKey(t, ES256)
	src := newTestTokenClient(t, as, key, false).ClientCredentialsSource("payments")
	rs := &tokenRS{t: t, reply: acceptOnly("none")}
	ts := httptest.NewServer(rs)
	defer ts.Close()
	tr, err := NewTransport(key, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	for call := 1; call <= 3; call++ {
		status, body := post(t, tr, ts.URL, false)
		if status != 401 || body != `{"Code":"401"}` {
			t.Fatalf("call %d = %d %s, want the second 401 as it came", call, status, body)
		}
		if n := len(rs.seen()); n != 2*call {
			t.Fatalf("after call %d the resource server saw %d attempts, want %d (two per call)", call, n, 2*call)
		}
		if n := as.tokenRequests(); n != call+1 {
			t.Fatalf("after call %d the token endpoint was called %d times, want %d (one renewal per call)", call, n, call+1)
		}
	}
}

func TestTransportKeepsATokenItCannotRenew(t *testing.T) {
	as, _ := newFakeAS(t)
	key := mustKey(t, ES256)
	c := newTestTokenClient(t, as, key, false)
	for _, tc := range []struct {
		name  string
		src   TokenSource
		token string
	}{
		{"static token", StaticToken("static-1"), "static-1"},
		{"authorization code token without refresh token", c.RefreshingSource(&Token{AccessToken: "psu-1", TokenType: "DPoP", Expiry: time.Now().Add(time.Hour)}), "psu-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := &tokenRS{t: t, reply: acceptOnly("none")}
			ts := httptest.NewServer(rs)
			defer ts.Close()
			tr, err := NewTransport(key, tc.src, nil)
			if err != nil {
				t.Fatal(err)
			}
			before := as.tokenRequests()
			for call := 1; call <= 2; call++ {
				if status, body := post(t, tr, ts.URL, false); status != 401 || body != `{"Code":"401"}` {
					t.Fatalf("call %d = %d %s, want the 401 as it came", call, status, body)
				}
			}
			seen := rs.seen()
			if len(seen) != 2 || seen[0].authorization != "DPoP "+tc.token || seen[1].authorization != "DPoP "+tc.token {
				t.Errorf("attempts = %+v, want one per call, each with %s", seen, tc.token)
			}
			if n := as.tokenRequests(); n != before {
				t.Errorf("token endpoint called %d times, want none", n-before)
			}
		})
	}
}

func TestTransportRenewsARefreshedToken(t *testing.T) {
	as, _ := newFakeAS(t)
	key := mustKey(t, ES256)
	c := newTestTokenClient(t, as, key, false)
	psu, err := codeFlow(context.Background(), c) // at-1 with refresh token rt-1
	if err != nil {
		t.Fatal(err)
	}
	rs := &tokenRS{t: t, reply: acceptOnly("at-2")}
	ts := httptest.NewServer(rs)
	defer ts.Close()
	tr, err := NewTransport(key, c.RefreshingSource(psu), nil)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := post(t, tr, ts.URL, false); status != 201 {
		t.Fatalf("status = %d, want 201 from the retry with the refreshed token", status)
	}
	seen := rs.seen()
	if len(seen) != 2 || seen[1].authorization != "DPoP at-2" || seen[1].claims.AccessTokenHash != athOf("at-2") {
		t.Errorf("attempts = %+v, want the retry with at-2", seen)
	}
	if n := as.tokenRequests(); n != 2 { // the code exchange and one refresh
		t.Errorf("token endpoint called %d times, want 2", n)
	}
}

// TestTransportRenewsTokensBesideNonces checks that a refused token and a nonce challenge in
// one call each get their one retry, in either order, and no more.
func TestTransportRenewsTokensBesideNonces(t *testing.T) {
	tests := []struct {
		name         string
		reply        func(a attempt, n int, w http.ResponseWriter)
		wantAttempts int
		wantStatus   int
		wantTokens   []string
		wantNonces   []string
	}{
		{
			name: "nonce challenge, then refused token, then success",
			reply: func(a attempt, n int, w http.ResponseWriter) {
				switch {
				case a.claims.Nonce != "n-1":
					answer(w, 401, "n-1", nonceChallenge, `{"Code":"401"}`)
				case a.authorization != "DPoP at-2":
					answer(w, 401, "", refusedChallenge, `{"Code":"401"}`)
				default:
					answer(w, 201, "", "", `{}`)
				}
			},
			wantAttempts: 3, wantStatus: 201, wantTokens: []string{"at-1", "at-1", "at-2"}, wantNonces: []string{"", "n-1", "n-1"},
		},
		{
			name: "refused token, then nonce challenge, then success",
			reply: func(a attempt, n int, w http.ResponseWriter) {
				switch {
				case a.authorization != "DPoP at-2":
					answer(w, 401, "", refusedChallenge, `{"Code":"401"}`)
				case a.claims.Nonce != "n-1":
					answer(w, 401, "n-1", nonceChallenge, `{"Code":"401"}`)
				default:
					answer(w, 201, "", "", `{}`)
				}
			},
			wantAttempts: 3, wantStatus: 201, wantTokens: []string{"at-1", "at-2", "at-2"}, wantNonces: []string{"", "", "n-1"},
		},
		{
			name: "a nonce challenge after both retries is returned",
			reply: func(a attempt, n int, w http.ResponseWriter) {
				switch n {
				case 1:
					answer(w, 401, "n-1", nonceChallenge, `{"Code":"401"}`)
				case 2:
					answer(w, 401, "", refusedChallenge, `{"Code":"401"}`)
				default:
					answer(w, 401, fmt.Sprintf("n-%d", n), nonceChallenge, `{"Code":"401"}`)
				}
			},
			wantAttempts: 3, wantStatus: 401, wantTokens: []string{"at-1", "at-1", "at-2"}, wantNonces: []string{"", "n-1", "n-1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			as, _ := newFakeAS(t)
			key := mustKey(t, ES256)
			src := newTestTokenClient(t, as, key, false).ClientCredentialsSource("payments")
			rs := &tokenRS{t: t, reply: tc.reply}
			ts := httptest.NewServer(rs)
			defer ts.Close()
			tr, err := NewTransport(key, src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if status, _ := post(t, tr, ts.URL, false); status != tc.wantStatus {
				t.Errorf("status = %d, want %d", status, tc.wantStatus)
			}
			seen := rs.seen()
			if len(seen) != tc.wantAttempts {
				t.Fatalf("resource server saw %d attempts, want %d", len(seen), tc.wantAttempts)
			}
			jtis := map[string]bool{}
			for i, a := range seen {
				if a.authorization != "DPoP "+tc.wantTokens[i] || a.claims.AccessTokenHash != athOf(tc.wantTokens[i]) || a.claims.Nonce != tc.wantNonces[i] {
					t.Errorf("attempt %d: authorization %q, ath %q, nonce %q; want token %s, nonce %q",
						i+1, a.authorization, a.claims.AccessTokenHash, a.claims.Nonce, tc.wantTokens[i], tc.wantNonces[i])
				}
				if jtis[a.claims.ID] {
					t.Errorf("attempt %d re-sent a jti", i+1)
				}
				jtis[a.claims.ID] = true
			}
			if n := as.tokenRequests(); n != 2 {
				t.Errorf("token endpoint called %d times, want 2", n)
			}
		})
	}
}

func TestTransportRenewsARefusedTokenOnceForConcurrentRequests(t *testing.T) {
	as, _ := newFakeAS(t)
	key := mustKey(t, ES256)
	src := newTestTokenClient(t, as, key, false).ClientCredentialsSource("payments")
	if _, err := src.Token(context.Background()); err != nil { // at-1, which the server will refuse
		t.Fatal(err)
	}
	rs := &tokenRS{t: t, reply: acceptOnly("at-2")}
	ts := httptest.NewServer(rs)
	defer ts.Close()
	tr, err := NewTransport(key, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	const callers = 20
	var wg sync.WaitGroup
	statuses := make([]int, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = post(t, tr, ts.URL, i%2 == 0)
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 201 {
			t.Errorf("caller %d got %d, want 201", i, s)
		}
	}
	if n := as.tokenRequests(); n != 2 {
		t.Errorf("token endpoint called %d times, want 2: one renewal shared by every caller", n)
	}
	for _, a := range rs.seen() {
		if a.authorization != "DPoP at-1" && a.authorization != "DPoP at-2" {
			t.Errorf("an attempt carried %q", a.authorization)
		}
	}
}
