package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/models"
)

// MaxReferenceLen is the longest transfer reference, in characters (Open
// Banking's unstructured remittance information is at most 140).
const MaxReferenceLen = 140

// TransferParams asks to move Amount from one account to another.
type TransferParams struct {
	From      models.AccountID
	To        models.AccountID
	Amount    models.Amount
	Reference string // optional, at most MaxReferenceLen characters
}

// Transfer moves p.Amount from p.From to p.To in its own transaction, retried
// on serialization failures and deadlocks, and returns the booked transfer.
//
// Errors: ErrInvalidAmount (zero or negative), ErrUnknownCurrency,
// ErrSameAccount, ErrInvalidReference, ErrAccountNotFound (either account),
// ErrCurrencyMismatch (an account is not in p.Amount's currency),
// ErrInsufficientFunds (a customer account would go below zero), ErrOverflow,
// ErrTxConflict (conflicts outlasted the retries), ErrStorage, or a context
// error. Nothing is written when an error is returned.
func (l *Ledger) Transfer(ctx context.Context, p TransferParams) (models.Transfer, error) {
	var out models.Transfer
	err := l.RunInTx(ctx, func(tx *gorm.DB) error {
		t, err := l.transfer(ctx, tx, p)
		out = t
		return err
	})
	if err != nil {
		return models.Transfer{}, err
	}
	return out, nil
}

// TransferTx is Transfer inside the caller's transaction tx (a *gorm.DB from
// db.Transaction or RunInTx), so the caller can commit its own rows together
// with the postings. It does not retry: when it returns an error matching
// ErrTxConflict the caller should run its whole transaction again, which
// RunInTx does. After any other error the caller must roll back: the
// transaction may already hold part of the transfer. ErrInsufficientFunds is
// the exception: it is decided on the locked balance before anything is
// written, so the transaction holds nothing of the transfer (only the two row
// locks) and stays usable, e.g. to record a rejected payment without a
// savepoint. Errors are those of Transfer.
func (l *Ledger) TransferTx(ctx context.Context, tx *gorm.DB, p TransferParams) (models.Transfer, error) {
	if tx == nil {
		return models.Transfer{}, fmt.Errorf("%w: TransferTx needs a transaction", ErrStorage)
	}
	return l.transfer(ctx, tx.WithContext(ctx), p)
}

// lockedAccount is an account row read under FOR UPDATE.
type lockedAccount struct {
	ID       string
	Currency string
	Kind     string
	Balance  int64
}

func validateTransfer(p TransferParams) (from, to string, err error) {
	if err := (models.Posting{From: p.From, To: p.To, Amount: p.Amount}).Validate(); err != nil {
		switch {
		case errors.Is(err, models.ErrUnknownCurrency):
			return "", "", fmt.Errorf("%w %q", ErrUnknownCurrency, p.Amount.Currency)
		case errors.Is(err, models.ErrPostingSameAccount):
			return "", "", ErrSameAccount
		default:
			return "", "", fmt.Errorf("%w: %s", ErrInvalidAmount, p.Amount)
		}
	}
	if err := checkText(p.Reference, MaxReferenceLen); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrInvalidReference, err)
	}
	from, ok1 := canonicalID(string(p.From))
	to, ok2 := canonicalID(string(p.To))
	if ok1 && ok2 && from == to {
		return "", "", ErrSameAccount
	}
	if !ok1 {
		return "", "", fmt.Errorf("%w: %q", ErrAccountNotFound, p.From)
	}
	if !ok2 {
		return "", "", fmt.Errorf("%w: %q", ErrAccountNotFound, p.To)
	}
	return from, to, nil
}

// transfer books p inside tx. See Transfer for the errors.
func (l *Ledger) transfer(ctx context.Context, tx *gorm.DB, p TransferParams) (models.Transfer, error) {
	from, to, err := validateTransfer(p)
	if err != nil {
		return models.Transfer{}, err
	}
	amount := p.Amount.Minor

	// Lock both rows. With ORDER BY, Postgres locks rows in the sorted order
	// (the locking step runs above the sort), so every transfer takes its locks
	// in id order and two transfers can never wait for each other in a cycle.
	var rows []lockedAccount
	if err := tx.Raw(`SELECT id::text AS id, currency, kind, balance FROM accounts
		WHERE id IN (?, ?) ORDER BY id FOR UPDATE`, from, to).Scan(&rows).Error; err != nil {
		return models.Transfer{}, translate(ctx, err)
	}
	var debit, credit *lockedAccount
	for i := range rows {
		switch rows[i].ID {
		case from:
			debit = &rows[i]
		case to:
			credit = &rows[i]
		}
	}
	switch {
	case debit == nil:
		return models.Transfer{}, fmt.Errorf("%w: %s", ErrAccountNotFound, from)
	case credit == nil:
		return models.Transfer{}, fmt.Errorf("%w: %s", ErrAccountNotFound, to)
	case debit.Currency != p.Amount.Currency || credit.Currency != p.Amount.Currency:
		return models.Transfer{}, fmt.Errorf("%w: %s from %s account to %s account",
			ErrCurrencyMismatch, p.Amount.Currency, debit.Currency, credit.Currency)
	case models.AccountKind(debit.Kind) == models.KindCustomer && debit.Balance < amount:
		// The balance comes from the locked row: it is the latest committed
		// value and cannot change before we commit.
		return models.Transfer{}, ErrInsufficientFunds
	case debit.Balance < math.MinInt64+amount || credit.Balance > math.MaxInt64-amount:
		return models.Transfer{}, ErrOverflow
	}

	id := uuid.NewString()
	debitAfter, creditAfter, latest, err := moveBalances(ctx, tx, from, to, amount)
	if errors.Is(err, ErrInsufficientFunds) {
		// The schema's no-overdraft check fired although the locked balance
		// allowed the debit: something changed under our lock. Ask for the
		// whole transaction again (its first check then answers), so that
		// ErrInsufficientFunds always means "decided before any write".
		return models.Transfer{}, fmt.Errorf("%w: balance check failed under the row lock", ErrTxConflict)
	}
	if err != nil {
		return models.Transfer{}, err
	}
	booked := l.nextBookingTime(latest)
	if l.afterDebit != nil {
		if err := l.afterDebit(ctx, tx); err != nil {
			return models.Transfer{}, translate(ctx, err)
		}
	}
	// The transfer and both entries in one statement (one round trip while
	// the rows are locked); the entries' foreign key to the transfer is checked
	// at the end of the statement, and the balance trigger at commit.
	if err := tx.Exec(`WITH t AS (
			INSERT INTO transfers (id, debit_account_id, credit_account_id, currency, amount, reference, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id, currency, amount, created_at)
		INSERT INTO entries (transfer_id, account_id, currency, direction, amount, balance_after, created_at)
		SELECT t.id, v.account_id, t.currency, v.direction, t.amount, v.balance_after, t.created_at
		FROM t, (VALUES (?::uuid, 'debit', ?::bigint, 1), (?::uuid, 'credit', ?::bigint, 2)) AS v(account_id, direction, balance_after, ord)
		ORDER BY v.ord`,
		id, from, to, p.Amount.Currency, amount, p.Reference, booked,
		from, debitAfter, to, creditAfter).Error; err != nil {
		return models.Transfer{}, translate(ctx, err)
	}
	return models.Transfer{
		ID:        models.TransferID(id),
		From:      models.AccountID(from),
		To:        models.AccountID(to),
		Amount:    p.Amount,
		Reference: p.Reference,
		BookedAt:  booked,
	}, nil
}

// moveBalances debits from and credits to by amount in one UPDATE that adds
// to the balances in place (never writing back a value read earlier), and
// returns both new balances and the latest booking time of either account's
// entries (invalid when neither has any). Reading that time in the same
// statement saves a round trip while the rows are locked; it is exact because
// the caller already holds both rows' locks, so every entry of these accounts
// was committed before this statement's snapshot was taken.
func moveBalances(ctx context.Context, tx *gorm.DB, from, to string, amount int64) (debitAfter, creditAfter int64, latest sql.NullTime, err error) {
	var rows []struct {
		ID      string
		Balance int64
		Latest  sql.NullTime
	}
	res := tx.Raw(`UPDATE accounts
		SET balance = balance + CASE WHEN id = ?::uuid THEN -?::bigint ELSE ?::bigint END, version = version + 1
		WHERE id IN (?, ?)
		RETURNING id::text AS id, balance, (SELECT max(e.created_at) FROM entries e WHERE e.account_id = accounts.id) AS latest`,
		from, amount, amount, from, to).Scan(&rows)
	if res.Error != nil {
		return 0, 0, sql.NullTime{}, translate(ctx, res.Error)
	}
	var seen int
	for _, r := range rows {
		switch r.ID {
		case from:
			debitAfter, seen = r.Balance, seen|1
		case to:
			creditAfter, seen = r.Balance, seen|2
		}
		if r.Latest.Valid && (!latest.Valid || r.Latest.Time.After(latest.Time)) {
			latest = r.Latest
		}
	}
	if seen != 3 {
		return 0, 0, sql.NullTime{}, fmt.Errorf("%w: balance update touched %d rows", ErrStorage, len(rows))
	}
	return debitAfter, creditAfter, latest, nil
}

// nextBookingTime returns the clock's time, or latest, the latest booking
// time of either account, if that is later (a clock stepped back, or another
// node's clock ahead of ours). Booking times thus never decrease for an
// account, and with entry IDs increasing under the row lock, (booking time,
// id) grows in booking order: keyset pages stay stable while new entries are
// booked.
func (l *Ledger) nextBookingTime(latest sql.NullTime) time.Time {
	now := l.bookingTime()
	if latest.Valid && latest.Time.After(now) {
		return latest.Time.UTC()
	}
	return now
}

// canonicalID returns the lower-case form of a UUID string, or false when s is
// not a UUID in its usual 36-character form.
func canonicalID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// checkText accepts valid UTF-8 without NUL (which Postgres text refuses) of
// at most max characters.
func checkText(s string, max int) error {
	switch {
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return errors.New("contains NUL")
	case utf8.RuneCountInString(s) > max:
		return fmt.Errorf("longer than %d characters", max)
	}
	return nil
}
