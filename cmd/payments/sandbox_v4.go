package main

import (
	"context"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi4"
)

// payV4 is the aggregator's part of the flow on Open Banking v4.0: the v4 Initiation (the
// creditor's Name is required, the reference is structured remittance information), a new
// payment RCVD and then its current status and payment-details, and the balances through a v4
// account access consent.
func (r *sandboxRun) payV4(ctx context.Context, p sandboxParties) error {
	api, err := client.NewV4(r.base, p.key, p.tpp.ClientCredentialsSource("payments"))
	if err != nil {
		return err
	}
	reference := "sbx-" + p.suffix
	initiation := obapi4.OBWriteDomestic2DataInitiation{
		InstructionIdentification: "sbx-" + p.suffix,
		EndToEndIdentification:    "sbx-" + p.suffix,
		InstructedAmount:          obapi4.OBActiveOrHistoricCurrencyAndAmount{Amount: r.amount, Currency: "GBP"},
		CreditorAccount: obapi4.OBWriteDomestic2DataInitiationCreditorAccount{
			SchemeName:     obapi4.OBInternalAccountIdentification4Code(p.creditor.Account[0].SchemeName),
			Identification: p.creditor.Account[0].Identification,
			Name:           p.payee,
		},
		RemittanceInformation: &obapi4.OBRemittanceInformation2{Structured: &[]obapi4.OBRemittanceInformationStructured{
			{CreditorReferenceInformation: &obapi4.OBCreditorReferenceInformation{Reference: &reference}},
		}},
	}
	consent, err := api.CreateDomesticPaymentConsentsWithResponse(ctx,
		&obapi4.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi4.OBWriteDomesticConsent4{Data: obapi4.OBWriteDomesticConsent4Data{Initiation: initiation}})
	if err := expect("create payment consent", err, consent, 201); err != nil {
		return err
	}
	consentID := consent.JSON201.Data.ConsentId
	r.say("%s created v4.0 payment consent %s for %s GBP: %s", sandboxTPPID, consentID, r.amount, consent.JSON201.Data.Status)

	// The customer approves it at the authorization server, as on v3.1.
	psuToken, err := r.approve(ctx, p, consentID)
	if err != nil {
		return err
	}
	psu, err := client.NewV4(r.base, p.key, p.tpp.RefreshingSource(psuToken))
	if err != nil {
		return err
	}
	funds, err := psu.GetDomesticPaymentConsentsConsentIdFundsConfirmationWithResponse(ctx, consentID, &obapi4.GetDomesticPaymentConsentsConsentIdFundsConfirmationParams{})
	if err := expect("funds confirmation", err, funds, 200); err != nil {
		return err
	}
	available := funds.JSON200.Data.FundsAvailableResult != nil && funds.JSON200.Data.FundsAvailableResult.FundsAvailable
	r.say("funds confirmation: available = %v", available)

	// The payment: RCVD when created; its current status when read back.
	payment, err := psu.CreateDomesticPaymentsWithResponse(ctx,
		&obapi4.CreateDomesticPaymentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi4.OBWriteDomestic2{Data: obapi4.OBWriteDomestic2Data{ConsentId: consentID, Initiation: initiation}})
	if err := expect("create payment", err, payment, 201); err != nil {
		return err
	}
	if err := client.CheckPaymentV4(payment.JSON201); err != nil {
		return err
	}
	paymentID := payment.JSON201.Data.DomesticPaymentId
	r.say("payment %s: %s", paymentID, payment.JSON201.Data.Status)
	status, err := psu.GetDomesticPaymentsDomesticPaymentIdWithResponse(ctx, paymentID, &obapi4.GetDomesticPaymentsDomesticPaymentIdParams{})
	if err := expect("read payment", err, status, 200); err != nil {
		return err
	}
	r.say("payment %s read back: %s", paymentID, status.JSON200.Data.Status)
	details, err := psu.GetDomesticPaymentsDomesticPaymentIdPaymentDetailsWithResponse(ctx, paymentID, &obapi4.GetDomesticPaymentsDomesticPaymentIdPaymentDetailsParams{})
	if err := expect("read payment details", err, details, 200); err != nil {
		return err
	}
	if details.JSON200.Data.PaymentStatus != nil {
		for _, d := range *details.JSON200.Data.PaymentStatus {
			r.say("payment %s details: %s, ledger transaction %s", paymentID, d.Status, d.PaymentTransactionId)
		}
	}

	// The payer's balances, through a v4 account access consent.
	balances, err := readBalancesV4(ctx, r.base, p.key, p.tpp, p.payer, p.debtor.AccountId)
	if err != nil {
		return err
	}
	for _, b := range balances {
		r.say("%s's balance %s: %s %s %s", p.payer, b.Type, b.CreditDebitIndicator, b.Amount.Amount, b.Amount.Currency)
	}
	return nil
}

// readBalancesV4 is readBalances on v4.0.
func readBalancesV4(ctx context.Context, base string, key *client.Key, tpp *client.TokenClient, psu, accountID string) ([]obapi4.OBReadBalance1DataBalance, error) {
	api, err := client.NewV4(base, key, tpp.ClientCredentialsSource("accounts"))
	if err != nil {
		return nil, err
	}
	consent, err := api.CreateAccountAccessConsentsWithResponse(ctx,
		&obapi4.CreateAccountAccessConsentsParams{},
		obapi4.OBReadConsent1{Data: obapi4.OBReadConsent1Data{Permissions: []obapi4.OBInternalPermissions1Code{
			obapi4.OBInternalPermissions1CodeReadAccountsBasic, obapi4.OBInternalPermissions1CodeReadBalances,
		}}})
	if err := expect("create account access consent", err, consent, 201); err != nil {
		return nil, err
	}
	tok, err := sandboxApprove(ctx, tpp, "accounts", consent.JSON201.Data.ConsentId, psu, "")
	if err != nil {
		return nil, err
	}
	psuAPI, err := client.NewV4(base, key, tpp.RefreshingSource(tok))
	if err != nil {
		return nil, err
	}
	res, err := psuAPI.GetAccountsAccountIdBalancesWithResponse(ctx, accountID, &obapi4.GetAccountsAccountIdBalancesParams{})
	if err := expect("read balances", err, res, 200); err != nil {
		return nil, err
	}
	return res.JSON200.Data.Balance, nil
}
