package security

import "context"

// CheckScope performs P24 (RFC 6750 §3.1, FAPI 2.0 §5.3.4): the verified
// principal in ctx must hold scope. It returns nil, a 403 insufficient_scope
// *Error, or a 401 invalid_token *Error when ctx carries no principal.
func CheckScope(ctx context.Context, scope string) *Error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return &Error{Status: 401, Code: CodeInvalidToken, Description: descInvalidToken, Reason: "no_principal"}
	}
	if scope == "" || !p.HasScope(scope) {
		return &Error{Status: 403, Code: CodeInsufficientScope, Description: descInsufficient, Reason: "insufficient_scope", Scope: scope}
	}
	return nil
}
