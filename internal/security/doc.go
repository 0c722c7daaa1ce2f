// Package security protects the API with sender-constrained access tokens:
// DPoP proof verification (RFC 9449), stateless server nonces, an atomic
// replay store, token introspection (RFC 7662) with a short cache, and the
// echo middleware that puts the verified Principal in the request context.
package security
