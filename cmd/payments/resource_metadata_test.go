package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/obpay/payments/internal/security"
)

func TestAuthorizationServers(t *testing.T) {
	tests := []struct {
		name string
		c    config
		want []string
	}{
		{"issuer configured", config{Issuer: "https://as.bank.example", PublicURL: "https://api.bank.example"}, []string{"https://as.bank.example"}},
		{"issuer wins over the sandbox", config{Issuer: "https://as.bank.example", DevAuth: true, PublicURL: "https://api.bank.example"}, []string{"https://as.bank.example"}},
		{"sandbox: the public URL is its issuer", config{DevAuth: true, PublicURL: "http://localhost:8080/"}, []string{"http://localhost:8080"}},
		{"neither", config{PublicURL: "https://api.bank.example"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, authorizationServers(tt.c)); d != "" {
				t.Errorf("authorizationServers (-want +got):\n%s", d)
			}
		})
	}
}

// TestServeNamesResourceMetadataInChallenges runs the sandbox and follows an
// aggregator's discovery: the 401 of a protected route names the metadata
// (RFC 9728 §5.1), which is served without a token and names the sandbox
// as the authorization server.
func TestServeNamesResourceMetadataInChallenges(t *testing.T) {
	const public = "http://localhost:8080"
	_, base, _ := startChild(t, "PAYMENTS_PUBLIC_URL="+public, "PAYMENTS_DPOP_ALGS=ES256,PS256", "PAYMENTS_DEV_AUTH_REQUIRE_PAR=true")
	res, err := http.Get(base + "/open-banking/v3.1/aisp/accounts")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	want := `DPoP algs="ES256 PS256", resource_metadata="` + public + `/.well-known/oauth-protected-resource"`
	if got := res.Header.Get("WWW-Authenticate"); res.StatusCode != 401 || got != want {
		t.Fatalf("GET accounts = %d %q, want 401 %q", res.StatusCode, got, want)
	}
	for _, id := range []string{public, public + "/open-banking/v3.1", public + "/open-banking/v4.0"} {
		path := "/.well-known/oauth-protected-resource" + strings.TrimPrefix(id, public)
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			Algs                 []string `json:"dpop_signing_alg_values_supported"`
		}
		err = json.NewDecoder(res.Body).Decode(&doc)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("GET %s = %d, %v", path, res.StatusCode, err)
		}
		if doc.Resource != id || !cmp.Equal(doc.AuthorizationServers, []string{public}) || !cmp.Equal(doc.Algs, []string{"ES256", "PS256"}) {
			t.Errorf("GET %s = %+v, want resource %s, the sandbox as authorization server, ES256 and PS256", path, doc, id)
		}
	}
	// The authorization server it names publishes RFC 8414 metadata whose
	// issuer is that name, with PAYMENTS_DEV_AUTH_REQUIRE_PAR.
	res, err = http.Get(base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var meta security.ASMetadata
	err = json.NewDecoder(res.Body).Decode(&meta)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET AS metadata = %d, %v", res.StatusCode, err)
	}
	if meta.Issuer != public || meta.PushedAuthorizationRequestEndpoint != public+"/oauth2/par" || !meta.RequirePushedAuthorizationRequests ||
		!cmp.Equal(meta.DPoPSigningAlgValuesSupported, []string{"ES256", "PS256"}) {
		t.Errorf("AS metadata = %+v, want issuer %s, PAR required, ES256 and PS256", meta, public)
	}
}
