package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

// entryRow is an entries row joined with its transfer.
type entryRow struct {
	ID           int64
	TransferID   string
	AccountID    string
	Currency     string
	Direction    string
	Amount       int64
	BalanceAfter int64
	CreatedAt    time.Time
	Counterparty string
	Reference    string
}

func (r entryRow) model() models.Entry {
	dir := models.Credit
	if r.Direction == "debit" {
		dir = models.Debit
	}
	return models.Entry{
		ID:           models.EntryID(strconv.FormatInt(r.ID, 10)),
		TransferID:   models.TransferID(r.TransferID),
		AccountID:    models.AccountID(r.AccountID),
		Direction:    dir,
		Amount:       models.Amount{Minor: r.Amount, Currency: r.Currency},
		BalanceAfter: models.Amount{Minor: r.BalanceAfter, Currency: r.Currency},
		BookedAt:     r.CreatedAt.UTC(),
		Counterparty: models.AccountID(r.Counterparty),
		Reference:    r.Reference,
	}
}

// Entries returns one page of the entries of q.Account in booking order
// (booking time, then entry ID), restricted to q.From..q.To, starting after
// q.After.
//
// Errors: ledger.ErrAccountNotFound, ledger.ErrInvalidQuery (negative or too large limit,
// From after To), ledger.ErrInvalidCursor (q.After out of range, see ParseCursor),
// ledger.ErrStorage, or a context error.
func (l *Ledger) Entries(ctx context.Context, q ledger.EntriesQuery) (ledger.EntriesPage, error) {
	limit, err := q.PageSize()
	if err != nil {
		return ledger.EntriesPage{}, err
	}
	if _, err := l.Account(ctx, q.Account); err != nil {
		return ledger.EntriesPage{}, err
	}

	where := []string{"e.account_id = ?"}
	args := []any{string(q.Account)}
	if cid, ok := models.CanonicalID(string(q.Account)); ok {
		args[0] = cid
	}
	if q.From != nil {
		where = append(where, "e.created_at >= ?")
		args = append(args, q.From.UTC())
	}
	if q.To != nil {
		where = append(where, "e.created_at <= ?")
		args = append(args, q.To.UTC())
	}
	if q.After != nil {
		id, ok := q.After.Position()
		if !ok {
			return ledger.EntriesPage{}, ledger.ErrInvalidCursor
		}
		where = append(where, "(e.created_at, e.id) > (?, ?)")
		args = append(args, q.After.BookedAt.UTC(), id)
	}
	args = append(args, limit+1)

	var rows []entryRow
	err = l.db.WithContext(ctx).Raw(`SELECT e.id, e.transfer_id::text AS transfer_id, e.account_id::text AS account_id,
			e.currency, e.direction, e.amount, e.balance_after, e.created_at,
			(CASE WHEN e.direction = 'debit' THEN t.credit_account_id ELSE t.debit_account_id END)::text AS counterparty,
			t.reference
		FROM entries e JOIN transfers t ON t.id = e.transfer_id
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY e.created_at, e.id
		LIMIT ?`, args...).Scan(&rows).Error
	if err != nil {
		return ledger.EntriesPage{}, translate(ctx, err)
	}
	page := ledger.EntriesPage{Entries: make([]models.Entry, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			last := page.Entries[limit-1]
			page.Next = &ledger.Cursor{BookedAt: last.BookedAt, EntryID: last.ID}
			break
		}
		page.Entries = append(page.Entries, r.model())
	}
	return page, nil
}
