// Package api holds the contracts of the service, openapi.yaml (Open Banking v3.1, the back
// office and health checks) and openapi-v4.yaml (Open Banking v4.0 under /open-banking/v4.0),
// both OpenAPI 3.0.3, and the oapi-codegen configurations that generate internal/obapi and
// internal/obapi4 (models, echo server interface, embedded spec) and client/obapi and
// client/obapi4 (models, client). OpenAPI and OpenAPIV4 return the contracts as committed;
// the service serves the first at GET /openapi.yaml.
//
// Its tests prove the contracts: each spec loads and validates with kin-openapi; it has exactly
// the service's endpoints with their scopes; every error is an OBErrorResponse1
// and every response carries x-fapi-interaction-id; money is a decimal string, never a
// number; optional fields generate as omitted pointers; every v4 object is closed and its
// required members, lengths and codes are those of the v4 contract; and the committed generated
// code is what `make generate` produces today.
package api
