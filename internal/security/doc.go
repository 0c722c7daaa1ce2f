// Package security protects the API with sender-constrained access tokens:
// DPoP proof verification (RFC 9449), stateless server nonces, an atomic
// replay store, token introspection (RFC 7662) with a short cache, and the
// echo middleware that puts the verified Principal in the request context.
//
// # Threat model
//
// A stolen access token alone must move no money. Every protected request
// carries "Authorization: DPoP <token>" and a DPoP proof signed by the key the
// token is bound to (cnf.jkt). An attacker who holds a token but not the key
// cannot sign a proof; one who captured a proof cannot reuse it for another
// method or URL (htm, htu), another token (ath), later (iat and nonce) or a
// second time (replay store). The expected URL comes from configuration plus
// the dispatched path, never from Host or X-Forwarded-* headers, so a proof
// collected by another server cannot be replayed here by spoofing them.
//
// # Checks, in the order Verifier.Verify runs them
//
// Numbers are the check numbers of docs/design.md section 4 (P2-P24) and the
// RFC 9449 §4.3 steps.
//
//	P2-P6   checkAuthorization   one Authorization header, "DPoP" scheme (ASCII
//	                             case-insensitive), token68 of at most 4 KiB, no
//	                             access_token in query or form (RFC 6750 §2, §3.1;
//	                             RFC 9449 §7.1, §7.2)
//	P7-P8   checkProofHeader     exactly one DPoP header, at most 8 KiB, compact
//	                             JWS with three base64url segments (§4.3 (1), (2))
//	P9-P13  checkProtectedHeader UTF-8 JSON without a byte order mark (RFC 7515
//	                             §5.2 step 3, RFC 8259 §8.1, ignored members
//	                             included); typ dpop+jwt (§4.3 (4)); alg on the
//	                             allow-list (§4.3 (5)); embedded public jwk (§4.3 (7)) whose
//	                             kty/crv/size match alg (parseJWK); no crit, b64,
//	                             jku or x5u. The verdict is cached by the header
//	                             bytes (keyCache).
//	P14     checkSignature       signature under the allow-listed alg (§4.3 (6))
//	P15     checkClaims          UTF-8 JSON without a byte order mark (RFC 7519
//	                             §7.2 step 10, RFC 8259 §8.1, ignored claims
//	                             included); typed jti, htm, htu, iat, ath, nonce,
//	                             exp, nbf (§4.2, §4.3 (3)); member names matched
//	                             exactly (decodeClaims)
//	P16     checkMethod          htm equals the method, case-sensitive (§4.3 (8))
//	P17     checkTarget          normalizeHTU(htu) equals normalizeHTU(URL)
//	                             (§4.3 (9); RFC 3986 §6.2.2, §6.2.3)
//	P18     checkNonce           server nonce of the current or previous window
//	                             (§4.3 (10), §9); else use_dpop_nonce
//	P19     checkIssuedAt        iat within [now-MaxAge, now+Skew] (§4.3 (11))
//	P20     checkTokenHash       ath over the token as sent (§4.3 (12))
//	P21     introspect           active, token_type DPoP, access_token or absent,
//	                             exp/nbf, aud, cnf.jkt present (RFC 7662 §2.2;
//	                             RFC 9449 §6.2), one consent id (RFC 9396 §2),
//	                             sub when there is one; a token the
//	                             introspector throttled for its proof key is
//	                             answered as an inactive one; a JWT access
//	                             token (typ at+jwt) is validated locally by
//	                             TokenResolver (RFC 9068 §4: alg allow-list,
//	                             JWKS key of a fitting type, signature, iss,
//	                             aud, exp, nbf, iat, client_id, cnf.jkt)
//	P22     checkBinding         cnf.jkt equals the proof key thumbprint
//	                             (§4.3 (12), §6; RFC 7638)
//	P23     checkReplay          atomic record of (jkt, jti) until iat+MaxAge+Skew
//	                             (§11.1), last, so only valid proofs use the store
//	P24     CheckScope           the route's scope (RequireScope; RFC 6750 §3.1)
//
// Verifier.VerifyProof, for a token endpoint (RFC 9449 §5), runs the same
// functions without the access token: checkProofHeader, checkProtectedHeader,
// checkSignature, checkTokenRequestClaims (decodeClaims without ath),
// checkMethod, checkTarget, checkIssuedAt, checkReplay. It checks no nonce
// (the token endpoint issues none; a nonce claim is accepted) and no ath.
//
// # What a refusal says
//
// Every *Error names the failed check in its Description, in fixed words the
// server chose (the descriptions table in errors.go): "DPoP proof typ must be
// dpop+jwt", "DPoP key does not match the token's cnf.jkt". The answer
// carries it as error_description and as the OB error body's message. Words
// that depend on the configuration (the allowed algs, the iat window) are
// built by NewVerifier; those that name the request's expected method or URL
// (htm, htu) only when a request is refused, from the dispatched method (our
// routes' methods only, as constants) and the expected URL, which is the
// configured public URL plus the escaped dispatched path, not a claim or a
// header. No description holds request input, and each uses only the
// characters RFC 6750 §3 allows. Two answers keep fixed standard words: every
// answer about the token itself (unknown, inactive, revoked, expired, another
// audience) reads "Invalid access token", so that the answer tells nothing
// about the token; and use_dpop_nonce keeps RFC 9449 Fig.24's description,
// with Detail saying whether the nonce was missing or stale.
//
// # RFC 9449 §4.3, step by step
//
//	(1)  one DPoP header                      checkProofHeader
//	(2)  a single well-formed JWT             checkProofHeader
//	(3)  the §4.2 claims present              checkClaims / checkTokenRequestClaims
//	(4)  typ "dpop+jwt"                       checkProtectedHeader
//	(5)  alg asymmetric and acceptable        checkProtectedHeader
//	(6)  signature verifies with jwk          checkSignature
//	(7)  jwk holds no private key             checkProtectedHeader (parseJWK)
//	(8)  htm matches the method               checkMethod
//	(9)  htu matches the URI, no query/frag   checkTarget
//	(10) nonce matches the server's           checkNonce
//	(11) iat within the window                checkIssuedAt
//	(12) ath matches the token, and the       checkTokenHash, then (after
//	     token is bound to the proof key      introspect) checkBinding
//
// The code runs them in the order of the first table (cheap syntax and key
// checks, then the signature, then the claims), which is also P3-P24.
//
// Local checks (P2-P20) run before introspection, so a request with an invalid
// proof never causes an outbound call. A valid proof with a junk token does,
// so HTTPIntrospector also limits those: inactive answers are cached for a
// few seconds (NegativeCacheTTL), and a proof key whose calls came back
// inactive InactivePerKey times within a second gets, for InactiveBlock, the
// inactive token's answer without a call for any token not cached as active.
// Only inactive answers count, so a client presenting valid tokens, however
// many, is never refused; the table of keys is bounded (InactiveKeys).
//
// # Hot path
//
// A client reuses one key for many requests, so the verdict on a protected
// header (algorithm, parsed key, thumbprint) is cached by the header segment;
// the nonce tags of the current and previous window are cached; the claims
// are validated and read in one pass (scanClaims); the ES256 signature is
// handed to crypto/ecdsa in DER without big.Int round trips. None of this
// skips a check: BenchmarkVerify compares the whole check with the bare
// signature verification.
//
// # Replay store: limits and fairness
//
// checkReplay records hash(jkt, jti) until iat + MaxAge + Skew + 1 s (71 s by
// default) in one atomic call; the proof key's thumbprint (jkt) is the entry's
// owner (FairReplayStore.SeenFor). When the store cannot record, the request
// fails closed with 503 and Retry-After.
//
// The memory store (PAYMENTS_REPLAY_STORE=memory) holds 1,000,000 entries in
// 64 shards. Each entry is removed within a second of its expiry (a wheel of
// one-second slots per shard), so the store holds what the last 71 s
// recorded: 6,000 proofs/s is about 426,000 entries. It is shared by every
// client, and so shared fairly:
//
//   - Below the high-water mark (80% of capacity, 800,000 entries) anyone may
//     record: one client alone may use the store up to the mark, more than
//     11,000 proofs/s.
//   - At or above the mark, a client's fair share is the free room: a new
//     proof is recorded only while its key holds fewer entries than are
//     still free (200,000 at the mark, fewer as the store fills). The key
//     holding the most is refused first (ErrReplayShareExceeded: 503, reason
//     replay_share_exceeded), and a newcomer can take at most half of what
//     was free, so one or two keys can never fill the store and lock out the
//     others.
//   - Only a full store refuses everyone (ErrReplayStoreFull: 503, reason
//     replay_store_unavailable); a live entry is never evicted to make room.
//
// Shares are kept per shard (counts of a key's live entries, one map update
// per recorded proof, forgotten when a key has none); keys are hashes, so a
// key's entries spread evenly and the per-shard rule is the store-wide rule.
// Fairness is per proof key: a client that uses many keys, each with a token
// bound to it, gets a share per key.
//
// The memory store is per process: with several nodes, or across a restart, a
// proof is accepted once per node and process. Several nodes need the Redis
// store (PAYMENTS_REPLAY_STORE=redis://...), one "SET key 1 NX PX ttl" per
// proof: Redis expires each entry by itself at its PX time (lazily on access
// and by its active expiry cycle), so nothing here sweeps. It applies no
// per-client share: its capacity is the Redis server's memory (roughly 100 to
// 150 bytes per entry), which must be sized for the peak and run with
// maxmemory-policy noeviction, so that a full Redis refuses a write (503,
// fail closed) instead of evicting a live entry and letting its proof be
// replayed.
//
// # Why the standard library and not a JOSE library
//
// Proofs are parsed and verified with the standard library (encoding/base64,
// crypto/ecdsa, crypto/ed25519, crypto/rsa) rather than through jwx. A DPoP
// proof is one narrow shape of JWS, and the general library accepts more than
// RFC 9449 allows unless every option is set just so: the JSON serialization
// without WithCompact, ES256 with a P-384 key, RSA-1024, unknown crit members,
// and it does not know the RFC 9864 name Ed25519. Parsing only the compact form
// and checking each member ourselves makes each of those refusals a visible,
// tested step, and it keeps the per-request cost within a few percent of the
// one signature check that cannot be avoided (see BenchmarkVerify).
//
// # Invariants
//
//   - Only ES256 (P-256), PS256 (RSA 2048-8192 bits) and Ed25519 (as EdDSA or
//     Ed25519) are accepted, from the configured allow-list; none, HMAC and
//     algorithms inferred from the key are not.
//   - Secret-derived values (ath, cnf.jkt, nonce tags) are compared in constant
//     time.
//   - Every failure is a *Error with a fixed description; no request input
//     reaches a response header.
//   - The replay store is exact and atomic; when it cannot record (full, a
//     key over its share under pressure, Redis down), or the authorization
//     server cannot answer, the request fails closed with 503.
//   - Failed introspection calls are never cached; active answers are cached
//     at most CacheTTL and never past the token's exp, inactive ones at most
//     NegativeCacheTTL. Unknown, inactive and throttled tokens get the same
//     answer.
//   - JWT access tokens are verified only with keys of the issuer's JWKS
//     (never a key or URL named by the token), with RS256, PS256, ES256 or
//     EdDSA matching the key's type; a JWKS not fetched yet means 503. A
//     verified JWT is cached until its exp, so its revocation takes effect
//     then. Requests cause at most one JWKS fetch per minute.
//   - The introspection client authenticates every call (RFC 7662 §2.1,
//     clientauth.go). A private_key_jwt assertion serves one call: its own
//     128-bit jti, exp 60 s after iat, the issuer as its only aud (RFC 7523
//     §3), ES256, PS256 (RSA of 2048 bits or more) or EdDSA by key type; a
//     call whose assertion cannot be made is not sent (503).
//   - Nothing logs a token, a proof, a key or a secret: rejections log the
//     reason, status, code, jkt and client_id only.
package security
