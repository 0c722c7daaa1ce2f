package security

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// Vectors from RFC 9449 (Fig.4, Fig.11, Fig.13/14) and RFC 7638 §3.1.
const (
	rfcJWK        = `{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`
	rfcJKT        = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	rfcRSA        = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	rfcRSAT       = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	rfcRSProof    = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
	rfcTokenProof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)

func TestThumbprintVectors(t *testing.T) {
	tests := []struct {
		name, jwk, alg, want string
	}{
		{"RFC 9449 example EC key", rfcJWK, "ES256", rfcJKT},
		{"RFC 7638 example RSA key", rfcRSA, "PS256", rfcRSAT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, reason := parseJWK(json.RawMessage(tt.jwk), tt.alg)
			if k == nil {
				t.Fatalf("parseJWK = %s, want a key", reason)
			}
			if k.jkt != tt.want {
				t.Errorf("thumbprint = %s, want %s", k.jkt, tt.want)
			}
		})
	}
}

// TestThumbprintOfGeneratedKeys compares parseJWK with the canonical JSON
// the test helper builds independently (RFC 7638 §3.2, RFC 8037 §2).
func TestThumbprintOfGeneratedKeys(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			k := sharedKey(t, "client-"+alg, alg)
			withExtras := map[string]any{"kid": "k1", "use": "sig", "alg": alg}
			for name, val := range k.jwk {
				withExtras[name] = val
			}
			raw, _ := json.Marshal(withExtras)
			pk, reason := parseJWK(raw, alg)
			if pk == nil {
				t.Fatalf("parseJWK = %s", reason)
			}
			if pk.jkt != k.jkt {
				t.Errorf("thumbprint = %s, want %s", pk.jkt, k.jkt)
			}
		})
	}
}

func TestAccessTokenHashVectors(t *testing.T) {
	tests := []struct {
		name, token, want string
	}{
		{"RFC 9449 Fig.14", "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU", "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"},
		{"url-safe alphabet", "at-0003", "fINH8EgkrTl_Kg-pgN0BW4tmCUZR1qrOnyaeg-qqEW0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "ES256", nil)
			if e := f.v.checkTokenHash(proofClaims{AccessTokenHash: tt.want}, tt.token); e != nil {
				t.Errorf("checkTokenHash(%s) = %v, want nil", tt.want, e)
			}
			sum := sha256.Sum256([]byte(tt.token))
			std := base64.StdEncoding.EncodeToString(sum[:])
			if e := f.v.checkTokenHash(proofClaims{AccessTokenHash: std}, tt.token); e == nil || e.Reason != "ath_mismatch" {
				t.Errorf("checkTokenHash(standard base64 %s) = %v, want ath_mismatch", std, e)
			}
		})
	}
}

// TestRFCResourceRequest replays RFC 9449 Fig.13 with the Fig.11
// introspection answer at the RFC's point in time.
func TestRFCResourceRequest(t *testing.T) {
	clock := time.Unix(1562262620, 0)
	now := func() time.Time { return clock }
	store, err := NewMemoryReplayStore(WithReplayClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	intro := &fakeIntrospector{res: Introspection{
		Active: true, Subject: "someone@example.com", Nbf: 1562262611, Exp: 1562266216, CnfJKT: rfcJKT,
	}}
	v, err := NewVerifier(Config{
		Algs: []string{"ES256"}, PublicURL: "https://resource.example.org", NonceMode: NonceOff,
		ReplayStore: store, Introspector: intro, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	req := Request{
		Method:        "GET",
		URL:           "https://resource.example.org/protectedresource",
		Authorization: []string{"DPoP Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"},
		DPoP:          []string{rfcRSProof},
	}
	p, _, err := v.Verify(context.Background(), req)
	if err != nil {
		t.Fatalf("Verify(RFC Fig.13) = %v, want success", err)
	}
	// The answer carries no consent id, so the token is a client's: its sub
	// names no customer and the principal's Subject stays empty.
	if p.JKT != rfcJKT || p.Subject != "" {
		t.Errorf("principal = %+v", p)
	}

	_, _, err = v.Verify(context.Background(), req)
	if e := errorOf(t, err); e.Reason != "replay" || e.Code != CodeInvalidProof {
		t.Errorf("second Verify = %v, want replay", e)
	}

	clock = time.Now()
	req2 := req
	_, _, err = v.Verify(context.Background(), req2)
	if e := errorOf(t, err); e.Reason != "iat_too_old" {
		t.Errorf("Verify at real time = %v, want iat_too_old", e)
	}

	// The Fig.2 token-request proof is valid but for another method and URL.
	clock = time.Unix(1562262620, 0)
	req3 := req
	req3.DPoP = []string{rfcTokenProof}
	_, _, err = v.Verify(context.Background(), req3)
	if e := errorOf(t, err); e.Reason != "claim_ath" {
		t.Errorf("Verify(token request proof) = %v, want claim_ath (no ath claim)", e)
	}
}
