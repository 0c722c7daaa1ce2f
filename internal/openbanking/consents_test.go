package openbanking_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/openbanking"
)

func TestPaymentConsentLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	req := consentRequest("10.00", "GBP", external)
	cc := openbanking.Caller{ClientID: clientA}

	status := func(id string) openbanking.ConsentStatus {
		pc, err := f.svc.PaymentConsent(ctx, cc, id)
		if err != nil {
			t.Fatalf("PaymentConsent = %v", err)
		}
		return pc.Status
	}
	pc := f.consent(clientA, req)
	if pc.Status != openbanking.StatusAwaitingAuthorisation || string(pc.InitiationJSON) != string(req.InitiationJSON) {
		t.Fatalf("new consent = %+v", pc)
	}
	if err := f.svc.AuthoriseConsent(ctx, pc.ID, "alice", string(alice.ID)); err != nil {
		t.Fatal(err)
	}
	if s := status(pc.ID); s != openbanking.StatusAuthorised {
		t.Fatalf("status = %s, want Authorised", s)
	}
	// Nothing leaves Authorised except a payment; nothing leaves Consumed.
	wantErr(t, "authorise twice", f.svc.AuthoriseConsent(ctx, pc.ID, "alice", string(alice.ID)), openbanking.ErrInvalidConsentStatus)
	wantErr(t, "reject authorised", f.svc.RejectConsent(ctx, pc.ID), openbanking.ErrInvalidConsentStatus)
	psu := openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: pc.ID}
	if _, err := f.svc.CreatePayment(ctx, psu, key("k", nil), paymentFor(pc, req)); err != nil {
		t.Fatal(err)
	}
	if s := status(pc.ID); s != openbanking.StatusConsumed {
		t.Fatalf("status = %s, want Consumed", s)
	}
	wantErr(t, "reject consumed", f.svc.RejectConsent(ctx, pc.ID), openbanking.ErrInvalidConsentStatus)
	// The schema refuses it too.
	if err := f.db.Exec(`UPDATE consents SET status = 'Authorised' WHERE id = ?`, pc.ID).Error; err == nil {
		t.Errorf("the schema let a Consumed consent become Authorised")
	}

	rejected := f.consent(clientA, req)
	if err := f.svc.RejectConsent(ctx, rejected.ID); err != nil {
		t.Fatal(err)
	}
	if s := status(rejected.ID); s != openbanking.StatusRejected {
		t.Fatalf("status = %s, want Rejected", s)
	}
	wantErr(t, "authorise rejected", f.svc.AuthoriseConsent(ctx, rejected.ID, "alice", string(alice.ID)), openbanking.ErrInvalidConsentStatus)

	client, kind, st, err := f.svc.ConsentClient(ctx, pc.ID)
	if err != nil || client != clientA || kind != string(openbanking.KindPayment) || st != string(openbanking.StatusConsumed) {
		t.Errorf("ConsentClient = %q, %q, %q, %v", client, kind, st, err)
	}
}

func TestAuthoriseRefusesBadDebtors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	aliceEUR := f.open("alice", "EUR", "100.00")
	bob := f.open("bob", "GBP", "100.00")
	toBob := consentRequest("10.00", "GBP", refOf(bob))
	var named initiation
	named.InstructionIdentification, named.EndToEndIdentification = "i", "e"
	named.InstructedAmount.Amount, named.InstructedAmount.Currency = "1.00", "GBP"
	named.CreditorAccount, named.DebtorAccount = external, &ref{SchemeName: bob.SchemeName, Identification: bob.Identification}

	tests := []struct {
		name      string
		consentID func() string
		psu       string
		debtor    string
		want      error
		wantPath  string
	}{
		{"unknown consent", func() string { return "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a" }, "alice", string(alice.ID), openbanking.ErrNotFound, ""},
		{"malformed consent id", func() string { return "nope" }, "alice", string(alice.ID), openbanking.ErrNotFound, ""},
		{"account of another PSU", func() string { return f.consent(clientA, toBob).ID }, "mallory", string(alice.ID), openbanking.ErrNotPSUAccount, "DebtorAccount"},
		{"unknown account", func() string { return f.consent(clientA, toBob).ID }, "alice", "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a", openbanking.ErrUnknownAccount, "DebtorAccount"},
		{"missing debtor account", func() string { return f.consent(clientA, toBob).ID }, "alice", "", openbanking.ErrInvalidField, "DebtorAccount"},
		{"account in another currency", func() string { return f.consent(clientA, toBob).ID }, "alice", string(aliceEUR.ID), openbanking.ErrAccountCurrency, "DebtorAccount"},
		{"debtor is the creditor", func() string { return f.consent(clientA, toBob).ID }, "bob", string(bob.ID), openbanking.ErrInvalidField, "DebtorAccount"},
		{"not the Initiation's DebtorAccount", func() string { return f.consent(clientA, requestFor(named)).ID }, "alice", string(alice.ID), openbanking.ErrInvalidField, "DebtorAccount"},
		{"empty PSU", func() string { return f.consent(clientA, toBob).ID }, "", string(alice.ID), openbanking.ErrInvalidField, "Psu"},
		{"PSU with NUL", func() string { return f.consent(clientA, toBob).ID }, "alice\x00", string(alice.ID), openbanking.ErrInvalidField, "Psu"},
		{"PSU longer than MaxPSULen", func() string { return f.consent(clientA, toBob).ID }, strings.Repeat("é", openbanking.MaxPSULen+1), string(alice.ID), openbanking.ErrInvalidField, "Psu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.consentID()
			err := f.svc.AuthoriseConsent(ctx, id, tc.psu, tc.debtor)
			wantErr(t, "AuthoriseConsent", err, tc.want)
			var fe *openbanking.FieldError
			if tc.wantPath != "" && (!errors.As(err, &fe) || fe.Path != tc.wantPath) {
				t.Errorf("AuthoriseConsent = %v, want a FieldError on %s", err, tc.wantPath)
			}
			if pc, err := f.svc.PaymentConsent(ctx, openbanking.Caller{ClientID: clientA}, id); err == nil && pc.Status != openbanking.StatusAwaitingAuthorisation {
				t.Errorf("status = %s after a refused authorisation", pc.Status)
			}
		})
	}
	// Named debtor that matches is accepted.
	pc := f.consent(clientA, requestFor(named))
	if err := f.svc.AuthoriseConsent(ctx, pc.ID, "bob", string(bob.ID)); err != nil {
		t.Errorf("AuthoriseConsent with the named debtor = %v", err)
	}
}

func TestCreatePaymentConsentRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tests := []struct {
		name     string
		req      openbanking.PaymentConsentRequest
		key      string
		want     error
		wantPath string
	}{
		{"more decimals than the currency", consentRequest("1.001", "GBP", external), "k", openbanking.ErrInvalidField, "Data.Initiation.InstructedAmount.Amount"},
		{"zero amount", consentRequest("0.00", "GBP", external), "k", openbanking.ErrInvalidField, "Data.Initiation.InstructedAmount.Amount"},
		{"unknown currency", consentRequest("1.00", "XXX", external), "k", openbanking.ErrUnsupportedCurrency, "Data.Initiation.InstructedAmount.Currency"},
		{"CompletionDateTime in the past", withCompletion(consentRequest("1.00", "GBP", external), f.clock().Add(-time.Second)), "k", openbanking.ErrInvalidField, "Data.Authorisation.CompletionDateTime"},
		{"CompletionDateTime now", withCompletion(consentRequest("1.00", "GBP", external), f.clock()), "k", openbanking.ErrInvalidField, "Data.Authorisation.CompletionDateTime"},
		{"empty idempotency key", consentRequest("1.00", "GBP", external), "", openbanking.ErrInvalidField, "x-idempotency-key"},
		{"reference with NUL", withReference(consentRequest("1.00", "GBP", external), "e2e\x00"), "k", openbanking.ErrInvalidField, "Data.Initiation.RemittanceInformation"},
		{"reference longer than MaxReferenceLen", withReference(consentRequest("1.00", "GBP", external), strings.Repeat("é", ledger.MaxReferenceLen+1)), "k", openbanking.ErrInvalidField, "Data.Initiation.RemittanceInformation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.CreatePaymentConsent(ctx, openbanking.Caller{ClientID: clientA}, key(tc.key, tc.req.InitiationJSON), tc.req)
			wantErr(t, "CreatePaymentConsent", err, tc.want)
			var fe *openbanking.FieldError
			if !errors.As(err, &fe) || fe.Path != tc.wantPath {
				t.Errorf("CreatePaymentConsent = %v, want a FieldError on %s", err, tc.wantPath)
			}
			if n := f.count("consents") + f.count("idempotency_keys"); n != 0 {
				t.Errorf("%d rows written", n)
			}
		})
	}
}

func TestConsentIdempotencyAndIsolation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	req := consentRequest("1.00", "GBP", external)
	a := openbanking.Caller{ClientID: clientA}
	b := openbanking.Caller{ClientID: clientB}
	first, err := f.svc.CreatePaymentConsent(ctx, a, key("k", []byte("body")), req)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RejectConsent(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	again, err := f.svc.CreatePaymentConsent(ctx, a, key("k", []byte("body")), req)
	if err != nil || again.ID != first.ID || again.Status != openbanking.StatusRejected {
		t.Errorf("replay = %s %s, %v, want %s in its current status Rejected", again.ID, again.Status, err, first.ID)
	}
	_, err = f.svc.CreatePaymentConsent(ctx, a, key("k", []byte("other body")), req)
	wantErr(t, "same key, other body", err, openbanking.ErrIdempotencyConflict)
	other, err := f.svc.CreatePaymentConsent(ctx, b, key("k", []byte("body")), req)
	if err != nil || other.ID == first.ID {
		t.Errorf("another client's key = %s, %v, want a new consent", other.ID, err)
	}
	_, err = f.svc.PaymentConsent(ctx, b, first.ID)
	wantErr(t, "another client reads the consent", err, openbanking.ErrForbidden)
	_, err = f.svc.PaymentConsent(ctx, openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: other.ID}, first.ID)
	wantErr(t, "PSU token of another consent reads it", err, openbanking.ErrForbidden)
	_, err = f.svc.PaymentConsent(ctx, a, "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a")
	wantErr(t, "unknown consent", err, openbanking.ErrNotFound)
}

func TestFundsConfirmation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "20.00")
	small, smallPSU := f.authorised(clientA, "alice", alice, consentRequest("20.00", "GBP", external))
	big, bigPSU := f.authorised(clientA, "alice", alice, consentRequest("20.01", "GBP", external))
	waiting := f.consent(clientA, consentRequest("1.00", "GBP", external))

	tests := []struct {
		name   string
		caller openbanking.Caller
		id     string
		want   bool
		err    error
	}{
		{"funds available", smallPSU, small.ID, true, nil},
		{"funds short by a penny", bigPSU, big.ID, false, nil},
		{"client-credentials token", openbanking.Caller{ClientID: clientA}, small.ID, false, openbanking.ErrForbidden},
		{"PSU token of another consent", bigPSU, small.ID, false, openbanking.ErrForbidden},
		{"another client", openbanking.Caller{ClientID: clientB, PSU: "alice", ConsentID: small.ID}, small.ID, false, openbanking.ErrForbidden},
		{"not authorised", openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: waiting.ID}, waiting.ID, false, openbanking.ErrForbidden},
		{"unknown", smallPSU, "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a", false, openbanking.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.svc.FundsConfirmation(ctx, tc.caller, tc.id)
			wantErr(t, "FundsConfirmation", err, tc.err)
			if err == nil && got.Available != tc.want {
				t.Errorf("Available = %v, want %v", got.Available, tc.want)
			}
		})
	}
	if _, err := f.svc.CreatePayment(ctx, smallPSU, key("k", nil), paymentFor(small, consentRequest("20.00", "GBP", external))); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.FundsConfirmation(ctx, smallPSU, small.ID)
	wantErr(t, "FundsConfirmation on a Consumed consent", err, openbanking.ErrInvalidConsentStatus)
}

// withReference is req with Initiation.Reference set to r.
func withReference(req openbanking.PaymentConsentRequest, r string) openbanking.PaymentConsentRequest {
	req.Initiation.Reference = r
	return req
}
