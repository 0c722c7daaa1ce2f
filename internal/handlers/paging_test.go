package handlers

import (
	"context"
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

	path := "/open-banking/v3.1/aisp/accounts/" + alice + "/transactions?fromBookingDateTime=2000-01-01T00:00:00Z"
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
			if u.Query().Get("fromBookingDateTime") != "2000-01-01T00:00:00Z" || u.Query().Get("cursor") == "" {
				t.Fatalf("Links.Next = %q does not carry the filter and a cursor", page.Links.Next)
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
}
