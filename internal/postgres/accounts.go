package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

// identificationTries bounds the attempts to draw an unused account number.
const identificationTries = 10

// accountRow is an accounts row as read by this package.
type accountRow struct {
	ID             string
	Owner          string
	Currency       string
	Kind           string
	SchemeName     string
	Identification string
	Name           string
	Balance        int64
	Version        int64
	CreatedAt      time.Time
}

const accountColumns = `id::text AS id, owner, currency, kind, scheme_name, identification, name, balance, version, created_at`

func (r accountRow) model() models.Account {
	return models.Account{
		ID:             models.AccountID(r.ID),
		Owner:          r.Owner,
		Currency:       r.Currency,
		Kind:           models.AccountKind(r.Kind),
		SchemeName:     r.SchemeName,
		Identification: r.Identification,
		Name:           r.Name,
		Balance:        models.Amount{Minor: r.Balance, Currency: r.Currency},
		Version:        r.Version,
		CreatedAt:      r.CreatedAt.UTC(),
	}
}

// OpenAccount creates a customer account with a fresh, unique
// UK.OBIE.SortCodeAccountNumber identification (the ledger's sort code and a
// random 8-digit account number) and, when p.Opening is positive, funds it
// from the currency's settlement account (created on demand) by a normal
// transfer, all in one transaction. It returns the account with its balance.
//
// Errors: ledger.ErrInvalidAccount (owner or nickname), ledger.ErrUnknownCurrency,
// ledger.ErrInvalidAmount (negative opening), ledger.ErrCurrencyMismatch (opening in
// another currency), ledger.ErrOverflow (the settlement balance would overflow),
// ledger.ErrDuplicateIdentification (no free account number after several draws),
// ledger.ErrTxConflict, ledger.ErrStorage, or a context error. Nothing is written when an
// error is returned.
func (l *Ledger) OpenAccount(ctx context.Context, p ledger.OpenAccountParams) (models.Account, error) {
	if err := p.Validate(); err != nil {
		return models.Account{}, err
	}
	var out models.Account
	err := l.RunInTx(ctx, func(tx *gorm.DB) error {
		a, err := l.openAccount(ctx, tx, p)
		out = a
		return err
	})
	if err != nil {
		return models.Account{}, err
	}
	return out, nil
}

// openAccount is OpenAccount inside tx, for valid p.
func (l *Ledger) openAccount(ctx context.Context, tx *gorm.DB, p ledger.OpenAccountParams) (models.Account, error) {
	row, err := l.insertAccount(ctx, tx, p.Owner, p.Currency, models.KindCustomer, p.Nickname)
	if err != nil {
		return models.Account{}, err
	}
	if p.Opening != nil && p.Opening.Minor > 0 {
		settlement, err := l.settlementAccount(ctx, tx, p.Currency)
		if err != nil {
			return models.Account{}, err
		}
		if _, err := l.transfer(ctx, tx, ledger.TransferParams{
			From: settlement.ID, To: models.AccountID(row.ID), Amount: *p.Opening, Reference: ledger.OpeningReference,
		}); err != nil {
			return models.Account{}, err
		}
		row.Balance, row.Version = p.Opening.Minor, 1
	}
	return row.model(), nil
}

// ownerLockClass is the first key of the transaction-level advisory lock
// EnsureAccount takes on an owner (the second is a hash of the owner), so
// that its locks never meet another use of advisory locks.
const ownerLockClass = 0x0b0a

// EnsureAccount opens p's account as OpenAccount does unless p.Owner already
// has a customer account in p.Currency; then it returns the oldest of those,
// as it is now (its balance may differ from p.Opening), and opened is false.
// Concurrent calls for one owner, from any process on the database, open one
// account: each takes a transaction-level advisory lock on the owner before
// it looks. It is how the sandbox seeds its customers at every start.
//
// Errors: those of OpenAccount.
func (l *Ledger) EnsureAccount(ctx context.Context, p ledger.OpenAccountParams) (a models.Account, opened bool, err error) {
	if err := p.Validate(); err != nil {
		return models.Account{}, false, err
	}
	err = l.RunInTx(ctx, func(tx *gorm.DB) error {
		a, opened = models.Account{}, false
		// Read committed, whatever the server's default: the SELECT below
		// then sees an account another caller committed while this one
		// waited for the lock.
		if err := tx.Exec(`SET TRANSACTION ISOLATION LEVEL READ COMMITTED`).Error; err != nil {
			return translate(ctx, err)
		}
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(?, hashtext(?))`, ownerLockClass, p.Owner).Error; err != nil {
			return translate(ctx, err)
		}
		var rows []accountRow
		if err := tx.Raw(`SELECT `+accountColumns+` FROM accounts
			WHERE owner = ? AND kind = 'customer' AND currency = ? ORDER BY created_at, id LIMIT 1`,
			p.Owner, p.Currency).Scan(&rows).Error; err != nil {
			return translate(ctx, err)
		}
		if len(rows) == 1 {
			a = rows[0].model()
			return nil
		}
		acc, err := l.openAccount(ctx, tx, p)
		if err != nil {
			return err
		}
		a, opened = acc, true
		return nil
	})
	if err != nil {
		return models.Account{}, false, err
	}
	return a, opened, nil
}

// insertAccount inserts an account with a zero balance and an unused
// identification. A drawn number that is taken is skipped without aborting the
// transaction (ON CONFLICT DO NOTHING).
func (l *Ledger) insertAccount(ctx context.Context, tx *gorm.DB, owner, currency string, kind models.AccountKind, name string) (accountRow, error) {
	created := l.BookingTime()
	for range identificationTries {
		ident, err := l.newIdentification()
		if err != nil {
			return accountRow{}, fmt.Errorf("%w: draw account number: %v", ledger.ErrStorage, err)
		}
		row := accountRow{
			ID: uuid.NewString(), Owner: owner, Currency: currency, Kind: string(kind),
			SchemeName: models.SchemeSortCodeAccountNumber, Identification: ident, Name: name, CreatedAt: created,
		}
		res := tx.Exec(`INSERT INTO accounts (id, owner, currency, kind, scheme_name, identification, name, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			row.ID, row.Owner, row.Currency, row.Kind, row.SchemeName, row.Identification, row.Name, row.CreatedAt)
		if res.Error != nil {
			return accountRow{}, translate(ctx, res.Error)
		}
		if res.RowsAffected == 1 {
			return row, nil
		}
		if kind == models.KindSettlement {
			// The conflict may be another transaction's settlement account for
			// this currency: the caller looks again.
			return accountRow{}, nil
		}
	}
	return accountRow{}, fmt.Errorf("%w: no free account number after %d tries", ledger.ErrDuplicateIdentification, identificationTries)
}

// newIdentification draws sort code + 8 random digits.
func (l *Ledger) newIdentification() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(100_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%08d", l.sortCode, n.Int64()), nil
}

// SettlementAccount returns the settlement account of currency, creating it
// (with a zero balance) when it does not exist yet. With a nil tx it runs in
// its own transaction; otherwise inside tx.
//
// Errors: ledger.ErrUnknownCurrency, ledger.ErrTxConflict, ledger.ErrStorage, or a context error.
func (l *Ledger) SettlementAccount(ctx context.Context, tx *gorm.DB, currency string) (models.Account, error) {
	if _, ok := models.CurrencyExponent(currency); !ok {
		return models.Account{}, fmt.Errorf("%w %q", ledger.ErrUnknownCurrency, currency)
	}
	if tx != nil {
		return l.settlementAccount(ctx, tx.WithContext(ctx), currency)
	}
	var out models.Account
	err := l.RunInTx(ctx, func(tx *gorm.DB) error {
		a, err := l.settlementAccount(ctx, tx, currency)
		out = a
		return err
	})
	return out, err
}

func (l *Ledger) settlementAccount(ctx context.Context, tx *gorm.DB, currency string) (models.Account, error) {
	for range identificationTries {
		var rows []accountRow
		if err := tx.Raw(`SELECT `+accountColumns+` FROM accounts WHERE kind = 'settlement' AND currency = ?`,
			currency).Scan(&rows).Error; err != nil {
			return models.Account{}, translate(ctx, err)
		}
		if len(rows) == 1 {
			return rows[0].model(), nil
		}
		row, err := l.insertAccount(ctx, tx, ledger.SettlementOwner, currency, models.KindSettlement, currency+" settlement")
		if err != nil {
			return models.Account{}, err
		}
		if row.ID != "" {
			return row.model(), nil
		}
	}
	// Only possible when the caller's transaction cannot see a concurrently
	// committed settlement account (REPEATABLE READ): start again.
	return models.Account{}, fmt.Errorf("%w: settlement account for %s", ledger.ErrTxConflict, currency)
}

// Account returns the account with the given ID.
//
// Errors: ledger.ErrAccountNotFound, ledger.ErrStorage, or a context error.
func (l *Ledger) Account(ctx context.Context, id models.AccountID) (models.Account, error) {
	cid, ok := models.CanonicalID(string(id))
	if !ok {
		return models.Account{}, fmt.Errorf("%w: %q", ledger.ErrAccountNotFound, id)
	}
	return l.oneAccount(ctx, l.db.WithContext(ctx), `id = ?`, cid)
}

// AccountByIdentification returns the account with the given scheme name and
// identification (for example models.SchemeSortCodeAccountNumber and 14
// digits), inside tx when it is not nil.
//
// Errors: ledger.ErrAccountNotFound, ledger.ErrStorage, or a context error.
func (l *Ledger) AccountByIdentification(ctx context.Context, tx *gorm.DB, scheme, identification string) (models.Account, error) {
	db := l.db
	if tx != nil {
		db = tx
	}
	return l.oneAccount(ctx, db.WithContext(ctx), `scheme_name = ? AND identification = ?`, scheme, identification)
}

func (l *Ledger) oneAccount(ctx context.Context, db *gorm.DB, where string, args ...any) (models.Account, error) {
	var rows []accountRow
	if err := db.Raw(`SELECT `+accountColumns+` FROM accounts WHERE `+where, args...).Scan(&rows).Error; err != nil {
		return models.Account{}, translate(ctx, err)
	}
	if len(rows) != 1 {
		return models.Account{}, ledger.ErrAccountNotFound
	}
	return rows[0].model(), nil
}

// AccountsByOwner returns the customer accounts of owner, oldest first (an
// empty slice when there are none). Settlement accounts are never listed.
//
// Errors: ledger.ErrStorage, or a context error.
func (l *Ledger) AccountsByOwner(ctx context.Context, owner string) ([]models.Account, error) {
	var rows []accountRow
	if err := l.db.WithContext(ctx).Raw(`SELECT `+accountColumns+` FROM accounts
		WHERE owner = ? AND kind = 'customer' ORDER BY created_at, id`, owner).Scan(&rows).Error; err != nil {
		return nil, translate(ctx, err)
	}
	out := make([]models.Account, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.model())
	}
	return out, nil
}

// Balance returns the booked balance of an account.
//
// Errors: ledger.ErrAccountNotFound, ledger.ErrStorage, or a context error.
func (l *Ledger) Balance(ctx context.Context, id models.AccountID) (models.Amount, error) {
	a, err := l.Account(ctx, id)
	if err != nil {
		return models.Amount{}, err
	}
	return a.Balance, nil
}
