package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/postgres"
	"github.com/obpay/payments/internal/testdb"
)

// exampleLedger opens a ledger on a fresh test database for the examples,
// which need a real Postgres server like every other test here.
func exampleLedger() (*postgres.Ledger, *gorm.DB, func()) {
	t := &exampleT{}
	db := testdb.Open(t)
	l, err := postgres.NewLedger(db)
	if err != nil {
		panic(err)
	}
	return l, db, t.cleanup
}

// exampleT is the smallest testing.TB that runs cleanups, for examples.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

func Example() {
	l, _, done := exampleLedger()
	defer done()
	ctx := context.Background()

	opening, _ := models.ParseAmount("100.00", "GBP")
	alice, _ := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "alice", Currency: "GBP", Opening: &opening})
	bob, _ := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "bob", Currency: "GBP"})

	rent, _ := models.ParseAmount("30.00", "GBP")
	if _, err := l.Transfer(ctx, ledger.TransferParams{From: alice.ID, To: bob.ID, Amount: rent, Reference: "rent"}); err != nil {
		fmt.Println(err)
	}
	tooMuch, _ := models.ParseAmount("70.01", "GBP")
	_, err := l.Transfer(ctx, ledger.TransferParams{From: alice.ID, To: bob.ID, Amount: tooMuch})
	fmt.Println(errors.Is(err, ledger.ErrInsufficientFunds))

	balance, _ := l.Balance(ctx, alice.ID)
	fmt.Println(balance)
	rep, _ := l.Reconcile(ctx)
	fmt.Println(rep.Balanced, rep.AccountsChecked, rep.Totals[0].Net)
	// Output:
	// true
	// 70.00
	// true 3 0.00
}

func ExampleLedger_OpenAccount() {
	l, _, done := exampleLedger()
	defer done()
	opening, _ := models.ParseAmount("25", "GBP")
	acc, err := l.OpenAccount(context.Background(), ledger.OpenAccountParams{
		Owner: "psu-123", Currency: "GBP", Nickname: "Bills", Opening: &opening,
	})
	fmt.Println(err, acc.SchemeName, len(acc.Identification), acc.Name, acc.Balance)
	// Output: <nil> UK.OBIE.SortCodeAccountNumber 14 Bills 25.00
}

// The Open Banking layer books a payment together with its own rows: one
// transaction, retried as a whole on conflicts.
func ExampleLedger_TransferTx() {
	l, db, done := exampleLedger()
	defer done()
	ctx := context.Background()
	opening, _ := models.ParseAmount("10.00", "EUR")
	payer, _ := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "payer", Currency: "EUR", Opening: &opening})
	payee, _ := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "payee", Currency: "EUR"})

	amount, _ := models.ParseAmount("4.00", "EUR")
	err := postgres.RunInTx(ctx, db, func(tx *gorm.DB) error {
		// ... insert the payment and the idempotency record with tx ...
		_, err := l.TransferTx(ctx, tx, ledger.TransferParams{From: payer.ID, To: payee.ID, Amount: amount})
		return err // any error rolls back the payment rows too
	})
	b, _ := l.Balance(ctx, payee.ID)
	fmt.Println(err, b)
	// Output: <nil> 4.00
}

func ExampleLedger_Entries() {
	l, _, done := exampleLedger()
	defer done()
	ctx := context.Background()
	opening, _ := models.ParseAmount("3", "JPY")
	a, _ := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "a", Currency: "JPY", Opening: &opening})
	b, _ := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "b", Currency: "JPY"})
	one := models.Amount{Minor: 1, Currency: "JPY"}
	for range 3 {
		_, _ = l.Transfer(ctx, ledger.TransferParams{From: a.ID, To: b.ID, Amount: one})
	}
	q := ledger.EntriesQuery{Account: a.ID, Limit: 2}
	for {
		page, err := l.Entries(ctx, q)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, e := range page.Entries {
			fmt.Println(e.Direction, e.Amount, e.BalanceAfter)
		}
		if page.Next == nil {
			break
		}
		// An HTTP handler would put page.Next.String() in Links.Next and
		// read it back with ledger.ParseCursor.
		next, _ := ledger.ParseCursor(page.Next.String())
		q.After = &next
	}
	// Output:
	// Credit 3 3
	// Debit 1 2
	// Debit 1 1
	// Debit 1 0
}
