package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/obapi"
)

// maxBodyErrors bounds the details of one validation answer.
const maxBodyErrors = 10

// bodyValidator checks JSON request bodies against the contract's schemas
// (api/openapi.yaml, embedded in obapi) and turns every failure into OB error
// details: UK.OBIE.Field.Missing, .Unexpected or .Invalid with the field's
// dotted Path. Messages are fixed per kind of failure; request values are
// never echoed.
type bodyValidator struct {
	schemas map[string]*openapi3.Schema // by operationId
}

func newBodyValidator() (*bodyValidator, error) {
	doc, err := obapi.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("handlers: load embedded spec: %w", err)
	}
	v := &bodyValidator{schemas: map[string]*openapi3.Schema{}}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			mt := op.RequestBody.Value.Content.Get(echo.MIMEApplicationJSON)
			if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
				return nil, fmt.Errorf("handlers: operation %s has no JSON body schema", op.OperationID)
			}
			v.schemas[op.OperationID] = mt.Schema.Value
		}
	}
	return v, nil
}

// decode reads the request body of operation op, checks its Content-Type,
// JSON syntax and schema, and unmarshals it into dst. It returns the raw body
// (for the idempotency hash).
func (v *bodyValidator) decode(c echo.Context, op string, dst any) ([]byte, error) {
	schema, ok := v.schemas[op]
	if !ok {
		return nil, fmt.Errorf("handlers: no body schema for %s", op)
	}
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return nil, NewAPIError(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "Content-Type must be application/json", "")
	}
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return nil, he // the body limit: 413
		}
		return nil, NewAPIError(http.StatusBadRequest, CodeResourceInvalidFormat, "Unreadable request body", "")
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, NewAPIError(http.StatusBadRequest, CodeResourceInvalidFormat, "Request body is not valid JSON", "")
	}
	if err := schema.VisitJSON(doc, openapi3.MultiErrors(), openapi3.VisitAsRequest(), openapi3.EnableFormatValidation()); err != nil {
		return nil, schemaAPIError(err)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return nil, NewAPIError(http.StatusBadRequest, CodeResourceInvalidFormat, "Request body does not match the schema", "")
	}
	return raw, nil
}

// schemaAPIError turns a kin-openapi validation error into a 400 with one
// detail per failed field.
func schemaAPIError(err error) *APIError {
	var details []ErrorDetail
	var walk func(error)
	walk = func(err error) {
		var me openapi3.MultiError
		var se *openapi3.SchemaError
		switch {
		case errors.As(err, &me):
			for _, e := range me {
				walk(e)
			}
		case errors.As(err, &se):
			details = append(details, schemaDetail(se)...)
		default:
			details = append(details, ErrorDetail{ErrorCode: CodeFieldInvalid, Message: "Invalid request body"})
		}
	}
	walk(err)
	if len(details) == 0 {
		details = []ErrorDetail{{ErrorCode: CodeFieldInvalid, Message: "Invalid request body"}}
	}
	if len(details) > maxBodyErrors {
		details = details[:maxBodyErrors]
	}
	return &APIError{Status: http.StatusBadRequest, Details: details}
}

func schemaDetail(se *openapi3.SchemaError) []ErrorDetail {
	ptr := se.JSONPointer()
	switch se.SchemaField {
	case "required":
		return []ErrorDetail{{ErrorCode: CodeFieldMissing, Message: "Required field is missing", Path: dotted(ptr)}}
	case "properties", "additionalProperties":
		// The unexpected names are the value's keys the schema does not list;
		// they are schema-checked names, safe to put in Path only after the
		// check below (a key is echoed only if it is short and plain).
		obj, _ := se.Value.(map[string]any)
		var out []ErrorDetail
		for _, k := range sortedKeys(obj) {
			if _, known := se.Schema.Properties[k]; known {
				continue
			}
			path := dotted(ptr)
			if plainName(k) {
				path = dotted(append(slices.Clone(ptr), k))
			}
			out = append(out, ErrorDetail{ErrorCode: CodeFieldUnexpected, Message: "Unexpected field", Path: path})
		}
		if len(out) > 0 {
			return out
		}
	}
	msg := "Invalid value"
	switch se.SchemaField {
	case "pattern":
		msg = "Value does not match the expected pattern"
	case "enum":
		msg = "Value is not one of the allowed values"
	case "type":
		msg = "Value has the wrong type"
	case "minLength", "maxLength", "minItems", "maxItems":
		msg = "Value has the wrong length"
	case "format":
		msg = "Value has the wrong format"
	}
	return []ErrorDetail{{ErrorCode: CodeFieldInvalid, Message: msg, Path: dotted(ptr)}}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// plainName reports whether a JSON key is safe to name in an error Path: at
// most 64 ASCII letters, digits and underscores.
func plainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_') {
			return false
		}
	}
	return true
}

// dotted renders a JSON pointer as an OB Path: "Data.Initiation.Amount".
func dotted(ptr []string) string {
	return strings.Join(ptr, ".")
}
