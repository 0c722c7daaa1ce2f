package openbanking_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// versionStore is a Service on one of the two stores, with what the version
// tests read around it.
type versionStore struct {
	name     string
	svc      *openbanking.Service
	open     func(owner string, opening int64) models.Account
	payments func() int64
	balance  func(id models.AccountID) int64
}

// versionStores returns the Service on Postgres and on the in-memory store.
func versionStores(t *testing.T) []versionStore {
	t.Helper()
	f := newFixture(t)
	svc, m := memService(t)
	return []versionStore{
		{
			name: "postgres", svc: f.svc,
			open: func(owner string, opening int64) models.Account {
				s := ""
				if opening > 0 {
					s = models.Amount{Minor: opening, Currency: "GBP"}.Format()
				}
				return f.open(owner, "GBP", s)
			},
			payments: func() int64 { return f.count("payments") },
			balance: func(id models.AccountID) int64 {
				b, err := f.l.Balance(context.Background(), id)
				if err != nil {
					t.Fatalf("Balance(%s) = %v", id, err)
				}
				return b.Minor
			},
		},
		{
			name: "memory", svc: svc,
			open: func(owner string, opening int64) models.Account {
				p := ledger.OpenAccountParams{Owner: owner, Currency: "GBP"}
				if opening > 0 {
					p.Opening = &models.Amount{Minor: opening, Currency: "GBP"}
				}
				a, err := m.OpenAccount(context.Background(), p)
				if err != nil {
					t.Fatalf("OpenAccount = %v", err)
				}
				return a
			},
			payments: func() int64 {
				m.mu.Lock()
				defer m.mu.Unlock()
				return int64(len(m.payments))
			},
			balance: func(id models.AccountID) int64 {
				a, err := m.Account(context.Background(), id)
				if err != nil {
					t.Fatalf("Account(%s) = %v", id, err)
				}
				return a.Balance.Minor
			},
		},
	}
}

func TestVersionIsStoredAndReadBack(t *testing.T) {
	ctx := context.Background()
	for _, s := range versionStores(t) {
		for _, v := range []openbanking.APIVersion{openbanking.V3_1, openbanking.V4_0} {
			t.Run(s.name+" v"+string(v), func(t *testing.T) {
				alice, bob := s.open("alice-"+string(v), 10000), s.open("bob-"+string(v), 0)
				client := openbanking.Caller{ClientID: clientA}
				req := consentRequest("10.00", "GBP", refOf(bob))
				req.Version = v
				pc, err := s.svc.CreatePaymentConsent(ctx, client, key(freshKey(), req.InitiationJSON), req)
				if err != nil || pc.Version != v {
					t.Fatalf("CreatePaymentConsent = %q, %v, want version %q", pc.Version, err, v)
				}
				if got, err := s.svc.PaymentConsent(ctx, client, pc.ID); err != nil || got.Version != v {
					t.Fatalf("PaymentConsent = %q, %v, want version %q", got.Version, err, v)
				}
				if err := s.svc.AuthoriseConsent(ctx, pc.ID, alice.Owner, string(alice.ID)); err != nil {
					t.Fatalf("AuthoriseConsent = %v", err)
				}
				psu := openbanking.Caller{ClientID: clientA, PSU: alice.Owner, ConsentID: pc.ID}
				p, err := s.svc.CreatePayment(ctx, psu, key(freshKey(), req.InitiationJSON), paymentFor(pc, req))
				if err != nil || p.Version != v {
					t.Fatalf("CreatePayment = %q, %v, want version %q", p.Version, err, v)
				}
				if got, err := s.svc.Payment(ctx, client, p.ID); err != nil || got.Version != v {
					t.Fatalf("Payment = %q, %v, want version %q", got.Version, err, v)
				}

				ac, err := s.svc.CreateAccountAccessConsent(ctx, client, openbanking.AccountAccessRequest{
					Version: v, Permissions: []openbanking.Permission{openbanking.ReadBalances}})
				if err != nil || ac.Version != v {
					t.Fatalf("CreateAccountAccessConsent = %q, %v, want version %q", ac.Version, err, v)
				}
				if got, err := s.svc.AccountAccessConsent(ctx, client, ac.ID); err != nil || got.Version != v {
					t.Fatalf("AccountAccessConsent = %q, %v, want version %q", got.Version, err, v)
				}
				// An account access consent and its PSU token serve on every
				// version: nothing about a read names one.
				if err := s.svc.AuthoriseConsent(ctx, ac.ID, alice.Owner, ""); err != nil {
					t.Fatalf("AuthoriseConsent(access) = %v", err)
				}
				if _, _, err := s.svc.Balance(ctx, openbanking.Caller{ClientID: clientA, PSU: alice.Owner, ConsentID: ac.ID}, string(alice.ID)); err != nil {
					t.Fatalf("Balance = %v", err)
				}
			})
		}
	}
}

func TestPaymentOnAnotherVersionIsRefused(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name         string
		consent, pay openbanking.APIVersion
	}{
		{"v3.1 consent paid on v4.0", openbanking.V3_1, openbanking.V4_0},
		{"v4.0 consent paid on v3.1", openbanking.V4_0, openbanking.V3_1},
	}
	for _, s := range versionStores(t) {
		for _, tc := range tests {
			t.Run(s.name+" "+tc.name, func(t *testing.T) {
				alice, bob := s.open("alice", 10000), s.open("bob", 0)
				req := consentRequest("10.00", "GBP", refOf(bob))
				req.Version = tc.consent
				pc, err := s.svc.CreatePaymentConsent(ctx, openbanking.Caller{ClientID: clientA}, key(freshKey(), req.InitiationJSON), req)
				if err != nil {
					t.Fatalf("CreatePaymentConsent = %v", err)
				}
				if err := s.svc.AuthoriseConsent(ctx, pc.ID, alice.Owner, string(alice.ID)); err != nil {
					t.Fatalf("AuthoriseConsent = %v", err)
				}
				psu := openbanking.Caller{ClientID: clientA, PSU: alice.Owner, ConsentID: pc.ID}
				before := s.payments()
				payKey := key(freshKey(), req.InitiationJSON)

				wrong := paymentFor(pc, req)
				wrong.Version = tc.pay
				_, err = s.svc.CreatePayment(ctx, psu, payKey, wrong)
				if !errors.Is(err, openbanking.ErrInvalidConsentStatus) || !errors.Is(err, openbanking.ErrOtherVersion) {
					t.Fatalf("CreatePayment(v%s) = %v, want ErrOtherVersion (an ErrInvalidConsentStatus)", tc.pay, err)
				}
				if n := s.payments(); n != before {
					t.Fatalf("payments after the refusal = %d, want %d", n, before)
				}
				if a, b := s.balance(alice.ID), s.balance(bob.ID); a != 10000 || b != 0 {
					t.Fatalf("balances after the refusal = %d, %d, want 10000, 0", a, b)
				}
				got, err := s.svc.PaymentConsent(ctx, openbanking.Caller{ClientID: clientA}, pc.ID)
				if err != nil || got.Status != openbanking.StatusAuthorised {
					t.Fatalf("consent after the refusal = %s, %v, want Authorised", got.Status, err)
				}

				// The key was not consumed: the same key and body pay on the
				// consent's own version.
				p, err := s.svc.CreatePayment(ctx, psu, payKey, paymentFor(pc, req))
				if err != nil || p.Status != openbanking.PaymentAcceptedCreditSettlementCompleted || p.Version != tc.consent {
					t.Fatalf("CreatePayment(v%s) = %s %q, %v, want AcceptedCreditSettlementCompleted on v%s", tc.consent, p.Status, p.Version, err, tc.consent)
				}
				if b := s.balance(bob.ID); b != 1000 {
					t.Fatalf("creditor balance = %d, want 1000", b)
				}
			})
		}
	}
}

func TestCreateRequestsNeedAVersion(t *testing.T) {
	ctx := context.Background()
	svc, m := memService(t)
	bob := m.newAccount("bob", "GBP", models.KindCustomer, 0)
	client := openbanking.Caller{ClientID: clientA}
	req := consentRequest("10.00", "GBP", refOf(bob))
	tests := []struct {
		name    string
		version openbanking.APIVersion
		call    func(v openbanking.APIVersion) error
	}{
		{"payment consent", "", func(v openbanking.APIVersion) error {
			r := req
			r.Version = v
			_, err := svc.CreatePaymentConsent(ctx, client, key(freshKey(), r.InitiationJSON), r)
			return err
		}},
		{"payment consent on an unknown version", "3.0", func(v openbanking.APIVersion) error {
			r := req
			r.Version = v
			_, err := svc.CreatePaymentConsent(ctx, client, key(freshKey(), r.InitiationJSON), r)
			return err
		}},
		{"account access consent", "", func(v openbanking.APIVersion) error {
			_, err := svc.CreateAccountAccessConsent(ctx, client, openbanking.AccountAccessRequest{
				Version: v, Permissions: []openbanking.Permission{openbanking.ReadBalances}})
			return err
		}},
		{"payment", "", func(v openbanking.APIVersion) error {
			_, err := svc.CreatePayment(ctx, openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: "c"},
				key(freshKey(), req.InitiationJSON), openbanking.PaymentRequest{Version: v, ConsentID: "c"})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(tc.version), openbanking.ErrUnsupportedVersion)
		})
	}
	if n := len(m.consents); n != 0 {
		t.Fatalf("consents after refusals = %d, want 0", n)
	}
}

// TestIdempotencyKeysAreScopedToTheVersion checks that a key used on one
// version is new on the other: the same key and body create a consent of
// each version, and a key of a v3.1 payment sent again on v4.0 replays
// nothing (the consent is of the other version).
func TestIdempotencyKeysAreScopedToTheVersion(t *testing.T) {
	ctx := context.Background()
	for _, s := range versionStores(t) {
		t.Run(s.name, func(t *testing.T) {
			alice, bob := s.open("alice", 10000), s.open("bob", 0)
			client := openbanking.Caller{ClientID: clientA}
			req := consentRequest("10.00", "GBP", refOf(bob))
			consentKey := key(freshKey(), req.InitiationJSON)
			v3, err := s.svc.CreatePaymentConsent(ctx, client, consentKey, req)
			if err != nil {
				t.Fatal(err)
			}
			req4 := req
			req4.Version = openbanking.V4_0
			v4, err := s.svc.CreatePaymentConsent(ctx, client, consentKey, req4)
			if err != nil || v4.ID == v3.ID || v4.Version != openbanking.V4_0 {
				t.Fatalf("CreatePaymentConsent(v4.0, same key) = %s %q, %v, want a new v4.0 consent (v3.1's is %s)", v4.ID, v4.Version, err, v3.ID)
			}

			if err := s.svc.AuthoriseConsent(ctx, v3.ID, alice.Owner, string(alice.ID)); err != nil {
				t.Fatal(err)
			}
			psu := openbanking.Caller{ClientID: clientA, PSU: alice.Owner, ConsentID: v3.ID}
			payKey := key(freshKey(), req.InitiationJSON)
			if _, err := s.svc.CreatePayment(ctx, psu, payKey, paymentFor(v3, req)); err != nil {
				t.Fatal(err)
			}
			before := s.payments()
			again := paymentFor(v3, req)
			again.Version = openbanking.V4_0
			_, err = s.svc.CreatePayment(ctx, psu, payKey, again)
			wantErr(t, "CreatePayment(v4.0, the key of a v3.1 payment)", err, openbanking.ErrOtherVersion)
			if n := s.payments(); n != before {
				t.Fatalf("payments = %d, want %d", n, before)
			}
		})
	}
}

// TestPreviousReleaseCallsPayV3_1 calls ob_create_payment as the release
// before migration 00006 did, without a version, as its nodes do while a
// deployment replaces them: a v3.1 consent is paid, a v4.0 one refused with
// OB006 (openbanking.ErrOtherVersion), nothing written.
func TestPreviousReleaseCallsPayV3_1(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice, bob := f.open("alice", "GBP", "100.00"), f.open("bob", "GBP", "")
	oldCall := func(pc openbanking.PaymentConsent, req openbanking.PaymentConsentRequest) (string, error) {
		var status string
		now := f.clock()
		err := f.db.WithContext(ctx).Raw(`SELECT o_status FROM ob_create_payment(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			uuid.NewString(), clientA, "alice", pc.ID, "domestic-payments", freshKey(), make([]byte, 32), now.Add(time.Hour),
			string(req.InitiationJSON), string(req.RiskJSON), now, uuid.NewString(), now).Row().Scan(&status)
		return status, err
	}
	tests := []struct {
		name    string
		version openbanking.APIVersion
		want    string
		sqlcode string
	}{
		{"v3.1 consent is paid", openbanking.V3_1, string(openbanking.PaymentAcceptedCreditSettlementCompleted), ""},
		{"v4.0 consent is refused", openbanking.V4_0, "", "OB006"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := consentRequest("10.00", "GBP", refOf(bob))
			req.Version = tc.version
			pc, _ := f.authorised(clientA, "alice", alice, req)
			before := f.count("payments")
			status, err := oldCall(pc, req)
			var pg *pgconn.PgError
			switch {
			case tc.sqlcode == "" && (err != nil || status != tc.want):
				t.Fatalf("ob_create_payment(13 arguments) = %q, %v, want %s", status, err, tc.want)
			case tc.sqlcode != "" && (!errors.As(err, &pg) || pg.Code != tc.sqlcode):
				t.Fatalf("ob_create_payment(13 arguments) = %q, %v, want SQLSTATE %s", status, err, tc.sqlcode)
			case tc.sqlcode != "" && f.count("payments") != before:
				t.Fatalf("payments after the refusal = %d, want %d", f.count("payments"), before)
			}
		})
	}
}
