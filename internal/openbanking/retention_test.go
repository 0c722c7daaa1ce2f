package openbanking_test

import (
	"context"
	"testing"
	"time"

	"github.com/obpay/payments/internal/openbanking"
)

// TestPurgeExpiredKeys runs against real Postgres: keys older than their 24 h
// go, in batches of the given size; fresh keys and the consents they created
// stay.
func TestPurgeExpiredKeys(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	creditor := f.open("creditor", "GBP", "")
	req := consentRequest("10.00", "GBP", refOf(creditor))
	for range 3 {
		f.consent(clientA, req)
	}
	f.advance(23 * time.Hour)
	keptKey := key("fresh-key", req.InitiationJSON)
	fresh, err := f.svc.CreatePaymentConsent(ctx, openbanking.Caller{ClientID: clientB}, keptKey, req)
	if err != nil {
		t.Fatal(err)
	}
	f.consent(clientB, req)

	// The first three keys are 23 h old: nothing has expired yet.
	if n, err := f.svc.PurgeExpiredKeys(ctx, 10); err != nil || n != 0 {
		t.Fatalf("PurgeExpiredKeys before any expiry = %d, %v; want 0, nil", n, err)
	}
	f.advance(time.Hour + time.Second)
	for i, want := range []int{2, 1, 0} {
		n, err := f.svc.PurgeExpiredKeys(ctx, 2)
		if err != nil || n != want {
			t.Fatalf("PurgeExpiredKeys(2), call %d = %d, %v; want %d, nil", i+1, n, err, want)
		}
	}
	if got := f.count("idempotency_keys"); got != 2 {
		t.Errorf("%d idempotency keys left, want the 2 fresh ones", got)
	}
	var clients []string
	if err := f.db.Raw(`SELECT DISTINCT client_id FROM idempotency_keys`).Scan(&clients).Error; err != nil {
		t.Fatal(err)
	}
	if len(clients) != 1 || clients[0] != clientB {
		t.Errorf("keys left belong to %v, want only %s", clients, clientB)
	}
	if got := f.count("consents"); got != 5 {
		t.Errorf("%d consents after the purge, want all 5", got)
	}
	// A fresh key still deduplicates: the same request gets the same consent.
	again, err := f.svc.CreatePaymentConsent(ctx, openbanking.Caller{ClientID: clientB}, keptKey, req)
	if err != nil || again.ID != fresh.ID {
		t.Errorf("CreatePaymentConsent(fresh key again) = %s, %v; want %s", again.ID, err, fresh.ID)
	}

	if _, err := f.svc.PurgeExpiredKeys(ctx, 0); err == nil {
		t.Error("PurgeExpiredKeys(0) succeeded, want an error")
	}
}
