package integration

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi4"
)

// initiationV4 is initiation in the v4.0 shape: the creditor's Name is required and the
// reference is structured remittance information.
func initiationV4(creditor obapi4.OBWriteDomestic2DataInitiationCreditorAccount, amount, ref string) obapi4.OBWriteDomestic2DataInitiation {
	return obapi4.OBWriteDomestic2DataInitiation{
		InstructionIdentification: ref,
		EndToEndIdentification:    ref,
		InstructedAmount:          obapi4.OBActiveOrHistoricCurrencyAndAmount{Amount: amount, Currency: "GBP"},
		CreditorAccount:           creditor,
		RemittanceInformation: &obapi4.OBRemittanceInformation2{
			Structured: &[]obapi4.OBRemittanceInformationStructured{
				{CreditorReferenceInformation: &obapi4.OBCreditorReferenceInformation{Reference: &ref}},
			},
			Unstructured: &[]string{"invoice " + ref},
		},
	}
}

// v4Client is a ClientV4 with sb's aggregator key and tokens, whose every answer contract
// checks.
func (sb *sandbox) v4Client(t *testing.T, contract *v4Contract, tokens client.TokenSource) *client.ClientV4 {
	t.Helper()
	c, err := client.NewV4(sb.s.URL, sb.tppKey, tokens, client.WithHTTPClient(contract.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The sandbox flow of TestSandboxPaymentFlowEndToEnd on Open Banking v4.0, through the SDK's
// ClientV4: the back office (v3.1, its only contract) opens the accounts, the aggregator pays
// on v4.0 (and then tries a payment the debtor cannot fund), and every v4.0 answer, nonce
// challenges included, is what openapi-v4.yaml says.
func TestSandboxPaymentFlowV4EndToEnd(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	contract := newV4Contract(t, s.URL)
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	tpp := sb.v4Client(t, contract, sb.tpp.ClientCredentialsSource("accounts", "payments"))

	creditor := obapi4.OBWriteDomestic2DataInitiationCreditorAccount{
		SchemeName:     obapi4.OBInternalAccountIdentification4Code(bob.Account[0].SchemeName),
		Identification: bob.Account[0].Identification,
		Name:           "Bob",
	}
	init := initiationV4(creditor, "30.00", "inv-v4-1")
	consent, err := tpp.CreateDomesticPaymentConsentsWithResponse(sb.ctx,
		&obapi4.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi4.OBWriteDomesticConsent4{Data: obapi4.OBWriteDomesticConsent4Data{Initiation: init}})
	if err != nil || consent.JSON201 == nil {
		t.Fatalf("create consent = %v %s", err, body(consent))
	}
	if got := consent.JSON201.Data.Status; got != obapi4.OBWriteDomesticConsentResponse5DataStatusAWAU {
		t.Errorf("consent status = %s, want AWAU", got)
	}
	if diff := cmp.Diff(init, consent.JSON201.Data.Initiation); diff != "" {
		t.Errorf("consent Initiation is not the one sent (-sent +answered):\n%s", diff)
	}
	consentID := consent.JSON201.Data.ConsentId

	payToken, err := sb.authorize(consentID, "alice", alice.AccountId, "payments")
	if err != nil {
		t.Fatal(err)
	}
	psu := sb.v4Client(t, contract, sb.tpp.RefreshingSource(payToken))
	read, err := tpp.GetDomesticPaymentConsentsConsentIdWithResponse(sb.ctx, consentID, &obapi4.GetDomesticPaymentConsentsConsentIdParams{})
	if err != nil || read.JSON200 == nil || read.JSON200.Data.Status != obapi4.OBWriteDomesticConsentResponse5DataStatusAUTH {
		t.Errorf("authorised consent = %v %s, want AUTH", err, body(read))
	}
	funds, err := psu.GetDomesticPaymentConsentsConsentIdFundsConfirmationWithResponse(sb.ctx, consentID,
		&obapi4.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams{})
	if err != nil || funds.JSON200 == nil || funds.JSON200.Data.FundsAvailableResult == nil || !funds.JSON200.Data.FundsAvailableResult.FundsAvailable {
		t.Errorf("funds confirmation = %v %s, want available", err, body(funds))
	}

	// A new payment is RCVD; GET, payment-details and a replay show its current status.
	key := client.NewIdempotencyKey()
	payBody := obapi4.OBWriteDomestic2{Data: obapi4.OBWriteDomestic2Data{ConsentId: consentID, Initiation: init}}
	res, err := psu.CreateDomesticPaymentsWithResponse(sb.ctx, &obapi4.CreateDomesticPaymentsParams{XIdempotencyKey: key}, payBody)
	if err != nil || res.JSON201 == nil {
		t.Fatalf("payment = %v %s", err, body(res))
	}
	if got := res.JSON201.Data.Status; got != obapi4.OBWriteDomesticResponse5DataStatusRCVD {
		t.Errorf("new payment status = %s, want RCVD", got)
	}
	if err := client.CheckPaymentV4(res.JSON201); err != nil {
		t.Errorf("CheckPaymentV4 = %v, want nil", err)
	}
	if res.JSON201.Data.StatusReason != nil {
		t.Errorf("a settled payment carries StatusReason %+v", *res.JSON201.Data.StatusReason)
	}
	paymentID := res.JSON201.Data.DomesticPaymentId
	get, err := tpp.GetDomesticPaymentsDomesticPaymentIdWithResponse(sb.ctx, paymentID, &obapi4.GetDomesticPaymentsDomesticPaymentIdParams{})
	if err != nil || get.JSON200 == nil {
		t.Fatalf("get payment = %v %s", err, body(get))
	}
	if got := get.JSON200.Data.Status; got != obapi4.OBWriteDomesticResponse5DataStatusACCC {
		t.Errorf("payment read back = %s, want ACCC (the creditor banks here)", got)
	}
	if diff := cmp.Diff(init, get.JSON200.Data.Initiation); diff != "" {
		t.Errorf("payment Initiation is not the consent's (-consent +payment):\n%s", diff)
	}
	replay, err := psu.CreateDomesticPaymentsWithResponse(sb.ctx, &obapi4.CreateDomesticPaymentsParams{XIdempotencyKey: key}, payBody)
	if err != nil || replay.JSON201 == nil {
		t.Fatalf("replayed payment = %v %s", err, body(replay))
	}
	if replay.JSON201.Data.DomesticPaymentId != paymentID || replay.JSON201.Data.Status != obapi4.OBWriteDomesticResponse5DataStatusACCC {
		t.Errorf("replay = %s %s, want payment %s ACCC", replay.JSON201.Data.DomesticPaymentId, replay.JSON201.Data.Status, paymentID)
	}
	details, err := tpp.GetDomesticPaymentsDomesticPaymentIdPaymentDetailsWithResponse(sb.ctx, paymentID,
		&obapi4.GetDomesticPaymentsDomesticPaymentIdPaymentDetailsParams{})
	if err != nil || details.JSON200 == nil || details.JSON200.Data.PaymentStatus == nil || len(*details.JSON200.Data.PaymentStatus) != 1 {
		t.Fatalf("payment-details = %v %s", err, body(details))
	}
	if d := (*details.JSON200.Data.PaymentStatus)[0]; d.Status != "ACCC" || d.PaymentTransactionId == "" || d.PaymentTransactionId == paymentID || d.StatusDetail != nil {
		t.Errorf("payment-details = %+v, want ACCC with the ledger transfer and no StatusDetail", d)
	}
	spent, err := tpp.GetDomesticPaymentConsentsConsentIdWithResponse(sb.ctx, consentID, &obapi4.GetDomesticPaymentConsentsConsentIdParams{})
	if err != nil || spent.JSON200 == nil || spent.JSON200.Data.Status != obapi4.OBWriteDomesticConsentResponse5DataStatusCOND {
		t.Errorf("paid consent = %v %s, want COND", err, body(spent))
	}

	// The payer's balances and transactions, through a v4.0 account access consent.
	perms := []obapi4.OBInternalPermissions1Code{
		obapi4.OBInternalPermissions1CodeReadAccountsBasic, obapi4.OBInternalPermissions1CodeReadBalances,
		obapi4.OBInternalPermissions1CodeReadTransactionsBasic, obapi4.OBInternalPermissions1CodeReadTransactionsCredits,
		obapi4.OBInternalPermissions1CodeReadTransactionsDebits,
	}
	ac, err := tpp.CreateAccountAccessConsentsWithResponse(sb.ctx, &obapi4.CreateAccountAccessConsentsParams{},
		obapi4.OBReadConsent1{Data: obapi4.OBReadConsent1Data{Permissions: perms}})
	if err != nil || ac.JSON201 == nil {
		t.Fatalf("account access consent = %v %s", err, body(ac))
	}
	if got := ac.JSON201.Data.Status; got != "AWAU" {
		t.Errorf("account access consent status = %s, want AWAU", got)
	}
	readToken, err := sb.authorize(ac.JSON201.Data.ConsentId, "alice", "", "accounts")
	if err != nil {
		t.Fatal(err)
	}
	reader := sb.v4Client(t, contract, sb.tpp.RefreshingSource(readToken))
	bal, err := reader.GetAccountsAccountIdBalancesWithResponse(sb.ctx, alice.AccountId, &obapi4.GetAccountsAccountIdBalancesParams{})
	if err != nil || bal.JSON200 == nil {
		t.Fatalf("balances = %v %s", err, body(bal))
	}
	types := map[obapi4.OBBalanceType1Code]string{}
	for _, b := range bal.JSON200.Data.Balance {
		types[b.Type] = b.Amount.Amount
	}
	if want := map[obapi4.OBBalanceType1Code]string{"ITAV": "70.00", "ITBD": "70.00"}; !cmp.Equal(types, want) {
		t.Errorf("balances = %v, want %v", types, want)
	}
	txs, err := reader.GetAccountsAccountIdTransactionsWithResponse(sb.ctx, alice.AccountId, &obapi4.GetAccountsAccountIdTransactionsParams{})
	if err != nil || txs.JSON200 == nil || txs.JSON200.Data.Transaction == nil {
		t.Fatalf("transactions = %v %s", err, body(txs))
	}
	var debits int
	for _, tx := range *txs.JSON200.Data.Transaction {
		if tx.CreditDebitIndicator == "Debit" && tx.Amount.Amount == "30.00" && tx.Status == obapi4.ExternalEntryStatus1CodeBOOK {
			debits++
		}
	}
	if debits != 1 {
		t.Errorf("transactions show %d booked debits of 30.00, want 1: %s", debits, txs.Body)
	}

	// A payment alice's 70.00 cannot fund: 201 RJCT with StatusReason AM04, nothing booked.
	big := initiationV4(creditor, "500.00", "inv-v4-2")
	consent, err = tpp.CreateDomesticPaymentConsentsWithResponse(sb.ctx,
		&obapi4.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi4.OBWriteDomesticConsent4{Data: obapi4.OBWriteDomesticConsent4Data{Initiation: big}})
	if err != nil || consent.JSON201 == nil {
		t.Fatalf("create consent = %v %s", err, body(consent))
	}
	bigToken, err := sb.authorize(consent.JSON201.Data.ConsentId, "alice", alice.AccountId, "payments")
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := sb.v4Client(t, contract, sb.tpp.RefreshingSource(bigToken)).CreateDomesticPaymentsWithResponse(sb.ctx,
		&obapi4.CreateDomesticPaymentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi4.OBWriteDomestic2{Data: obapi4.OBWriteDomestic2Data{ConsentId: consent.JSON201.Data.ConsentId, Initiation: big}})
	if err != nil || rejected.JSON201 == nil {
		t.Fatalf("unfunded payment = %v %s", err, body(rejected))
	}
	am04, insufficient := "AM04", "InsufficientFunds"
	if diff := cmp.Diff(&[]obapi4.OBStatusReason{{StatusReasonCode: &am04, StatusReasonDescription: &insufficient}}, rejected.JSON201.Data.StatusReason); rejected.JSON201.Data.Status != "RJCT" || diff != "" {
		t.Errorf("unfunded payment = %s, StatusReason (-want +got):\n%s", rejected.JSON201.Data.Status, diff)
	}
	if err := client.CheckPaymentV4(rejected.JSON201); !errors.Is(err, client.ErrInsufficientFunds) {
		t.Errorf("CheckPaymentV4(RJCT) = %v, want ErrInsufficientFunds", err)
	}
	rejectedDetails, err := tpp.GetDomesticPaymentsDomesticPaymentIdPaymentDetailsWithResponse(sb.ctx, rejected.JSON201.Data.DomesticPaymentId,
		&obapi4.GetDomesticPaymentsDomesticPaymentIdPaymentDetailsParams{})
	if err != nil || rejectedDetails.JSON200 == nil || rejectedDetails.JSON200.Data.PaymentStatus == nil || len(*rejectedDetails.JSON200.Data.PaymentStatus) != 1 {
		t.Fatalf("payment-details = %v %s", err, body(rejectedDetails))
	}
	if d := (*rejectedDetails.JSON200.Data.PaymentStatus)[0]; d.Status != "RJCT" || d.StatusDetail == nil || d.StatusDetail.StatusReason == nil || *d.StatusDetail.StatusReason != "AM04" {
		t.Errorf("payment-details of the unfunded payment = %s, want RJCT with StatusDetail AM04", rejectedDetails.Body)
	}

	assertBalanced(t, sb)
	checked := contract.Checked()
	for _, want := range []string{
		"POST /open-banking/v4.0/pisp/domestic-payment-consents 201",
		"POST /open-banking/v4.0/pisp/domestic-payments 201",
		"GET /open-banking/v4.0/pisp/domestic-payments/{DomesticPaymentId}/payment-details 200",
		"GET /open-banking/v4.0/aisp/accounts/{AccountId}/balances 200",
	} {
		if !slices.Contains(checked, want) {
			t.Errorf("the contract checked %q, not %q", checked, want)
		}
	}
	t.Logf("answers checked against openapi-v4.yaml: %q", checked)
}
