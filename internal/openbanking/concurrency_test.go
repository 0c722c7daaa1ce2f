package openbanking_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/obpay/payments/internal/openbanking"
)

// run calls fn n times at once and returns the results in call order.
func run[T any](n int, fn func(i int) (T, error)) ([]T, []error) {
	out, errs := make([]T, n), make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return out, errs
}

func TestConcurrentDuplicatePaymentsMakeOnePayment(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	req := consentRequest("30.00", "GBP", external)
	pc, psu := f.authorised(clientA, "alice", alice, req)
	k := key("dup-key", req.InitiationJSON)

	payments, errs := run(50, func(int) (openbanking.Payment, error) {
		return f.svc.CreatePayment(ctx, psu, k, paymentFor(pc, req))
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: CreatePayment = %v", i, err)
		}
		if payments[i].ID != payments[0].ID || payments[i].Status != openbanking.PaymentAcceptedSettlementCompleted {
			t.Fatalf("request %d got payment %s %s, request 0 got %s", i, payments[i].ID, payments[i].Status, payments[0].ID)
		}
	}
	if got := f.balance(alice.ID); got != "70.00" {
		t.Errorf("balance = %s, want 70.00 (one debit)", got)
	}
	if n := f.count("payments"); n != 1 {
		t.Errorf("payments = %d, want 1", n)
	}
}

func TestConcurrentConsentDuplicatesMakeOneConsent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	req := consentRequest("1.00", "GBP", external)
	consents, errs := run(20, func(int) (openbanking.PaymentConsent, error) {
		return f.svc.CreatePaymentConsent(ctx, openbanking.Caller{ClientID: clientA}, key("consent-key", req.InitiationJSON), req)
	})
	for i, err := range errs {
		if err != nil || consents[i].ID != consents[0].ID {
			t.Fatalf("request %d = %s, %v, want consent %s", i, consents[i].ID, err, consents[0].ID)
		}
	}
	if n := f.count("consents"); n != 1 {
		t.Errorf("consents = %d, want 1", n)
	}
}

func TestTwoPaymentsOnOneConsentAtOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	req := consentRequest("30.00", "GBP", external)
	pc, psu := f.authorised(clientA, "alice", alice, req)

	_, errs := run(2, func(i int) (openbanking.Payment, error) {
		return f.svc.CreatePayment(ctx, psu, key([]string{"first", "second"}[i], req.InitiationJSON), paymentFor(pc, req))
	})
	var ok, invalid int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, openbanking.ErrInvalidConsentStatus):
			invalid++
		default:
			t.Fatalf("CreatePayment = %v", err)
		}
	}
	if ok != 1 || invalid != 1 {
		t.Fatalf("got %d successes and %d ErrInvalidConsentStatus, want 1 and 1", ok, invalid)
	}
	if got := f.balance(alice.ID); got != "70.00" {
		t.Errorf("balance = %s, want 70.00", got)
	}
}

func TestConcurrentPaymentsNeverOverdraw(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	bob := f.open("bob", "GBP", "")
	const n = 40
	type job struct {
		pc  openbanking.PaymentConsent
		psu openbanking.Caller
		req openbanking.PaymentConsentRequest
	}
	jobs := make([]job, n)
	for i := range jobs {
		req := consentRequest("30.00", "GBP", refOf(bob))
		jobs[i].pc, jobs[i].psu = f.authorised(clientA, "alice", alice, req)
		jobs[i].req = req
	}
	payments, errs := run(n, func(i int) (openbanking.Payment, error) {
		j := jobs[i]
		// Distinct keys: each request is a different payment.
		return f.svc.CreatePayment(ctx, j.psu, key(j.pc.ID[:8]+"-pay", []byte(j.pc.ID)), paymentFor(j.pc, j.req))
	})
	counts := map[openbanking.PaymentStatus]int{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("payment %d: %v", i, err)
		}
		counts[payments[i].Status]++
	}
	if counts[openbanking.PaymentAcceptedCreditSettlementCompleted] != 3 || counts[openbanking.PaymentRejected] != 37 {
		t.Fatalf("statuses = %v, want 3 settled and 37 Rejected", counts)
	}
	if got := f.balance(alice.ID); got != "10.00" {
		t.Errorf("alice = %s, want 10.00", got)
	}
	if got := f.balance(bob.ID); got != "90.00" {
		t.Errorf("bob = %s, want 90.00", got)
	}
	var consumed int64
	f.db.Raw(`SELECT count(*) FROM consents WHERE status = 'Consumed'`).Scan(&consumed)
	if consumed != n {
		t.Errorf("consumed consents = %d, want %d", consumed, n)
	}
	rep, err := f.l.Reconcile(ctx)
	if err != nil || !rep.Balanced {
		t.Errorf("Reconcile = %+v, %v", rep, err)
	}
}
