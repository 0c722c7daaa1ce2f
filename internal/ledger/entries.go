package ledger

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/obpay/payments/internal/models"
)

// Page sizes of Entries.
const (
	DefaultEntriesLimit = 100
	MaxEntriesLimit     = 1000
)

// EntriesQuery selects a page of an account's entries, oldest first.
type EntriesQuery struct {
	Account models.AccountID
	From    *time.Time // inclusive lower bound on the booking time; nil: none
	To      *time.Time // inclusive upper bound on the booking time; nil: none
	After   *Cursor    // continue after this position (EntriesPage.Next); nil: first page
	Limit   int        // page size; zero means DefaultEntriesLimit, at most MaxEntriesLimit
}

// EntriesPage is one page of entries. Next is nil on the last page.
type EntriesPage struct {
	Entries []models.Entry
	Next    *Cursor
}

// Cursor is a position in an account's entries: the booking time and ID of
// the last entry of a page. Entries are ordered by (booking time, ID), an
// order new entries can only extend, so paging never skips or repeats an entry
// while others are being booked.
type Cursor struct {
	BookedAt time.Time
	EntryID  models.EntryID
}

const cursorVersion = "e1"

// String encodes the cursor as an opaque, URL-safe string for Links.Next.
func (c Cursor) String() string {
	raw := cursorVersion + "." + strconv.FormatInt(c.BookedAt.UnixMicro(), 10) + "." + string(c.EntryID)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// Cursor times lie within years 1 to 9999 UTC: the range RFC 3339 can write
// and well inside PostgreSQL's timestamptz. Entry IDs are positive bigints. A
// cursor outside these ranges was not made from an entry.
var (
	minCursorTime = time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)
	maxCursorTime = time.Date(9999, time.December, 31, 23, 59, 59, 999999000, time.UTC)
)

// entryID returns the cursor's entry ID as a number, and false when the
// cursor is out of range: a time outside years 1 to 9999 or an ID that is not
// a positive int64 in canonical decimal form.
func (c Cursor) entryID() (int64, bool) {
	if c.BookedAt.Before(minCursorTime) || c.BookedAt.After(maxCursorTime) {
		return 0, false
	}
	id, err := strconv.ParseInt(string(c.EntryID), 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != string(c.EntryID) {
		return 0, false
	}
	return id, true
}

// ParseCursor decodes a string made by Cursor.String. Only the exact string
// String makes is accepted, so a cursor has one spelling.
//
// Errors: ErrInvalidCursor, also for a well-formed cursor out of range (a time
// outside years 1 to 9999, an entry ID that is not a positive int64).
func ParseCursor(s string) (Cursor, error) {
	if len(s) > 128 {
		return Cursor{}, ErrInvalidCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrInvalidCursor
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != cursorVersion {
		return Cursor{}, ErrInvalidCursor
	}
	micros, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Cursor{}, ErrInvalidCursor
	}
	c := Cursor{BookedAt: time.UnixMicro(micros).UTC(), EntryID: models.EntryID(parts[2])}
	if _, ok := c.entryID(); !ok || c.String() != s {
		return Cursor{}, ErrInvalidCursor
	}
	return c, nil
}

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
// Errors: ErrAccountNotFound, ErrInvalidQuery (negative or too large limit,
// From after To), ErrInvalidCursor (q.After out of range, see ParseCursor),
// ErrStorage, or a context error.
func (l *Ledger) Entries(ctx context.Context, q EntriesQuery) (EntriesPage, error) {
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultEntriesLimit
	case limit < 0 || limit > MaxEntriesLimit:
		return EntriesPage{}, fmt.Errorf("%w: limit %d not in 1..%d", ErrInvalidQuery, q.Limit, MaxEntriesLimit)
	}
	if q.From != nil && q.To != nil && q.From.After(*q.To) {
		return EntriesPage{}, fmt.Errorf("%w: from after to", ErrInvalidQuery)
	}
	if _, err := l.Account(ctx, q.Account); err != nil {
		return EntriesPage{}, err
	}

	where := []string{"e.account_id = ?"}
	args := []any{string(q.Account)}
	if cid, ok := canonicalID(string(q.Account)); ok {
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
		id, ok := q.After.entryID()
		if !ok {
			return EntriesPage{}, ErrInvalidCursor
		}
		where = append(where, "(e.created_at, e.id) > (?, ?)")
		args = append(args, q.After.BookedAt.UTC(), id)
	}
	args = append(args, limit+1)

	var rows []entryRow
	err := l.db.WithContext(ctx).Raw(`SELECT e.id, e.transfer_id::text AS transfer_id, e.account_id::text AS account_id,
			e.currency, e.direction, e.amount, e.balance_after, e.created_at,
			(CASE WHEN e.direction = 'debit' THEN t.credit_account_id ELSE t.debit_account_id END)::text AS counterparty,
			t.reference
		FROM entries e JOIN transfers t ON t.id = e.transfer_id
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY e.created_at, e.id
		LIMIT ?`, args...).Scan(&rows).Error
	if err != nil {
		return EntriesPage{}, translate(ctx, err)
	}
	page := EntriesPage{Entries: make([]models.Entry, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			last := page.Entries[limit-1]
			page.Next = &Cursor{BookedAt: last.BookedAt, EntryID: last.ID}
			break
		}
		page.Entries = append(page.Entries, r.model())
	}
	return page, nil
}
