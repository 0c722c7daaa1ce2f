package integration

import (
	"net/http"
	"testing"
	"time"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
	"github.com/obpay/payments/internal/testdb"
)

// TestDatabaseOutageAnswers503AndPaysOnce runs the real binary on a private
// PostgreSQL cluster, stops the cluster like a crash and starts it again: while
// it is down every route that needs the database answers 503
// UK.OBIE.UnexpectedError with Retry-After (not 500), or OBPAY.ServiceUnavailable
// when the sandbox's token check, on the same database, fails first, and the payment retried
// with the same x-idempotency-key after recovery books exactly once.
func TestDatabaseOutageAnswers503AndPaysOnce(t *testing.T) {
	cluster := testdb.NewCluster(t)
	s := startServer(t, "DATABASE_URL="+cluster.URL("payments"))
	sb := newSandbox(t, s)
	ctx := sb.ctx
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	reader := sb.accountReader(t, "alice")
	init := initiation(bob, "30.00", "outage-1")
	consentID := sb.createConsent(t, init)
	psu := sb.psuClient(t, consentID, "alice", alice.AccountId, "payments")
	key := client.NewIdempotencyKey()

	cluster.Stop(t)
	down := []struct {
		name string
		call func(t *testing.T) outcome
	}{
		{"payment", func(t *testing.T) outcome {
			res, err := psu.CreateDomesticPaymentsWithResponse(ctx, &obapi.CreateDomesticPaymentsParams{XIdempotencyKey: key},
				obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: consentID, Initiation: init}})
			return outcomeOf(t, res, err)
		}},
		{"read the payment consent", func(t *testing.T) outcome {
			res, err := sb.tppAPI.GetDomesticPaymentConsentsConsentIdWithResponse(ctx, consentID, &obapi.GetDomesticPaymentConsentsConsentIdParams{})
			return outcomeOf(t, res, err)
		}},
		{"read a balance", func(t *testing.T) outcome {
			res, err := reader.GetAccountsAccountIdBalancesWithResponse(ctx, alice.AccountId, &obapi.GetAccountsAccountIdBalancesParams{})
			return outcomeOf(t, res, err)
		}},
		{"create a payment consent", func(t *testing.T) outcome {
			res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithResponse(ctx,
				&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
				obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init}})
			return outcomeOf(t, res, err)
		}},
		{"reconcile", func(t *testing.T) outcome {
			res, err := sb.admin.ReconcileLedgerWithResponse(ctx, &obapi.ReconcileLedgerParams{})
			return outcomeOf(t, res, err)
		}},
	}
	for _, tc := range down {
		t.Run("database down: "+tc.name, func(t *testing.T) {
			o := tc.call(t)
			if o.status != http.StatusServiceUnavailable {
				t.Fatalf("status = %d, want 503; body %s", o.status, o.body)
			}
			if o.header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			// The sandbox authorization server keeps its tokens in the same
			// database, so the token check may be what fails first: then
			// the answer names the authorization server.
			if e := obError(t, o); e.Errors[0].ErrorCode != "UK.OBIE.UnexpectedError" && e.Errors[0].ErrorCode != "OBPAY.ServiceUnavailable" {
				t.Errorf("ErrorCode = %s, want UK.OBIE.UnexpectedError or OBPAY.ServiceUnavailable; body %s", e.Errors[0].ErrorCode, o.body)
			}
		})
	}
	if res, _ := do(t, http.MethodGet, s.URL+"/readyz", nil, nil); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz with the database down = %d, want 503", res.StatusCode)
	}

	cluster.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, _ := do(t, http.MethodGet, s.URL+"/readyz", nil, nil)
		if res.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d 30s after the database came back", res.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := sb.balance(t, reader, alice.AccountId); got != "100.00" {
		t.Fatalf("alice = %s after the outage, want 100.00: the refused payment moved money", got)
	}
	if got := sb.consentStatus(t, consentID); got != "Authorised" {
		t.Fatalf("consent = %s after the outage, want Authorised", got)
	}

	first := sb.pay(t, psu, consentID, init, key)
	if first.JSON201 == nil {
		t.Fatalf("payment retried after the outage = %d %s, want 201", first.StatusCode(), first.Body)
	}
	if got := first.JSON201.Data.Status; got != "AcceptedCreditSettlementCompleted" {
		t.Errorf("payment status = %s, want AcceptedCreditSettlementCompleted", got)
	}
	again := sb.pay(t, psu, consentID, init, key)
	if again.JSON201 == nil || again.JSON201.Data.DomesticPaymentId != first.JSON201.Data.DomesticPaymentId ||
		again.JSON201.Data.Status != first.JSON201.Data.Status {
		t.Fatalf("replay = %d %s, want 201 with payment %s %s", again.StatusCode(), again.Body,
			first.JSON201.Data.DomesticPaymentId, first.JSON201.Data.Status)
	}
	if got := sb.balance(t, reader, alice.AccountId); got != "70.00" {
		t.Errorf("alice = %s, want 70.00: booked exactly once", got)
	}
	if n := countDebits(t, sb, reader, alice.AccountId); n != 1 {
		t.Errorf("alice has %d debits, want one transfer", n)
	}
	assertBalanced(t, sb)
}
