package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/postgres"
)

const benchAccounts = 1000

// BenchmarkTransfer measures transfers per second through the ledger API with
// 1, 8 and 32 concurrent workers over 1,000 funded accounts, and the same with
// every transfer touching one hot account (which serialises on its row lock).
// `make bench-ledger` runs it next to pgbench's tpcb-like script.
func BenchmarkTransfer(b *testing.B) {
	l, _ := newLedger(b)
	accounts := openBenchAccounts(b, l)
	for _, workers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) { benchTransfers(b, l, accounts, workers, false) })
	}
	b.Run("hot", func(b *testing.B) {
		for _, workers := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) { benchTransfers(b, l, accounts, workers, true) })
		}
	})
}

func openBenchAccounts(b *testing.B, l *postgres.Ledger) []models.AccountID {
	b.Helper()
	ids := make([]models.AccountID, benchAccounts)
	opening := models.Amount{Minor: 100_000_000, Currency: "GBP"} // 1,000,000.00: no transfer runs out
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < benchAccounts; i = next.Add(1) - 1 {
				acc, err := l.OpenAccount(context.Background(), ledger.OpenAccountParams{
					Owner: fmt.Sprintf("bench-%d", i), Currency: "GBP", Opening: &opening,
				})
				if err != nil {
					b.Error(err)
					return
				}
				ids[i] = acc.ID
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return ids
}

func benchTransfers(b *testing.B, l *postgres.Ledger, accounts []models.AccountID, workers int, hot bool) {
	ctx := context.Background()
	amount := models.Amount{Minor: 1, Currency: "GBP"}
	var done atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(b.N)))
			for done.Add(1) <= int64(b.N) {
				i, j := r.IntN(len(accounts)), r.IntN(len(accounts)-1)
				if hot {
					i = 0
				}
				if j >= i {
					j++
				}
				from, to := accounts[i], accounts[j]
				if r.IntN(2) == 0 {
					from, to = to, from
				}
				if _, err := l.Transfer(ctx, ledger.TransferParams{From: from, To: to, Amount: amount}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "transfers/s")
}
