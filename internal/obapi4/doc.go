// Package obapi4 holds the Go types and the echo server interface generated from the Open
// Banking v4.0 contract, api/openapi-v4.yaml: one ServerInterface method per operation, a
// ServerInterfaceWrapper that binds path, query and header parameters, RegisterHandlers* to
// attach the routes, and GetSpec, the embedded spec for request validation. It mirrors
// internal/obapi, which does the same for v3.1; the two share operation and schema names, so
// callers import this one as obapi4.
//
// obapi4.gen.go is generated; never edit it. Change the spec and run `make generate` (which runs
// go generate on this package); a test in api/ fails when the committed file is stale.
package obapi4

//go:generate go tool oapi-codegen -config ../../api/oapi-server-v4.yaml -o obapi4.gen.go ../../api/openapi-v4.yaml
