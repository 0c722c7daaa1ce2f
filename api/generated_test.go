package api

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/obapi"
)

func TestGeneratedServerRegistersEveryDesignRoute(t *testing.T) {
	e := echo.New()
	// The routes are only registered, never called, so a nil implementation is enough.
	obapi.RegisterHandlers(e, struct{ obapi.ServerInterface }{})
	checkRegisteredRoutes(t, e, design6, reflect.TypeFor[obapi.ServerInterface]())
}

// checkRegisteredRoutes checks that the generated RegisterHandlers declared on e exactly
// routes, and that the generated ServerInterface iface has exactly their operations.
func checkRegisteredRoutes(t *testing.T, e *echo.Echo, routes []route, iface reflect.Type) {
	t.Helper()
	param := regexp.MustCompile(`\{([A-Za-z]+)\}`)
	var want, got []string
	for _, r := range routes {
		want = append(want, r.method+" "+param.ReplaceAllString(r.path, ":$1"))
	}
	for _, rt := range e.Routes() {
		got = append(got, rt.Method+" "+rt.Path)
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("registered routes (-want +got):\n%s", diff)
	}
	if iface.NumMethod() != len(routes) {
		t.Errorf("ServerInterface has %d methods, want %d", iface.NumMethod(), len(routes))
	}
	for _, r := range routes {
		if _, ok := iface.MethodByName(r.operationID); !ok {
			t.Errorf("ServerInterface lacks %s", r.operationID)
		}
	}
}

// generatedModels maps every object schema of the spec to its generated Go type, so the test
// below can check how each property was generated. A new object schema must be added here.
var generatedModels = map[string]any{
	"AuthoriseConsentRequest":                  obapi.AuthoriseConsentRequest{},
	"ConsentDecision":                          obapi.ConsentDecision{},
	"CreateLedgerAccountRequest":               obapi.CreateLedgerAccountRequest{},
	"HealthStatus":                             obapi.HealthStatus{},
	"LedgerAccount":                            obapi.LedgerAccount{},
	"LedgerAccountIdentification":              obapi.LedgerAccountIdentification{},
	"LedgerCurrencyTotal":                      obapi.LedgerCurrencyTotal{},
	"LedgerDrift":                              obapi.LedgerDrift{},
	"Links":                                    obapi.Links{},
	"Meta":                                     obapi.Meta{},
	"OBAccount6":                               obapi.OBAccount6{},
	"OBAccount6Account":                        obapi.OBAccount6Account{},
	"OBActiveOrHistoricCurrencyAndAmount":      obapi.OBActiveOrHistoricCurrencyAndAmount{},
	"OBCashAccountCreditor3":                   obapi.OBCashAccountCreditor3{},
	"OBCashAccountDebtor4":                     obapi.OBCashAccountDebtor4{},
	"OBError1":                                 obapi.OBError1{},
	"OBErrorResponse1":                         obapi.OBErrorResponse1{},
	"OBReadAccount6":                           obapi.OBReadAccount6{},
	"OBReadAccount6Data":                       obapi.OBReadAccount6Data{},
	"OBReadBalance1":                           obapi.OBReadBalance1{},
	"OBReadBalance1Data":                       obapi.OBReadBalance1Data{},
	"OBReadBalance1DataBalance":                obapi.OBReadBalance1DataBalance{},
	"OBReadConsent1":                           obapi.OBReadConsent1{},
	"OBReadConsent1Data":                       obapi.OBReadConsent1Data{},
	"OBReadConsentResponse1":                   obapi.OBReadConsentResponse1{},
	"OBReadConsentResponse1Data":               obapi.OBReadConsentResponse1Data{},
	"OBReadTransaction6":                       obapi.OBReadTransaction6{},
	"OBReadTransaction6Data":                   obapi.OBReadTransaction6Data{},
	"OBRemittanceInformation1":                 obapi.OBRemittanceInformation1{},
	"OBRisk1":                                  obapi.OBRisk1{},
	"OBRisk1DeliveryAddress":                   obapi.OBRisk1DeliveryAddress{},
	"OBRisk2":                                  obapi.OBRisk2{},
	"OBTransaction6":                           obapi.OBTransaction6{},
	"OBTransactionCashBalance":                 obapi.OBTransactionCashBalance{},
	"OBWriteDomestic2":                         obapi.OBWriteDomestic2{},
	"OBWriteDomestic2Data":                     obapi.OBWriteDomestic2Data{},
	"OBWriteDomestic2DataInitiation":           obapi.OBWriteDomestic2DataInitiation{},
	"OBWriteDomesticConsent4":                  obapi.OBWriteDomesticConsent4{},
	"OBWriteDomesticConsent4Data":              obapi.OBWriteDomesticConsent4Data{},
	"OBWriteDomesticConsent4DataAuthorisation": obapi.OBWriteDomesticConsent4DataAuthorisation{},
	"OBWriteDomesticConsentResponse5":          obapi.OBWriteDomesticConsentResponse5{},
	"OBWriteDomesticConsentResponse5Data":      obapi.OBWriteDomesticConsentResponse5Data{},
	"OBWritePaymentDetailsResponse1":           obapi.OBWritePaymentDetailsResponse1{},
	"OBWritePaymentDetails1":                   obapi.OBWritePaymentDetails1{},
	"OBWriteDomesticResponse5":                 obapi.OBWriteDomesticResponse5{},
	"OBWriteDomesticResponse5Data":             obapi.OBWriteDomesticResponse5Data{},
	"OBWriteFundsConfirmationResponse1":        obapi.OBWriteFundsConfirmationResponse1{},
	"OBWriteFundsConfirmationResponse1Data":    obapi.OBWriteFundsConfirmationResponse1Data{},
	"OBWriteFundsConfirmationResponse1DataFundsAvailableResult": obapi.OBWriteFundsConfirmationResponse1DataFundsAvailableResult{},
	"ReconcileReport": obapi.ReconcileReport{},
}

// TestOptionalFieldsAreOmittedNeverEmpty checks the generated models: a required property is
// a plain field that is always sent; an optional one is a pointer with omitempty, so it is
// omitted when unset and never sent empty.
func TestOptionalFieldsAreOmittedNeverEmpty(t *testing.T) {
	checkGeneratedModels(t, loadSpec(t), generatedModels)
}

// checkGeneratedModels checks models, the generated type of every object schema of doc, as
// TestOptionalFieldsAreOmittedNeverEmpty describes.
func checkGeneratedModels(t *testing.T, doc *openapi3.T, generatedModels map[string]any) {
	t.Helper()
	for name, ref := range doc.Components.Schemas {
		if !ref.Value.Type.Is("object") || len(ref.Value.Properties) == 0 && ref.Value.AdditionalProperties.Has != nil && *ref.Value.AdditionalProperties.Has {
			// Not an object, or an open one without members: a map, no struct to check.
			continue
		}
		if _, ok := generatedModels[name]; !ok {
			t.Errorf("object schema %s is missing from generatedModels", name)
		}
	}
	for name, model := range generatedModels {
		t.Run(name, func(t *testing.T) {
			ref := doc.Components.Schemas[name]
			if ref == nil {
				t.Fatalf("schema %s not in the spec", name)
			}
			s := ref.Value
			typ := reflect.TypeOf(model)
			fields := map[string]reflect.StructField{}
			for i := range typ.NumField() {
				f := typ.Field(i)
				jsonName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				fields[jsonName] = f
			}
			if len(fields) != len(s.Properties) {
				t.Errorf("%s has %d fields, the schema %d properties", typ, len(fields), len(s.Properties))
			}
			for prop := range s.Properties {
				f, ok := fields[prop]
				if !ok {
					t.Errorf("no field with JSON name %s", prop)
					continue
				}
				omitEmpty := strings.Contains(f.Tag.Get("json"), ",omitempty")
				isPointer := f.Type.Kind() == reflect.Pointer
				if required := slices.Contains(s.Required, prop); required {
					if omitEmpty || isPointer {
						t.Errorf("required %s: type %s, tag %q; want a plain field without omitempty", prop, f.Type, f.Tag)
					}
				} else if !omitEmpty || !isPointer {
					t.Errorf("optional %s: type %s, tag %q; want a pointer with omitempty", prop, f.Type, f.Tag)
				}
			}
		})
	}
}

// TestClientImportsNothingInternal keeps the public client free of this module's internal
// packages, which aggregators could not import.
func TestClientImportsNothingInternal(t *testing.T) {
	var files []string
	for _, dir := range []string{"obapi", "obapi4"} {
		found, err := filepath.Glob(filepath.Join(moduleRoot, "client", dir, "*.go"))
		if err != nil || len(found) == 0 {
			t.Fatalf("no client sources found in client/%s: %v", dir, err)
		}
		files = append(files, found...)
	}
	for _, file := range files {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", file, err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal") {
				t.Errorf("%s imports %s", file, path)
			}
		}
	}
}
