package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// maxReplayBody caps a request body that has no GetBody and must be buffered so that the
// transport can send it again after a nonce challenge. The service refuses bodies over 64 KiB.
const maxReplayBody = 1 << 20

// maxPeekBody caps how much of a 400 answer is read to look for a JSON "use_dpop_nonce" error.
const maxPeekBody = 16 << 10

// skewThreshold is the smallest clock difference the transport corrects. The `Date` header has
// one-second resolution, and the service accepts proofs up to 60 s old and 10 s ahead, so small
// differences do not matter and are left alone.
const skewThreshold = 3 * time.Second

// Transport is an http.RoundTripper that adds DPoP to every request (RFC 9449):
//
//   - it sets `Authorization: DPoP <token>` from its TokenSource (when it has one) and a fresh
//     `DPoP` proof for the exact method and URL, with `ath` for the token and the server's latest
//     nonce for that origin;
//   - it remembers the `DPoP-Nonce` of every response (2xx included), per origin;
//   - when the server answers a nonce challenge (401 with `WWW-Authenticate: DPoP
//     error="use_dpop_nonce"` from a resource server, or 400 `{"error":"use_dpop_nonce"}` from
//     an authorization server, RFC 9449 §8 and §9) carrying a new nonce, it sends the request once
//     more with a new proof that carries the new nonce. This is safe for POST: a nonce challenge
//     means the server did nothing. The body is replayed and every other header, the
//     `x-idempotency-key` included, stays the same;
//   - it learns the server's clock from the `Date` header and signs `iat` in the server's time
//     when the two clocks differ by more than a few seconds; when a proof was refused as
//     `invalid_dpop_proof` and the clock correction it was signed with has just changed, it sends
//     the request once more with a corrected proof;
//   - when a resource server refuses the access token (401 with `WWW-Authenticate: DPoP
//     error="invalid_token"`, RFC 9449 §7.1) and the TokenSource is a TokenRenewer that can get
//     another token, it drops the refused token, takes a new one and sends the request once more
//     with it and a new proof (new `jti`, `ath` of the new token). A refused token means the
//     server did nothing with the request; the body is replayed as for a nonce challenge.
//
// A request is sent once, plus at most one retry for a nonce challenge or clock correction and
// at most one for a refused token: never in a loop, and no proof is ever sent twice. Any other
// answer, including a second `invalid_token` and an `invalid_token` with a StaticToken, a token
// without a refresh token or no TokenSource, is returned to the caller unchanged.
//
// A Transport is safe for concurrent use; share one per key and token source.
type Transport struct {
	key    *Key
	tokens TokenSource
	base   http.RoundTripper
	now    func() time.Time

	mu      sync.Mutex
	origins map[string]originState
}

// originState is what the transport knows about one server.
type originState struct {
	nonce string        // the latest DPoP-Nonce it sent
	skew  time.Duration // server clock minus local clock, zero when under skewThreshold
}

// NewTransport returns a Transport that signs with key, takes access tokens from tokens, and
// sends through base. tokens may be nil for requests that carry no access token, such as token
// requests to an authorization server. base nil means http.DefaultTransport. It returns
// ErrInvalidKey when key is nil.
func NewTransport(key *Key, tokens TokenSource, base http.RoundTripper) (*Transport, error) {
	if key == nil {
		return nil, fmt.Errorf("transport without a key: %w", ErrInvalidKey)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{key: key, tokens: tokens, base: base, now: time.Now, origins: make(map[string]originState)}, nil
}

// Nonce returns the latest `DPoP-Nonce` the transport received from the origin of rawURL
// (scheme, host and port), or "" when it has none.
func (t *Transport) Nonce(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return t.state(originOf(u)).nonce
}

// RoundTrip implements http.RoundTripper. See Transport for what it does. It returns the
// TokenSource's error when no token can be had, and the base transport's errors.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := replayableBody(req)
	if err != nil {
		return nil, err
	}
	token, err := t.accessToken(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	origin := originOf(req.URL)
	st := t.state(origin)
	res, err := t.send(req, body, token, st, true)
	if err != nil {
		return nil, err
	}
	proofRetry, tokenRetry := true, true
	for {
		retry, nonce := t.learn(origin, res, st)
		switch {
		case retry && proofRetry:
			proofRetry = false
			st = t.state(origin)
			if nonce != "" {
				// RFC 9449 §8: the retry carries the nonce of the challenge it answers.
				st.nonce = nonce
			}
		case tokenRetry && tokenRefused(res):
			tokenRetry = false
			next, ok := t.renewToken(req, token)
			if !ok {
				return res, nil
			}
			token, st = next, t.state(origin)
		default:
			return res, nil
		}
		discard(res)
		if res, err = t.send(req, body, token, st, false); err != nil {
			return nil, err
		}
	}
}

// tokenRefused reports whether a resource server refused the access token: a 401 with a DPoP
// challenge naming invalid_token (RFC 9449 §7.1, RFC 6750 §3.1).
func tokenRefused(res *http.Response) bool {
	return res.StatusCode == http.StatusUnauthorized && proofErrorCode(res, false) == "invalid_token"
}

// renewToken drops the refused token from a TokenRenewer and returns the token to retry with,
// or false when there is none: the source cannot renew, a new token cannot be had now (the
// source tries again on the next request), or it is the refused one.
func (t *Transport) renewToken(req *http.Request, refused string) (string, bool) {
	renewer, ok := t.tokens.(TokenRenewer)
	if !ok || refused == "" || !renewer.DropToken(refused) {
		return "", false
	}
	tok, err := renewer.Token(req.Context())
	if err != nil || tok.AccessToken == "" || tok.AccessToken == refused {
		return "", false
	}
	return tok.AccessToken, true
}

// accessToken returns the token to send: the TokenSource's, or, without a source, the one the
// caller put in a `DPoP` Authorization header itself (so that the proof gets its `ath`).
func (t *Transport) accessToken(req *http.Request) (string, error) {
	if t.tokens == nil {
		scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " ")
		if ok && strings.EqualFold(scheme, "DPoP") {
			return strings.TrimSpace(token), nil
		}
		return "", nil
	}
	tok, err := t.tokens.Token(req.Context())
	if err != nil {
		return "", fmt.Errorf("dpop transport: access token: %w", err)
	}
	return tok.AccessToken, nil
}

// send signs a new proof and sends one attempt. first tells whether this is the first
// attempt, which may use the caller's body as it is.
func (t *Transport) send(req *http.Request, body func(first bool) (io.ReadCloser, error), token string, st originState, first bool) (*http.Response, error) {
	proof, err := t.key.Proof(ProofRequest{
		Method:      req.Method,
		URL:         req.URL.String(),
		AccessToken: token,
		Nonce:       st.nonce,
		IssuedAt:    t.now().Add(st.skew),
	})
	if err != nil {
		if first {
			closeBody(req)
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	if body != nil {
		b, err := body(first)
		if err != nil {
			return nil, err
		}
		r.Body = b
	}
	if token != "" {
		r.Header.Set("Authorization", "DPoP "+token)
	}
	r.Header.Set("DPoP", proof)
	return t.base.RoundTrip(r)
}

// learn records the nonce and clock of a response and tells whether the request should be sent
// once more, and with which nonce. sent is the state the answered proof was signed with.
func (t *Transport) learn(origin string, res *http.Response, sent originState) (retry bool, nonce string) {
	nonce = strings.TrimSpace(res.Header.Get("DPoP-Nonce"))
	skewChanged := false
	t.mu.Lock()
	st := t.origins[origin]
	if nonce != "" {
		st.nonce = nonce
	}
	if date, err := http.ParseTime(res.Header.Get("Date")); err == nil {
		st.skew = measureSkew(date, t.now())
		skewChanged = absDuration(st.skew-sent.skew) >= skewThreshold
	}
	t.origins[origin] = st
	t.mu.Unlock()

	code := proofErrorCode(res, nonce != "" || skewChanged)
	switch {
	case code == "use_dpop_nonce" && nonce != "" && nonce != sent.nonce:
		return true, nonce
	case code == "invalid_dpop_proof" && skewChanged:
		return true, ""
	}
	return false, ""
}

func (t *Transport) state(origin string) originState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.origins[origin]
}

// measureSkew returns the server clock minus the local clock, or zero when the difference is
// within what the Date header's resolution and the network delay explain.
func measureSkew(serverDate, local time.Time) time.Duration {
	skew := serverDate.Sub(local).Round(time.Second)
	if absDuration(skew) < skewThreshold {
		return 0
	}
	return skew
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// dpopErrorParam finds the error parameter of a DPoP challenge (RFC 9449 §7.1, RFC 9110 §11.6.1).
var dpopErrorParam = regexp.MustCompile(`(?i)(?:^|[\s,])error\s*=\s*"?([a-z_]+)"?`)

// proofErrorCode returns the DPoP error code of a response, if it has one: from a 401's DPoP
// challenge, or, when peek is set, from the JSON body of a 400 (an authorization server's
// answer, RFC 9449 §5 and §8). It leaves the body readable.
func proofErrorCode(res *http.Response, peek bool) string {
	switch res.StatusCode {
	case http.StatusUnauthorized:
		for _, v := range res.Header.Values("WWW-Authenticate") {
			scheme, params, _ := strings.Cut(strings.TrimSpace(v), " ")
			if !strings.EqualFold(scheme, "DPoP") {
				continue
			}
			if m := dpopErrorParam.FindStringSubmatch(params); m != nil {
				return m[1]
			}
		}
	case http.StatusBadRequest:
		if !peek || res.Body == nil {
			return ""
		}
		head, err := io.ReadAll(io.LimitReader(res.Body, maxPeekBody))
		res.Body = readCloser{Reader: io.MultiReader(bytes.NewReader(head), res.Body), Closer: res.Body}
		if err != nil {
			return ""
		}
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(head, &body) == nil {
			return body.Error
		}
	}
	return ""
}

type readCloser struct {
	io.Reader
	io.Closer
}

// replayableBody returns a function that gives the request body for each attempt, or nil when
// the request has none. The first attempt uses the caller's body; the retry uses GetBody, or a
// copy buffered in memory when the request has no GetBody.
func replayableBody(req *http.Request) (func(first bool) (io.ReadCloser, error), error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody != nil {
		return func(first bool) (io.ReadCloser, error) {
			if first {
				return req.Body, nil
			}
			b, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("dpop transport: replay body: %w", err)
			}
			return b, nil
		}, nil
	}
	data, err := io.ReadAll(io.LimitReader(req.Body, maxReplayBody+1))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("dpop transport: read body: %w", err)
	}
	if len(data) > maxReplayBody {
		return nil, errors.New("dpop transport: request body over 1 MiB without GetBody")
	}
	return func(bool) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// discard drains a little of a response body, so that the connection can be reused, and closes it.
func discard(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxPeekBody))
	res.Body.Close()
}

// originOf returns the origin nonces are kept for: scheme, host and port (RFC 6454).
func originOf(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}
