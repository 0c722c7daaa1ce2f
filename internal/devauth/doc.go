// Package devauth is the sandbox authorization server, mounted only when
// PAYMENTS_DEV_AUTH=true so that one command gives aggregator developers a
// complete system. It serves:
//
//	POST /oauth2/token       client_credentials, authorization_code (PKCE
//	                         S256) and refresh_token grants; client_secret_basic
//	                         or client_secret_post; a DPoP proof is required
//	                         (security.Verifier.VerifyProof, htu = public URL +
//	                         "/oauth2/token") and the token is bound to its key
//	                         (cnf.jkt, RFC 9449 §5, §6)
//	GET  /oauth2/authorize   sandbox auto-approval of a consent for a PSU,
//	                         through openbanking's AuthoriseConsent, returning a
//	                         one-time code
//	POST /oauth2/introspect  RFC 7662 for the resource server client payments-rs
//
// Tokens, refresh tokens and codes are 256-bit random values kept in memory
// under their SHA-256 (Tokens), which also implements security.Introspector
// so the service introspects in-process.
//
// # Threat model
//
// The client secrets are published in the README: anyone who can reach the
// sandbox can get tokens, so it must never run next to real money. Within
// that, it behaves like a real server so that clients built against it work
// against a bank's: a token is useless without the DPoP key it is bound to; a
// code is spent on its first presentation, bound to its client,
// redirect_uri, PKCE verifier and (with dpop_jkt) key, and a second
// presentation revokes what the first obtained (RFC 6749 §4.1.2); a refresh
// token works only for its client with its key and is rotated on use; a PSU
// token for a consent is issued only to the client that created the consent.
// Tokens, codes, secrets and proofs are never logged.
package devauth
