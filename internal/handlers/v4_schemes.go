package handlers

import (
	"net/http"

	"github.com/obpay/payments/internal/obapi4"
)

// v4Schemes are the account identification schemes a v4.0 Initiation may
// name (OB's UK.OBIE namespace of OBInternalAccountIdentification4Code).
// The ledger books UK.OBIE.SortCodeAccountNumber accounts of this bank;
// any other creditor is paid out through the settlement account.
var v4Schemes = map[string]bool{
	"UK.OBIE.BBAN": true, "UK.OBIE.IBAN": true, "UK.OBIE.PAN": true, "UK.OBIE.Paym": true,
	"UK.OBIE.SortCodeAccountNumber": true, "UK.OBIE.Wallet": true,
}

// checkSchemesV4 refuses a v4.0 Initiation whose creditor or debtor account
// names a scheme outside v4Schemes: 400 U027 (v3.1's
// UK.OBIE.Unsupported.Scheme, translated) at the member.
func checkSchemesV4(in obapi4.OBWriteDomestic2DataInitiation) error {
	if !v4Schemes[in.CreditorAccount.SchemeName] {
		return NewAPIError(http.StatusBadRequest, CodeUnsupportedScheme, "Identification scheme not supported", "Data.Initiation.CreditorAccount.SchemeName")
	}
	if d := in.DebtorAccount; d != nil && !v4Schemes[d.SchemeName] {
		return NewAPIError(http.StatusBadRequest, CodeUnsupportedScheme, "Identification scheme not supported", "Data.Initiation.DebtorAccount.SchemeName")
	}
	return nil
}
