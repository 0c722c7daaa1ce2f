package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/postgres"
)

func TestNewRejectsBadOptions(t *testing.T) {
	_, db := newLedger(t)
	if _, err := postgres.NewLedger(nil); err == nil {
		t.Error("New(nil) = nil error")
	}
	tests := []struct {
		name string
		opt  postgres.Option
	}{
		{"nil clock", postgres.WithClock(nil)},
		{"zero retries", postgres.WithRetries(0)},
		{"short sort code", postgres.WithSortCode("12345")},
		{"letters in sort code", postgres.WithSortCode("12345a")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := postgres.NewLedger(db, tc.opt); err == nil {
				t.Fatalf("New(%s) = nil error", tc.name)
			}
		})
	}
}

func TestOpenAccount(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	l, db := newLedger(t, postgres.WithClock(fixedClock(at)), postgres.WithSortCode("112233"))
	ctx := context.Background()
	opening := gbp(t, "100.00")

	acc, err := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "psu-1", Currency: "GBP", Nickname: "Bills", Opening: &opening})
	if err != nil {
		t.Fatalf("OpenAccount = %v", err)
	}
	want := models.Account{
		Owner: "psu-1", Currency: "GBP", Kind: models.KindCustomer, SchemeName: models.SchemeSortCodeAccountNumber,
		Name: "Bills", Balance: opening, Version: 1, CreatedAt: at,
	}
	if diff := cmp.Diff(want, acc, cmpopts.IgnoreFields(models.Account{}, "ID", "Identification")); diff != "" {
		t.Errorf("OpenAccount mismatch (-want +got):\n%s", diff)
	}
	if len(acc.Identification) != 14 || !strings.HasPrefix(acc.Identification, "112233") {
		t.Errorf("Identification = %q, want 14 digits starting with the sort code", acc.Identification)
	}
	got, err := l.Account(ctx, acc.ID)
	if err != nil || !cmp.Equal(got, acc) {
		t.Errorf("Account(%s) = %+v, %v, want %+v", acc.ID, got, err, acc)
	}
	// The opening balance came from the settlement account.
	st, err := l.SettlementAccount(ctx, nil, "GBP")
	if err != nil {
		t.Fatalf("SettlementAccount = %v", err)
	}
	if st.Kind != models.KindSettlement || st.Balance != (models.Amount{Minor: -10000, Currency: "GBP"}) {
		t.Errorf("settlement = %+v, want balance -100.00", st)
	}
	checkInvariants(t, l, db)
}

func TestOpenAccountWithoutOpening(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	for _, opening := range []*models.Amount{nil, {Minor: 0, Currency: "JPY"}} {
		acc, err := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "psu", Currency: "JPY", Opening: opening})
		if err != nil {
			t.Fatalf("OpenAccount(opening %v) = %v", opening, err)
		}
		if acc.Balance != (models.Amount{Currency: "JPY"}) || acc.Version != 0 {
			t.Errorf("OpenAccount(opening %v) = %+v, want zero balance", opening, acc)
		}
	}
	var transfers int64
	db.Raw(`SELECT count(*) FROM transfers`).Scan(&transfers)
	if transfers != 0 {
		t.Errorf("%d transfers, want none", transfers)
	}
}

func TestOpenAccountErrors(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	neg := models.Amount{Minor: -1, Currency: "GBP"}
	eur := models.Amount{Minor: 100, Currency: "EUR"}
	tests := []struct {
		name string
		p    ledger.OpenAccountParams
		want error
	}{
		{"empty owner", ledger.OpenAccountParams{Currency: "GBP"}, ledger.ErrInvalidAccount},
		{"owner too long", ledger.OpenAccountParams{Owner: strings.Repeat("x", 256), Currency: "GBP"}, ledger.ErrInvalidAccount},
		{"owner with NUL", ledger.OpenAccountParams{Owner: "a\x00b", Currency: "GBP"}, ledger.ErrInvalidAccount},
		{"nickname too long", ledger.OpenAccountParams{Owner: "p", Currency: "GBP", Nickname: strings.Repeat("n", 71)}, ledger.ErrInvalidAccount},
		{"nickname not UTF-8", ledger.OpenAccountParams{Owner: "p", Currency: "GBP", Nickname: "\xff"}, ledger.ErrInvalidAccount},
		{"unknown currency", ledger.OpenAccountParams{Owner: "p", Currency: "XYZ"}, ledger.ErrUnknownCurrency},
		{"negative opening", ledger.OpenAccountParams{Owner: "p", Currency: "GBP", Opening: &neg}, ledger.ErrInvalidAmount},
		{"opening in other currency", ledger.OpenAccountParams{Owner: "p", Currency: "GBP", Opening: &eur}, ledger.ErrCurrencyMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.OpenAccount(ctx, tc.p); !errors.Is(err, tc.want) {
				t.Fatalf("OpenAccount(%+v) = %v, want %v", tc.p, err, tc.want)
			}
		})
	}
	var n int64
	db.Raw(`SELECT count(*) FROM accounts`).Scan(&n)
	if n != 0 {
		t.Errorf("%d accounts written by failing calls, want 0", n)
	}
	if !errors.Is(ledger.ErrUnknownCurrency, models.ErrUnknownCurrency) {
		t.Error("ledger.ErrUnknownCurrency does not match models.ErrUnknownCurrency")
	}
}

func TestTransfer(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	l, db := newLedger(t, postgres.WithClock(fixedClock(at)))
	ctx := context.Background()
	a := openAccount(t, l, "alice", "GBP", "100.00")
	b := openAccount(t, l, "bob", "GBP", "")

	tr, err := l.Transfer(ctx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "30.25"), Reference: "rent"})
	if err != nil {
		t.Fatalf("Transfer = %v", err)
	}
	want := models.Transfer{ID: tr.ID, From: a.ID, To: b.ID, Amount: gbp(t, "30.25"), Reference: "rent", BookedAt: at}
	if diff := cmp.Diff(want, tr); diff != "" || tr.ID == "" {
		t.Errorf("Transfer mismatch (-want +got):\n%s", diff)
	}
	if got := balance(t, l, a.ID); got != gbp(t, "69.75") {
		t.Errorf("Balance(a) = %s, want 69.75", got)
	}
	if got := balance(t, l, b.ID); got != gbp(t, "30.25") {
		t.Errorf("Balance(b) = %s, want 30.25", got)
	}
	// Moving the whole balance is allowed; one penny more is not.
	if _, err := l.Transfer(ctx, ledger.TransferParams{From: b.ID, To: a.ID, Amount: gbp(t, "30.26")}); !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Errorf("Transfer(more than balance) = %v, want ErrInsufficientFunds", err)
	}
	if _, err := l.Transfer(ctx, ledger.TransferParams{From: b.ID, To: a.ID, Amount: gbp(t, "30.25")}); err != nil {
		t.Errorf("Transfer(whole balance) = %v", err)
	}
	// Upper-case IDs name the same account.
	if _, err := l.Transfer(ctx, ledger.TransferParams{From: models.AccountID(strings.ToUpper(string(a.ID))), To: b.ID, Amount: gbp(t, "1")}); err != nil {
		t.Errorf("Transfer(upper-case id) = %v", err)
	}
	checkInvariants(t, l, db)
}

func TestTransferErrors(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	a := openAccount(t, l, "alice", "GBP", "10.00")
	b := openAccount(t, l, "bob", "GBP", "")
	e := openAccount(t, l, "erin", "EUR", "10.00")
	st, err := l.SettlementAccount(ctx, nil, "GBP")
	if err != nil {
		t.Fatal(err)
	}
	const missing = models.AccountID("0b9a4c1e-7d0e-4f5a-9a35-3c1d2b8e9f00")
	tests := []struct {
		name string
		p    ledger.TransferParams
		want error
	}{
		{"insufficient funds", ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "10.01")}, ledger.ErrInsufficientFunds},
		{"empty account has no funds", ledger.TransferParams{From: b.ID, To: a.ID, Amount: gbp(t, "0.01")}, ledger.ErrInsufficientFunds},
		{"zero amount", ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "0")}, ledger.ErrInvalidAmount},
		{"negative amount", ledger.TransferParams{From: a.ID, To: b.ID, Amount: models.Amount{Minor: -100, Currency: "GBP"}}, ledger.ErrInvalidAmount},
		{"unknown currency", ledger.TransferParams{From: a.ID, To: b.ID, Amount: models.Amount{Minor: 1, Currency: "ABC"}}, ledger.ErrUnknownCurrency},
		{"same account", ledger.TransferParams{From: a.ID, To: a.ID, Amount: gbp(t, "1")}, ledger.ErrSameAccount},
		{"same account in other case", ledger.TransferParams{From: a.ID, To: models.AccountID(strings.ToUpper(string(a.ID))), Amount: gbp(t, "1")}, ledger.ErrSameAccount},
		{"currency of debit account differs", ledger.TransferParams{From: e.ID, To: b.ID, Amount: gbp(t, "1")}, ledger.ErrCurrencyMismatch},
		{"currency of credit account differs", ledger.TransferParams{From: a.ID, To: e.ID, Amount: gbp(t, "1")}, ledger.ErrCurrencyMismatch},
		{"amount currency differs from both", ledger.TransferParams{From: a.ID, To: b.ID, Amount: money(t, "1", "EUR")}, ledger.ErrCurrencyMismatch},
		{"unknown debit account", ledger.TransferParams{From: missing, To: b.ID, Amount: gbp(t, "1")}, ledger.ErrAccountNotFound},
		{"unknown credit account", ledger.TransferParams{From: a.ID, To: missing, Amount: gbp(t, "1")}, ledger.ErrAccountNotFound},
		{"malformed account id", ledger.TransferParams{From: "not-a-uuid", To: b.ID, Amount: gbp(t, "1")}, ledger.ErrAccountNotFound},
		{"SQL in account id", ledger.TransferParams{From: a.ID, To: "'; DROP TABLE entries; --", Amount: gbp(t, "1")}, ledger.ErrAccountNotFound},
		{"reference too long", ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "1"), Reference: strings.Repeat("r", 141)}, ledger.ErrInvalidReference},
		{"reference with NUL", ledger.TransferParams{From: a.ID, To: b.ID, Amount: gbp(t, "1"), Reference: "a\x00"}, ledger.ErrInvalidReference},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Transfer(ctx, tc.p); !errors.Is(err, tc.want) {
				t.Fatalf("Transfer(%+v) = %v, want %v", tc.p, err, tc.want)
			}
		})
	}
	t.Run("balance overflow", func(t *testing.T) {
		big := models.Amount{Minor: 1 << 62, Currency: "GBP"}
		if _, err := l.Transfer(ctx, ledger.TransferParams{From: st.ID, To: b.ID, Amount: big}); err != nil {
			t.Fatalf("first large transfer = %v", err)
		}
		if _, err := l.Transfer(ctx, ledger.TransferParams{From: st.ID, To: b.ID, Amount: big}); !errors.Is(err, ledger.ErrOverflow) {
			t.Fatalf("second large transfer = %v, want ErrOverflow", err)
		}
	})
	if got := balance(t, l, a.ID); got != gbp(t, "10.00") {
		t.Errorf("Balance(a) = %s after failed transfers, want 10.00", got)
	}
	checkInvariants(t, l, db)
}

func TestSettlementAccountMayGoNegative(t *testing.T) {
	l, db := newLedger(t)
	ctx := context.Background()
	c := openAccount(t, l, "carol", "GBP", "")
	st, err := l.SettlementAccount(ctx, nil, "GBP")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Transfer(ctx, ledger.TransferParams{From: st.ID, To: c.ID, Amount: gbp(t, "5.00")}); err != nil {
		t.Fatalf("Transfer from settlement = %v", err)
	}
	if got := balance(t, l, st.ID); got.Minor != -500 {
		t.Errorf("settlement balance = %s, want -5.00", got)
	}
	again, err := l.SettlementAccount(ctx, nil, "GBP")
	if err != nil || again.ID != st.ID {
		t.Errorf("SettlementAccount again = %v, %v, want the same account %s", again.ID, err, st.ID)
	}
	if _, err := l.SettlementAccount(ctx, nil, "XXX"); !errors.Is(err, ledger.ErrUnknownCurrency) {
		t.Errorf("SettlementAccount(XXX) = %v, want ErrUnknownCurrency", err)
	}
	checkInvariants(t, l, db)
}

func TestAccountLookups(t *testing.T) {
	l, _ := newLedger(t)
	ctx := context.Background()
	a1 := openAccount(t, l, "dave", "GBP", "1.00")
	a2 := openAccount(t, l, "dave", "EUR", "")
	openAccount(t, l, "eve", "GBP", "")

	got, err := l.AccountsByOwner(ctx, "dave")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]models.Account{a1, a2}, got); diff != "" {
		t.Errorf("AccountsByOwner(dave) mismatch (-want +got):\n%s", diff)
	}
	none, err := l.AccountsByOwner(ctx, ledger.SettlementOwner)
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("AccountsByOwner(settlement owner) = %v, %v, want an empty list", none, err)
	}
	byIdent, err := l.AccountByIdentification(ctx, nil, models.SchemeSortCodeAccountNumber, a1.Identification)
	if err != nil || byIdent.ID != a1.ID {
		t.Errorf("AccountByIdentification = %v, %v, want %s", byIdent.ID, err, a1.ID)
	}
	notFound := []struct {
		name string
		call func() error
	}{
		{"Account unknown", func() error { _, err := l.Account(ctx, "0b9a4c1e-7d0e-4f5a-9a35-3c1d2b8e9f00"); return err }},
		{"Account malformed", func() error { _, err := l.Account(ctx, "x"); return err }},
		{"Balance unknown", func() error { _, err := l.Balance(ctx, "0b9a4c1e-7d0e-4f5a-9a35-3c1d2b8e9f00"); return err }},
		{"AccountByIdentification unknown", func() error {
			_, err := l.AccountByIdentification(ctx, nil, models.SchemeSortCodeAccountNumber, "00000000000000")
			return err
		}},
		{"AccountByIdentification other scheme", func() error {
			_, err := l.AccountByIdentification(ctx, nil, "UK.OBIE.IBAN", a1.Identification)
			return err
		}},
	}
	for _, tc := range notFound {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ledger.ErrAccountNotFound) {
				t.Fatalf("= %v, want ErrAccountNotFound", err)
			}
		})
	}
}
