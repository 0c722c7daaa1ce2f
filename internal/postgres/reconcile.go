package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

type reconcileRow struct {
	ID       string
	Currency string
	Kind     string
	Balance  int64
	Net      int64
}

// Reconcile recomputes every account's balance from its entries, in one
// consistent snapshot (REPEATABLE READ, read only) so concurrent transfers
// cause no false drift, and reports drift and per-currency totals.
//
// Errors: ledger.ErrOverflow (a total does not fit in int64), ledger.ErrStorage, or a
// context error.
func (l *Ledger) Reconcile(ctx context.Context) (ledger.Report, error) {
	rep := ledger.Report{Drift: []ledger.Drift{}, Totals: []ledger.Total{}}
	err := l.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		rows, err := tx.Raw(`SELECT a.id::text AS id, a.currency, a.kind, a.balance, coalesce(s.net, 0)::bigint AS net
			FROM accounts a
			LEFT JOIN (SELECT account_id,
					sum(CASE WHEN direction = 'credit' THEN amount ELSE -amount END) AS net
				FROM entries GROUP BY account_id) s ON s.account_id = a.id
			ORDER BY a.id`).Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		cached := map[string]models.Amount{}
		fromEntries := map[string]models.Amount{}
		negativeCustomer := false
		for rows.Next() {
			var r reconcileRow
			if err := tx.ScanRows(rows, &r); err != nil {
				return err
			}
			rep.AccountsChecked++
			actual := models.Amount{Minor: r.Balance, Currency: r.Currency}
			expected := models.Amount{Minor: r.Net, Currency: r.Currency}
			if actual != expected {
				rep.Drift = append(rep.Drift, ledger.Drift{AccountID: models.AccountID(r.ID), Expected: expected, Actual: actual})
			}
			if models.AccountKind(r.Kind) == models.KindCustomer && r.Balance < 0 {
				negativeCustomer = true
			}
			if cached[r.Currency], err = addTo(cached, actual); err != nil {
				return err
			}
			if fromEntries[r.Currency], err = addTo(fromEntries, expected); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rep.Balanced = len(rep.Drift) == 0 && !negativeCustomer
		for cur, net := range cached {
			rep.Totals = append(rep.Totals, ledger.Total{Currency: cur, Net: net})
			if net.Minor != 0 || fromEntries[cur].Minor != 0 {
				rep.Balanced = false
			}
		}
		slices.SortFunc(rep.Totals, func(a, b ledger.Total) int {
			switch {
			case a.Currency < b.Currency:
				return -1
			case a.Currency > b.Currency:
				return 1
			}
			return 0
		})
		return nil
	}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return ledger.Report{}, translate(ctx, err)
	}
	return rep, nil
}

func addTo(sums map[string]models.Amount, a models.Amount) (models.Amount, error) {
	cur, ok := sums[a.Currency]
	if !ok {
		return a, nil
	}
	sum, err := cur.Add(a)
	if err != nil {
		return models.Amount{}, fmt.Errorf("%w: total of %s", ledger.ErrOverflow, a.Currency)
	}
	return sum, nil
}
