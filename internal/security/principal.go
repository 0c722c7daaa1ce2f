package security

import "context"

// Principal is the verified caller of a protected request: the client, the
// customer (PSU) when the token was issued for one, the granted scopes, the
// consent the token was issued for and the RFC 7638 thumbprint of the proof key.
type Principal struct {
	ClientID  string
	Subject   string
	Scopes    []string
	ConsentID string
	JKT       string
}

// HasScope reports whether the principal was granted scope s (exact match).
func (p Principal) HasScope(s string) bool {
	for _, g := range p.Scopes {
		if g == s {
			return true
		}
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p. The DPoP middleware calls it
// after a request passed every check; tests of later layers call it directly.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the verified principal stored by WithPrincipal and
// whether there was one.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
