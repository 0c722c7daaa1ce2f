package main

import (
	"context"
	"fmt"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi4"
)

// payV4 is the aggregator's part on Open Banking v4.0 (paths under /open-banking/v4.0): the
// same calls as on v3.1 with the v4.0 shapes. The creditor's name is required, the reference
// the creditor sees is structured remittance information, and a new payment answers RCVD (or
// RJCT with StatusReason AM04 when the debtor account could not fund it).
func payV4(ctx context.Context, base string, key *client.Key, tpp *client.TokenClient, c customer, payee, creditor, amount, ref string) error {
	api, err := client.NewV4(base, key, tpp.ClientCredentialsSource("payments"))
	if err != nil {
		return err
	}
	initiation := obapi4.OBWriteDomestic2DataInitiation{
		InstructionIdentification: ref,
		EndToEndIdentification:    ref,
		InstructedAmount:          obapi4.OBActiveOrHistoricCurrencyAndAmount{Amount: amount, Currency: "GBP"},
		CreditorAccount: obapi4.OBWriteDomestic2DataInitiationCreditorAccount{
			SchemeName:     "UK.OBIE.SortCodeAccountNumber",
			Identification: creditor,
			Name:           payee, // required in v4.0
		},
		RemittanceInformation: &obapi4.OBRemittanceInformation2{Structured: &[]obapi4.OBRemittanceInformationStructured{
			{CreditorReferenceInformation: &obapi4.OBCreditorReferenceInformation{Reference: &ref}}, // v3.1's Reference
		}},
	}
	consent, err := api.CreateDomesticPaymentConsentsWithResponse(ctx,
		&obapi4.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi4.OBWriteDomesticConsent4{Data: obapi4.OBWriteDomesticConsent4Data{Initiation: initiation}})
	if err != nil || consent.JSON201 == nil {
		return failed("create consent", err, consent)
	}
	consentID := consent.JSON201.Data.ConsentId
	fmt.Printf("consent %s: %s\n", consentID, consent.JSON201.Data.Status) // AWAU

	// The customer approves as on v3.1; the token serves both versions.
	psuToken, err := c.approve(ctx, tpp, consentID)
	if err != nil {
		return err
	}
	psu, err := client.NewV4(base, key, tpp.RefreshingSource(psuToken))
	if err != nil {
		return err
	}

	// The payment, on the version the consent was created on.
	payment, err := psu.CreateDomesticPaymentsWithResponse(ctx,
		&obapi4.CreateDomesticPaymentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
		obapi4.OBWriteDomestic2{Data: obapi4.OBWriteDomestic2Data{ConsentId: consentID, Initiation: initiation}})
	if err != nil {
		return fmt.Errorf("pay: %w", err) // no answer: retry with the same idempotency key
	}
	// Error answers carry v4.0 codes (U002, U009, U042, ...), in APIError.ErrorCode.
	if err := client.ResponseError(payment.HTTPResponse, payment.Body); err != nil {
		return fmt.Errorf("pay: %w", err)
	}
	// 201 RJCT (StatusReason AM04): the debtor account could not fund the payment.
	if err := client.CheckPaymentV4(payment.JSON201); err != nil {
		return err
	}
	fmt.Printf("payment %s: %s\n", payment.JSON201.Data.DomesticPaymentId, payment.JSON201.Data.Status) // RCVD

	// Read back, the payment shows its current status: ACCC here, the creditor banking here.
	status, err := psu.GetDomesticPaymentsDomesticPaymentIdWithResponse(ctx, payment.JSON201.Data.DomesticPaymentId, &obapi4.GetDomesticPaymentsDomesticPaymentIdParams{})
	if err != nil || status.JSON200 == nil {
		return failed("read payment", err, status)
	}
	fmt.Printf("payment %s read back: %s\n", status.JSON200.Data.DomesticPaymentId, status.JSON200.Data.Status)
	return nil
}
