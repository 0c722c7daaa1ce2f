package security

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
)

// TestIntrospectionConsentID: where the consent id is read, in which order,
// and which answers cannot name one.
func TestIntrospectionConsentID(t *testing.T) {
	intent := func(members string) string {
		return `"authorization_details":[{"type":"openbanking_intent",` + members + `}]`
	}
	tests := []struct {
		name        string
		members     string
		wantConsent string
		wantRefusal string
	}{
		{"none", `"sub":"tpp-1"`, "", ""},
		{"consent_id", `"consent_id":"c1"`, "c1", ""},
		{"openbanking_intent_id", `"openbanking_intent_id":"c1"`, "c1", ""},
		{"authorization_details openbanking_intent_id", intent(`"openbanking_intent_id":"c1"`), "c1", ""},
		{"authorization_details consent_id", intent(`"consent_id":"c1"`), "c1", ""},
		{"authorization_details among other types",
			`"authorization_details":[{"type":"payment_initiation","instructedAmount":{"amount":"1"}},{"type":"openbanking_intent","openbanking_intent_id":"c1","actions":["x"]}]`, "c1", ""},
		{"authorization_details of unknown types only", `"authorization_details":[{"type":"account_information","consent_id":"x"}]`, "", ""},
		{"authorization_details empty", `"authorization_details":[]`, "", ""},
		{"authorization_details null", `"authorization_details":null`, "", ""},
		{"openbanking_intent element without an id", intent(`"locations":["x"]`), "", ""},
		{"empty consent_id is absent", `"consent_id":"","openbanking_intent_id":"c1"`, "c1", ""},
		{"the same value in every source", `"consent_id":"c1","openbanking_intent_id":"c1",` + intent(`"openbanking_intent_id":"c1","consent_id":"c1"`), "c1", ""},

		{"consent_id and openbanking_intent_id disagree", `"consent_id":"c1","openbanking_intent_id":"c2"`, "", reasonConsentConflict},
		{"consent_id and authorization_details disagree", `"consent_id":"c1",` + intent(`"openbanking_intent_id":"c2"`), "", reasonConsentConflict},
		{"openbanking_intent_id and authorization_details disagree", `"openbanking_intent_id":"c1",` + intent(`"consent_id":"c2"`), "", reasonConsentConflict},
		{"one element's two ids disagree", intent(`"openbanking_intent_id":"c1","consent_id":"c2"`), "", reasonConsentConflict},
		{"two elements disagree",
			`"authorization_details":[{"type":"openbanking_intent","openbanking_intent_id":"c1"},{"type":"openbanking_intent","openbanking_intent_id":"c2"}]`, "", reasonConsentConflict},

		{"authorization_details an object", `"authorization_details":{"type":"openbanking_intent","openbanking_intent_id":"c1"}`, "", reasonAuthorizationDetails},
		{"authorization_details a string", `"authorization_details":"[]"`, "", reasonAuthorizationDetails},
		{"authorization_details of strings", `"authorization_details":["openbanking_intent"]`, "", reasonAuthorizationDetails},
		{"authorization_details with a null element", `"authorization_details":[null]`, "", reasonAuthorizationDetails},
		{"element without type", `"authorization_details":[{"openbanking_intent_id":"c1"}]`, "", reasonAuthorizationDetails},
		{"element with a numeric type", `"authorization_details":[{"type":7}]`, "", reasonAuthorizationDetails},
		{"openbanking_intent id not a string", intent(`"openbanking_intent_id":42`), "", reasonAuthorizationDetails},
		{"malformed details next to a consent_id", `"consent_id":"c1","authorization_details":{}`, "", reasonAuthorizationDetails},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in Introspection
			if err := json.Unmarshal([]byte(`{"active":true,`+tt.members+`}`), &in); err != nil {
				t.Fatalf("Unmarshal = %v, want the answer decoded", err)
			}
			if in.ConsentID != tt.wantConsent || in.Refusal != tt.wantRefusal {
				t.Errorf("ConsentID, refusal = %q, %q; want %q, %q", in.ConsentID, in.Refusal, tt.wantConsent, tt.wantRefusal)
			}
		})
	}
	t.Run("top-level openbanking_intent_id not a string", func(t *testing.T) {
		// A member of the wrong type is a malformed answer, as for every
		// other top-level member (503, not 401).
		var in Introspection
		if err := json.Unmarshal([]byte(`{"active":true,"openbanking_intent_id":5}`), &in); err == nil {
			t.Errorf("Unmarshal = nil, want an error")
		}
	})
}

// TestIntrospectionDecodeWithoutActive: JWT access token claims (RFC 9068
// §2.2) have no active member and decode through the same rules.
func TestIntrospectionDecodeWithoutActive(t *testing.T) {
	var in Introspection
	extra, err := in.decode([]byte(`{"iss":"https://as.example","sub":"psu","client_id":"tpp","authorization_details":[{"type":"openbanking_intent","openbanking_intent_id":"c1"}]}`), false)
	if err != nil || in.Active || in.ConsentID != "c1" || in.Subject != "psu" {
		t.Errorf("decode = %+v, %v; want inactive with consent c1 and sub psu", in, err)
	}
	if extra.issuer != "https://as.example" || extra.hasActive {
		t.Errorf("decode extras = %+v, want iss and no active", extra)
	}
	if extra, err := in.decode([]byte(`{"active":false}`), false); err != nil || !extra.hasActive {
		t.Errorf("decode(active present) = %+v, %v; want hasActive", extra, err)
	}
	if _, err := in.decode([]byte(`{"sub":"psu"}`), true); err == nil {
		t.Error("decode without active, needActive = nil, want an error")
	}
}

// countingStore counts the proofs recorded, to show that a refused token
// never reaches the replay check.
type countingStore struct {
	ReplayStore
	n atomic.Int64
}

func (s *countingStore) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	s.n.Add(1)
	return s.ReplayStore.Seen(ctx, key, until)
}

// TestVerifierTokenAnswers sends a valid proof with a token whose
// introspection answer (decoded from JSON, as the HTTP introspector decodes
// it) varies: the consent id sources, the sub rule, token_type and cnf.
func TestVerifierTokenAnswers(t *testing.T) {
	base := func(f *fixture, members string) string {
		return fmt.Sprintf(`{"active":true,"scope":"payments accounts","client_id":"tpp-1","exp":%d,"cnf":{"jkt":%q}%s}`,
			testNow.Unix()+300, f.key.jkt, members)
	}
	type want struct {
		status  int
		reason  string // for refusals
		subject string // for answers accepted
		consent string
	}
	accept := func(subject, consent string) want { return want{status: 200, subject: subject, consent: consent} }
	refuse := func(reason string) want { return want{status: 401, reason: reason} }
	tests := []struct {
		name    string
		members string
		want    want
	}{
		// Where the consent id is read.
		{"PSU token with consent_id", `,"sub":"psu-1","consent_id":"c1","token_type":"DPoP"`, accept("psu-1", "c1")},
		{"PSU token with openbanking_intent_id", `,"sub":"psu-1","openbanking_intent_id":"c1"`, accept("psu-1", "c1")},
		{"PSU token with authorization_details", `,"sub":"psu-1","authorization_details":[{"type":"openbanking_intent","openbanking_intent_id":"c1"}]`, accept("psu-1", "c1")},
		{"PSU token with authorization_details consent_id", `,"sub":"psu-1","authorization_details":[{"type":"other"},{"type":"openbanking_intent","consent_id":"c1"}]`, accept("psu-1", "c1")},
		{"consent sources disagree", `,"sub":"psu-1","consent_id":"c1","openbanking_intent_id":"c2"`, refuse(reasonConsentConflict)},
		{"authorization_details elements disagree", `,"sub":"psu-1","authorization_details":[{"type":"openbanking_intent","openbanking_intent_id":"c1"},{"type":"openbanking_intent","openbanking_intent_id":"c2"}]`, refuse(reasonConsentConflict)},
		{"authorization_details not an array of objects", `,"sub":"psu-1","consent_id":"c1","authorization_details":"c1"`, refuse(reasonAuthorizationDetails)},
		// Who is the customer.
		{"client token with sub = client id", `,"sub":"tpp-1"`, accept("", "")},
		{"client token with another sub", `,"sub":"someone"`, accept("", "")},
		{"client token without sub", ``, accept("", "")},
		{"consent id without sub", `,"consent_id":"c1"`, refuse("token_consent_without_sub")},
		// token_type.
		{"token_type DPoP", `,"token_type":"DPoP"`, accept("", "")},
		{"token_type dpop", `,"token_type":"dpop"`, accept("", "")},
		{"token_type access_token", `,"token_type":"access_token"`, accept("", "")},
		{"token_type Access_Token", `,"token_type":"Access_Token"`, accept("", "")},
		{"token_type absent", ``, accept("", "")},
		{"token_type Bearer", `,"token_type":"Bearer"`, refuse("token_type")},
		{"token_type bearer", `,"token_type":"bearer"`, refuse("token_type")},
		{"token_type refresh_token", `,"token_type":"refresh_token"`, refuse("token_type")},
		{"token_type N_A", `,"token_type":"N_A"`, refuse("token_type")},
		// cnf: members other than jkt are ignored (RFC 7800 §3.1).
		{"cnf with extra members", `,"cnf":{"jkt":"%JKT%","x5t#S256":"abc","kid":"k1"}`, accept("", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &countingStore{}
			f := newFixture(t, "ES256", func(c *Config) {
				store.ReplayStore = c.ReplayStore
				c.ReplayStore = store
			})
			// A second cnf member replaces the first in the decoder.
			members := strings.ReplaceAll(tt.members, "%JKT%", f.key.jkt)
			if err := json.Unmarshal([]byte(base(f, members)), &f.intro.res); err != nil {
				t.Fatal(err)
			}
			s := newServer(t, f)
			w := s.do(f.post(f.proof()))
			if w.Code != tt.want.status {
				t.Fatalf("status = %d, want %d (%v, body %s)", w.Code, tt.want.status, s.lastErr, w.Body)
			}
			if tt.want.status != 200 {
				if s.lastErr == nil || s.lastErr.Code != CodeInvalidToken || s.lastErr.Reason != tt.want.reason {
					t.Errorf("error = %+v, want %s/%s", s.lastErr, CodeInvalidToken, tt.want.reason)
				}
				if n := s.handled.Load(); n != 0 {
					t.Errorf("protected handler ran %d times", n)
				}
				if n := store.n.Load(); n != 0 {
					t.Errorf("replay store used %d times after a refused token", n)
				}
				return
			}
			var p Principal
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.ClientID != "tpp-1" || p.Subject != tt.want.subject || p.ConsentID != tt.want.consent {
				t.Errorf("principal = %+v, want client tpp-1, subject %q, consent %q", p, tt.want.subject, tt.want.consent)
			}
		})
	}
}

// FuzzIntrospectionJSON: no answer makes the decoder panic, and an answer
// that decodes names one consent id or a refusal, never both.
func FuzzIntrospectionJSON(f *testing.F) {
	f.Add([]byte(`{"active":true,"consent_id":"c1","openbanking_intent_id":"c2"}`))
	f.Add([]byte(`{"active":true,"authorization_details":[{"type":"openbanking_intent","openbanking_intent_id":"c1"},{"type":"x"}]}`))
	f.Add([]byte(`{"active":true,"authorization_details":[null,{"type":7}]}`))
	f.Add([]byte(`{"active":false,"cnf":{"jkt":"x","kid":1},"aud":["a"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var in Introspection
		if err := json.Unmarshal(b, &in); err != nil {
			return
		}
		if in.ConsentID != "" && in.Refusal != "" {
			t.Errorf("ConsentID %q and Refusal %q both set", in.ConsentID, in.Refusal)
		}
	})
}

// FuzzClaimsDecoders holds the decoder the service reads claims with
// (goccy/go-json) to encoding/json: for any input both accept or both refuse,
// and what they accept decodes to the same claims.
func FuzzClaimsDecoders(f *testing.F) {
	for _, s := range []string{
		`{"active":true,"client_id":"c","sub":"s","exp":1700000000,"cnf":{"jkt":"k"},"aud":"a"}`,
		`{"active":true,"aud":["a","b"],"exp":1.7e9,"nbf":"1","scope":"payments accounts"}`,
		`{"ACTIVE":true,"Client_ID":"c","cnf":null,"exp":null}`,
		`{"active":true,"active":false,"sub":"\ud800","iss":"\u00e9"}`,
		`{"active":true,"authorization_details":[{"type":"openbanking_intent","openbanking_intent_id":"c1"}]}`,
		`{"active":true,"exp":-1,"iat":1e400}`,
		"{\"active\":true,\"sub\":\"\xff\"}",
		`{"active":true} x`,
		`[]`,
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, needActive bool) {
		var std, fast Introspection
		stdExtra, stdErr := std.decodeWith(json.Unmarshal, b, needActive)
		fastExtra, fastErr := fast.decodeWith(gojson.Unmarshal, b, needActive)
		if (stdErr == nil) != (fastErr == nil) {
			t.Fatalf("encoding/json error %v, goccy/go-json error %v, for %q", stdErr, fastErr, b)
		}
		if stdErr != nil {
			return
		}
		if !reflect.DeepEqual(std, fast) || stdExtra != fastExtra {
			t.Fatalf("for %q:\nencoding/json %+v %+v\ngoccy/go-json %+v %+v", b, std, stdExtra, fast, fastExtra)
		}
	})
}
