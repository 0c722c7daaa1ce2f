package handlers

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestSandboxFlowThroughTheAPI(t *testing.T) {
	a := newAPI(t)
	alice, _ := a.openAccount("alice", "100.00")
	_, bobIdent := a.openAccount("bob", "")
	body := consentBody("30.00", bobIdent)

	consentID := a.paymentConsent("tpp-a", body)
	var got consentResp
	a.want(a.do(http.MethodGet, "/open-banking/v3.1/pisp/domestic-payment-consents/"+consentID, "", tpp("tpp-a", "payments")), http.StatusOK, &got)
	if got.Data.Status != "AwaitingAuthorisation" || got.Links.Self != testBase+"/open-banking/v3.1/pisp/domestic-payment-consents/"+consentID {
		t.Fatalf("consent = %+v", got)
	}
	if got.Risk["PaymentContextCode"] != "PartyToParty" || got.Data.Initiation["InstructionIdentification"] != "ACME412" {
		t.Errorf("Initiation/Risk not echoed: %+v", got)
	}
	a.authorise(consentID, "alice", alice)
	psu := psuToken("tpp-a", "alice", consentID, "payments")

	var funds struct {
		Data struct{ FundsAvailableResult struct{ FundsAvailable bool } }
	}
	a.want(a.do(http.MethodGet, "/open-banking/v3.1/pisp/domestic-payment-consents/"+consentID+"/funds-confirmation", "", psu), http.StatusOK, &funds)
	if !funds.Data.FundsAvailableResult.FundsAvailable {
		t.Errorf("FundsAvailable = false, want true")
	}

	var pay paymentResp
	rec := a.do(http.MethodPost, "/open-banking/v3.1/pisp/domestic-payments", paymentBody(body, consentID), psu.with("x-idempotency-key", "pay-1"))
	a.want(rec, http.StatusCreated, &pay)
	if pay.Data.Status != "AcceptedCreditSettlementCompleted" || pay.Data.ConsentId != consentID || pay.Data.Debtor == nil {
		t.Fatalf("payment = %+v", pay)
	}
	if rec.Header().Get(HeaderInteractionID) == "" {
		t.Errorf("no x-fapi-interaction-id")
	}
	var again paymentResp
	a.want(a.do(http.MethodGet, "/open-banking/v3.1/pisp/domestic-payments/"+pay.Data.DomesticPaymentId, "", tpp("tpp-a", "payments")), http.StatusOK, &again)
	if again.Data.Status != pay.Data.Status || again.Links.Self != testBase+"/open-banking/v3.1/pisp/domestic-payments/"+pay.Data.DomesticPaymentId {
		t.Errorf("GET payment = %+v", again)
	}
	if b := a.balance(alice); b != "70.00" {
		t.Errorf("alice = %s, want 70.00", b)
	}

	// AISP: consent, authorise, read.
	var ac consentResp
	a.want(a.do(http.MethodPost, "/open-banking/v3.1/aisp/account-access-consents",
		`{"Data":{"Permissions":["ReadAccountsDetail","ReadBalances","ReadTransactionsDetail"]},"Risk":{}}`, tpp("tpp-a", "accounts")), http.StatusCreated, &ac)
	a.authorise(ac.Data.ConsentId, "alice", "")
	reader := psuToken("tpp-a", "alice", ac.Data.ConsentId, "accounts")
	var accts struct {
		Data struct {
			Account []struct {
				AccountId string
				Account   []struct{ Identification string }
			}
		}
	}
	a.want(a.do(http.MethodGet, "/open-banking/v3.1/aisp/accounts", "", reader), http.StatusOK, &accts)
	if len(accts.Data.Account) != 1 || accts.Data.Account[0].AccountId != alice || len(accts.Data.Account[0].Account) != 1 {
		t.Fatalf("accounts = %+v", accts)
	}
	var bal struct {
		Data struct {
			Balance []struct {
				Type   string
				Amount struct{ Amount string }
			}
		}
	}
	a.want(a.do(http.MethodGet, "/open-banking/v3.1/aisp/accounts/"+alice+"/balances", "", reader), http.StatusOK, &bal)
	if len(bal.Data.Balance) != 2 || bal.Data.Balance[0].Type != "InterimAvailable" || bal.Data.Balance[1].Amount.Amount != "70.00" {
		t.Errorf("balances = %+v", bal)
	}
	var txs struct {
		Data struct {
			Transaction []struct {
				CreditDebitIndicator   string
				TransactionInformation string
				Amount                 struct{ Amount string }
			}
		}
	}
	a.want(a.do(http.MethodGet, "/open-banking/v3.1/aisp/accounts/"+alice+"/transactions", "", reader), http.StatusOK, &txs)
	if n := len(txs.Data.Transaction); n != 2 || txs.Data.Transaction[1].CreditDebitIndicator != "Debit" ||
		txs.Data.Transaction[1].TransactionInformation != "INV-1" || txs.Data.Transaction[1].Amount.Amount != "30.00" {
		t.Errorf("transactions = %+v", txs)
	}

	var rep struct {
		Balanced bool
		Drift    []any
		Totals   []struct{ Currency, Net string }
	}
	a.want(a.do(http.MethodGet, "/internal/v1/ledger/reconcile", "", admin), http.StatusOK, &rep)
	if !rep.Balanced || len(rep.Drift) != 0 || len(rep.Totals) != 1 || rep.Totals[0].Net != "0.00" {
		t.Errorf("reconcile = %+v", rep)
	}
}

func TestConcurrentDuplicatePaymentsThroughTheAPI(t *testing.T) {
	a := newAPI(t)
	alice, _ := a.openAccount("alice", "100.00")
	_, bobIdent := a.openAccount("bob", "")
	body := consentBody("30.00", bobIdent)
	consentID := a.paymentConsent("tpp-a", body)
	a.authorise(consentID, "alice", alice)
	psu := psuToken("tpp-a", "alice", consentID, "payments").with("x-idempotency-key", "same")

	const n = 50
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := a.do(http.MethodPost, "/open-banking/v3.1/pisp/domestic-payments", paymentBody(body, consentID), psu)
			var p paymentResp
			if rec.Code == http.StatusCreated {
				_ = jsonUnmarshal(rec.Body.Bytes(), &p)
			}
			ids[i] = p.Data.DomesticPaymentId + "/" + http.StatusText(rec.Code)
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if id != ids[0] || !strings.HasSuffix(id, "/Created") {
			t.Fatalf("answer %d = %s, answer 0 = %s", i, id, ids[0])
		}
	}
	if b := a.balance(alice); b != "70.00" {
		t.Errorf("alice = %s, want 70.00 (one debit)", b)
	}
}
