package openbanking_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/obpay/payments/internal/openbanking"
)

// recorder is an Observer that writes down what it hears.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) ConsentChanged(k openbanking.ConsentKind, e openbanking.ConsentEvent) {
	r.add(string(k) + " " + string(e))
}
func (r *recorder) PaymentBooked(s openbanking.PaymentStatus) { r.add("payment " + string(s)) }
func (r *recorder) IdempotentReplay(res string)               { r.add("replay " + res) }

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

// The observer hears each stored change once, and nothing of refusals.
func TestObserverHearsEachStoredChange(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	f := newFixture(t, func(c *fixtureConfig) { c.ob.Observer = rec })
	alice := f.open("alice", "GBP", "100.00")
	bob := f.open("bob", "GBP", "")
	check := func(step string, want ...string) {
		t.Helper()
		if diff := cmp.Diff(want, rec.take()); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", step, diff)
		}
	}

	req := consentRequest("10.00", "GBP", refOf(bob))
	pc, psu := f.authorised(clientA, "alice", alice, req)
	check("consent created and authorised", "payment created", "payment authorised")

	k := key(freshKey(), req.InitiationJSON)
	if _, err := f.svc.CreatePayment(ctx, psu, k, paymentFor(pc, req)); err != nil {
		t.Fatal(err)
	}
	check("payment", "payment consumed", "payment "+string(openbanking.PaymentAcceptedCreditSettlementCompleted))
	if _, err := f.svc.CreatePayment(ctx, psu, k, paymentFor(pc, req)); err != nil {
		t.Fatal(err)
	}
	check("the same payment again", "replay payment")
	if _, err := f.svc.CreatePayment(ctx, psu, key(freshKey(), req.InitiationJSON), paymentFor(pc, req)); err == nil {
		t.Fatal("a consumed consent paid twice")
	}
	check("a refused payment")

	big := consentRequest("500.00", "GBP", refOf(bob))
	pc2, psu2 := f.authorised(clientA, "alice", alice, big)
	rec.take()
	if p, err := f.svc.CreatePayment(ctx, psu2, key(freshKey(), big.InitiationJSON), paymentFor(pc2, big)); err != nil || p.Status != openbanking.PaymentRejected {
		t.Fatalf("unfunded payment = %+v, %v", p, err)
	}
	check("an unfunded payment", "payment consumed", "payment Rejected")

	pc3 := f.consent(clientA, req)
	if _, err := f.svc.Reject(ctx, pc3.ID); err != nil {
		t.Fatal(err)
	}
	check("a rejected consent", "payment created", "payment rejected")

	ac, err := f.svc.CreateAccountAccessConsent(ctx, openbanking.Caller{ClientID: clientA}, perms(openbanking.ReadBalances))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.svc.RevokeAccountAccessConsent(ctx, openbanking.Caller{ClientID: clientA}, ac.ID); err != nil {
			t.Fatal(err)
		}
	}
	check("an account access consent created and revoked twice", "account-access created", "account-access revoked")
}
