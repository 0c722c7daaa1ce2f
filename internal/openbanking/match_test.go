package openbanking_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"testing"

	"github.com/obpay/payments/internal/openbanking"
)

// reorder is the consent's Initiation with its members in another order and
// other white space: the same terms, encoded differently (as a regenerated
// type might encode them).
func reorder(t *testing.T, in []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(in, &m); err != nil {
		t.Fatal(err)
	}
	out := []byte("{ ")
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// reverse lexical order, unlike encoding/json's struct field order
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	for i, k := range keys {
		if i > 0 {
			out = append(out, ",\n  "...)
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(m[k])
		out = append(append(append(out, kb...), ": "...), vb...)
	}
	return append(out, " }"...)
}

func TestCheckPaymentComparesValues(t *testing.T) {
	req := consentRequest("10.00", "GBP", external)
	con := openbanking.Consent{Kind: openbanking.KindPayment, ClientID: clientA, PSU: "alice",
		Status: openbanking.StatusAuthorised, InitiationJSON: req.InitiationJSON, RiskJSON: []byte(`{"PaymentContextCode":"PartyToParty"}`)}
	pay := func(initiation, risk string) openbanking.PaymentExecution {
		return openbanking.PaymentExecution{ClientID: clientA, PSU: "alice", InitiationJSON: []byte(initiation), RiskJSON: []byte(risk)}
	}
	other := consentRequest("10.01", "GBP", external)
	tests := []struct {
		name string
		p    openbanking.PaymentExecution
		want error
	}{
		{"same bytes", pay(string(req.InitiationJSON), `{"PaymentContextCode":"PartyToParty"}`), nil},
		{"members reordered, other white space", pay(string(reorder(t, req.InitiationJSON)), ` { "PaymentContextCode" : "PartyToParty" } `), nil},
		{"another amount", pay(string(other.InitiationJSON), `{"PaymentContextCode":"PartyToParty"}`), openbanking.ErrConsentMismatch},
		{"another risk", pay(string(req.InitiationJSON), `{"PaymentContextCode":"Other"}`), openbanking.ErrConsentMismatch},
		{"a member more", pay(string(req.InitiationJSON), `{"PaymentContextCode":"PartyToParty","MerchantCategoryCode":"5411"}`), openbanking.ErrConsentMismatch},
		{"not JSON", pay("not json", `{"PaymentContextCode":"PartyToParty"}`), openbanking.ErrConsentMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := openbanking.CheckPayment(con, tc.p); !errors.Is(err, tc.want) {
				t.Errorf("CheckPayment = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestPaymentMatchesReencodedConsent pays, through the database function,
// a consent whose stored Initiation is encoded differently from the
// payment's: the same terms match, so an outstanding consent survives a
// change of encoding; different terms still do not.
func TestPaymentMatchesReencodedConsent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice := f.open("alice", "GBP", "100.00")
	req := consentRequest("10.00", "GBP", external)

	same := req
	same.InitiationJSON = reorder(t, req.InitiationJSON)
	pc, psu := f.authorised(clientA, "alice", alice, same)
	if _, err := f.svc.CreatePayment(ctx, psu, key(freshKey(), req.InitiationJSON), paymentFor(pc, req)); err != nil {
		t.Fatalf("CreatePayment on a re-encoded consent = %v, want success", err)
	}

	pc2, psu2 := f.authorised(clientA, "alice", alice, same)
	changed := consentRequest("10.01", "GBP", external)
	_, err := f.svc.CreatePayment(ctx, psu2, key(freshKey(), changed.InitiationJSON), paymentFor(pc2, changed))
	wantErr(t, "CreatePayment(other amount)", err, openbanking.ErrConsentMismatch)
	if got := f.balance(alice.ID); got != "90.00" {
		t.Errorf("alice's balance = %s, want 90.00", got)
	}
}
