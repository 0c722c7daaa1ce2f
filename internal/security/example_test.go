package security_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/security"
)

// staticIntrospector answers every token with the same result.
type staticIntrospector struct{ res security.Introspection }

func (s staticIntrospector) Introspect(context.Context, string) (security.Introspection, error) {
	return s.res, nil
}

func ExampleNewVerifier() {
	store, _, err := security.OpenReplayStore("memory")
	if err != nil {
		panic(err)
	}
	v, err := security.NewVerifier(security.Config{
		PublicURL:    "https://api.bank.example",
		NonceSecret:  []byte("a secret of at least thirty-two bytes"),
		ReplayStore:  store,
		Introspector: staticIntrospector{},
	})
	if err != nil {
		panic(err)
	}
	_, _, err = v.Verify(context.Background(), security.Request{
		Method: "POST",
		URL:    "https://api.bank.example/open-banking/v3.1/pisp/domestic-payments",
	})
	var e *security.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.WWWAuthenticate())
	}
	// Output: 401 DPoP algs="ES256 EdDSA Ed25519 PS256"
}

func ExampleNewMiddleware() {
	store, _ := security.NewMemoryReplayStore()
	v, err := security.NewVerifier(security.Config{
		PublicURL:    "https://api.bank.example",
		ReplayStore:  store,
		Introspector: staticIntrospector{},
	})
	if err != nil {
		panic(err)
	}
	dpop, err := security.NewMiddleware(security.MiddlewareConfig{Verifier: v})
	if err != nil {
		panic(err)
	}
	e := echo.New()
	pay := e.Group("/open-banking/v3.1/pisp", dpop, security.RequireScope("payments"))
	pay.GET("/domestic-payments/:id", func(c echo.Context) error {
		p, _ := security.PrincipalFrom(c.Request().Context())
		return c.String(200, p.ClientID)
	})
	for _, r := range e.Routes() {
		if r.Method == "GET" {
			fmt.Println(r.Method, r.Path)
		}
	}
	// Output: GET /open-banking/v3.1/pisp/domestic-payments/:id
}

func ExamplePrincipalFrom() {
	ctx := security.WithPrincipal(context.Background(), security.Principal{ClientID: "tpp-1", Scopes: []string{"payments"}})
	p, ok := security.PrincipalFrom(ctx)
	fmt.Println(ok, p.ClientID, p.HasScope("payments"), p.HasScope("accounts"))
	// Output: true tpp-1 true false
}

func ExampleNewHTTPIntrospector() {
	in, err := security.NewHTTPIntrospector(security.IntrospectionConfig{
		URL:          "https://as.bank.example/oauth2/introspect",
		ClientID:     "payments-rs",
		ClientSecret: "secret",
		Timeout:      2 * time.Second,
		CacheTTL:     30 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	defer in.Close()
	fmt.Println(in != nil)
	// Output: true
}

func ExampleOpenReplayStore() {
	store, closeStore, err := security.OpenReplayStore("memory", security.WithMaxEntries(1<<16))
	if err != nil {
		panic(err)
	}
	defer closeStore()
	until := time.Now().Add(70 * time.Second)
	first, _ := store.Seen(context.Background(), "jkt+jti", until)
	second, _ := store.Seen(context.Background(), "jkt+jti", until)
	fmt.Println(first, second)
	// Output: false true
}

func ExampleError_WWWAuthenticate() {
	e := &security.Error{Status: 403, Code: security.CodeInsufficientScope, Scope: "payments"}
	fmt.Println(e.WWWAuthenticate())
	// Output: DPoP error="insufficient_scope", scope="payments"
}

func ExampleRequireScope() {
	e := echo.New()
	e.GET("/x", func(c echo.Context) error { return c.NoContent(204) }, security.RequireScope("accounts"))
	fmt.Println(len(e.Routes()))
	// Output: 1
}
