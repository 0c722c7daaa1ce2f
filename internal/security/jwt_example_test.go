package security_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/obpay/payments/internal/security"
)

func ExampleNewDiscovery() {
	d, err := security.NewDiscovery(security.DiscoveryConfig{Issuer: "https://as.bank.example/realms/obpay"})
	if err != nil {
		panic(err)
	}
	// Before the first Fetch (or with the server down) nothing is known.
	_, known := d.Metadata()
	fmt.Println(d.Status(), known)
	// Output: UNREACHABLE false
}

func ExampleNewTokenResolver() {
	d, err := security.NewDiscovery(security.DiscoveryConfig{Issuer: "https://as.bank.example"})
	if err != nil {
		panic(err)
	}
	r, err := security.NewTokenResolver(security.TokenResolverConfig{
		Mode:         security.AccessTokensAuto,
		Discovery:    d,
		Introspector: staticIntrospector{res: security.Introspection{Active: true, ClientID: "tpp-1"}},
	})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	// An opaque token goes to introspection.
	res, _ := r.Introspect(context.Background(), "opaque-token")
	fmt.Println(res.Active, res.ClientID)
	// A JWT access token needs the issuer's keys: unknown yet, so 503.
	jwt := "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NiJ9.e30.c2ln"
	_, err = r.Introspect(context.Background(), jwt)
	fmt.Println(errors.Is(err, security.ErrAuthServerUnavailable))
	// Output:
	// true tpp-1
	// true
}
