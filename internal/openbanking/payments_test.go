package openbanking_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/openbanking"
)

func TestPaymentSettlesInternallyAndExternally(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	bob := f.open("bob", "GBP", "")
	tests := []struct {
		name       string
		creditor   ref
		wantStatus openbanking.PaymentStatus
		wantBob    string
	}{
		{"internal creditor", refOf(bob), openbanking.PaymentAcceptedCreditSettlementCompleted, "10.00"},
		{"external creditor through settlement", external, openbanking.PaymentAcceptedSettlementCompleted, "10.00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := consentRequest("10.00", "GBP", tc.creditor)
			pc, psu := f.authorised(clientA, "alice", alice, req)
			p, err := f.svc.CreatePayment(ctx, psu, key(freshKey(), req.InitiationJSON), paymentFor(pc, req))
			if err != nil {
				t.Fatalf("CreatePayment = %v", err)
			}
			if p.Status != tc.wantStatus || p.ConsentID != pc.ID || p.Debtor == nil || p.Debtor.Identification != alice.Identification {
				t.Fatalf("CreatePayment = %+v, want status %s, consent %s, debtor %s", p, tc.wantStatus, pc.ID, alice.Identification)
			}
			if got := f.balance(bob.ID); got != tc.wantBob {
				t.Errorf("bob's balance = %s, want %s", got, tc.wantBob)
			}
			got, err := f.svc.PaymentConsent(ctx, openbanking.Caller{ClientID: clientA}, pc.ID)
			if err != nil || got.Status != openbanking.StatusConsumed {
				t.Errorf("PaymentConsent = %+v, %v, want Consumed", got.Status, err)
			}
			read, err := f.svc.Payment(ctx, psu, p.ID)
			if err != nil || read.Status != p.Status || string(read.InitiationJSON) != string(req.InitiationJSON) {
				t.Errorf("Payment = %+v, %v, want %+v", read, err, p)
			}
		})
	}
	if got := f.balance(alice.ID); got != "80.00" {
		t.Errorf("alice's balance = %s, want 80.00", got)
	}
	rep, err := f.l.Reconcile(ctx)
	if err != nil || !rep.Balanced || len(rep.Drift) != 0 {
		t.Errorf("Reconcile = %+v, %v, want balanced", rep, err)
	}
}

func TestInsufficientFundsRejectsAndConsumes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "5.00")
	req := consentRequest("10.00", "GBP", external)
	pc, psu := f.authorised(clientA, "alice", alice, req)
	transfers := f.count("transfers")

	p, err := f.svc.CreatePayment(ctx, psu, key("k1", req.InitiationJSON), paymentFor(pc, req))
	if err != nil || p.Status != openbanking.PaymentRejected {
		t.Fatalf("CreatePayment = %+v, %v, want Rejected", p, err)
	}
	if got := f.balance(alice.ID); got != "5.00" {
		t.Errorf("balance = %s, want 5.00", got)
	}
	if got := f.count("transfers"); got != transfers {
		t.Errorf("transfers = %d, want %d (no postings)", got, transfers)
	}
	c, _ := f.svc.PaymentConsent(ctx, psu, pc.ID)
	if c.Status != openbanking.StatusConsumed {
		t.Errorf("consent status = %s, want Consumed", c.Status)
	}
	// The replay returns the same Rejected payment and never flips it.
	again, err := f.svc.CreatePayment(ctx, psu, key("k1", req.InitiationJSON), paymentFor(pc, req))
	if err != nil || again.ID != p.ID || again.Status != openbanking.PaymentRejected {
		t.Errorf("replay = %+v, %v, want %s Rejected", again, err, p.ID)
	}
}

func TestCreatePaymentErrorsMoveNoMoney(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	f.open("mallory", "GBP", "100.00")
	req := consentRequest("10.00", "GBP", external)
	other := consentRequest("10.01", "GBP", external)

	tests := []struct {
		name  string
		setup func() (openbanking.Caller, openbanking.PaymentRequest)
		want  error
	}{
		{"client-credentials token", func() (openbanking.Caller, openbanking.PaymentRequest) {
			pc, _ := f.authorised(clientA, "alice", alice, req)
			return openbanking.Caller{ClientID: clientA}, paymentFor(pc, req)
		}, openbanking.ErrForbidden},
		{"PSU token for another consent", func() (openbanking.Caller, openbanking.PaymentRequest) {
			pc, _ := f.authorised(clientA, "alice", alice, req)
			_, psu := f.authorised(clientA, "alice", alice, req)
			return psu, paymentFor(pc, req)
		}, openbanking.ErrForbidden},
		{"another client's consent", func() (openbanking.Caller, openbanking.PaymentRequest) {
			pc, psu := f.authorised(clientA, "alice", alice, req)
			psu.ClientID = clientB
			return psu, paymentFor(pc, req)
		}, openbanking.ErrForbidden},
		{"another PSU", func() (openbanking.Caller, openbanking.PaymentRequest) {
			pc, psu := f.authorised(clientA, "alice", alice, req)
			psu.PSU = "mallory"
			return psu, paymentFor(pc, req)
		}, openbanking.ErrForbidden},
		{"unknown consent", func() (openbanking.Caller, openbanking.PaymentRequest) {
			id := "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a"
			return openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: id},
				openbanking.PaymentRequest{Version: openbanking.V3_1, ConsentID: id, InitiationJSON: req.InitiationJSON, RiskJSON: req.RiskJSON}
		}, openbanking.ErrNotFound},
		{"consent not authorised", func() (openbanking.Caller, openbanking.PaymentRequest) {
			pc := f.consent(clientA, req)
			return openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: pc.ID}, paymentFor(pc, req)
		}, openbanking.ErrForbidden}, // no PSU is bound to it yet
		{"rejected consent", func() (openbanking.Caller, openbanking.PaymentRequest) {
			pc := f.consent(clientA, req)
			if err := f.svc.RejectConsent(ctx, pc.ID); err != nil {
				t.Fatal(err)
			}
			return openbanking.Caller{ClientID: clientA, PSU: "", ConsentID: pc.ID}, paymentFor(pc, req)
		}, openbanking.ErrForbidden},
		{"initiation differs from the consent", func() (openbanking.Caller, openbanking.PaymentRequest) {
			pc, psu := f.authorised(clientA, "alice", alice, req)
			return psu, openbanking.PaymentRequest{Version: openbanking.V3_1, ConsentID: pc.ID, InitiationJSON: other.InitiationJSON, RiskJSON: req.RiskJSON}
		}, openbanking.ErrConsentMismatch},
		{"risk differs from the consent", func() (openbanking.Caller, openbanking.PaymentRequest) {
			pc, psu := f.authorised(clientA, "alice", alice, req)
			return psu, openbanking.PaymentRequest{Version: openbanking.V3_1, ConsentID: pc.ID, InitiationJSON: req.InitiationJSON, RiskJSON: []byte(`{"PaymentContextCode":"Other"}`)}
		}, openbanking.ErrConsentMismatch},
		{"posting refused by the ledger", func() (openbanking.Caller, openbanking.PaymentRequest) {
			// A consent whose stored currency no longer matches its accounts
			// (only direct SQL can do this): the payment function's posting
			// refuses it, and the ledger's error comes back with nothing
			// written, not even the idempotency record.
			pc, psu := f.authorised(clientA, "alice", alice, req)
			if err := f.db.Exec(`UPDATE consents SET currency = 'EUR' WHERE id = ?`, pc.ID).Error; err != nil {
				t.Fatal(err)
			}
			return psu, paymentFor(pc, req)
		}, ledger.ErrCurrencyMismatch},
		{"consumed consent", func() (openbanking.Caller, openbanking.PaymentRequest) {
			pc, psu := f.authorised(clientA, "alice", alice, req)
			if _, err := f.svc.CreatePayment(ctx, psu, key(freshKey(), nil), paymentFor(pc, req)); err != nil {
				t.Fatal(err)
			}
			return psu, paymentFor(pc, req)
		}, openbanking.ErrInvalidConsentStatus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			caller, pr := tc.setup()
			before, payments, keys := f.balance(alice.ID), f.count("payments"), f.count("idempotency_keys")
			_, err := f.svc.CreatePayment(ctx, caller, key(freshKey(), pr.InitiationJSON), pr)
			wantErr(t, "CreatePayment", err, tc.want)
			if got := f.balance(alice.ID); got != before {
				t.Errorf("alice's balance = %s, want %s", got, before)
			}
			if f.count("payments") != payments || f.count("idempotency_keys") != keys {
				t.Errorf("a payment or idempotency record was written")
			}
		})
	}
}

func TestPaymentIdempotency(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	req := consentRequest("10.00", "GBP", external)
	pc, psu := f.authorised(clientA, "alice", alice, req)
	body := []byte(`{"the":"raw body"}`)
	first, err := f.svc.CreatePayment(ctx, psu, key("same", body), paymentFor(pc, req))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("same key and body returns the first payment", func(t *testing.T) {
		got, err := f.svc.CreatePayment(ctx, psu, key("same", body), paymentFor(pc, req))
		if err != nil || got.ID != first.ID || got.Status != first.Status {
			t.Fatalf("CreatePayment = %+v, %v, want payment %s", got, err, first.ID)
		}
		if b := f.balance(alice.ID); b != "90.00" {
			t.Errorf("balance = %s, want 90.00 (one debit)", b)
		}
	})
	t.Run("same key with another body conflicts", func(t *testing.T) {
		keys := f.count("idempotency_keys")
		_, err := f.svc.CreatePayment(ctx, psu, key("same", []byte(`{"other":1}`)), paymentFor(pc, req))
		wantErr(t, "CreatePayment", err, openbanking.ErrIdempotencyConflict)
		if f.count("idempotency_keys") != keys {
			t.Errorf("idempotency record written")
		}
	})
	t.Run("key longer than 40 characters", func(t *testing.T) {
		_, err := f.svc.CreatePayment(ctx, psu, key("0123456789012345678901234567890123456789x", body), paymentFor(pc, req))
		var fe *openbanking.FieldError
		if !errors.As(err, &fe) || fe.Path != "x-idempotency-key" {
			t.Fatalf("CreatePayment = %v, want a FieldError on x-idempotency-key", err)
		}
	})
	t.Run("expired key is a new request", func(t *testing.T) {
		f.advance(24*time.Hour + time.Second)
		_, err := f.svc.CreatePayment(ctx, psu, key("same", body), paymentFor(pc, req))
		wantErr(t, "CreatePayment after expiry", err, openbanking.ErrInvalidConsentStatus)
	})
}

// TestCustomerCallsNameTheTokenKind: a client-credentials token on a call
// that acts for a customer gets ErrCustomerTokenRequired (an ErrForbidden),
// so that the answer can say which token is needed; a customer's token for
// another consent still gets the plain ErrForbidden.
func TestCustomerCallsNameTheTokenKind(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	bob := f.open("bob", "GBP", "")
	req := consentRequest("10.00", "GBP", refOf(bob))
	pc, _ := f.authorised("tpp-a", "alice", alice, req)
	_, psuOther := f.authorised("tpp-a", "alice", alice, req)
	tpp := openbanking.Caller{ClientID: "tpp-a"}
	calls := map[string]func(openbanking.Caller) error{
		"CreatePayment": func(c openbanking.Caller) error {
			_, err := f.svc.CreatePayment(ctx, c, key(freshKey(), req.InitiationJSON), paymentFor(pc, req))
			return err
		},
		"FundsConfirmation": func(c openbanking.Caller) error {
			_, err := f.svc.FundsConfirmation(ctx, c, pc.ID)
			return err
		},
		"Accounts": func(c openbanking.Caller) error { _, _, err := f.svc.Accounts(ctx, c); return err },
		"Account":  func(c openbanking.Caller) error { _, _, err := f.svc.Account(ctx, c, string(alice.ID)); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call(tpp)
			if !errors.Is(err, openbanking.ErrCustomerTokenRequired) || !errors.Is(err, openbanking.ErrForbidden) {
				t.Errorf("with a client-credentials token = %v, want ErrCustomerTokenRequired (an ErrForbidden)", err)
			}
			if name == "Accounts" || name == "Account" {
				return // psuOther is a payment consent's token: no account access
			}
			err = call(psuOther)
			if !errors.Is(err, openbanking.ErrForbidden) || errors.Is(err, openbanking.ErrCustomerTokenRequired) {
				t.Errorf("with the customer's token for another consent = %v, want ErrForbidden only", err)
			}
		})
	}
	if n := f.count("payments"); n != 0 {
		t.Errorf("%d payments written", n)
	}
}
