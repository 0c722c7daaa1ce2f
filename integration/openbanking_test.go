package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// The tests of this file drive issue 5 (the Open Banking layer) end to end:
// the real binary, real Postgres, the SDK with real DPoP proofs. Each error of
// the issue is checked for its status, ErrorCode, Path and interaction id, and
// for moving no money.

const (
	pathConsents = "/open-banking/v3.1/pisp/domestic-payment-consents"
	pathPayments = "/open-banking/v3.1/pisp/domestic-payments"
	unknownID    = "6b5ae1f6-4d1c-4c1e-9d47-3b6c0e6f7e2a"
)

// outcome is what the assertions need from any response: the status, the raw
// body and the headers.
type outcome struct {
	status int
	body   []byte
	header http.Header
}

// outcomeOf reads the status, body and headers of a generated *XResponse
// (every one has the fields HTTPResponse and Body).
func outcomeOf(t *testing.T, res any, err error) outcome {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(res).Elem()
	hr := v.FieldByName("HTTPResponse").Interface().(*http.Response)
	return outcome{status: hr.StatusCode, body: v.FieldByName("Body").Bytes(), header: hr.Header}
}

// obError decodes an OBErrorResponse1 body, failing the test when it is not
// one.
func obError(t *testing.T, o outcome) obapi.OBErrorResponse1 {
	t.Helper()
	var e obapi.OBErrorResponse1
	if err := json.Unmarshal(o.body, &e); err != nil || e.Code == "" || len(e.Errors) == 0 {
		t.Fatalf("not an OBErrorResponse1 (%v): %d %s", err, o.status, o.body)
	}
	return e
}

// withInteractionID sends id as the request's x-fapi-interaction-id.
func withInteractionID(id string) obapi.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("x-fapi-interaction-id", id)
		return nil
	}
}

// withContentType overrides the request's Content-Type.
func withContentType(ct string) obapi.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Content-Type", ct)
		return nil
	}
}

// psuToken is psuClient returning its error, for use off the test goroutine.
func (sb *sandbox) psuToken(consentID, psu, debtor, scope string) (*client.Client, error) {
	tok, err := sb.authorize(consentID, psu, debtor, scope)
	if err != nil {
		return nil, err
	}
	return client.New(sb.s.URL, sb.tppKey, sb.tpp.RefreshingSource(tok))
}

// consentFor creates a payment consent as the first aggregator, returning its
// error, for use off the test goroutine.
func (sb *sandbox) consentFor(init obapi.OBWriteDomestic2DataInitiation) (string, error) {
	res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithResponse(sb.ctx,
		&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init}})
	if err != nil {
		return "", err
	}
	if res.JSON201 == nil {
		return "", fmt.Errorf("create consent = %d %s", res.StatusCode(), res.Body)
	}
	return res.JSON201.Data.ConsentId, nil
}

// payer is a PSU ready to pay: a consent the PSU authorised and the
// aggregator's client holding the PSU token for it.
type payer struct {
	consentID string
	init      obapi.OBWriteDomestic2DataInitiation
	api       *client.Client
}

// authorisedPayers prepares n payments of amount from debtor (an account of
// psu) to creditor, each with its own authorised consent and PSU token, with
// a few requests in flight at once.
func (sb *sandbox) authorisedPayers(t *testing.T, n int, psu string, debtor, creditor obapi.LedgerAccount, amount, ref string) []payer {
	t.Helper()
	out := make([]payer, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			init := initiation(creditor, amount, fmt.Sprintf("%s-%d", ref, i))
			id, err := sb.consentFor(init)
			if err != nil {
				errs[i] = err
				return
			}
			api, err := sb.psuToken(id, psu, debtor.AccountId, "payments")
			out[i], errs[i] = payer{consentID: id, init: init, api: api}, err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// submit sends the payer's payment with key.
func (p payer) submit(ctx context.Context, key string) (*obapi.CreateDomesticPaymentsResponse, error) {
	return p.api.CreateDomesticPaymentsWithResponse(ctx, &obapi.CreateDomesticPaymentsParams{XIdempotencyKey: key},
		obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: p.consentID, Initiation: p.init}})
}

// accountReader returns a client holding a PSU token of psu for an
// authorised account access consent with every permission.
func (sb *sandbox) accountReader(t *testing.T, psu string) *client.Client {
	t.Helper()
	perms := []obapi.OBExternalPermissions1Code{"ReadAccountsBasic", "ReadAccountsDetail", "ReadBalances",
		"ReadTransactionsBasic", "ReadTransactionsDetail", "ReadTransactionsCredits", "ReadTransactionsDebits"}
	id := sb.accessConsent(t, perms, nil)
	return sb.psuClient(t, id, psu, "", "accounts")
}

// accessConsent creates an account access consent as the first aggregator.
func (sb *sandbox) accessConsent(t *testing.T, perms []obapi.OBExternalPermissions1Code, expires *time.Time) string {
	t.Helper()
	res, err := sb.tppAPI.CreateAccountAccessConsentsWithResponse(sb.ctx, &obapi.CreateAccountAccessConsentsParams{},
		obapi.OBReadConsent1{Data: obapi.OBReadConsent1Data{Permissions: perms, ExpirationDateTime: expires}})
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON201 == nil {
		t.Fatalf("account access consent = %d %s", res.StatusCode(), res.Body)
	}
	return res.JSON201.Data.ConsentId
}

// balance reads an account's InterimBooked balance through the AISP API.
func (sb *sandbox) balance(t *testing.T, reader *client.Client, accountID string) string {
	t.Helper()
	res, err := reader.GetAccountsAccountIdBalancesWithResponse(sb.ctx, accountID, &obapi.GetAccountsAccountIdBalancesParams{})
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil {
		t.Fatalf("balances of %s = %d %s", accountID, res.StatusCode(), res.Body)
	}
	for _, b := range res.JSON200.Data.Balance {
		if b.Type == "InterimBooked" {
			return b.Amount.Amount
		}
	}
	t.Fatalf("no InterimBooked balance: %s", res.Body)
	return ""
}

// consentStatus reads a payment consent's status as the first aggregator.
func (sb *sandbox) consentStatus(t *testing.T, consentID string) string {
	t.Helper()
	res, err := sb.tppAPI.GetDomesticPaymentConsentsConsentIdWithResponse(sb.ctx, consentID, &obapi.GetDomesticPaymentConsentsConsentIdParams{})
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil {
		t.Fatalf("get consent = %d %s", res.StatusCode(), res.Body)
	}
	return string(res.JSON200.Data.Status)
}

// authorise calls the back office's consent authorisation as the admin.
func (sb *sandbox) authorise(t *testing.T, consentID, psu, debtor string) outcome {
	t.Helper()
	body := obapi.AuthoriseConsentRequest{Psu: psu}
	if debtor != "" {
		body.DebtorAccount = &debtor
	}
	res, err := sb.admin.AuthoriseConsentWithResponse(sb.ctx, consentID, &obapi.AuthoriseConsentParams{}, body)
	return outcomeOf(t, res, err)
}

// emptyValues lists the JSON paths of doc holding "", null, [] or {} (other
// than the always-present Meta object and Risk, which may be empty by
// contract): optional fields must be omitted, never sent empty.
func emptyValues(doc any, path string) []string {
	var out []string
	switch v := doc.(type) {
	case nil:
		out = append(out, path+"=null")
	case string:
		if v == "" {
			out = append(out, path+`=""`)
		}
	case []any:
		if len(v) == 0 {
			out = append(out, path+"=[]")
		}
		for i, e := range v {
			out = append(out, emptyValues(e, fmt.Sprintf("%s.%d", path, i))...)
		}
	case map[string]any:
		if len(v) == 0 && path != "Meta" && path != "Risk" {
			out = append(out, path+"={}")
		}
		for k, e := range v {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out = append(out, emptyValues(e, p)...)
		}
	}
	return out
}

// TestOpenBankingErrorsEndToEnd drives each error of issue 5 items 1 to 7
// through the SDK against the real server: status, OB ErrorCode and Path,
// the interaction id echoed in the header and the body, and no money moved.
func TestOpenBankingErrorsEndToEnd(t *testing.T) {
	s := startServer(t, "PAYMENTS_BODY_LIMIT=65536")
	sb := newSandbox(t, s)
	ctx := sb.ctx
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "10.00")
	carol := sb.openAccount(t, "carol", "")
	aliceEUR := func() obapi.LedgerAccount {
		res, err := sb.admin.CreateLedgerAccountWithResponse(ctx, &obapi.CreateLedgerAccountParams{},
			obapi.CreateLedgerAccountRequest{Owner: "alice", Currency: "EUR", Nickname: "alice euros"})
		if err != nil || res.JSON201 == nil {
			t.Fatalf("open EUR account: %v %s", err, res.Body)
		}
		return *res.JSON201
	}()
	aliceReader := sb.accountReader(t, "alice")

	init := initiation(carol, "10.00", "err-1")
	waiting := sb.createConsent(t, init)
	rejected := sb.createConsent(t, init)
	if o := sb.authorise(t, rejected, "alice", ""); o.status != http.StatusBadRequest {
		t.Fatalf("authorise a payment consent without DebtorAccount = %d %s, want 400", o.status, o.body)
	}
	if res, err := sb.admin.RejectConsentWithResponse(ctx, rejected, &obapi.RejectConsentParams{}); err != nil || res.JSON200 == nil {
		t.Fatalf("reject: %v %s", err, res.Body)
	}
	ready := sb.createConsent(t, init)
	readyPSU := sb.psuClient(t, ready, "alice", alice.AccountId, "payments")
	used := sb.createConsent(t, init)
	usedPSU := sb.psuClient(t, used, "alice", alice.AccountId, "payments")
	paid := sb.pay(t, usedPSU, used, init, client.NewIdempotencyKey())
	if paid.JSON201 == nil {
		t.Fatalf("payment = %d %s", paid.StatusCode(), paid.Body)
	}
	paymentID := paid.JSON201.Data.DomesticPaymentId
	// A client with the accounts scope only, and a PSU token for the accounts.
	accountsOnly := sb.clientFor(t, "sandbox-tpp", "sandbox-secret", "accounts")
	basicOnly := sb.psuClient(t, sb.accessConsent(t, []obapi.OBExternalPermissions1Code{"ReadAccountsBasic"}, nil), "alice", "", "accounts")
	revokedID := sb.accessConsent(t, []obapi.OBExternalPermissions1Code{"ReadAccountsBasic", "ReadBalances"}, nil)
	revoked := sb.psuClient(t, revokedID, "alice", "", "accounts")
	if res, err := sb.tppAPI.DeleteAccountAccessConsentsConsentIdWithResponse(ctx, revokedID, &obapi.DeleteAccountAccessConsentsConsentIdParams{}); err != nil || res.StatusCode() != http.StatusNoContent {
		t.Fatalf("revoke: %v %s", err, res.Body)
	}
	soon := time.Now().Add(2 * time.Second)
	expired := sb.psuClient(t, sb.accessConsent(t, []obapi.OBExternalPermissions1Code{"ReadAccountsBasic", "ReadBalances"}, &soon), "alice", "", "accounts")
	time.Sleep(time.Until(soon) + 100*time.Millisecond)
	past := time.Now().Add(-time.Hour)
	bodyOf := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	consentBody := bodyOf(obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init}})
	noCreditor := bytes.Replace(consentBody, []byte(`"CreditorAccount"`), []byte(`"DebtorAccount"`), 1)
	consentKey := func() *obapi.CreateDomesticPaymentConsentsParams {
		return &obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()}
	}
	paymentKey := func() *obapi.CreateDomesticPaymentsParams {
		return &obapi.CreateDomesticPaymentsParams{XIdempotencyKey: client.NewIdempotencyKey()}
	}
	paymentOn := func(consentID string, in obapi.OBWriteDomestic2DataInitiation, risk obapi.OBRisk1) obapi.OBWriteDomestic2 {
		return obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: consentID, Initiation: in}, Risk: risk}
	}
	changedAmount := initiation(carol, "10.01", "err-1")
	party := obapi.OBRisk1PaymentContextCode("PartyToParty")
	cursor := "not-a-cursor"

	type call func(t *testing.T, ed obapi.RequestEditorFn) outcome
	tests := []struct {
		name   string
		call   call
		status int
		code   string
		path   string
	}{
		// 1. Payment consents.
		{"consent without x-idempotency-key", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithResponse(ctx, &obapi.CreateDomesticPaymentConsentsParams{},
				obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init}}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Header.Missing", "x-idempotency-key"},
		{"consent with a PSU token", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := readyPSU.CreateDomesticPaymentConsentsWithResponse(ctx, consentKey(),
				obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init}}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"consent without the payments scope", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := accountsOnly.CreateDomesticPaymentConsentsWithResponse(ctx, consentKey(),
				obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init}}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"consent with three decimals in GBP", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithResponse(ctx, consentKey(),
				obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: initiation(carol, "1.001", "x")}}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Field.Invalid", "Data.Initiation.InstructedAmount.Amount"},
		{"funds confirmation with a client-credentials token", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.GetDomesticPaymentConsentsConsentIdFundsConfirmationWithResponse(ctx, ready,
				&obapi.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", "Authorization"},
		{"funds confirmation with a token for another consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := usedPSU.GetDomesticPaymentConsentsConsentIdFundsConfirmationWithResponse(ctx, ready,
				&obapi.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"funds confirmation on a consumed consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := usedPSU.GetDomesticPaymentConsentsConsentIdFundsConfirmationWithResponse(ctx, used,
				&obapi.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams{}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.InvalidConsentStatus", ""},
		{"authorise a rejected consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.admin.AuthoriseConsentWithResponse(ctx, rejected, &obapi.AuthoriseConsentParams{},
				obapi.AuthoriseConsentRequest{Psu: "alice", DebtorAccount: &alice.AccountId}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.InvalidConsentStatus", ""},
		{"reject a consumed consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.admin.RejectConsentWithResponse(ctx, used, &obapi.RejectConsentParams{}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.InvalidConsentStatus", ""},
		{"authorise an authorised consent again", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.admin.AuthoriseConsentWithResponse(ctx, ready, &obapi.AuthoriseConsentParams{},
				obapi.AuthoriseConsentRequest{Psu: "bob", DebtorAccount: &bob.AccountId}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.InvalidConsentStatus", ""},

		// 2. Consent authorisation.
		{"authorise with another PSU's account", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.admin.AuthoriseConsentWithResponse(ctx, waiting, &obapi.AuthoriseConsentParams{},
				obapi.AuthoriseConsentRequest{Psu: "bob", DebtorAccount: &alice.AccountId}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Field.Invalid", "DebtorAccount"},
		{"authorise with an account in another currency", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.admin.AuthoriseConsentWithResponse(ctx, waiting, &obapi.AuthoriseConsentParams{},
				obapi.AuthoriseConsentRequest{Psu: "alice", DebtorAccount: &aliceEUR.AccountId}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Unsupported.Currency", "DebtorAccount"},
		{"authorise with an unknown account", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			unknownAccount := unknownID
			res, err := sb.admin.AuthoriseConsentWithResponse(ctx, waiting, &obapi.AuthoriseConsentParams{},
				obapi.AuthoriseConsentRequest{Psu: "alice", DebtorAccount: &unknownAccount}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.NotFound", "DebtorAccount"},
		{"authorise a payment consent without a debtor account", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.admin.AuthoriseConsentWithResponse(ctx, waiting, &obapi.AuthoriseConsentParams{},
				obapi.AuthoriseConsentRequest{Psu: "alice"}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Field.Missing", "DebtorAccount"},
		{"authorise an unknown consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.admin.AuthoriseConsentWithResponse(ctx, unknownID, &obapi.AuthoriseConsentParams{},
				obapi.AuthoriseConsentRequest{Psu: "alice", DebtorAccount: &alice.AccountId}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.NotFound", ""},
		{"authorise without consents:admin", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.AuthoriseConsentWithResponse(ctx, waiting, &obapi.AuthoriseConsentParams{},
				obapi.AuthoriseConsentRequest{Psu: "alice", DebtorAccount: &alice.AccountId}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},

		// 3. Domestic payments.
		{"payment with a changed amount", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := readyPSU.CreateDomesticPaymentsWithResponse(ctx, paymentKey(), paymentOn(ready, changedAmount, obapi.OBRisk1{}), ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.ConsentMismatch", "Data.Initiation"},
		{"payment with a changed Risk", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := readyPSU.CreateDomesticPaymentsWithResponse(ctx, paymentKey(), paymentOn(ready, init, obapi.OBRisk1{PaymentContextCode: &party}), ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.ConsentMismatch", "Data.Initiation"},
		{"second payment on a consumed consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := usedPSU.CreateDomesticPaymentsWithResponse(ctx, paymentKey(), paymentOn(used, init, obapi.OBRisk1{}), ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.InvalidConsentStatus", ""},
		{"payment with a client-credentials token", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.CreateDomesticPaymentsWithResponse(ctx, paymentKey(), paymentOn(ready, init, obapi.OBRisk1{}), ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", "Authorization"},
		{"payment with a PSU token for another consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := usedPSU.CreateDomesticPaymentsWithResponse(ctx, paymentKey(), paymentOn(ready, init, obapi.OBRisk1{}), ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"payment without x-idempotency-key", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := readyPSU.CreateDomesticPaymentsWithResponse(ctx, &obapi.CreateDomesticPaymentsParams{}, paymentOn(ready, init, obapi.OBRisk1{}), ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Header.Missing", "x-idempotency-key"},
		{"payment on an unknown consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := readyPSU.CreateDomesticPaymentsWithResponse(ctx, paymentKey(), paymentOn(unknownID, init, obapi.OBRisk1{}), ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"unknown payment", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.GetDomesticPaymentsDomesticPaymentIdWithResponse(ctx, unknownID, &obapi.GetDomesticPaymentsDomesticPaymentIdParams{}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.NotFound", ""},

		// 4. Account information.
		{"accounts with a client-credentials token", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.GetAccountsWithResponse(ctx, &obapi.GetAccountsParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", "Authorization"},
		{"accounts with a payments PSU token", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := readyPSU.GetAccountsWithResponse(ctx, &obapi.GetAccountsParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"balances without ReadBalances", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := basicOnly.GetAccountsAccountIdBalancesWithResponse(ctx, alice.AccountId, &obapi.GetAccountsAccountIdBalancesParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"transactions without a transactions permission", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := basicOnly.GetAccountsAccountIdTransactionsWithResponse(ctx, alice.AccountId, &obapi.GetAccountsAccountIdTransactionsParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"another PSU's account", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := aliceReader.GetAccountsAccountIdWithResponse(ctx, bob.AccountId, &obapi.GetAccountsAccountIdParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"another PSU's transactions", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := aliceReader.GetAccountsAccountIdTransactionsWithResponse(ctx, bob.AccountId, &obapi.GetAccountsAccountIdTransactionsParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"unknown account", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := aliceReader.GetAccountsAccountIdBalancesWithResponse(ctx, unknownID, &obapi.GetAccountsAccountIdBalancesParams{}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.NotFound", ""},
		{"balances on a revoked consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := revoked.GetAccountsAccountIdBalancesWithResponse(ctx, alice.AccountId, &obapi.GetAccountsAccountIdBalancesParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"balances on an expired consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := expired.GetAccountsAccountIdBalancesWithResponse(ctx, alice.AccountId, &obapi.GetAccountsAccountIdBalancesParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"transactions from after to", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			from, to := time.Now().Format(time.RFC3339Nano), time.Now().Add(-time.Hour).Format(time.RFC3339Nano)
			res, err := aliceReader.GetAccountsAccountIdTransactionsWithResponse(ctx, alice.AccountId,
				&obapi.GetAccountsAccountIdTransactionsParams{FromBookingDateTime: &from, ToBookingDateTime: &to}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Field.Invalid", "fromBookingDateTime"},
		{"transactions with a forged cursor", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := aliceReader.GetAccountsAccountIdTransactionsWithResponse(ctx, alice.AccountId,
				&obapi.GetAccountsAccountIdTransactionsParams{Cursor: &cursor}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Field.Invalid", "cursor"},
		{"access consent without permissions", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.CreateAccountAccessConsentsWithResponse(ctx, &obapi.CreateAccountAccessConsentsParams{},
				obapi.OBReadConsent1{Data: obapi.OBReadConsent1Data{Permissions: []obapi.OBExternalPermissions1Code{}}}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Field.Invalid", "Data.Permissions"},
		{"access consent expiring in the past", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.CreateAccountAccessConsentsWithResponse(ctx, &obapi.CreateAccountAccessConsentsParams{},
				obapi.OBReadConsent1{Data: obapi.OBReadConsent1Data{Permissions: []obapi.OBExternalPermissions1Code{"ReadBalances"}, ExpirationDateTime: &past}}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Field.Invalid", "Data.ExpirationDateTime"},

		// 5. Idempotency (the replays are in TestOpenBankingIdempotencyEndToEnd).
		{"consent with a 41-character key", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithResponse(ctx,
				&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: strings.Repeat("k", 41)},
				obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init}}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Header.Invalid", "x-idempotency-key"},

		// 6. Errors and headers.
		{"unknown consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.GetDomesticPaymentConsentsConsentIdWithResponse(ctx, unknownID, &obapi.GetDomesticPaymentConsentsConsentIdParams{}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.NotFound", ""},
		{"malformed consent id", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.GetDomesticPaymentConsentsConsentIdWithResponse(ctx, "not-a-consent", &obapi.GetDomesticPaymentConsentsConsentIdParams{}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.NotFound", ""},
		{"another aggregator's payment consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tpp2.GetDomesticPaymentConsentsConsentIdWithResponse(ctx, ready, &obapi.GetDomesticPaymentConsentsConsentIdParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"another aggregator's payment", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tpp2.GetDomesticPaymentsDomesticPaymentIdWithResponse(ctx, paymentID, &obapi.GetDomesticPaymentsDomesticPaymentIdParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"another aggregator's access consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tpp2.GetAccountAccessConsentsConsentIdWithResponse(ctx, revokedID, &obapi.GetAccountAccessConsentsConsentIdParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"another aggregator deletes an access consent", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tpp2.DeleteAccountAccessConsentsConsentIdWithResponse(ctx, revokedID, &obapi.DeleteAccountAccessConsentsConsentIdParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"consent body that is not JSON", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithBodyWithResponse(ctx, consentKey(), "application/json", strings.NewReader(`{"Data":`), ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Resource.InvalidFormat", ""},
		{"consent without CreditorAccount", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithBodyWithResponse(ctx, consentKey(), "application/json", bytes.NewReader(noCreditor), ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Field.Missing", "Data.Initiation.CreditorAccount"},
		{"payment without ConsentId", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := readyPSU.CreateDomesticPaymentsWithBodyWithResponse(ctx, paymentKey(), "application/json", bytes.NewReader(consentBody), ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Field.Missing", "Data.ConsentId"},
		{"consent as text/plain", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithBodyWithResponse(ctx, consentKey(), "text/plain", bytes.NewReader(consentBody), ed)
			return outcomeOf(t, res, err)
		}, 415, "OBPAY.UnsupportedMediaType", ""},
		{"payment as form data", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := readyPSU.CreateDomesticPaymentsWithBodyWithResponse(ctx, paymentKey(), "application/json", bytes.NewReader(bodyOf(paymentOn(ready, init, obapi.OBRisk1{}))),
				ed, withContentType("application/x-www-form-urlencoded"))
			return outcomeOf(t, res, err)
		}, 415, "OBPAY.UnsupportedMediaType", ""},
		{"consent body over the limit", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			big := `{"Data":"` + strings.Repeat("x", 70<<10) + `"}`
			res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithBodyWithResponse(ctx, consentKey(), "application/json", strings.NewReader(big), ed)
			return outcomeOf(t, res, err)
		}, 413, "OBPAY.RequestTooLarge", ""},
		{"unknown route", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/open-banking/v3.1/pisp/nothing-here", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := ed(ctx, req); err != nil {
				t.Fatal(err)
			}
			res, err := sb.tppAPI.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(res.Body)
			return outcome{status: res.StatusCode, body: b.Bytes(), header: res.Header}
		}, 404, "UK.OBIE.Resource.NotFound", ""},
		{"method not allowed", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.URL+pathConsents+"/"+ready, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if err := ed(ctx, req); err != nil {
				t.Fatal(err)
			}
			res, err := sb.tppAPI.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(res.Body)
			return outcome{status: res.StatusCode, body: b.Bytes(), header: res.Header}
		}, 405, "OBPAY.MethodNotAllowed", ""},

		// 7. Back office.
		{"reconcile without ledger:admin", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.ReconcileLedgerWithResponse(ctx, &obapi.ReconcileLedgerParams{}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"open an account without ledger:admin", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.tppAPI.CreateLedgerAccountWithResponse(ctx, &obapi.CreateLedgerAccountParams{},
				obapi.CreateLedgerAccountRequest{Owner: "mallory", Currency: "GBP", Nickname: "free money"}, ed)
			return outcomeOf(t, res, err)
		}, 403, "OBPAY.Forbidden", ""},
		{"open an account in an unknown currency", func(t *testing.T, ed obapi.RequestEditorFn) outcome {
			res, err := sb.admin.CreateLedgerAccountWithResponse(ctx, &obapi.CreateLedgerAccountParams{},
				obapi.CreateLedgerAccountRequest{Owner: "dave", Currency: "XXX", Nickname: "dave"}, ed)
			return outcomeOf(t, res, err)
		}, 400, "UK.OBIE.Unsupported.Currency", "Currency"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := sb.balance(t, aliceReader, alice.AccountId)
			id := uuid.NewString()
			o := tc.call(t, withInteractionID(id))
			if o.status != tc.status {
				t.Fatalf("status = %d, want %d; body %s", o.status, tc.status, o.body)
			}
			e := obError(t, o)
			if got := e.Errors[0]; got.ErrorCode != tc.code || deref(got.Path) != tc.path {
				t.Errorf("error = %s at %q, want %s at %q; body %s", got.ErrorCode, deref(got.Path), tc.code, tc.path, o.body)
			}
			if got := o.header.Get("x-fapi-interaction-id"); got != id || deref(e.Id) != id {
				t.Errorf("x-fapi-interaction-id = %q, body Id = %q, want %q echoed", got, deref(e.Id), id)
			}
			if after := sb.balance(t, aliceReader, alice.AccountId); after != before {
				t.Errorf("alice's balance went from %s to %s: money moved", before, after)
			}
		})
	}

	// Nothing of the refusals above changed a consent: the ready one still
	// pays, and the final states stay final.
	for id, want := range map[string]string{waiting: "AwaitingAuthorisation", rejected: "Rejected", used: "Consumed", ready: "Authorised"} {
		if got := sb.consentStatus(t, id); got != want {
			t.Errorf("consent status = %s, want %s", got, want)
		}
	}
	if res := sb.pay(t, readyPSU, ready, init, client.NewIdempotencyKey()); res.JSON201 == nil {
		t.Errorf("payment on the consent the refusals left alone = %d %s", res.StatusCode(), res.Body)
	}
	if got := sb.balance(t, aliceReader, alice.AccountId); got != "80.00" {
		t.Errorf("alice = %s, want 80.00 after exactly two payments of 10.00", got)
	}
	assertBalanced(t, sb)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestOpenBankingIdempotencyEndToEnd checks the OB idempotency rules of issue
// 5 item 5 through the SDK: a replay returns the current resource with no new
// effect, another body under the same key is refused and writes nothing,
// refused requests are not recorded, and keys are scoped to the client and
// the operation.
func TestOpenBankingIdempotencyEndToEnd(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	ctx := sb.ctx
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	reader := sb.accountReader(t, "alice")
	init := initiation(bob, "10.00", "idem-1")
	consentBody := obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init}}
	createConsent := func(api *client.Client, key string, body obapi.OBWriteDomesticConsent4) *obapi.CreateDomesticPaymentConsentsResponse {
		t.Helper()
		res, err := api.CreateDomesticPaymentConsentsWithResponse(ctx, &obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: key}, body)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	wantError := func(t *testing.T, o outcome, status int, code, path string) {
		t.Helper()
		if o.status != status {
			t.Fatalf("status = %d, want %d; body %s", o.status, status, o.body)
		}
		if got := obError(t, o).Errors[0]; got.ErrorCode != code || deref(got.Path) != path {
			t.Fatalf("error = %s at %q, want %s at %q", got.ErrorCode, deref(got.Path), code, path)
		}
	}

	// Consents: the replay answers 201 with the consent in its current status.
	key := client.NewIdempotencyKey()
	first := createConsent(sb.tppAPI, key, consentBody)
	if first.JSON201 == nil {
		t.Fatalf("create consent = %d %s", first.StatusCode(), first.Body)
	}
	consentID := first.JSON201.Data.ConsentId
	psu := sb.psuClient(t, consentID, "alice", alice.AccountId, "payments") // authorises the consent
	replay := createConsent(sb.tppAPI, key, consentBody)
	if replay.JSON201 == nil || replay.JSON201.Data.ConsentId != consentID || replay.JSON201.Data.Status != "Authorised" {
		t.Fatalf("consent replay = %d %s, want 201 with consent %s now Authorised", replay.StatusCode(), replay.Body, consentID)
	}
	other := consentBody
	other.Data.Initiation = initiation(bob, "10.01", "idem-1")
	wantError(t, outcomeOf(t, createConsent(sb.tppAPI, key, other), nil), 400, "UK.OBIE.Field.Invalid", "x-idempotency-key")
	// The same key belongs to another aggregator independently.
	if res := createConsent(sb.tpp2, key, consentBody); res.JSON201 == nil || res.JSON201.Data.ConsentId == consentID {
		t.Fatalf("another aggregator's consent with the same key = %d %s, want a new consent", res.StatusCode(), res.Body)
	}
	// A refused request leaves no record: the key is still free afterwards.
	refusedKey := client.NewIdempotencyKey()
	zero := consentBody
	zero.Data.Initiation = initiation(bob, "0.00", "idem-2")
	wantError(t, outcomeOf(t, createConsent(sb.tppAPI, refusedKey, zero), nil), 400, "UK.OBIE.Field.Invalid", "Data.Initiation.InstructedAmount.Amount")
	if res := createConsent(sb.tppAPI, refusedKey, other); res.JSON201 == nil {
		t.Fatalf("valid consent under the key of a refused one = %d %s, want 201", res.StatusCode(), res.Body)
	}

	// Payments.
	payKey := client.NewIdempotencyKey()
	mismatch := sb.pay(t, psu, consentID, initiation(bob, "10.01", "idem-1"), payKey)
	wantError(t, outcomeOf(t, mismatch, nil), 400, "UK.OBIE.Resource.ConsentMismatch", "Data.Initiation")
	paid := sb.pay(t, psu, consentID, init, payKey)
	if paid.JSON201 == nil {
		t.Fatalf("payment under the key of a refused one = %d %s, want 201", paid.StatusCode(), paid.Body)
	}
	again := sb.pay(t, psu, consentID, init, payKey)
	if again.JSON201 == nil || again.JSON201.Data.DomesticPaymentId != paid.JSON201.Data.DomesticPaymentId ||
		again.JSON201.Data.Status != paid.JSON201.Data.Status {
		t.Fatalf("payment replay = %d %s, want 201 with payment %s", again.StatusCode(), again.Body, paid.JSON201.Data.DomesticPaymentId)
	}
	wantError(t, outcomeOf(t, sb.pay(t, psu, consentID, initiation(bob, "99.00", "idem-1"), payKey), nil),
		400, "UK.OBIE.Field.Invalid", "x-idempotency-key")
	if got := sb.balance(t, reader, alice.AccountId); got != "90.00" {
		t.Errorf("alice = %s after one payment of 10.00 and three replays, want 90.00", got)
	}
	// Keys are scoped to the operation: the consent's key also serves a payment.
	init3 := initiation(bob, "5.00", "idem-3")
	key3 := client.NewIdempotencyKey()
	c3 := createConsent(sb.tppAPI, key3, obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: init3}})
	if c3.JSON201 == nil {
		t.Fatalf("create consent = %d %s", c3.StatusCode(), c3.Body)
	}
	psu3 := sb.psuClient(t, c3.JSON201.Data.ConsentId, "alice", alice.AccountId, "payments")
	if res := sb.pay(t, psu3, c3.JSON201.Data.ConsentId, init3, key3); res.JSON201 == nil {
		t.Fatalf("payment with the key of its consent = %d %s, want 201", res.StatusCode(), res.Body)
	}
	if got := sb.balance(t, reader, alice.AccountId); got != "85.00" {
		t.Errorf("alice = %s, want 85.00", got)
	}
	assertBalanced(t, sb)
}

// TestOpenBankingPaymentOutcomes checks the payment outcomes of issue 5 item
// 3 and the consent lifecycle around them, and that responses omit optional
// fields rather than send them empty (item 6).
func TestOpenBankingPaymentOutcomes(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	ctx := sb.ctx
	alice := sb.openAccount(t, "alice", "50.00")
	bob := sb.openAccount(t, "bob", "")
	reader := sb.accountReader(t, "alice")
	external := obapi.LedgerAccount{Account: []obapi.LedgerAccountIdentification{{
		SchemeName: "UK.OBIE.SortCodeAccountNumber", Identification: "40400412345678"}}}
	tests := []struct {
		name        string
		creditor    obapi.LedgerAccount
		amount      string
		wantStatus  string
		wantBalance string
		fundsOK     bool
	}{
		{"internal creditor", bob, "20.00", "AcceptedCreditSettlementCompleted", "30.00", true},
		{"external creditor through the settlement account", external, "5.00", "AcceptedSettlementCompleted", "25.00", true},
		{"insufficient funds", bob, "25.01", "Rejected", "25.00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			init := initiation(tc.creditor, tc.amount, "out-"+tc.amount)
			consentID := sb.createConsent(t, init)
			psu := sb.psuClient(t, consentID, "alice", alice.AccountId, "payments")
			funds, err := psu.GetDomesticPaymentConsentsConsentIdFundsConfirmationWithResponse(ctx, consentID,
				&obapi.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams{})
			if err != nil || funds.JSON200 == nil || funds.JSON200.Data.FundsAvailableResult == nil {
				t.Fatalf("funds confirmation = %v %s", err, funds.Body)
			}
			if got := funds.JSON200.Data.FundsAvailableResult.FundsAvailable; got != tc.fundsOK {
				t.Errorf("FundsAvailable = %v, want %v", got, tc.fundsOK)
			}
			res := sb.pay(t, psu, consentID, init, client.NewIdempotencyKey())
			if res.JSON201 == nil {
				t.Fatalf("payment = %d %s, want 201", res.StatusCode(), res.Body)
			}
			if got := string(res.JSON201.Data.Status); got != tc.wantStatus {
				t.Errorf("payment status = %s, want %s", got, tc.wantStatus)
			}
			if got := sb.consentStatus(t, consentID); got != "Consumed" {
				t.Errorf("consent status = %s, want Consumed", got)
			}
			if got := sb.balance(t, reader, alice.AccountId); got != tc.wantBalance {
				t.Errorf("alice = %s, want %s", got, tc.wantBalance)
			}
			get, err := psu.GetDomesticPaymentsDomesticPaymentIdWithResponse(ctx, res.JSON201.Data.DomesticPaymentId,
				&obapi.GetDomesticPaymentsDomesticPaymentIdParams{})
			if err != nil || get.JSON200 == nil || get.JSON200.Data.Status != res.JSON201.Data.Status {
				t.Fatalf("payment read back by the PSU token = %v %s", err, get.Body)
			}
		})
	}
	// The rejected payment posted nothing: alice's transactions are the
	// opening credit and the two settled debits.
	txs, err := reader.GetAccountsAccountIdTransactionsWithResponse(ctx, alice.AccountId, &obapi.GetAccountsAccountIdTransactionsParams{})
	if err != nil || txs.JSON200 == nil {
		t.Fatalf("transactions = %v %s", err, txs.Body)
	}
	var got []string
	for _, tx := range txs.JSON200.Data.Transaction {
		got = append(got, string(tx.CreditDebitIndicator)+" "+tx.Amount.Amount)
	}
	if want := "Credit 50.00,Debit 20.00,Debit 5.00"; strings.Join(got, ",") != want {
		t.Errorf("transactions = %s, want %s", strings.Join(got, ","), want)
	}

	// Optional fields are omitted, never sent empty.
	awaiting, err := sb.tppAPI.CreateDomesticPaymentConsentsWithResponse(ctx,
		&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi.OBWriteDomesticConsent4{Data: obapi.OBWriteDomesticConsent4Data{Initiation: initiation(bob, "1.00", "opt")}})
	if err != nil || awaiting.JSON201 == nil {
		t.Fatalf("create consent = %v %s", err, awaiting.Body)
	}
	access, err := sb.tppAPI.CreateAccountAccessConsentsWithResponse(ctx, &obapi.CreateAccountAccessConsentsParams{},
		obapi.OBReadConsent1{Data: obapi.OBReadConsent1Data{Permissions: []obapi.OBExternalPermissions1Code{"ReadAccountsBasic"}}})
	if err != nil || access.JSON201 == nil {
		t.Fatalf("create access consent = %v %s", err, access.Body)
	}
	accounts, err := reader.GetAccountsWithResponse(ctx, &obapi.GetAccountsParams{})
	if err != nil || accounts.JSON200 == nil {
		t.Fatalf("accounts = %v %s", err, accounts.Body)
	}
	for name, body := range map[string][]byte{
		"payment consent awaiting authorisation": awaiting.Body,
		"account access consent":                 access.Body,
		"accounts":                               accounts.Body,
		"transactions":                           txs.Body,
	} {
		var doc any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if empty := emptyValues(doc, ""); len(empty) > 0 {
			t.Errorf("%s sends empty optional fields %v: %s", name, empty, body)
		}
	}
	if strings.Contains(string(awaiting.Body), `"Debtor"`) {
		t.Errorf("a consent awaiting authorisation names a debtor: %s", awaiting.Body)
	}
	assertBalanced(t, sb)
}

// TestOpenBankingConcurrentPayments runs the concurrency acceptance of issue
// 5 against the real server: duplicates of one request, a double spend of one
// consent, and more payments than the debtor can fund.
func TestOpenBankingConcurrentPayments(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	ctx := sb.ctx
	bob := sb.openAccount(t, "bob", "")

	t.Run("50 identical requests make one payment", func(t *testing.T) {
		alice := sb.openAccount(t, "alice-dup", "100.00")
		reader := sb.accountReader(t, "alice-dup")
		p := sb.authorisedPayers(t, 1, "alice-dup", alice, bob, "30.00", "dup")[0]
		key := client.NewIdempotencyKey()
		const n = 50
		ids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := p.submit(ctx, key)
				switch {
				case err != nil:
					errs[i] = err
				case res.JSON201 == nil:
					errs[i] = fmt.Errorf("request %d = %d %s", i, res.StatusCode(), res.Body)
				default:
					ids[i] = res.JSON201.Data.DomesticPaymentId
				}
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i, id := range ids {
			if id != ids[0] {
				t.Fatalf("request %d got payment %s, request 0 got %s: want one payment", i, id, ids[0])
			}
		}
		if got := sb.balance(t, reader, alice.AccountId); got != "70.00" {
			t.Errorf("alice = %s, want 70.00 (one debit of 30.00)", got)
		}
		if debits := countDebits(t, sb, reader, alice.AccountId); debits != 1 {
			t.Errorf("alice's transactions show %d debits, want 1", debits)
		}
	})

	t.Run("two payments on one consent with different keys", func(t *testing.T) {
		alice := sb.openAccount(t, "alice-twice", "100.00")
		reader := sb.accountReader(t, "alice-twice")
		p := sb.authorisedPayers(t, 1, "alice-twice", alice, bob, "10.00", "twice")[0]
		results := make([]outcome, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := p.submit(ctx, client.NewIdempotencyKey())
				if err != nil {
					results[i] = outcome{body: []byte(err.Error())}
					return
				}
				results[i] = outcome{status: res.StatusCode(), body: res.Body}
			}()
		}
		close(start)
		wg.Wait()
		var created, refused int
		for _, o := range results {
			switch {
			case o.status == http.StatusCreated:
				created++
			case o.status == http.StatusBadRequest && obError(t, o).Errors[0].ErrorCode == "UK.OBIE.Resource.InvalidConsentStatus":
				refused++
			default:
				t.Errorf("unexpected answer %d %s", o.status, o.body)
			}
		}
		if created != 1 || refused != 1 {
			t.Errorf("%d created and %d refused with InvalidConsentStatus, want 1 and 1", created, refused)
		}
		if got := sb.balance(t, reader, alice.AccountId); got != "90.00" {
			t.Errorf("alice = %s, want 90.00 (one debit of 10.00)", got)
		}
	})

	t.Run("40 payments of 30.00 from 100.00", func(t *testing.T) {
		alice := sb.openAccount(t, "alice-many", "100.00")
		reader := sb.accountReader(t, "alice-many")
		payers := sb.authorisedPayers(t, 40, "alice-many", alice, bob, "30.00", "many")
		statuses := make([]string, len(payers))
		errs := make([]error, len(payers))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, p := range payers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := p.submit(ctx, client.NewIdempotencyKey())
				switch {
				case err != nil:
					errs[i] = err
				case res.JSON201 == nil:
					errs[i] = fmt.Errorf("payment %d = %d %s", i, res.StatusCode(), res.Body)
				default:
					statuses[i] = string(res.JSON201.Data.Status)
				}
			}()
		}
		close(start)
		wg.Wait()
		count := map[string]int{}
		for i, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
			count[statuses[i]]++
		}
		if count["AcceptedCreditSettlementCompleted"] != 3 || count["Rejected"] != 37 {
			t.Errorf("outcomes = %v, want 3 settled and 37 Rejected", count)
		}
		if got := sb.balance(t, reader, alice.AccountId); got != "10.00" {
			t.Errorf("alice = %s, want 10.00", got)
		}
		for _, p := range payers {
			if got := sb.consentStatus(t, p.consentID); got != "Consumed" {
				t.Errorf("consent %s = %s, want Consumed (settled or rejected)", p.consentID, got)
			}
		}
	})
	assertBalanced(t, sb)
}

// countDebits counts the debits on an account's first page of transactions.
func countDebits(t *testing.T, sb *sandbox, reader *client.Client, accountID string) int {
	t.Helper()
	res, err := reader.GetAccountsAccountIdTransactionsWithResponse(sb.ctx, accountID, &obapi.GetAccountsAccountIdTransactionsParams{})
	if err != nil || res.JSON200 == nil {
		t.Fatalf("transactions = %v %s", err, res.Body)
	}
	var n int
	for _, tx := range res.JSON200.Data.Transaction {
		if tx.CreditDebitIndicator == "Debit" {
			n++
		}
	}
	return n
}

// TestOpenBankingIsolation checks that one aggregator cannot read or use
// another's consents and payments, and that a PSU token reads only its own
// PSU's accounts.
func TestOpenBankingIsolation(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	ctx := sb.ctx
	// Not the sandbox's own alice and bob: their accounts would be listed too.
	alice := sb.openAccount(t, "iso-alice", "100.00")
	bob := sb.openAccount(t, "iso-bob", "20.00")
	init := initiation(bob, "10.00", "iso")
	consentID := sb.createConsent(t, init)
	psu := sb.psuClient(t, consentID, "iso-alice", alice.AccountId, "payments")
	paid := sb.pay(t, psu, consentID, init, client.NewIdempotencyKey())
	if paid.JSON201 == nil {
		t.Fatalf("payment = %d %s", paid.StatusCode(), paid.Body)
	}
	open := sb.createConsent(t, initiation(bob, "1.00", "iso-2"))
	accessID := sb.accessConsent(t, []obapi.OBExternalPermissions1Code{"ReadAccountsBasic", "ReadBalances"}, nil)
	reader := sb.psuClient(t, accessID, "iso-alice", "", "accounts")

	tpp2Key := mustKey(t, client.ES256)
	tpp2Tokens := mustTokenClient(t, s.URL, "sandbox-tpp-2", "sandbox-secret-2", tpp2Key)
	pkce, err := client.NewPKCE()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpp2Tokens.SandboxAuthorize(ctx, client.AuthorizeRequest{RedirectURI: "http://127.0.0.1/cb", Scope: "payments",
		PKCE: pkce, ConsentID: open, PSU: "iso-alice", DebtorAccount: alice.AccountId}); err == nil {
		t.Errorf("the second aggregator got an authorization code for the first one's consent")
	}

	tests := []struct {
		name string
		call func() (any, error)
	}{
		{"read the consent", func() (any, error) {
			return sb.tpp2.GetDomesticPaymentConsentsConsentIdWithResponse(ctx, consentID, &obapi.GetDomesticPaymentConsentsConsentIdParams{})
		}},
		{"confirm the consent's funds", func() (any, error) {
			return sb.tpp2.GetDomesticPaymentConsentsConsentIdFundsConfirmationWithResponse(ctx, open, &obapi.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams{})
		}},
		{"read the payment", func() (any, error) {
			return sb.tpp2.GetDomesticPaymentsDomesticPaymentIdWithResponse(ctx, paid.JSON201.Data.DomesticPaymentId, &obapi.GetDomesticPaymentsDomesticPaymentIdParams{})
		}},
		{"pay on the consent", func() (any, error) {
			return sb.tpp2.CreateDomesticPaymentsWithResponse(ctx, &obapi.CreateDomesticPaymentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
				obapi.OBWriteDomestic2{Data: obapi.OBWriteDomestic2Data{ConsentId: open, Initiation: initiation(bob, "1.00", "iso-2")}})
		}},
		{"read the access consent", func() (any, error) {
			return sb.tpp2.GetAccountAccessConsentsConsentIdWithResponse(ctx, accessID, &obapi.GetAccountAccessConsentsConsentIdParams{})
		}},
		{"revoke the access consent", func() (any, error) {
			return sb.tpp2.DeleteAccountAccessConsentsConsentIdWithResponse(ctx, accessID, &obapi.DeleteAccountAccessConsentsConsentIdParams{})
		}},
		{"read the PSU's accounts without a consent", func() (any, error) {
			return sb.tpp2.GetAccountsWithResponse(ctx, &obapi.GetAccountsParams{})
		}},
		{"read another PSU's account", func() (any, error) {
			return reader.GetAccountsAccountIdWithResponse(ctx, bob.AccountId, &obapi.GetAccountsAccountIdParams{})
		}},
		{"read another PSU's balances", func() (any, error) {
			return reader.GetAccountsAccountIdBalancesWithResponse(ctx, bob.AccountId, &obapi.GetAccountsAccountIdBalancesParams{})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.call()
			o := outcomeOf(t, res, err)
			if o.status != http.StatusForbidden {
				t.Fatalf("= %d %s, want 403", o.status, o.body)
			}
			if code := obError(t, o).Errors[0].ErrorCode; code != "OBPAY.Forbidden" {
				t.Errorf("ErrorCode = %s, want OBPAY.Forbidden", code)
			}
		})
	}
	// The PSU token lists only its PSU's accounts, and the refusals changed
	// nothing.
	list, err := reader.GetAccountsWithResponse(ctx, &obapi.GetAccountsParams{})
	if err != nil || list.JSON200 == nil {
		t.Fatalf("accounts = %v %s", err, list.Body)
	}
	if got := list.JSON200.Data.Account; len(got) != 1 || got[0].AccountId != alice.AccountId {
		t.Errorf("alice's token lists %s, want only %s", list.Body, alice.AccountId)
	}
	if got := sb.consentStatus(t, open); got != "AwaitingAuthorisation" {
		t.Errorf("the first aggregator's open consent = %s, want AwaitingAuthorisation", got)
	}
	if got := sb.balance(t, reader, alice.AccountId); got != "90.00" {
		t.Errorf("alice = %s, want 90.00", got)
	}
	assertBalanced(t, sb)
}

// submitAll pays every payer, a few at a time, and returns the first error.
func submitAll(ctx context.Context, payers []payer) error {
	errs := make(chan error, len(payers))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, p := range payers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := p.submit(ctx, client.NewIdempotencyKey())
			switch {
			case err != nil:
				errs <- err
			case res.JSON201 == nil || res.JSON201.Data.Status == "Rejected":
				errs <- fmt.Errorf("payment = %d %s, want a settled payment", res.StatusCode(), res.Body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// transactionPass reads every page of an account's transactions from the
// first, following Links.Next as given, and returns the transactions in page
// order and the number of pages.
func transactionPass(ctx context.Context, reader *client.Client, accountID string, from time.Time) ([]obapi.OBTransaction6, int, error) {
	fromParam := from.Format(time.RFC3339Nano)
	res, err := reader.GetAccountsAccountIdTransactionsWithResponse(ctx, accountID,
		&obapi.GetAccountsAccountIdTransactionsParams{FromBookingDateTime: &fromParam})
	if err != nil {
		return nil, 0, err
	}
	if res.JSON200 == nil {
		return nil, 0, fmt.Errorf("first page = %d %s", res.StatusCode(), res.Body)
	}
	page := *res.JSON200
	var out []obapi.OBTransaction6
	for pages := 1; ; pages++ {
		out = append(out, page.Data.Transaction...)
		if page.Links.Next == nil {
			return out, pages, nil
		}
		next, err := url.Parse(*page.Links.Next)
		if err != nil {
			return nil, 0, err
		}
		if got := next.Query().Get("fromBookingDateTime"); got == "" {
			return nil, 0, fmt.Errorf("Links.Next %s drops the fromBookingDateTime filter", next)
		}
		if page, err = getJSON[obapi.OBReadTransaction6](ctx, reader, next.String()); err != nil {
			return nil, 0, err
		}
	}
}

// getJSON GETs url with the client's DPoP transport and decodes a 200 answer.
func getJSON[T any](ctx context.Context, c *client.Client, url string) (T, error) {
	var v T
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return v, err
	}
	res, err := c.HTTPClient().Do(req)
	if err != nil {
		return v, err
	}
	defer res.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(res.Body); err != nil {
		return v, err
	}
	if res.StatusCode != http.StatusOK {
		return v, fmt.Errorf("GET %s = %d %s", url, res.StatusCode, b.Bytes())
	}
	return v, json.Unmarshal(b.Bytes(), &v)
}

// TestOpenBankingPaginationWhileBooking pages through an account's
// transactions over and over while new payments are booked: every pass
// returns each transaction at most once, in booking order, with every
// transaction an earlier pass saw, and the filter carried by Links.Next
// holds on every page; the pass after the booking sees each exactly once.
func TestOpenBankingPaginationWhileBooking(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	ctx := sb.ctx
	alice := sb.openAccount(t, "alice", "1000.00")
	bob := sb.openAccount(t, "bob", "")
	reader := sb.accountReader(t, "alice")
	// The filter starts after the opening credit: no page may show it.
	time.Sleep(20 * time.Millisecond)
	from := time.Now()
	time.Sleep(20 * time.Millisecond)

	const before, during = 110, 40 // the server's pages hold 100 transactions
	payers := sb.authorisedPayers(t, before+during, "alice", alice, bob, "1.00", "page")
	if err := submitAll(ctx, payers[:before]); err != nil {
		t.Fatal(err)
	}

	booked := make(chan error, 1)
	go func() { booked <- submitAll(ctx, payers[before:]) }()
	var (
		prev          map[string]bool
		passes, multi int
		bookingErr    error
	)
	for done := false; !done; {
		select {
		case bookingErr = <-booked:
			done = true // one more pass below, after the last booking
		default:
		}
		txs, pages, err := transactionPass(ctx, reader, alice.AccountId, from)
		if err != nil {
			t.Fatal(err)
		}
		passes++
		if pages > 1 {
			multi++
		}
		seen := map[string]bool{}
		for i, tx := range txs {
			if seen[tx.TransactionId] {
				t.Fatalf("pass %d: transaction %s appears twice", passes, tx.TransactionId)
			}
			seen[tx.TransactionId] = true
			if tx.CreditDebitIndicator != "Debit" || tx.BookingDateTime.Before(from) {
				t.Fatalf("pass %d: %s %s booked %s is outside the filter from %s", passes, tx.CreditDebitIndicator,
					tx.Amount.Amount, tx.BookingDateTime, from)
			}
			if i > 0 && tx.BookingDateTime.Before(txs[i-1].BookingDateTime) {
				t.Fatalf("pass %d: transactions out of booking order at %d", passes, i)
			}
		}
		for id := range prev {
			if !seen[id] {
				t.Fatalf("pass %d skipped transaction %s that pass %d returned", passes, id, passes-1)
			}
		}
		prev = seen
	}
	if bookingErr != nil {
		t.Fatal(bookingErr)
	}
	if len(prev) != before+during {
		t.Errorf("the last pass returned %d transactions, want %d", len(prev), before+during)
	}
	if passes < 2 || multi < 2 {
		t.Errorf("%d passes, %d of them over several pages: the paging did not overlap the booking", passes, multi)
	}
	t.Logf("%d passes over the pages while %d payments were booked", passes, during)
	assertBalanced(t, sb)
}
