package postgres_test

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/postgres"
	"github.com/obpay/payments/internal/testdb"
)

// TestStatusNamesMatchTheSchema checks the schema's CHECK constraints on
// status, kind and direction names against the Go constants, so that a name
// lives in one place and the other side cannot drift from it.
func TestStatusNamesMatchTheSchema(t *testing.T) {
	db := testdb.Open(t)
	quoted := regexp.MustCompile(`'([^']*)'`)
	values := func(constraint string) []string {
		t.Helper()
		var def string
		if err := db.Raw(`SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = ?`, constraint).
			Scan(&def).Error; err != nil || def == "" {
			t.Fatalf("constraint %s: %q, %v", constraint, def, err)
		}
		var out []string
		for _, m := range quoted.FindAllStringSubmatch(def, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	tests := []struct {
		constraint string
		want       []string
	}{
		{"consents_status_check", sorted(string(openbanking.StatusAwaitingAuthorisation), string(openbanking.StatusAuthorised),
			string(openbanking.StatusRejected), string(openbanking.StatusConsumed), string(openbanking.StatusRevoked))},
		{"consents_kind_check", sorted(string(openbanking.KindPayment), string(openbanking.KindAccountAccess))},
		{"payments_status_check", sorted(string(openbanking.PaymentAcceptedSettlementCompleted),
			string(openbanking.PaymentAcceptedCreditSettlementCompleted), string(openbanking.PaymentRejected))},
		{"accounts_kind_check", sorted(string(models.KindCustomer), string(models.KindSettlement))},
		{"consents_api_version_check", sorted(string(openbanking.V3_1), string(openbanking.V4_0))},
	}
	for _, tc := range tests {
		t.Run(tc.constraint, func(t *testing.T) {
			if got := values(tc.constraint); !slices.Equal(got, tc.want) {
				t.Fatalf("%s allows %q, Go names %q", tc.constraint, got, tc.want)
			}
		})
	}
}

// TestRefusalCodesAreMapped checks that every SQLSTATE the database
// functions raise in the latest migration that defines them has an entry in
// the one table of refusals, and that the table has no code they never
// raise.
func TestRefusalCodesAreMapped(t *testing.T) {
	raised := map[string]bool{}
	for _, f := range []string{"migrations/00003_posting_functions.sql", "migrations/00004_typed_outcomes.sql",
		"migrations/00006_api_version.sql"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		up := regexp.MustCompile(`(?s)-- \+goose Up(.*)-- \+goose Down`).FindSubmatch(b)
		for _, m := range regexp.MustCompile(`ERRCODE = '(OB\d{3})'`).FindAllSubmatch(up[1], -1) {
			raised[string(m[1])] = true
		}
	}
	raised["OB010"] = true // 00004 keeps it for an outcome it does not know
	for code := range raised {
		if !postgres.IsRefusalCode(code) {
			t.Errorf("SQLSTATE %s is raised but not mapped", code)
		}
	}
	for _, code := range postgres.RefusalCodes() {
		if !raised[code] {
			t.Errorf("SQLSTATE %s is mapped but never raised", code)
		}
	}
}
