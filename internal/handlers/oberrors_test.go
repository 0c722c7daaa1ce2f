package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	gormpostgres "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/postgres"
)

func TestOBErrorMapsDatabaseOutageTo503(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int // 0: passed through, the renderer's 500
		code       string
		retryAfter bool
	}{
		{"database unreachable", fmt.Errorf("%w: dial tcp: connection refused", ledger.ErrUnavailable), 503, CodeUnexpectedError, true},
		{"database unreachable under the openbanking name", openbanking.ErrUnavailable, 503, CodeUnexpectedError, true},
		{"conflict after every retry", ledger.ErrTxConflict, 503, CodeServiceUnavailable, true},
		{"genuine storage bug", fmt.Errorf("%w: scan: unsupported type", openbanking.ErrStorage), 0, "", false},
		{"ledger storage bug", ledger.ErrStorage, 0, "", false},
		{"cancelled request", fmt.Errorf("openbanking: %w", context.Canceled), 0, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := obError(tc.err)
			var apiErr *APIError
			if !errors.As(got, &apiErr) {
				if tc.status != 0 {
					t.Fatalf("obError(%v) = %v, want a %d APIError", tc.err, got, tc.status)
				}
				if got != tc.err {
					t.Errorf("obError(%v) = %v, want it passed through unchanged", tc.err, got)
				}
				return
			}
			if apiErr.Status != tc.status || apiErr.Details[0].ErrorCode != tc.code {
				t.Errorf("obError(%v) = %d %s, want %d %s", tc.err, apiErr.Status, apiErr.Details[0].ErrorCode, tc.status, tc.code)
			}
			if has := apiErr.Header.Get("Retry-After") != ""; has != tc.retryAfter {
				t.Errorf("obError(%v) Retry-After = %q, want present %v", tc.err, apiErr.Header.Get("Retry-After"), tc.retryAfter)
			}
		})
	}
}

// TestEveryRouteAnswers503WhenTheDatabaseIsDown runs the real handlers and
// service on a database that refuses connections: each route that reaches
// the database answers 503 UK.OBIE.UnexpectedError with Retry-After, and
// the cause stays out of the body.
func TestEveryRouteAnswers503WhenTheDatabaseIsDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	db, err := gorm.Open(gormpostgres.Open("postgres://postgres@"+addr+"/postgres?sslmode=disable"),
		&gorm.Config{Logger: logger.Discard, DisableAutomaticPing: true})
	if err != nil {
		t.Fatal(err)
	}
	lg, err := postgres.NewLedger(db)
	if err != nil {
		t.Fatal(err)
	}
	store, err := postgres.NewStore(lg, postgres.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := openbanking.New(openbanking.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := NewHandler(HandlerConfig{Service: svc, Logger: log, PublicURL: testBase})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Logger: log, Registry: prometheus.NewRegistry(), BodyLimit: 4096,
		Ping:   func(context.Context) error { return nil },
		Routes: func(e *echo.Echo) error { return RegisterRoutes(e, h, fakeDPoP) }})
	if err != nil {
		t.Fatal(err)
	}
	a := &api{t: t, e: e}

	const id = "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a"
	body := consentBody("10.00", "99999912345678")
	psu := psuToken("tpp-a", "alice", id, "payments")
	reader := psuToken("tpp-a", "alice", id, "accounts")
	tests := []struct {
		name, method, path, body string
		h                        hdr
	}{
		{"create payment consent", "POST", "/open-banking/v3.1/pisp/domestic-payment-consents", body, tpp("tpp-a", "payments").with("x-idempotency-key", "k1")},
		{"read payment consent", "GET", "/open-banking/v3.1/pisp/domestic-payment-consents/" + id, "", tpp("tpp-a", "payments")},
		{"funds confirmation", "GET", "/open-banking/v3.1/pisp/domestic-payment-consents/" + id + "/funds-confirmation", "", psu},
		{"payment", "POST", "/open-banking/v3.1/pisp/domestic-payments", paymentBody(body, id), psu.with("x-idempotency-key", "k2")},
		{"read payment", "GET", "/open-banking/v3.1/pisp/domestic-payments/" + id, "", tpp("tpp-a", "payments")},
		{"create access consent", "POST", "/open-banking/v3.1/aisp/account-access-consents", `{"Data":{"Permissions":["ReadBalances"]},"Risk":{}}`, tpp("tpp-a", "accounts")},
		{"read access consent", "GET", "/open-banking/v3.1/aisp/account-access-consents/" + id, "", tpp("tpp-a", "accounts")},
		{"revoke access consent", "DELETE", "/open-banking/v3.1/aisp/account-access-consents/" + id, "", tpp("tpp-a", "accounts")},
		{"accounts", "GET", "/open-banking/v3.1/aisp/accounts", "", reader},
		{"account", "GET", "/open-banking/v3.1/aisp/accounts/" + id, "", reader},
		{"balances", "GET", "/open-banking/v3.1/aisp/accounts/" + id + "/balances", "", reader},
		{"transactions", "GET", "/open-banking/v3.1/aisp/accounts/" + id + "/transactions", "", reader},
		{"open account", "POST", "/internal/v1/accounts", `{"Owner":"alice","Currency":"GBP","Nickname":"a","OpeningBalance":"1.00"}`, admin},
		{"reconcile", "GET", "/internal/v1/ledger/reconcile", "", admin},
		{"authorise consent", "POST", "/internal/v1/consents/" + id + "/authorise", `{"Psu":"alice","DebtorAccount":"` + id + `"}`, admin},
		{"reject consent", "POST", "/internal/v1/consents/" + id + "/reject", "", admin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := a.do(tc.method, tc.path, tc.body, tc.h)
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("%s %s = %d %s, want 503", tc.method, tc.path, rec.Code, rec.Body.String())
			}
			if rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			var b ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || len(b.Errors) != 1 || b.Errors[0].ErrorCode != CodeUnexpectedError {
				t.Errorf("body = %s, want one %s error", rec.Body.String(), CodeUnexpectedError)
			}
			if strings.Contains(rec.Body.String(), "refused") || strings.Contains(rec.Body.String(), "127.0.0.1") {
				t.Errorf("body %s reveals the cause", rec.Body.String())
			}
		})
	}
}
