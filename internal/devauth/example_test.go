package devauth_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/devauth"
	"github.com/obpay/payments/internal/security"
)

// noConsents stands in for *openbanking.Service.
type noConsents struct{}

func (noConsents) ConsentClient(context.Context, string) (string, string, string, error) {
	return "", "", "", nil
}
func (noConsents) AuthoriseConsent(context.Context, string, string, string) error { return nil }

// Example shows the wiring with PAYMENTS_DEV_AUTH=true: one token store is
// the verifier's introspector (in-process, no HTTP round trip) and the
// sandbox's storage, and the same verifier checks the token requests' proofs.
func Example() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	tokens := devauth.NewTokens(nil)
	replay, closeReplay, err := security.OpenReplayStore("memory")
	if err != nil {
		panic(err)
	}
	defer closeReplay()
	verifier, err := security.NewVerifier(security.Config{
		PublicURL:    "http://localhost:8080",
		ReplayStore:  replay,
		Introspector: tokens,
		Logger:       log,
	})
	if err != nil {
		panic(err)
	}
	as, err := devauth.New(devauth.Config{
		Verifier: verifier,
		Consents: noConsents{}, // the *openbanking.Service
		Tokens:   tokens,
		Logger:   log,
	})
	if err != nil {
		panic(err)
	}
	e := echo.New()
	as.Register(e) // POST /oauth2/token, GET /oauth2/authorize, POST /oauth2/introspect
}
