package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPortAndPublicURLGoTogether follows the README: moved to another port
// with PAYMENTS_ADDR and PAYMENTS_PUBLIC_URL together, the sandbox accepts
// proofs signed for the new URL; with PAYMENTS_ADDR alone, the public URL is
// still http://localhost:8080, so the same proofs are refused
// (invalid_dpop_proof: their htu names another URL).
func TestPortAndPublicURLGoTogether(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		t.Fatal(err)
	}
	tokens := func(base string) *client.TokenClient {
		tc, err := client.NewTokenClient(client.TokenConfig{BaseURL: base, ClientID: sandboxTPPID, ClientSecret: sandboxTPPSecret, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return tc
	}

	t.Run("both", func(t *testing.T) {
		port := freeLoopbackPort(t)
		base := fmt.Sprintf("http://localhost:%d", port)
		serveInProcess(t, map[string]string{"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
			"PAYMENTS_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "PAYMENTS_PUBLIC_URL": base})
		api, err := client.New(base, key, tokens(base).ClientCredentialsSource("accounts"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := api.CreateAccountAccessConsentsWithResponse(ctx, &obapi.CreateAccountAccessConsentsParams{},
			obapi.OBReadConsent1{Data: obapi.OBReadConsent1Data{Permissions: []obapi.OBExternalPermissions1Code{"ReadAccountsBasic"}}})
		if err != nil || res.StatusCode() != 201 {
			t.Fatalf("create account access consent on %s = %v %v, want 201", base, err, res)
		}
	})

	t.Run("only the address", func(t *testing.T) {
		port := freeLoopbackPort(t)
		base := fmt.Sprintf("http://localhost:%d", port)
		serveInProcess(t, map[string]string{"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
			"PAYMENTS_ADDR": fmt.Sprintf("127.0.0.1:%d", port)})
		_, err := tokens(base).ClientCredentials(ctx, "accounts")
		var oe *client.OAuthError
		if !errors.As(err, &oe) || oe.Code != "invalid_dpop_proof" {
			t.Fatalf("token on %s with the default public URL = %v, want invalid_dpop_proof", base, err)
		}
	})
}
