package handlers

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/obpay/payments/internal/models"
)

// The request-body validator. The contract's schemas (api/openapi.yaml) are
// compiled once into bodySchema trees; a decoded body is then checked in one
// walk that visits every value at most once, stops at the first maxBodyErrors
// failures and honours the request's context. Its cost is linear in the size
// of the body whatever the body holds: a general JSON Schema validator that
// reports every failure (one per unknown member, each carrying the whole
// object) is quadratic on a body with many unknown members, which any client
// with a token could send.
//
// Only the keywords the contract uses are supported; compileSchema refuses a
// schema with any other validation keyword, so a rule of the contract can
// never be skipped silently.

// checkEvery is how many values the walk visits between two looks at the
// request's context.
const checkEvery = 1024

// bodySchema is one compiled schema.
type bodySchema struct {
	types    []string // JSON types allowed ("integer" also admits whole numbers); empty: any
	nullable bool
	allOf    []*bodySchema

	// object
	props     map[string]*bodySchema
	propNames []string // sorted
	required  []string // sorted
	closed    bool     // additionalProperties: false
	extra     *bodySchema

	// array
	items              *bodySchema
	minItems, maxItems int // maxItems < 0: unbounded

	// string
	minLen, maxLen int // in characters; maxLen < 0: unbounded
	pattern        *regexp.Regexp
	format         string
	enum           []any

	// number
	min *float64
}

// dateTimeRFC3339 is RFC 3339 §5.6 date-time, upper-case T and Z as the
// OpenAPI format "date-time" is commonly read.
var dateTimeRFC3339 = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`)

// compileSchema compiles s and everything it references. Shared and
// recursive references compile once.
func compileSchema(s *openapi3.Schema) (*bodySchema, error) {
	return (&schemaCompiler{done: map[*openapi3.Schema]*bodySchema{}}).compile(s, "#")
}

type schemaCompiler struct {
	done map[*openapi3.Schema]*bodySchema
}

func (sc *schemaCompiler) compile(s *openapi3.Schema, at string) (*bodySchema, error) {
	if s == nil {
		return nil, fmt.Errorf("%s: unresolved schema", at)
	}
	if b, ok := sc.done[s]; ok {
		return b, nil
	}
	switch {
	case len(s.OneOf) > 0, len(s.AnyOf) > 0, s.Not != nil, s.UniqueItems, s.ReadOnly, s.WriteOnly,
		s.Max != nil, s.MultipleOf != nil, s.ExclusiveMin.IsTrue(), s.ExclusiveMax.IsTrue(),
		s.MinProps > 0, s.MaxProps != nil, s.Discriminator != nil, s.Const != nil,
		len(s.PrefixItems) > 0, s.Contains != nil, len(s.PatternProperties) > 0, s.PropertyNames != nil,
		s.If != nil, len(s.DependentRequired) > 0, len(s.DependentSchemas) > 0, s.Always != nil:
		return nil, fmt.Errorf("%s: the request validator does not support a keyword this schema uses", at)
	}
	b := &bodySchema{nullable: s.Nullable, maxItems: -1, maxLen: -1, format: s.Format, enum: s.Enum, min: s.Min}
	sc.done[s] = b
	if s.Type != nil {
		b.types = s.Type.Slice()
	}
	var err error
	for i, r := range s.AllOf {
		var sub *bodySchema
		if sub, err = sc.ref(r, fmt.Sprintf("%s/allOf/%d", at, i)); err != nil {
			return nil, err
		}
		b.allOf = append(b.allOf, sub)
	}
	if len(s.Properties) > 0 {
		b.props = make(map[string]*bodySchema, len(s.Properties))
		for name, r := range s.Properties {
			if b.props[name], err = sc.ref(r, at+"/properties/"+name); err != nil {
				return nil, err
			}
			b.propNames = append(b.propNames, name)
		}
		slices.Sort(b.propNames)
	}
	b.required = slices.Sorted(slices.Values(s.Required))
	if has := s.AdditionalProperties.Has; has != nil && !*has {
		b.closed = true
	}
	if r := s.AdditionalProperties.Schema; r != nil {
		if b.extra, err = sc.ref(r, at+"/additionalProperties"); err != nil {
			return nil, err
		}
	}
	if s.Items != nil {
		if b.items, err = sc.ref(s.Items, at+"/items"); err != nil {
			return nil, err
		}
	}
	if b.minItems, err = bound(s.MinItems); err != nil {
		return nil, fmt.Errorf("%s: minItems: %w", at, err)
	}
	if s.MaxItems != nil {
		if b.maxItems, err = bound(*s.MaxItems); err != nil {
			return nil, fmt.Errorf("%s: maxItems: %w", at, err)
		}
	}
	if b.minLen, err = bound(s.MinLength); err != nil {
		return nil, fmt.Errorf("%s: minLength: %w", at, err)
	}
	if s.MaxLength != nil {
		if b.maxLen, err = bound(*s.MaxLength); err != nil {
			return nil, fmt.Errorf("%s: maxLength: %w", at, err)
		}
	}
	if s.Pattern != "" {
		// Go's regexp runs in time linear in the input (RE2 semantics).
		if b.pattern, err = regexp.Compile(s.Pattern); err != nil {
			return nil, fmt.Errorf("%s: pattern: %w", at, err)
		}
	}
	return b, nil
}

func (sc *schemaCompiler) ref(r *openapi3.SchemaRef, at string) (*bodySchema, error) {
	if r == nil || r.Value == nil {
		return nil, fmt.Errorf("%s: unresolved schema reference", at)
	}
	return sc.compile(r.Value, at)
}

func bound(n uint64) (int, error) {
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%d is out of range", n)
	}
	return int(n), nil
}

// bodyWalk is one validation of one decoded body.
type bodyWalk struct {
	ctx     context.Context
	visited int
	details []ErrorDetail
	path    []string
	err     error // the context's error once it is done
}

// validateBody checks doc (a value decoded by encoding/json into any) against
// s. It returns the failures (at most maxBodyErrors, in a stable order) or
// the context's error when ctx ends first.
func validateBody(ctx context.Context, s *bodySchema, doc any) ([]ErrorDetail, error) {
	w := &bodyWalk{ctx: ctx}
	w.value(s, doc)
	return w.details, w.err
}

// stop reports whether the walk must end: enough failures or a done context.
func (w *bodyWalk) stop() bool {
	return w.err != nil || len(w.details) >= maxBodyErrors
}

func (w *bodyWalk) fail(code, message string, name ...string) {
	if w.stop() {
		return
	}
	path := dotted(w.path)
	if len(name) > 0 {
		path = dotted(append(w.path, name...))
	}
	w.details = append(w.details, ErrorDetail{ErrorCode: code, Message: message, Path: path})
}

func (w *bodyWalk) invalid(message string) { w.fail(CodeFieldInvalid, message) }

// tick counts a visited value and looks at the context now and then.
func (w *bodyWalk) tick() {
	w.visited++
	if w.visited%checkEvery == 0 {
		w.err = w.ctx.Err()
	}
}

func (w *bodyWalk) value(s *bodySchema, v any) {
	w.tick()
	if w.stop() {
		return
	}
	for _, sub := range s.allOf {
		w.value(sub, v)
	}
	if v == nil {
		if !s.nullable && len(s.types) > 0 {
			w.invalid("Value has the wrong type")
		}
		return
	}
	if !s.admits(v) {
		w.invalid("Value has the wrong type")
		return
	}
	switch v := v.(type) {
	case map[string]any:
		w.object(s, v)
	case []any:
		w.array(s, v)
	case string:
		w.text(s, v)
	case float64:
		if s.min != nil && v < *s.min || !numberFormatOK(s.format, v) {
			w.invalid("Invalid value")
		}
	}
	if len(s.enum) > 0 && !slices.Contains(s.enum, v) {
		w.invalid("Value is not one of the allowed values")
	}
}

// admits reports whether v has one of the schema's types.
func (s *bodySchema) admits(v any) bool {
	if len(s.types) == 0 {
		return true
	}
	for _, t := range s.types {
		switch v := v.(type) {
		case map[string]any:
			if t == openapi3.TypeObject {
				return true
			}
		case []any:
			if t == openapi3.TypeArray {
				return true
			}
		case string:
			if t == openapi3.TypeString {
				return true
			}
		case bool:
			if t == openapi3.TypeBoolean {
				return true
			}
		case float64:
			if t == openapi3.TypeNumber || t == openapi3.TypeInteger && v == math.Trunc(v) {
				return true
			}
		}
	}
	return false
}

func (w *bodyWalk) object(s *bodySchema, obj map[string]any) {
	for _, name := range s.required {
		if _, ok := obj[name]; !ok {
			w.fail(CodeFieldMissing, "Required field is missing", name)
		}
	}
	// Unknown members: only the first few in key order are reported, found
	// in one pass without sorting the object.
	var unknown []string
	for k, v := range obj {
		w.tick()
		if w.err != nil {
			return
		}
		if _, known := s.props[k]; known {
			continue
		}
		switch {
		case s.closed:
			unknown = smallest(unknown, k, maxBodyErrors)
		case s.extra != nil:
			w.path = append(w.path, k)
			w.value(s.extra, v)
			w.path = w.path[:len(w.path)-1]
		default:
			w.freeForm(k, v)
		}
	}
	for _, k := range unknown {
		if plainName(k) {
			w.fail(CodeFieldUnexpected, "Unexpected field", k)
		} else {
			w.fail(CodeFieldUnexpected, "Unexpected field") // never echo an odd key
		}
	}
	for _, name := range s.propNames {
		if v, ok := obj[name]; ok {
			w.path = append(w.path, name)
			w.value(s.props[name], v)
			w.path = w.path[:len(w.path)-1]
		}
	}
}

// freeForm checks a member the schema does not describe (an open object):
// only that its text can be stored.
func (w *bodyWalk) freeForm(k string, v any) {
	w.tick()
	if w.stop() {
		return
	}
	if models.CheckText(k) != nil {
		w.invalid(textMessage)
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for k2, v2 := range v {
			w.freeForm(k2, v2)
		}
	case []any:
		for _, e := range v {
			w.freeForm("", e)
		}
	case string:
		if models.CheckText(v) != nil {
			w.invalid(textMessage)
		}
	}
}

// smallest keeps the n smallest strings of a growing set in order: O(n) per
// call, with n a small constant.
func smallest(keep []string, k string, n int) []string {
	if len(keep) == n && k >= keep[n-1] {
		return keep
	}
	i, _ := slices.BinarySearch(keep, k)
	keep = slices.Insert(keep, i, k)
	if len(keep) > n {
		keep = keep[:n]
	}
	return keep
}

func (w *bodyWalk) array(s *bodySchema, a []any) {
	if len(a) < s.minItems || s.maxItems >= 0 && len(a) > s.maxItems {
		w.invalid("Value has the wrong length")
	}
	if s.items == nil {
		for _, e := range a {
			w.freeForm("", e)
		}
		return
	}
	for i, e := range a {
		if w.stop() {
			return
		}
		w.path = append(w.path, fmt.Sprint(i))
		w.value(s.items, e)
		w.path = w.path[:len(w.path)-1]
	}
}

// textMessage is the answer for text the service cannot store.
const textMessage = "Text contains a character that is not allowed (NUL)"

func (w *bodyWalk) text(s *bodySchema, v string) {
	if models.CheckText(v) != nil {
		w.invalid(textMessage)
		return
	}
	if s.minLen > 0 || s.maxLen >= 0 {
		n := utf8.RuneCountInString(v)
		if n < s.minLen || s.maxLen >= 0 && n > s.maxLen {
			w.invalid("Value has the wrong length")
			return
		}
	}
	if s.pattern != nil && !s.pattern.MatchString(v) {
		w.invalid("Value does not match the expected pattern")
		return
	}
	if !formatOK(s.format, v) {
		w.invalid("Value has the wrong format")
	}
}

// formatOK checks the OpenAPI formats the contract uses on strings; any
// other format is an annotation.
func formatOK(format, v string) bool {
	switch format {
	case "date-time":
		return dateTimeRFC3339.MatchString(v)
	case "uri":
		u, err := url.Parse(v)
		return err == nil && u.Scheme != "" && !strings.ContainsAny(v, " \t")
	}
	return true
}

// numberFormatOK checks the integer formats the contracts use, int32 and
// int64, as ranges (kin-openapi enforces them too); any other number format
// is an annotation.
func numberFormatOK(format string, v float64) bool {
	switch format {
	case "int32":
		return v >= math.MinInt32 && v <= math.MaxInt32
	case "int64":
		return v >= math.MinInt64 && v <= math.MaxInt64
	}
	return true
}
