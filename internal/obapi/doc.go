// Package obapi holds the Go types and the echo server interface generated from the API
// contract, api/openapi.yaml: one ServerInterface method per operation, a ServerInterfaceWrapper
// that binds path, query and header parameters, RegisterHandlers* to attach the routes (with
// per-operation middleware through RegisterHandlersOptions.OperationMiddlewares, keyed by
// operationId), and GetSpec, the embedded spec for request validation.
//
// obapi.gen.go is generated; never edit it. Change the spec and run `make generate` (which runs
// go generate on this package); a test in api/ fails when the committed file is stale.
package obapi

//go:generate go tool oapi-codegen -config ../../api/oapi-server.yaml -o obapi.gen.go ../../api/openapi.yaml
