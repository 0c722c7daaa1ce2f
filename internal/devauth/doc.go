// Package devauth is the sandbox authorization server, mounted only when
// PAYMENTS_DEV_AUTH=true so that one command gives aggregator developers a
// complete system. It behaves like a FAPI 2.0 authorization server where
// that matters to clients, and serves:
//
//	GET  /.well-known/oauth-authorization-server
//	GET  /.well-known/openid-configuration
//	                         RFC 8414 metadata (the same document); the
//	                         issuer is the public URL
//	POST /oauth2/par         RFC 9126 pushed authorization requests: the
//	                         client authenticates first; an optional DPoP
//	                         proof binds the code to its key (RFC 9449 §10);
//	                         a request_uri is good once, for 60 s, for its
//	                         client
//	GET  /oauth2/authorize   sandbox auto-approval of a consent (named by
//	                         consent_id or RFC 9396 authorization_details of
//	                         type openbanking_intent) for a PSU, through
//	                         openbanking's AuthoriseConsent, answering 303
//	                         with a one-time code and iss (RFC 9207), or
//	                         JSON; with RequirePAR only pushed requests.
//	                         Without psu (or with NoAutoApprove), and with
//	                         Customers set, the consent page instead: the
//	                         customer signs in, reviews and approves or
//	                         rejects (POST /oauth2/authorize/signin and
//	                         /oauth2/authorize/decision, CSRF-protected)
//	POST /oauth2/token       client_credentials, authorization_code (PKCE
//	                         S256) and refresh_token grants; a DPoP proof is
//	                         required (security.Verifier.VerifyProof, htu =
//	                         public URL + "/oauth2/token") and the token is
//	                         bound to its key (cnf.jkt, RFC 9449 §5, §6)
//	POST /oauth2/introspect  RFC 7662 for the resource server client payments-rs
//	POST /oauth2/register    RFC 7591 open registration of aggregator
//	                         clients (1,000 at most, 24 hours each),
//	                         loopback redirect URIs only, compared exactly
//	                         afterwards
//
// Clients authenticate at the token, PAR and introspection endpoints with
// private_key_jwt (RFC 7523: a client assertion signed by one of the
// client's registered keys, aud the issuer or the endpoint, exp at most 60 s
// ahead, each jti once), or, as sandbox conveniences outside FAPI,
// client_secret_basic and client_secret_post.
//
// Tokens, refresh tokens, codes and request_uris are 256-bit random values
// kept under their SHA-256 in a Store (the service's is PostgreSQL, see
// internal/postgres/authstore), with registered clients and client assertion
// ids, so that a restart strands no consent and signs no one out. Tokens
// fronts the Store and implements security.Introspector, so the service
// introspects in-process. Everything in it expires and is purged (Purge);
// each client may hold TokensConfig.MaxPerClient live tokens of each kind
// and codes, and 100 pushed requests, and past that gets 429 while the other
// clients go on.
//
// # Threat model
//
// The client secrets, and the private key of sandbox-tpp-fapi, are
// published in the repository: anyone who can reach the sandbox can get
// tokens, so it must never run next to real money. Within that, it behaves
// like a real server so that clients built against it work against a bank's:
// a client is authenticated before anything else of its request is judged; a
// token is useless without the DPoP key it is bound to; a code lives 60 s,
// is spent on its first presentation, bound to its client, redirect_uri,
// PKCE verifier and (with dpop_jkt or a PAR proof) key, and a second
// presentation revokes what the first obtained (RFC 6749 §4.1.2); a refresh
// token works only for its client with its key and is not rotated (FAPI 2.0),
// and presenting it otherwise revokes nothing; a consent is authorised, and
// a PSU token for it issued, only for the client that created it. Tokens,
// codes, secrets, assertions and proofs are never logged.
package devauth
