package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// maxBodyErrors bounds the details of one validation answer.
const maxBodyErrors = 10

// bodyValidator checks JSON request bodies against the schemas of one
// contract (api/openapi.yaml, embedded in obapi, or api/openapi-v4.yaml,
// embedded in obapi4) and turns every failure into OB error details:
// UK.OBIE.Field.Missing, .Unexpected or .Invalid with the field's dotted Path
// (the error handler renders them in the answer's version). Messages are
// fixed per kind of failure; request values are never echoed. The check is
// linear in the body's size (see schema.go).
type bodyValidator struct {
	schemas map[string]*bodySchema // by operationId
}

// newSpecValidator loads a contract with load (obapi.GetSpec or
// obapi4.GetSpec) and compiles its request bodies.
func newSpecValidator(load func() (*openapi3.T, error)) (*bodyValidator, error) {
	doc, err := load()
	if err != nil {
		return nil, fmt.Errorf("handlers: load embedded spec: %w", err)
	}
	return newBodyValidator(doc)
}

// newBodyValidator compiles the JSON request body schema of every operation
// of doc. It fails when an operation has no JSON body schema or a schema uses
// a keyword the validator does not support, so no rule is skipped silently.
func newBodyValidator(doc *openapi3.T) (*bodyValidator, error) {
	if doc == nil || doc.Paths == nil {
		return nil, fmt.Errorf("handlers: no spec to validate bodies against")
	}
	v := &bodyValidator{schemas: map[string]*bodySchema{}}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			mt := op.RequestBody.Value.Content.Get(echo.MIMEApplicationJSON)
			if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
				return nil, fmt.Errorf("handlers: operation %s has no JSON body schema", op.OperationID)
			}
			s, err := compileSchema(mt.Schema.Value)
			if err != nil {
				return nil, fmt.Errorf("handlers: body schema of %s: %w", op.OperationID, err)
			}
			v.schemas[op.OperationID] = s
		}
	}
	return v, nil
}

// decode reads the request body of operation op, checks its Content-Type,
// encoding, JSON syntax and schema, and unmarshals it into dst. It returns
// the raw body (for the idempotency hash). When the request's context ends
// first (the client went away, or the request outlived its deadline) it
// returns the context's error.
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
	// RFC 8259 §8.1: JSON text is UTF-8. encoding/json would replace invalid
	// bytes silently, storing something other than what the client sent.
	if !utf8.Valid(raw) {
		return nil, NewAPIError(http.StatusBadRequest, CodeResourceInvalidFormat, "Request body is not valid UTF-8", "")
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, NewAPIError(http.StatusBadRequest, CodeResourceInvalidFormat, "Request body is not valid JSON", "")
	}
	details, err := validateBody(c.Request().Context(), schema, doc)
	if err != nil {
		return nil, err
	}
	if len(details) > 0 {
		return nil, &APIError{Status: http.StatusBadRequest, Details: details}
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return nil, NewAPIError(http.StatusBadRequest, CodeResourceInvalidFormat, "Request body does not match the schema", "")
	}
	return raw, nil
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
