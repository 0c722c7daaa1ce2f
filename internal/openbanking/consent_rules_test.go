package openbanking_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/obpay/payments/internal/openbanking"
)

// withCompletion adds Data.Authorisation with a CompletionDateTime to req,
// encoded as the handlers encode it.
func withCompletion(req openbanking.PaymentConsentRequest, at time.Time) openbanking.PaymentConsentRequest {
	b, err := json.Marshal(struct {
		AuthorisationType  string
		CompletionDateTime time.Time
	}{"Single", at})
	if err != nil {
		panic(err)
	}
	req.AuthorisationJSON = b
	return req
}

// assertLedgerUntouched checks that no transfer was posted and the ledger
// reconciles.
func (f *fixture) assertLedgerUntouched(transfersBefore int64) {
	f.t.Helper()
	if n := f.count("transfers"); n != transfersBefore {
		f.t.Errorf("%d transfers, want %d: money moved", n, transfersBefore)
	}
	rep, err := f.l.Reconcile(context.Background())
	if err != nil || !rep.Balanced || len(rep.Drift) != 0 {
		f.t.Errorf("Reconcile = %+v, %v, want balanced without drift", rep, err)
	}
}

// TestCompletionDateTimeIsTheAuthorisationDeadline: a consent is authorised
// only before its Data.Authorisation.CompletionDateTime; after it the
// authorisation answers ErrInvalidConsentStatus and changes nothing.
func TestCompletionDateTimeIsTheAuthorisationDeadline(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	cc := openbanking.Caller{ClientID: clientA}
	deadline := f.clock().Add(10 * time.Minute)

	inTime := f.consent(clientA, withCompletion(consentRequest("10.00", "GBP", external), deadline))
	late := f.consent(clientA, withCompletion(consentRequest("10.00", "GBP", external), deadline))
	rejectable := f.consent(clientA, withCompletion(consentRequest("10.00", "GBP", external), deadline))
	lateReq := withCompletion(consentRequest("10.00", "GBP", external), deadline.Add(time.Second))
	replayed, err := f.svc.CreatePaymentConsent(ctx, cc, key("replay-key", []byte("replay body")), lateReq)
	if err != nil {
		t.Fatal(err)
	}
	f.advance(10*time.Minute - time.Microsecond)
	if err := f.svc.AuthoriseConsent(ctx, inTime.ID, "alice", string(alice.ID)); err != nil {
		t.Fatalf("AuthoriseConsent a microsecond before the deadline = %v", err)
	}
	transfers := f.count("transfers")

	f.advance(time.Microsecond) // now == CompletionDateTime
	err = f.svc.AuthoriseConsent(ctx, late.ID, "alice", string(alice.ID))
	wantErr(t, "AuthoriseConsent at the deadline", err, openbanking.ErrInvalidConsentStatus)
	f.advance(time.Hour)
	err = f.svc.AuthoriseConsent(ctx, late.ID, "alice", string(alice.ID))
	wantErr(t, "AuthoriseConsent after the deadline", err, openbanking.ErrInvalidConsentStatus)
	if pc, err := f.svc.PaymentConsent(ctx, cc, late.ID); err != nil || pc.Status != openbanking.StatusAwaitingAuthorisation || pc.PSU != "" {
		t.Errorf("late consent = %s psu %q, %v; want AwaitingAuthorisation, unchanged", pc.Status, pc.PSU, err)
	}
	if err := f.svc.RejectConsent(ctx, rejectable.ID); err != nil {
		t.Errorf("RejectConsent after the deadline = %v, want it still rejectable", err)
	}
	if got := f.balance(alice.ID); got != "100.00" {
		t.Errorf("alice = %s, want 100.00", got)
	}
	f.assertLedgerUntouched(transfers)

	// A replay of a consent created before its deadline returns it, even
	// after the deadline: the check applies to new consents only.
	again, err := f.svc.CreatePaymentConsent(ctx, cc, key("replay-key", []byte("replay body")), lateReq)
	if err != nil || again.ID != replayed.ID {
		t.Errorf("replay after the deadline = %s, %v; want consent %s", again.ID, err, replayed.ID)
	}
	// A consent authorised in time is paid after the deadline: the deadline
	// bounds the authorisation, not the payment.
	psu := openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: inTime.ID}
	req := withCompletion(consentRequest("10.00", "GBP", external), deadline)
	p, err := f.svc.CreatePayment(ctx, psu, key("pay", []byte("p")), paymentFor(inTime, req))
	if err != nil || p.Status != openbanking.PaymentAcceptedSettlementCompleted {
		t.Errorf("CreatePayment after the deadline on a consent authorised in time = %s, %v", p.Status, err)
	}
}

// TestCreditorInAnotherCurrencyLooksUnknown: a consent whose creditor is an
// account of this bank in another currency gets exactly the answer of a
// consent to an unknown account, so that an aggregator cannot tell that the
// account number exists; the authorisation, where the customer is
// authenticated, refuses it and no money moves.
func TestCreditorInAnotherCurrencyLooksUnknown(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	carolEUR := f.open("carol", "EUR", "")
	cc := openbanking.Caller{ClientID: clientA}

	toEUR := consentRequest("10.00", "GBP", refOf(carolEUR))
	unknown := consentRequest("10.00", "GBP", ref{SchemeName: carolEUR.SchemeName, Identification: "04040099999999"})
	pcEUR, errEUR := f.svc.CreatePaymentConsent(ctx, cc, key("k-eur", toEUR.InitiationJSON), toEUR)
	pcUnknown, errUnknown := f.svc.CreatePaymentConsent(ctx, cc, key("k-unknown", unknown.InitiationJSON), unknown)
	if errEUR != nil || errUnknown != nil {
		t.Fatalf("CreatePaymentConsent = %v (account in EUR), %v (unknown account); want both accepted alike", errEUR, errUnknown)
	}
	if pcEUR.Status != pcUnknown.Status || pcEUR.Debtor != nil || pcUnknown.Debtor != nil || pcEUR.Amount != pcUnknown.Amount {
		t.Errorf("consents differ: %+v and %+v", pcEUR, pcUnknown)
	}
	for _, id := range []string{pcEUR.ID, pcUnknown.ID} {
		got, err := f.svc.PaymentConsent(ctx, cc, id)
		if err != nil || got.Status != openbanking.StatusAwaitingAuthorisation {
			t.Errorf("PaymentConsent(%s) = %s, %v", id, got.Status, err)
		}
	}

	transfers := f.count("transfers")
	err := f.svc.AuthoriseConsent(ctx, pcEUR.ID, "alice", string(alice.ID))
	var fe *openbanking.FieldError
	if !errors.Is(err, openbanking.ErrInvalidField) || !errors.As(err, &fe) || fe.Path != "Data.Initiation.CreditorAccount" {
		t.Fatalf("AuthoriseConsent to an account in another currency = %v, want a FieldError on Data.Initiation.CreditorAccount", err)
	}
	if got, err := f.svc.PaymentConsent(ctx, cc, pcEUR.ID); err != nil || got.Status != openbanking.StatusAwaitingAuthorisation {
		t.Errorf("consent after the refused authorisation = %s, %v", got.Status, err)
	}
	_, err = f.svc.CreatePayment(ctx, openbanking.Caller{ClientID: clientA, PSU: "alice", ConsentID: pcEUR.ID},
		key("pay", []byte("p")), paymentFor(pcEUR, toEUR))
	wantErr(t, "CreatePayment on the consent never authorised", err, openbanking.ErrForbidden)
	if a, c := f.balance(alice.ID), f.balance(carolEUR.ID); a != "100.00" || c != "0.00" {
		t.Errorf("balances = alice %s, carol %s; want 100.00 and 0.00", a, c)
	}
	f.assertLedgerUntouched(transfers)
}
