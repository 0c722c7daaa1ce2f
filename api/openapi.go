package api

import (
	"bytes"
	_ "embed" // openapi.yaml
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the contract, openapi.yaml, byte for byte as committed. The
// slice is the caller's own copy.
func OpenAPI() []byte { return bytes.Clone(openapiYAML) }
