package openbanking_test

import (
	"context"
	"errors"
	"net"
	"testing"

	gormpostgres "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/postgres"
)

// downService returns a service whose database refuses every connection.
func downService(t *testing.T) *openbanking.Service {
	t.Helper()
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
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sqlDB.Close() })
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
	return svc
}

// TestDatabaseDownIsUnavailable: every entry point answers ErrUnavailable
// (never ErrStorage) when the database refuses connections, and the
// context's error when the request's own context was cancelled.
func TestDatabaseDownIsUnavailable(t *testing.T) {
	svc := downService(t)
	const id = "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a"
	client := openbanking.Caller{ClientID: clientA}
	psu := openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: id}
	req := consentRequest("1.00", "GBP", external)
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"CreatePaymentConsent", func(ctx context.Context) error {
			_, err := svc.CreatePaymentConsent(ctx, client, key("k", req.InitiationJSON), req)
			return err
		}},
		{"PaymentConsent", func(ctx context.Context) error { _, err := svc.PaymentConsent(ctx, client, id); return err }},
		{"FundsConfirmation", func(ctx context.Context) error { _, err := svc.FundsConfirmation(ctx, psu, id); return err }},
		{"Authorise", func(ctx context.Context) error { _, err := svc.Authorise(ctx, id, "alice", id); return err }},
		{"Reject", func(ctx context.Context) error { _, err := svc.Reject(ctx, id); return err }},
		{"ConsentClient", func(ctx context.Context) error { _, _, _, err := svc.ConsentClient(ctx, id); return err }},
		{"CreatePayment", func(ctx context.Context) error {
			_, err := svc.CreatePayment(ctx, psu, key("k", []byte("p")),
				openbanking.PaymentRequest{Version: openbanking.V3_1, ConsentID: id, InitiationJSON: req.InitiationJSON, RiskJSON: req.RiskJSON})
			return err
		}},
		{"Payment", func(ctx context.Context) error { _, err := svc.Payment(ctx, client, id); return err }},
		{"CreateAccountAccessConsent", func(ctx context.Context) error {
			_, err := svc.CreateAccountAccessConsent(ctx, client, openbanking.AccountAccessRequest{Version: openbanking.V3_1, Permissions: []openbanking.Permission{openbanking.ReadBalances}})
			return err
		}},
		{"AccountAccessConsent", func(ctx context.Context) error { _, err := svc.AccountAccessConsent(ctx, client, id); return err }},
		{"RevokeAccountAccessConsent", func(ctx context.Context) error { return svc.RevokeAccountAccessConsent(ctx, client, id) }},
		{"Accounts", func(ctx context.Context) error { _, _, err := svc.Accounts(ctx, psu); return err }},
		{"Balance", func(ctx context.Context) error { _, _, err := svc.Balance(ctx, psu, id); return err }},
		{"Transactions", func(ctx context.Context) error {
			_, err := svc.Transactions(ctx, psu, id, openbanking.TransactionsQuery{})
			return err
		}},
		{"OpenAccount", func(ctx context.Context) error {
			_, err := svc.OpenAccount(ctx, openbanking.OpenAccountRequest{Owner: "alice", Currency: "GBP", OpeningBalance: "1.00"})
			return err
		}},
		{"Reconcile", func(ctx context.Context) error { _, err := svc.Reconcile(ctx); return err }},
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(context.Background())
			if !errors.Is(err, openbanking.ErrUnavailable) || errors.Is(err, openbanking.ErrStorage) || errors.Is(err, ledger.ErrStorage) {
				t.Errorf("%s = %v, want ErrUnavailable", tc.name, err)
			}
			if !errors.Is(err, ledger.ErrUnavailable) {
				t.Errorf("%s = %v, does not match ledger.ErrUnavailable", tc.name, err)
			}
			err = tc.call(cancelled)
			if errors.Is(err, openbanking.ErrUnavailable) || !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled request = %v, want context.Canceled", tc.name, err)
			}
		})
	}
}
