// Package api holds the contract of the service, openapi.yaml (OpenAPI 3.0.3), and the
// oapi-codegen configurations that generate internal/obapi (models, echo server interface,
// embedded spec) and client/obapi (models, client). OpenAPI returns the contract as committed, which
// the service serves at GET /openapi.yaml.
//
// Its tests prove the contract: the spec loads and validates with kin-openapi; it has exactly
// the service's endpoints with their scopes; every error is an OBErrorResponse1
// and every response carries x-fapi-interaction-id; money is a decimal string, never a
// number; optional fields generate as omitted pointers; and the committed generated code is
// what `make generate` produces today.
package api
