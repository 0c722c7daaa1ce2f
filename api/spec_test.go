package api

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
)

const (
	// amountPattern is the OB amount pattern (^\d{1,13}(\.\d{1,5})?$) written for Go's RE2.
	amountPattern = `^\d{1,13}$|^\d{1,13}\.\d{1,5}$`
	// signedAmountPattern is amountPattern with an optional minus, for back office reports only.
	signedAmountPattern = `^-?\d{1,13}$|^-?\d{1,13}\.\d{1,5}$`
	// idempotencyKeyPattern refuses leading and trailing white space.
	idempotencyKeyPattern = `^\S(.*\S)?$`

	errorSchemaRef = "#/components/schemas/OBErrorResponse1"
	tpp            = "TPPOAuth2Security"
	psu            = "PSUOAuth2Security"
)

// loadSpec loads openapi.yaml with kin-openapi, resolving every $ref.
func loadSpec(t *testing.T) *openapi3.T { return loadDoc(t, "openapi.yaml") }

// loadDoc loads one of the contracts with kin-openapi, resolving every $ref.
func loadDoc(t *testing.T, file string) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(file)
	if err != nil {
		t.Fatalf("LoadFromFile(%s) = %v", file, err)
	}
	return doc
}

// TestSpecValidates: both contracts are valid OpenAPI 3.0.3, examples included, served
// from the bare host.
func TestSpecValidates(t *testing.T) {
	for _, file := range []string{"openapi.yaml", "openapi-v4.yaml"} {
		t.Run(file, func(t *testing.T) {
			doc := loadDoc(t, file)
			err := doc.Validate(context.Background(),
				openapi3.EnableSchemaFormatValidation(),
				openapi3.EnableSchemaPatternValidation(),
				openapi3.EnableSchemaDefaultsValidation(),
				openapi3.EnableExamplesValidation(),
			)
			if err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if doc.OpenAPI != "3.0.3" {
				t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
			}
			if len(doc.Servers) != 1 || doc.Servers[0].URL != "http://localhost:8080" {
				t.Errorf("servers = %v, want the bare host http://localhost:8080", doc.Servers)
			}
		})
	}
}

// route is one operation of the service's API, with the security it must declare: each map
// is one alternative (scheme name -> scopes).
type route struct {
	method, path, operationID string
	success                   string
	security                  []map[string][]string
	idempotent                bool // x-idempotency-key required
	body                      bool // has a JSON request body
}

const ob = "/open-banking/v3.1"

// design6 is the literal list of the service's endpoints (README, docs/design.md). The spec must have exactly
// these operations, no more and no fewer.
var design6 = append(openBankingRoutes(ob), []route{
	// Back office.
	{method: "POST", path: "/internal/v1/accounts", operationID: "CreateLedgerAccount", success: "201",
		security: []map[string][]string{{tpp: {"ledger:admin"}}}, body: true},
	{method: "GET", path: "/internal/v1/ledger/reconcile", operationID: "ReconcileLedger", success: "200",
		security: []map[string][]string{{tpp: {"ledger:admin"}}}},
	{method: "POST", path: "/internal/v1/consents/{ConsentId}/authorise", operationID: "AuthoriseConsent", success: "200",
		security: []map[string][]string{{tpp: {"consents:admin"}}}, body: true},
	{method: "POST", path: "/internal/v1/consents/{ConsentId}/reject", operationID: "RejectConsent", success: "200",
		security: []map[string][]string{{tpp: {"consents:admin"}}}},
	// Health: no authentication.
	{method: "GET", path: "/healthz", operationID: "GetHealthz", success: "200", security: []map[string][]string{}},
	{method: "GET", path: "/readyz", operationID: "GetReadyz", success: "200", security: []map[string][]string{}},
}...)

// openBankingRoutes is the literal list of the Open Banking endpoints under base: the same
// operations, scopes and answers on every version this service serves.
func openBankingRoutes(base string) []route {
	return []route{
		// PISP, scope payments.
		{method: "POST", path: base + "/pisp/domestic-payment-consents", operationID: "CreateDomesticPaymentConsents", success: "201",
			security: []map[string][]string{{tpp: {"payments"}}}, idempotent: true, body: true},
		{method: "GET", path: base + "/pisp/domestic-payment-consents/{ConsentId}", operationID: "GetDomesticPaymentConsentsConsentId", success: "200",
			security: []map[string][]string{{tpp: {"payments"}}, {psu: {"payments"}}}},
		{method: "GET", path: base + "/pisp/domestic-payment-consents/{ConsentId}/funds-confirmation", operationID: "GetDomesticPaymentConsentsConsentIdFundsConfirmation", success: "200",
			security: []map[string][]string{{psu: {"payments"}}}},
		{method: "POST", path: base + "/pisp/domestic-payments", operationID: "CreateDomesticPayments", success: "201",
			security: []map[string][]string{{psu: {"payments"}}}, idempotent: true, body: true},
		{method: "GET", path: base + "/pisp/domestic-payments/{DomesticPaymentId}", operationID: "GetDomesticPaymentsDomesticPaymentId", success: "200",
			security: []map[string][]string{{tpp: {"payments"}}, {psu: {"payments"}}}},
		{method: "GET", path: base + "/pisp/domestic-payments/{DomesticPaymentId}/payment-details", operationID: "GetDomesticPaymentsDomesticPaymentIdPaymentDetails", success: "200",
			security: []map[string][]string{{tpp: {"payments"}}, {psu: {"payments"}}}},
		// AISP, scope accounts.
		{method: "POST", path: base + "/aisp/account-access-consents", operationID: "CreateAccountAccessConsents", success: "201",
			security: []map[string][]string{{tpp: {"accounts"}}}, body: true},
		{method: "GET", path: base + "/aisp/account-access-consents/{ConsentId}", operationID: "GetAccountAccessConsentsConsentId", success: "200",
			security: []map[string][]string{{tpp: {"accounts"}}}},
		{method: "DELETE", path: base + "/aisp/account-access-consents/{ConsentId}", operationID: "DeleteAccountAccessConsentsConsentId", success: "204",
			security: []map[string][]string{{tpp: {"accounts"}}}},
		{method: "GET", path: base + "/aisp/accounts", operationID: "GetAccounts", success: "200",
			security: []map[string][]string{{psu: {"accounts"}}}},
		{method: "GET", path: base + "/aisp/accounts/{AccountId}", operationID: "GetAccountsAccountId", success: "200",
			security: []map[string][]string{{psu: {"accounts"}}}},
		{method: "GET", path: base + "/aisp/accounts/{AccountId}/balances", operationID: "GetAccountsAccountIdBalances", success: "200",
			security: []map[string][]string{{psu: {"accounts"}}}},
		{method: "GET", path: base + "/aisp/accounts/{AccountId}/transactions", operationID: "GetAccountsAccountIdTransactions", success: "200",
			security: []map[string][]string{{psu: {"accounts"}}}},
	}
}

func TestSpecHasEveryDesignEndpoint(t *testing.T) {
	doc := loadSpec(t)
	for _, r := range design6 {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			item := doc.Paths.Value(r.path)
			if item == nil {
				t.Fatalf("path %s missing from the spec", r.path)
			}
			op := item.GetOperation(r.method)
			if op == nil {
				t.Fatalf("%s %s missing from the spec", r.method, r.path)
			}
			if op.OperationID != r.operationID {
				t.Errorf("operationId = %q, want %q", op.OperationID, r.operationID)
			}
			if op.Responses.Value(r.success) == nil {
				t.Errorf("no %s response", r.success)
			}
			if op.Security == nil {
				t.Fatalf("no per-operation security")
			}
			var got []map[string][]string
			for _, req := range *op.Security {
				got = append(got, map[string][]string(req))
			}
			if diff := cmp.Diff(r.security, got, cmp.Comparer(func(a, b []map[string][]string) bool {
				return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b)
			})); diff != "" {
				t.Errorf("security mismatch (-want +got):\n%s", diff)
			}
			hasBody := op.RequestBody != nil
			if hasBody != r.body {
				t.Errorf("has request body = %v, want %v", hasBody, r.body)
			}
			if hasBody {
				if !op.RequestBody.Value.Required || op.RequestBody.Value.Content.Get("application/json") == nil {
					t.Errorf("request body must be required application/json")
				}
			}
		})
	}
}

func TestSpecHasNoEndpointOutsideDesign(t *testing.T) {
	doc := loadSpec(t)
	want := map[string]bool{}
	for _, r := range design6 {
		want[r.method+" "+r.path] = true
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !want[method+" "+path] {
				t.Errorf("%s %s is in the spec but not in the list of endpoints", method, path)
			}
		}
	}
}

func TestSecuritySchemesAreOAuth2WithDPoPDescription(t *testing.T) {
	doc := loadSpec(t)
	tests := []struct {
		name       string
		scheme     string
		clientCred []string // scopes of the client-credentials flow, nil when absent
		authCode   []string // scopes of the authorization-code flow, nil when absent
	}{
		{name: "aggregator and back office tokens", scheme: tpp,
			clientCred: []string{"accounts", "consents:admin", "ledger:admin", "payments"}},
		{name: "PSU tokens", scheme: psu,
			authCode: []string{"accounts", "payments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := doc.Components.SecuritySchemes[tt.scheme]
			if ref == nil || ref.Value == nil {
				t.Fatalf("security scheme %s missing", tt.scheme)
			}
			s := ref.Value
			if s.Type != "oauth2" || s.Flows == nil {
				t.Fatalf("%s: type %q, want oauth2 with flows", tt.scheme, s.Type)
			}
			for _, want := range []string{"DPoP", "RFC 9449", "Authorization: DPoP <token>"} {
				if !strings.Contains(s.Description, want) {
					t.Errorf("%s description does not mention %q", tt.scheme, want)
				}
			}
			checkFlow := func(name string, flow *openapi3.OAuthFlow, want []string, authURL string) {
				t.Helper()
				if want == nil {
					if flow != nil {
						t.Errorf("%s: unexpected %s flow", tt.scheme, name)
					}
					return
				}
				if flow == nil {
					t.Fatalf("%s: %s flow missing", tt.scheme, name)
				}
				if flow.TokenURL != "/oauth2/token" || flow.AuthorizationURL != authURL {
					t.Errorf("%s %s: tokenUrl %q authorizationUrl %q", tt.scheme, name, flow.TokenURL, flow.AuthorizationURL)
				}
				var got []string
				for scope := range flow.Scopes {
					got = append(got, scope)
				}
				sort.Strings(got)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s %s scopes (-want +got):\n%s", tt.scheme, name, diff)
				}
			}
			checkFlow("clientCredentials", s.Flows.ClientCredentials, tt.clientCred, "")
			checkFlow("authorizationCode", s.Flows.AuthorizationCode, tt.authCode, "/oauth2/authorize")
		})
	}
}

// operations lists every operation of the spec as "METHOD path".
func operations(doc *openapi3.T) map[string]*openapi3.Operation {
	ops := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	return ops
}

func TestErrorsAreOBErrorResponse1AndEveryResponseHasInteractionID(t *testing.T) {
	doc := loadSpec(t)
	for name, op := range operations(doc) {
		t.Run(name, func(t *testing.T) {
			protected := op.Security != nil && len(*op.Security) > 0
			want := []string{"405", "500", "default"}
			if protected {
				want = append(want, "400", "401", "403", "406", "429", "503")
				if op.RequestBody != nil {
					want = append(want, "415")
				}
			}
			for _, code := range want {
				if op.Responses.Value(code) == nil {
					t.Errorf("no %s response", code)
				}
			}
			for code, resp := range op.Responses.Map() {
				if resp.Value.Headers["x-fapi-interaction-id"] == nil {
					t.Errorf("%s response lacks the x-fapi-interaction-id header", code)
				}
				isError := code == "default" || code[0] == '4' || code[0] == '5'
				if !isError {
					continue
				}
				media := resp.Value.Content.Get("application/json")
				if media == nil || media.Schema == nil || media.Schema.Ref != errorSchemaRef {
					t.Errorf("%s response body is not %s", code, errorSchemaRef)
				}
			}
			if protected {
				unauthorized := op.Responses.Value("401")
				if unauthorized != nil && unauthorized.Value.Headers["WWW-Authenticate"] == nil {
					t.Errorf("401 response lacks WWW-Authenticate")
				}
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	doc := loadSpec(t)
	idempotent := map[string]bool{}
	for _, r := range design6 {
		if r.idempotent {
			idempotent[r.method+" "+r.path] = true
		}
	}
	for name, op := range operations(doc) {
		t.Run(name, func(t *testing.T) {
			headers := map[string]*openapi3.Parameter{}
			for _, p := range op.Parameters {
				if p.Value.In == openapi3.ParameterInHeader {
					headers[strings.ToLower(p.Value.Name)] = p.Value
				}
			}
			if h := headers["x-fapi-interaction-id"]; h == nil || h.Required {
				t.Errorf("x-fapi-interaction-id must be an optional header parameter")
			}
			if _, ok := headers["authorization"]; ok {
				t.Errorf("Authorization is declared as a parameter; the security scheme carries it")
			}
			protected := op.Security != nil && len(*op.Security) > 0
			if h := headers["dpop"]; protected && (h == nil || !h.Required) {
				t.Errorf("protected operation without a required DPoP header parameter")
			} else if !protected && h != nil {
				t.Errorf("unprotected operation declares DPoP")
			}
			key := headers["x-idempotency-key"]
			if !idempotent[name] {
				if key != nil && key.Required {
					t.Errorf("x-idempotency-key required on %s, which the design does not ask for", name)
				}
				return
			}
			if key == nil || !key.Required {
				t.Fatalf("x-idempotency-key must be a required header")
			}
			s := key.Schema.Value
			if s.MaxLength == nil || *s.MaxLength != 40 || s.Pattern != idempotencyKeyPattern {
				t.Errorf("x-idempotency-key schema: maxLength %v pattern %q, want 40 and %q", s.MaxLength, s.Pattern, idempotencyKeyPattern)
			}
		})
	}
}

func TestIdempotencyKeySchema(t *testing.T) {
	doc := loadSpec(t)
	schema := doc.Components.Parameters["XIdempotencyKey"].Value.Schema.Value
	tests := []struct {
		name  string
		value string
		ok    bool
	}{
		{name: "accepts a UUID", value: "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a", ok: true},
		{name: "accepts one character", value: "k", ok: true},
		{name: "accepts inner spaces", value: "order 42", ok: true},
		{name: "accepts 40 characters", value: strings.Repeat("k", 40), ok: true},
		{name: "rejects 41 characters", value: strings.Repeat("k", 41)},
		{name: "rejects empty", value: ""},
		{name: "rejects a leading space", value: " key"},
		{name: "rejects a trailing tab", value: "key\t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.VisitJSON(tt.value)
			if (err == nil) != tt.ok {
				t.Errorf("VisitJSON(%q) = %v, want ok %v", tt.value, err, tt.ok)
			}
		})
	}
}

func TestAmountSchemas(t *testing.T) {
	doc := loadSpec(t)
	schemas := doc.Components.Schemas
	tests := []struct {
		name   string
		schema string
		value  any
		ok     bool
	}{
		{name: "accepts integer string", schema: "OBActiveCurrencyAndAmountSimpleType", value: "10", ok: true},
		{name: "accepts two decimals", schema: "OBActiveCurrencyAndAmountSimpleType", value: "10.50", ok: true},
		{name: "accepts five decimals", schema: "OBActiveCurrencyAndAmountSimpleType", value: "0.00001", ok: true},
		{name: "accepts thirteen digits", schema: "OBActiveCurrencyAndAmountSimpleType", value: "9999999999999.99", ok: true},
		{name: "rejects a JSON number", schema: "OBActiveCurrencyAndAmountSimpleType", value: 10.5},
		{name: "rejects six decimals", schema: "OBActiveCurrencyAndAmountSimpleType", value: "1.000001"},
		{name: "rejects fourteen digits", schema: "OBActiveCurrencyAndAmountSimpleType", value: "12345678901234"},
		{name: "rejects a trailing dot", schema: "OBActiveCurrencyAndAmountSimpleType", value: "10."},
		{name: "rejects a leading dot", schema: "OBActiveCurrencyAndAmountSimpleType", value: ".5"},
		{name: "rejects a sign", schema: "OBActiveCurrencyAndAmountSimpleType", value: "-1.00"},
		{name: "rejects an exponent", schema: "OBActiveCurrencyAndAmountSimpleType", value: "1e3"},
		{name: "rejects surrounding space", schema: "OBActiveCurrencyAndAmountSimpleType", value: " 1.00"},
		{name: "rejects a trailing newline", schema: "OBActiveCurrencyAndAmountSimpleType", value: "1.00\n"},
		{name: "signed accepts negative", schema: "SignedAmount", value: "-100.00", ok: true},
		{name: "signed accepts zero", schema: "SignedAmount", value: "0.00", ok: true},
		{name: "signed rejects plus", schema: "SignedAmount", value: "+1.00"},
		{name: "signed rejects a JSON number", schema: "SignedAmount", value: -1},
		{name: "currency accepts GBP", schema: "ActiveOrHistoricCurrencyCode", value: "GBP", ok: true},
		{name: "currency rejects lower case", schema: "ActiveOrHistoricCurrencyCode", value: "gbp"},
		{name: "currency rejects four letters", schema: "ActiveOrHistoricCurrencyCode", value: "GBPX"},
		{name: "money object accepts amount and currency", schema: "OBActiveOrHistoricCurrencyAndAmount",
			value: map[string]any{"Amount": "1.00", "Currency": "GBP"}, ok: true},
		{name: "money object rejects a numeric amount", schema: "OBActiveOrHistoricCurrencyAndAmount",
			value: map[string]any{"Amount": 1.0, "Currency": "GBP"}},
		{name: "money object rejects a missing currency", schema: "OBActiveOrHistoricCurrencyAndAmount",
			value: map[string]any{"Amount": "1.00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schemas[tt.schema].Value.VisitJSON(tt.value)
			if (err == nil) != tt.ok {
				t.Errorf("%s.VisitJSON(%#v) = %v, want ok %v", tt.schema, tt.value, err, tt.ok)
			}
		})
	}
}

// moneyFields are property names that hold money: each is either a decimal string with an
// amount pattern or an object whose own Amount property is one.
var moneyFields = map[string]bool{
	"Amount": true, "InstructedAmount": true, "Balance": true, "OpeningBalance": true,
	"Expected": true, "Actual": true, "Net": true,
}

// integerFields are the only properties allowed to be JSON numbers: counts, never money.
var integerFields = map[string]bool{"TotalPages": true, "AccountsChecked": true}

func TestAmountsAreStringsNeverNumbers(t *testing.T) {
	doc := loadSpec(t)
	seen := map[*openapi3.Schema]bool{}
	moneySeen := 0
	var walk func(where string, ref *openapi3.SchemaRef)
	walk = func(where string, ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if s.Type.Is("number") {
			t.Errorf("%s is a JSON number; money is a decimal string and counts are integers", where)
		}
		names := make([]string, 0, len(s.Properties))
		for name := range s.Properties {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			prop := s.Properties[name]
			at := where + "." + name
			p := flatten(prop.Value)
			if p.Type.Is("integer") && !integerFields[name] {
				t.Errorf("%s is an integer; only %v may be", at, integerFields)
			}
			if moneyFields[name] {
				moneySeen++
				if p.Type.Is("array") && p.Items != nil {
					p = flatten(p.Items.Value) // a list of balances
				}
				switch {
				case p.Type.Is("string"):
					if p.Pattern != amountPattern && p.Pattern != signedAmountPattern {
						t.Errorf("%s: money string with pattern %q, want %q", at, p.Pattern, amountPattern)
					}
				case p.Type.Is("object"):
					if p.Properties["Amount"] == nil {
						t.Errorf("%s: money object without an Amount property", at)
					}
				default:
					t.Errorf("%s: money of type %v, want a string or an {Amount, Currency} object", at, p.Type)
				}
			}
			walk(at, prop)
		}
		walk(where+"[]", s.Items)
		for i, sub := range s.AllOf {
			walk(fmt.Sprintf("%s.allOf[%d]", where, i), sub)
		}
		walk(where+".additionalProperties", s.AdditionalProperties.Schema)
	}
	names := make([]string, 0, len(doc.Components.Schemas))
	for name := range doc.Components.Schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		walk(name, doc.Components.Schemas[name])
	}
	for name, p := range doc.Components.Parameters {
		if s := p.Value.Schema.Value; s.Type.Is("number") || s.Type.Is("integer") {
			t.Errorf("parameter %s is numeric", name)
		}
	}
	// Guard against a walk that checks nothing: the spec has many money fields.
	if moneySeen < 10 {
		t.Errorf("walked only %d money fields; the walk is broken", moneySeen)
	}
}

// flatten returns the schema a property really has: a property written as allOf with one
// member (to add a description to a $ref) has that member's type and pattern.
func flatten(s *openapi3.Schema) *openapi3.Schema {
	if s.Type.IsEmpty() && len(s.AllOf) == 1 && s.AllOf[0].Value != nil {
		return s.AllOf[0].Value
	}
	return s
}

// moduleRoot is the directory holding go.mod; tests run in api/.
const moduleRoot = ".."

func TestGeneratedCodeIsFresh(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to regenerate code: %v", err)
	}
	tests := []struct {
		name      string
		config    string // relative to the module root
		spec      string // relative to the module root
		committed string // relative to the module root
	}{
		{name: "server types and echo interface", config: "api/oapi-server.yaml", spec: "api/openapi.yaml", committed: "internal/obapi/obapi.gen.go"},
		{name: "client", config: "api/oapi-client.yaml", spec: "api/openapi.yaml", committed: "client/obapi/obapi.gen.go"},
		{name: "v4 server types and echo interface", config: "api/oapi-server-v4.yaml", spec: "api/openapi-v4.yaml", committed: "internal/obapi4/obapi4.gen.go"},
		{name: "v4 client", config: "api/oapi-client-v4.yaml", spec: "api/openapi-v4.yaml", committed: "client/obapi4/obapi4.gen.go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The go:generate directive next to the committed file must run the same command,
			// so that `make generate` and this test agree.
			docFile := filepath.Join(moduleRoot, filepath.Dir(tt.committed), "doc.go")
			src, err := os.ReadFile(docFile)
			if err != nil {
				t.Fatalf("read %s: %v", docFile, err)
			}
			directive := "//go:generate go tool oapi-codegen -config ../../" + tt.config + " -o " +
				filepath.Base(tt.committed) + " ../../" + tt.spec
			if !slices.Contains(strings.Split(string(src), "\n"), directive) {
				t.Errorf("%s lacks the directive\n%s", docFile, directive)
			}

			out := filepath.Join(t.TempDir(), filepath.Base(tt.committed))
			cmd := exec.Command(goBin, "tool", "oapi-codegen", "-config", tt.config, "-o", out, tt.spec)
			cmd.Dir = moduleRoot
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, msg)
			}
			fresh, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			committed, err := os.ReadFile(filepath.Join(moduleRoot, tt.committed))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(fresh, committed) {
				t.Errorf("%s is stale: run `make generate` and commit the result", tt.committed)
			}
		})
	}
}
