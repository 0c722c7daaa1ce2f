package handlers

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

func TestTransactionsLinksNextCarriesFilters(t *testing.T) {
	a := newAPI(t)
	alice, _ := a.openAccount("alice", "100.00")
	bob, _ := a.openAccount("bob", "")
	for range 40 {
		if _, err := a.l.Transfer(context.Background(), ledger.TransferParams{From: models.AccountID(alice), To: models.AccountID(bob),
			Amount: models.Amount{Minor: 1, Currency: "GBP"}}); err != nil {
			t.Fatal(err)
		}
	}
	var ac consentResp
	a.want(a.do(http.MethodPost, "/open-banking/v3.1/aisp/account-access-consents", `{"Data":{"Permissions":["ReadTransactionsBasic"]},"Risk":{}}`, tpp("tpp-a", "accounts")), http.StatusCreated, &ac)
	a.authorise(ac.Data.ConsentId, "alice", "")
	reader := psuToken("tpp-a", "alice", ac.Data.ConsentId, "accounts")

	// OB Read/Write Data API Specification, Date Formats: the filter may come
	// without a timezone; Links.Next repeats it as sent either way.
	for _, from := range []string{"2000-01-01T00:00:00Z", "2000-01-01T00:00:00", "2000-01-01T00:00:00.123", "2000-01-01T01:00:00+01:00"} {
		t.Run(from, func(t *testing.T) {
			path := "/open-banking/v3.1/aisp/accounts/" + alice + "/transactions?" + url.Values{"fromBookingDateTime": {from}}.Encode()
			total := 0
			for pages := 0; path != ""; pages++ {
				var page struct {
					Data struct {
						Transaction []struct{ TransactionId string }
					}
					Links struct{ Self, Next string }
				}
				a.want(a.do(http.MethodGet, path, "", reader), http.StatusOK, &page)
				total += len(page.Data.Transaction)
				path = ""
				if page.Links.Next != "" {
					u, err := url.Parse(page.Links.Next)
					if err != nil || !strings.HasPrefix(page.Links.Next, testBase+"/open-banking/") {
						t.Fatalf("Links.Next = %q, want an absolute URL under %s", page.Links.Next, testBase)
					}
					if u.Query().Get("fromBookingDateTime") != from || u.Query().Get("cursor") == "" {
						t.Fatalf("Links.Next = %q does not carry the filter %q and a cursor", page.Links.Next, from)
					}
					path = strings.TrimPrefix(page.Links.Next, testBase)
				}
				if pages > 5 {
					t.Fatal("pagination does not end")
				}
			}
			if total != 41 { // the opening credit and 40 debits
				t.Errorf("saw %d transactions, want 41", total)
			}
		})
	}
}

// TestTransactionsRefusesCursorsOutOfRange sends well-formed cursors this
// server cannot have issued and checks each gets 400 UK.OBIE.Field.Invalid
// at cursor, not an empty page.
func TestTransactionsRefusesCursorsOutOfRange(t *testing.T) {
	a := newAPI(t)
	alice, _ := a.openAccount("alice", "100.00")
	var ac consentResp
	a.want(a.do(http.MethodPost, "/open-banking/v3.1/aisp/account-access-consents", `{"Data":{"Permissions":["ReadTransactionsBasic"]},"Risk":{}}`, tpp("tpp-a", "accounts")), http.StatusCreated, &ac)
	a.authorise(ac.Data.ConsentId, "alice", "")
	reader := psuToken("tpp-a", "alice", ac.Data.ConsentId, "accounts")

	enc := func(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }
	cases := []struct{ name, cursor string }{
		{"time -2^63 µs", enc("e1.-9223372036854775808.1")},
		{"time 2^63-1 µs", enc("e1.9223372036854775807.1")},
		{"time after year 9999", enc("e1.253402300800000000.1")},
		{"time before year 1", enc("e1.-62135596800000001.1")},
		{"entry id beyond int64", enc("e1.1740819600000000.9223372036854775808")},
		{"entry id zero", enc("e1.1740819600000000.0")},
		{"entry id with leading zero", enc("e1.1740819600000000.01")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := a.do(http.MethodGet, "/open-banking/v3.1/aisp/accounts/"+alice+"/transactions?cursor="+tc.cursor, "", reader)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", rec.Code, rec.Body.String())
			}
			b := decodeError(t, rec)
			if b.Errors[0].ErrorCode != CodeFieldInvalid || b.Errors[0].Path != "cursor" {
				t.Errorf("error = %s at %q, want %s at \"cursor\"", b.Errors[0].ErrorCode, b.Errors[0].Path, CodeFieldInvalid)
			}
		})
	}
}
