package integration

import (
	"net/http"
	"testing"

	"github.com/obpay/payments/client"
)

// TestRestartKeepsSandboxState stops the server and starts a new one on the
// same port and database: the customer's token issued before the restart
// still pays for the consent authorised before it, and the aggregator's
// client-credentials token still reads it, without a new sign-in.
func TestRestartKeepsSandboxState(t *testing.T) {
	port := freePort(t)
	s := startServerAt(t, port)
	sb := newSandbox(t, s)
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	init := initiation(bob, "12.00", "restart-1")
	consentID := sb.createConsent(t, init)
	psu := sb.psuClient(t, consentID, "alice", alice.AccountId, "payments")

	s.stop(t)
	launchServer(t, port, s.DSN, "DATABASE_URL="+s.DSN)

	if res := sb.pay(t, psu, consentID, init, client.NewIdempotencyKey()); res.StatusCode() != http.StatusCreated {
		t.Fatalf("payment after a restart with the token from before = %d %s", res.StatusCode(), res.Body)
	}
	if status := sb.consentStatus(t, consentID); status != "Consumed" {
		t.Errorf("consent after the payment = %s, want Consumed", status)
	}
	assertBalanced(t, sb)
}
