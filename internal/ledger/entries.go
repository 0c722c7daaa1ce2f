package ledger

import (
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

// Position returns the cursor's entry ID as a number, and false when the
// cursor is out of range: a time outside years 1 to 9999 or an ID that is not
// a positive int64 in canonical decimal form.
func (c Cursor) Position() (int64, bool) {
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
	if _, ok := c.Position(); !ok || c.String() != s {
		return Cursor{}, ErrInvalidCursor
	}
	return c, nil
}

// PageSize checks q's limit and time range and returns the page size.
//
// Errors: ErrInvalidQuery (negative or too large limit, From after To).
func (q EntriesQuery) PageSize() (int, error) {
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultEntriesLimit
	case limit < 0 || limit > MaxEntriesLimit:
		return 0, fmt.Errorf("%w: limit %d not in 1..%d", ErrInvalidQuery, q.Limit, MaxEntriesLimit)
	}
	if q.From != nil && q.To != nil && q.From.After(*q.To) {
		return 0, fmt.Errorf("%w: from after to", ErrInvalidQuery)
	}
	return limit, nil
}
