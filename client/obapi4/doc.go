// Package obapi4 is the Go client generated from the Open Banking v4.0 contract,
// api/openapi-v4.yaml: Client and ClientWithResponses with one method per operation, and the
// request and response types. It mirrors client/obapi, which does the same for v3.1.
//
// Every protected operation needs `Authorization: DPoP <token>` and a fresh `DPoP` proof per
// request. Build the client with an http.Client whose transport signs the proofs (the SDK in
// the client module does this and retries once on a `use_dpop_nonce` challenge); the transport
// then overwrites the `DPoP` field of each operation's params, which callers may leave empty.
//
// obapi4.gen.go is generated; never edit it. Change the spec and run `make generate` (which runs
// go generate on this package); a test in api/ fails when the committed file is stale.
package obapi4

//go:generate go tool oapi-codegen -config ../../api/oapi-client-v4.yaml -o obapi4.gen.go ../../api/openapi-v4.yaml
