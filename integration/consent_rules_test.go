package integration

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
)

// TestConsentRulesEndToEnd checks two consent rules through the SDK against
// the real server: Data.Authorisation.CompletionDateTime (in the future at
// creation; no authorisation after it, by the back office or the sandbox
// authorization server), and a creditor account of this bank in another
// currency, which gets the answer of an unknown creditor and is refused only
// at authorisation. No money moves.
func TestConsentRulesEndToEnd(t *testing.T) {
	s := startServer(t)
	sb := newSandbox(t, s)
	ctx := sb.ctx
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	carolEUR := func() obapi.LedgerAccount {
		res, err := sb.admin.CreateLedgerAccountWithResponse(ctx, &obapi.CreateLedgerAccountParams{},
			obapi.CreateLedgerAccountRequest{Owner: "carol", Currency: "EUR", Nickname: "carol euros"})
		if err != nil || res.JSON201 == nil {
			t.Fatalf("open EUR account: %v %s", err, res.Body)
		}
		return *res.JSON201
	}()
	reader := sb.accountReader(t, "alice")
	createConsent := func(t *testing.T, init obapi.OBWriteDomestic2DataInitiation, completion *time.Time) outcome {
		t.Helper()
		data := obapi.OBWriteDomesticConsent4Data{Initiation: init}
		if completion != nil {
			data.Authorisation = &obapi.OBWriteDomesticConsent4DataAuthorisation{AuthorisationType: "Single", CompletionDateTime: completion}
		}
		res, err := sb.tppAPI.CreateDomesticPaymentConsentsWithResponse(ctx,
			&obapi.CreateDomesticPaymentConsentsParams{XIdempotencyKey: client.NewIdempotencyKey()},
			obapi.OBWriteDomesticConsent4{Data: data})
		return outcomeOf(t, res, err)
	}
	consentID := func(t *testing.T, o outcome) string {
		t.Helper()
		if o.status != http.StatusCreated {
			t.Fatalf("create consent = %d %s, want 201", o.status, o.body)
		}
		var c obapi.OBWriteDomesticConsentResponse5
		if err := json.Unmarshal(o.body, &c); err != nil {
			t.Fatal(err)
		}
		return c.Data.ConsentId
	}
	wantError := func(t *testing.T, o outcome, status int, code, path string) {
		t.Helper()
		if o.status != status {
			t.Fatalf("status = %d, want %d; body %s", o.status, status, o.body)
		}
		if got := obError(t, o).Errors[0]; got.ErrorCode != code || deref(got.Path) != path {
			t.Errorf("error = %s at %q, want %s at %q", got.ErrorCode, deref(got.Path), code, path)
		}
	}
	noMoneyMoved := func(t *testing.T) {
		t.Helper()
		if got := sb.balance(t, reader, alice.AccountId); got != "100.00" {
			t.Errorf("alice = %s, want 100.00: money moved", got)
		}
		if n := countDebits(t, sb, reader, alice.AccountId); n != 0 {
			t.Errorf("alice has %d debits, want none", n)
		}
		assertBalanced(t, sb)
	}

	t.Run("CompletionDateTime in the past", func(t *testing.T) {
		past := time.Now().Add(-time.Minute)
		o := createConsent(t, initiation(bob, "10.00", "late-1"), &past)
		wantError(t, o, 400, "UK.OBIE.Field.Invalid", "Data.Authorisation.CompletionDateTime")
		noMoneyMoved(t)
	})

	t.Run("authorisation after CompletionDateTime", func(t *testing.T) {
		soon := time.Now().Add(2 * time.Second)
		init := initiation(bob, "10.00", "late-2")
		viaBackOffice := consentID(t, createConsent(t, init, &soon))
		viaSandbox := consentID(t, createConsent(t, init, &soon))
		time.Sleep(time.Until(soon) + 100*time.Millisecond)

		wantError(t, sb.authorise(t, viaBackOffice, "alice", alice.AccountId), 400, "UK.OBIE.Resource.InvalidConsentStatus", "")
		pkce, err := client.NewPKCE()
		if err != nil {
			t.Fatal(err)
		}
		code, err := sb.tpp.SandboxAuthorize(ctx, client.AuthorizeRequest{RedirectURI: "http://127.0.0.1/callback",
			Scope: "payments", PKCE: pkce, ConsentID: viaSandbox, PSU: "alice", DebtorAccount: alice.AccountId})
		if err == nil || code != "" {
			t.Errorf("sandbox authorisation after CompletionDateTime = code %q, %v; want a refusal", code, err)
		}
		for _, id := range []string{viaBackOffice, viaSandbox} {
			if got := sb.consentStatus(t, id); got != "AwaitingAuthorisation" {
				t.Errorf("consent status = %s, want AwaitingAuthorisation (a refused authorisation changes nothing)", got)
			}
		}
		noMoneyMoved(t)
	})

	t.Run("creditor of this bank in another currency", func(t *testing.T) {
		toEUR := createConsent(t, initiation(carolEUR, "10.00", "eur-1"), nil)
		unknownAccount := carolEUR
		unknownAccount.Account = []obapi.LedgerAccountIdentification{{SchemeName: carolEUR.Account[0].SchemeName,
			Identification: carolEUR.Account[0].Identification[:6] + "99999999", Name: "nobody"}}
		toUnknown := createConsent(t, initiation(unknownAccount, "10.00", "eur-1"), nil)
		// The same answer: status, headers that matter, and the body's
		// shape and values apart from the ids, times and the creditor.
		if toEUR.status != toUnknown.status || toEUR.status != http.StatusCreated {
			t.Fatalf("consent to an account in EUR = %d, to an unknown account = %d; want both 201 (%s | %s)",
				toEUR.status, toUnknown.status, toEUR.body, toUnknown.body)
		}
		if a, b := scrub(t, toEUR.body), scrub(t, toUnknown.body); a != b {
			t.Errorf("answers differ:\n%s\n%s", a, b)
		}
		id := consentID(t, toEUR)
		wantError(t, sb.authorise(t, id, "alice", alice.AccountId), 400, "UK.OBIE.Field.Invalid", "Data.Initiation.CreditorAccount")
		if got := sb.consentStatus(t, id); got != "AwaitingAuthorisation" {
			t.Errorf("consent status = %s, want AwaitingAuthorisation", got)
		}
		noMoneyMoved(t)
	})
}

// scrub returns a consent response with the values that differ between any
// two consents (ids, times, links, the creditor's identification) blanked.
func scrub(t *testing.T, body []byte) string {
	t.Helper()
	var c obapi.OBWriteDomesticConsentResponse5
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	c.Data.ConsentId, c.Links.Self = "", ""
	c.Data.CreationDateTime, c.Data.StatusUpdateDateTime = time.Time{}, time.Time{}
	c.Data.Initiation.CreditorAccount.Identification = ""
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
