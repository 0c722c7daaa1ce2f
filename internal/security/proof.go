package security

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// ProofRequest holds the facts of a request that carries a DPoP proof but no
// access token: a token request at an authorization server (RFC 9449 §5).
type ProofRequest struct {
	// Method is the HTTP method of the request ("POST" at a token endpoint).
	Method string
	// URL is the full public URL of the endpoint, built from configuration
	// (for example the public URL plus "/oauth2/token"), never from Host or
	// X-Forwarded-* headers.
	URL string
	// DPoP is every value of the DPoP header, as received.
	DPoP []string
}

// ProofResult is what a verified proof tells the authorization server.
type ProofResult struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof key, base64url: the
	// value the issued token is bound to (cnf.jkt, RFC 9449 §6).
	JKT string
}

// VerifyProof checks a DPoP proof presented without an access token, the way
// an authorization server's token endpoint must (RFC 9449 §4.3 steps 1-9 and
// 11, then §11.1): one DPoP header, a compact JWS, typ dpop+jwt, an
// allow-listed alg, an embedded public key that matches alg, no crit, jku or
// x5u, a valid signature, typed claims, htm, htu and the iat window; the
// replay check runs last. A nonce claim is accepted but not required or
// checked, since the sandbox token endpoint issues no nonces;
// an ath claim is ignored, as §4.3 (12) applies only with an access token.
//
// Every failure is a *Error. A proof failure has Code CodeInvalidProof and
// Status 400, the answer RFC 9449 §5 and RFC 6749 §5.2 give at a token
// endpoint; a replay store that cannot record the proof gives Status 503
// with RetryAfter set (fail closed). It is safe for concurrent use.
func (v *Verifier) VerifyProof(ctx context.Context, req ProofRequest) (ProofResult, error) {
	res, e := v.verifyProof(ctx, req)
	if e != nil {
		if e.Code == CodeInvalidProof {
			// RFC 9449 §5: token endpoint errors are RFC 6749 §5.2
			// answers, 400 for invalid_dpop_proof.
			e.Status = http.StatusBadRequest
		}
		v.log.LogAttrs(ctx, slog.LevelInfo, "dpop token request rejected",
			slog.String("reason", e.Reason), slog.Int("status", e.Status), slog.String("jkt", res.JKT))
		return ProofResult{}, e
	}
	return res, nil
}

// verifyProof returns the thumbprint with a failure once it is known, for
// the log line.
func (v *Verifier) verifyProof(ctx context.Context, req ProofRequest) (ProofResult, *Error) {
	var res ProofResult
	now := v.now()
	proof, e := v.checkProofHeader(req.DPoP)
	if e != nil {
		return res, e
	}
	key, e := v.checkProtectedHeader(proof.header)
	if e != nil {
		return res, e
	}
	res.JKT = key.jkt
	if e := v.checkSignature(key, proof); e != nil {
		return res, e
	}
	claims, e := v.checkTokenRequestClaims(proof.payload, now)
	if e != nil {
		return res, e
	}
	if e := v.checkMethod(claims, req.Method); e != nil {
		return res, e
	}
	// The endpoint's URL comes from configuration alone: name it.
	if e := v.checkTarget(claims, req.URL, "", req.URL); e != nil {
		return res, e
	}
	if e := v.checkIssuedAt(claims, now); e != nil {
		return res, e
	}
	if e := v.checkReplay(ctx, key, claims); e != nil {
		return res, e
	}
	return res, nil
}

// checkTokenRequestClaims performs P15 for a proof sent without an access
// token, RFC 9449 §4.2 and §4.3 (3): like checkClaims, but ath is not
// required and not read (decodeClaims).
func (v *Verifier) checkTokenRequestClaims(segment string, now time.Time) (proofClaims, *Error) {
	return v.decodeClaims(segment, now, false)
}
