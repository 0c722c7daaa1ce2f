package handlers

import (
	"errors"
	"net/http"
	"testing"

	"github.com/obpay/payments/internal/obapi4"
)

// TestCheckSchemesV4: a v4.0 Initiation naming an identification scheme
// outside OB's UK.OBIE list is 400 U027 at the member; OB's schemes pass.
func TestCheckSchemesV4(t *testing.T) {
	debtor := func(scheme string) *obapi4.OBWriteDomestic2DataInitiationDebtorAccount {
		return &obapi4.OBWriteDomestic2DataInitiationDebtorAccount{SchemeName: scheme, Identification: "40400112345678"}
	}
	tests := []struct {
		name     string
		creditor string
		debtor   *obapi4.OBWriteDomestic2DataInitiationDebtorAccount
		path     string
	}{
		{"sort code", "UK.OBIE.SortCodeAccountNumber", nil, ""},
		{"IBAN, debtor by sort code", "UK.OBIE.IBAN", debtor("UK.OBIE.SortCodeAccountNumber"), ""},
		{"every OB scheme", "UK.OBIE.Wallet", debtor("UK.OBIE.Paym"), ""},
		{"unknown creditor scheme", "UK.OBIE.Carrier", nil, "Data.Initiation.CreditorAccount.SchemeName"},
		{"another namespace", "BANKX.Account", nil, "Data.Initiation.CreditorAccount.SchemeName"},
		{"scheme in the wrong case", "uk.obie.iban", nil, "Data.Initiation.CreditorAccount.SchemeName"},
		{"unknown debtor scheme", "UK.OBIE.IBAN", debtor("UK.OBIE.Other"), "Data.Initiation.DebtorAccount.SchemeName"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := obapi4.OBWriteDomestic2DataInitiation{DebtorAccount: tc.debtor}
			in.CreditorAccount.SchemeName = tc.creditor
			err := checkSchemesV4(in)
			if tc.path == "" {
				if err != nil {
					t.Fatalf("checkSchemesV4 = %v, want nil", err)
				}
				return
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || len(apiErr.Details) != 1 {
				t.Fatalf("checkSchemesV4 = %v, want one 400 detail", err)
			}
			if got := toV4(apiErr.Status, apiErr.Details[0]); got.ErrorCode != "U027" || got.Path != tc.path {
				t.Fatalf("v4 detail = %+v, want U027 at %s", got, tc.path)
			}
		})
	}
}
