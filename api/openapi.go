package api

import (
	"bytes"
	_ "embed" // openapi.yaml, openapi-v4.yaml
)

//go:embed openapi.yaml
var openapiYAML []byte

//go:embed openapi-v4.yaml
var openapiV4YAML []byte

// OpenAPI returns the contract, openapi.yaml, byte for byte as committed. The
// slice is the caller's own copy.
func OpenAPI() []byte { return bytes.Clone(openapiYAML) }

// OpenAPIV4 returns the Open Banking v4.0 contract, openapi-v4.yaml, byte for
// byte as committed. The slice is the caller's own copy.
func OpenAPIV4() []byte { return bytes.Clone(openapiV4YAML) }
