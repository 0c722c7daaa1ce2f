package openbanking

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/coalesce"
	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
)

// Permission is an OB account access permission.
type Permission string

// Permissions this service supports.
const (
	ReadAccountsBasic       Permission = "ReadAccountsBasic"
	ReadAccountsDetail      Permission = "ReadAccountsDetail"
	ReadBalances            Permission = "ReadBalances"
	ReadTransactionsBasic   Permission = "ReadTransactionsBasic"
	ReadTransactionsDetail  Permission = "ReadTransactionsDetail"
	ReadTransactionsCredits Permission = "ReadTransactionsCredits"
	ReadTransactionsDebits  Permission = "ReadTransactionsDebits"
)

var knownPermissions = []Permission{
	ReadAccountsBasic, ReadAccountsDetail, ReadBalances, ReadTransactionsBasic,
	ReadTransactionsDetail, ReadTransactionsCredits, ReadTransactionsDebits,
}

// AccountAccessRequest is a new account access consent. Times are optional.
type AccountAccessRequest struct {
	Permissions     []Permission
	ExpiresAt       *time.Time
	TransactionFrom *time.Time
	TransactionTo   *time.Time
}

// AccountAccessConsent is an account access consent.
type AccountAccessConsent struct {
	ID              string
	ClientID        string
	Status          ConsentStatus
	CreatedAt       time.Time
	StatusUpdatedAt time.Time
	Permissions     []Permission
	ExpiresAt       *time.Time
	TransactionFrom *time.Time
	TransactionTo   *time.Time
}

func (r consentRow) accessConsent() AccountAccessConsent {
	var perms []Permission
	for _, p := range strings.Fields(deref(r.Permissions)) {
		perms = append(perms, Permission(p))
	}
	return AccountAccessConsent{
		ID: r.ID, ClientID: r.ClientID, Status: ConsentStatus(r.Status),
		CreatedAt: r.CreatedAt.UTC(), StatusUpdatedAt: r.StatusUpdatedAt.UTC(), Permissions: perms,
		ExpiresAt: utc(r.ExpiresAt), TransactionFrom: utc(r.TransactionFrom), TransactionTo: utc(r.TransactionTo),
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func truncated(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

// CreateAccountAccessConsent creates an account access consent for c's
// client in status AwaitingAuthorisation. Permissions are deduplicated and
// must be known; ReadTransactionsCredits/Debits need ReadTransactionsBasic or
// Detail; ExpiresAt must be in the future; TransactionFrom must not be after
// TransactionTo.
//
// Errors: ErrForbidden (no client), *FieldError, ErrStorage, or a context
// error.
func (s *Service) CreateAccountAccessConsent(ctx context.Context, c Caller, req AccountAccessRequest) (AccountAccessConsent, error) {
	if c.ClientID == "" {
		return AccountAccessConsent{}, ErrForbidden
	}
	now := s.clock()
	perms, err := checkPermissions(req.Permissions)
	if err != nil {
		return AccountAccessConsent{}, err
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(now) {
		return AccountAccessConsent{}, invalidField("Data.ExpirationDateTime", "must be in the future")
	}
	if req.TransactionFrom != nil && req.TransactionTo != nil && req.TransactionFrom.After(*req.TransactionTo) {
		return AccountAccessConsent{}, invalidField("Data.TransactionFromDateTime", "must not be after TransactionToDateTime")
	}
	out := AccountAccessConsent{
		ID: uuid.NewString(), ClientID: c.ClientID, Status: StatusAwaitingAuthorisation, CreatedAt: now,
		StatusUpdatedAt: now, Permissions: perms, ExpiresAt: truncated(req.ExpiresAt),
		TransactionFrom: truncated(req.TransactionFrom), TransactionTo: truncated(req.TransactionTo),
	}
	names := make([]string, len(perms))
	for i, p := range perms {
		names[i] = string(p)
	}
	if err := s.db.WithContext(ctx).Exec(`INSERT INTO consents (id, kind, client_id, status, created_at,
			status_updated_at, permissions, expires_at, transaction_from, transaction_to)
		VALUES (?, 'account-access', ?, 'AwaitingAuthorisation', ?, ?, ?, ?, ?, ?)`,
		out.ID, c.ClientID, now, now, strings.Join(names, " "), out.ExpiresAt, out.TransactionFrom, out.TransactionTo).Error; err != nil {
		return AccountAccessConsent{}, dbError(ctx, err)
	}
	return out, nil
}

func checkPermissions(in []Permission) ([]Permission, error) {
	const path = "Data.Permissions"
	if len(in) == 0 {
		return nil, &FieldError{Path: path, Reason: "at least one permission is required", Missing: true, Err: ErrInvalidField}
	}
	var out []Permission
	for _, p := range in {
		if !slices.Contains(knownPermissions, p) {
			return nil, invalidField(path, "unsupported permission")
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	g := grant{perms: out}
	if (g.has(ReadTransactionsCredits) || g.has(ReadTransactionsDebits)) &&
		!g.has(ReadTransactionsBasic) && !g.has(ReadTransactionsDetail) {
		return nil, invalidField(path, "ReadTransactionsCredits and ReadTransactionsDebits need ReadTransactionsBasic or ReadTransactionsDetail")
	}
	return out, nil
}

// AccountAccessConsent returns an account access consent of c's client.
//
// Errors: ErrNotFound (unknown, or not an account access consent),
// ErrForbidden, ErrStorage, or a context error.
func (s *Service) AccountAccessConsent(ctx context.Context, c Caller, id string) (AccountAccessConsent, error) {
	r, err := loadConsent(ctx, s.db, id, false)
	if err != nil {
		return AccountAccessConsent{}, err
	}
	if ConsentKind(r.Kind) != KindAccountAccess {
		return AccountAccessConsent{}, ErrNotFound
	}
	if err := checkOwner(c, r); err != nil {
		return AccountAccessConsent{}, err
	}
	return r.accessConsent(), nil
}

// RevokeAccountAccessConsent revokes an account access consent of c's client
// (AwaitingAuthorisation or Authorised -> Revoked): tokens issued for it stop
// reading accounts at once. Revoking a Revoked consent again succeeds and
// changes nothing.
//
// Errors: ErrNotFound, ErrForbidden, ErrInvalidConsentStatus (Rejected),
// ledger.ErrTxConflict, ErrStorage, or a context error.
func (s *Service) RevokeAccountAccessConsent(ctx context.Context, c Caller, id string) error {
	return s.ledger.RunInTx(ctx, func(tx *gorm.DB) error {
		r, err := loadConsent(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if ConsentKind(r.Kind) != KindAccountAccess {
			return ErrNotFound
		}
		if err := checkOwner(c, r); err != nil {
			return err
		}
		switch ConsentStatus(r.Status) {
		case StatusRevoked:
			return nil
		case StatusRejected:
			return ErrInvalidConsentStatus
		}
		return dbError(ctx, tx.Exec(`UPDATE consents SET status = 'Revoked', status_updated_at = ? WHERE id = ?`,
			s.clock(), r.ID).Error)
	})
}

// grant is what an authorised account access consent lets its PSU token read.
type grant struct {
	psu      string
	perms    []Permission
	from, to *time.Time
}

func (g grant) has(p Permission) bool { return slices.Contains(g.perms, p) }

// Grant is the part of an account access consent the HTTP edge needs to shape
// answers.
type Grant struct {
	Permissions []Permission
}

// Has reports whether the consent grants p.
func (g Grant) Has(p Permission) bool { return slices.Contains(g.Permissions, p) }

// accessGrant checks that c is a PSU token bound to an Authorised, unexpired
// account access consent of its client and that PSU, and that the consent
// grants one of perms.
func (s *Service) accessGrant(ctx context.Context, c Caller, perms ...Permission) (grant, error) {
	if c.ClientID == "" || c.PSU == "" || c.ConsentID == "" {
		return grant{}, ErrForbidden
	}
	r, err := loadConsent(ctx, s.db, c.ConsentID, false)
	switch {
	case errors.Is(err, ErrNotFound):
		return grant{}, ErrForbidden
	case err != nil:
		return grant{}, err
	}
	return s.grantOf(c, r, perms)
}

// grantOf checks the consent r read for c: see accessGrant.
func (s *Service) grantOf(c Caller, r consentRow, perms []Permission) (grant, error) {
	ac := r.accessConsent()
	switch {
	case ConsentKind(r.Kind) != KindAccountAccess, r.ClientID != c.ClientID, deref(r.PSU) != c.PSU,
		ac.Status != StatusAuthorised, ac.ExpiresAt != nil && !s.clock().Before(*ac.ExpiresAt):
		return grant{}, ErrForbidden
	}
	g := grant{psu: c.PSU, perms: ac.Permissions, from: ac.TransactionFrom, to: ac.TransactionTo}
	for _, p := range perms {
		if g.has(p) {
			return g, nil
		}
	}
	return grant{}, ErrForbidden
}

// consentAccountSelect reads, for a batch of AISP reads, what each needs of
// its consent (the columns accessConsent uses) and the account it asks for,
// in one statement. Parameters: two Postgres uuid[] literals of equal length,
// the account ids and the consent ids; read i is row ordinality i+1. A read
// whose consent does not exist has no row; the account columns are NULL when
// there is no such account. Each consent and account id is a primary key, so
// no read has more than one row.
const consentAccountSelect = `SELECT q.ord, c.id::text, c.kind, c.client_id, c.status, c.psu, c.created_at, c.status_updated_at,
	c.permissions, c.expires_at, c.transaction_from, c.transaction_to,
	b.id::text, b.owner, b.currency, b.kind, b.scheme_name, b.identification, b.name, b.balance, b.version, b.created_at
	FROM unnest(?::uuid[], ?::uuid[]) WITH ORDINALITY AS q(aid, cid, ord)
	JOIN consents c ON c.id = q.cid
	LEFT JOIN accounts b ON b.id = q.aid`

// accessKey is one AISP read's account and consent ids, both canonical UUIDs.
type accessKey struct {
	account, consent string
}

// accessRow is what consentAccountSelect read for one accessKey.
type accessRow struct {
	consent    consentRow
	hasConsent bool
	account    models.Account
	hasAccount bool
}

// DefaultAccountReadBatches is the default of Config.AccountReadBatches.
//
// One: batching exists to save CPU (the server's and Postgres's) per read on
// hosts where they share few cores, and every further batch in flight splits
// the arrivals into one more, smaller batch (one more round trip). With one,
// a read that arrives while a batch runs waits for it and goes in the next
// batch with every other read that arrived meanwhile; a read that finds no
// batch running starts at once, so a lone read waits for nothing. Measured
// end to end (docs/performance.md), one batch in flight served more reads per
// second than two at 8 and at 32 concurrent readers, with a lower p99. It
// also keeps the batched reads on one database connection, leaving the rest
// of the pool to payments.
const DefaultAccountReadBatches = 1

// accountReadBatch is the largest number of reads in one batch: at the
// concurrency a server sees it is rarely reached, and it bounds the size of
// one statement's arrays.
const accountReadBatch = 64

// newAccessReads returns the batcher of s's AISP reads.
func (s *Service) newAccessReads(inFlight int) *coalesce.Batcher[accessKey, accessRow] {
	return coalesce.New(s.fetchAccess, coalesce.Options{MaxInFlight: inFlight, MaxBatch: accountReadBatch})
}

// fetchAccess runs consentAccountSelect for a batch of reads. The ids are
// canonical UUIDs (canonicalID checked them), so they can be joined into
// array literals as they are; gorm would expand a Go slice into a list of
// parameters instead. Rows are scanned by hand into the fields: this is the
// hot path of every AISP read, and reflection-based scanning cost more than
// the query.
func (s *Service) fetchAccess(ctx context.Context, keys []accessKey) ([]accessRow, error) {
	var aids, cids strings.Builder
	aids.Grow(len(keys)*37 + 2)
	cids.Grow(len(keys)*37 + 2)
	aids.WriteByte('{')
	cids.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			aids.WriteByte(',')
			cids.WriteByte(',')
		}
		aids.WriteString(k.account)
		cids.WriteString(k.consent)
	}
	aids.WriteByte('}')
	cids.WriteByte('}')

	rows, err := s.db.WithContext(ctx).Raw(consentAccountSelect, aids.String(), cids.String()).Rows()
	if err != nil {
		return nil, fmt.Errorf("read consents and accounts: %w", err)
	}
	defer rows.Close()
	out := make([]accessRow, len(keys))
	for rows.Next() {
		var (
			ord                                                        int64
			r                                                          consentRow
			accID, owner, currency, kind, scheme, identification, name *string
			balance, version                                           *int64
			created                                                    *time.Time
		)
		if err := rows.Scan(&ord, &r.ID, &r.Kind, &r.ClientID, &r.Status, &r.PSU, &r.CreatedAt, &r.StatusUpdatedAt,
			&r.Permissions, &r.ExpiresAt, &r.TransactionFrom, &r.TransactionTo,
			&accID, &owner, &currency, &kind, &scheme, &identification, &name, &balance, &version, &created); err != nil {
			return nil, fmt.Errorf("read consents and accounts: %w", err)
		}
		if ord < 1 || ord > int64(len(out)) || out[ord-1].hasConsent {
			return nil, fmt.Errorf("read consents and accounts: unexpected row ordinality %d of %d", ord, len(out))
		}
		row := &out[ord-1]
		row.consent, row.hasConsent = r, true
		if accID == nil {
			continue
		}
		row.hasAccount = true
		row.account = models.Account{
			ID:             models.AccountID(*accID),
			Owner:          deref(owner),
			Currency:       deref(currency),
			Kind:           models.AccountKind(deref(kind)),
			SchemeName:     deref(scheme),
			Identification: deref(identification),
			Name:           deref(name),
			Balance:        models.Amount{Minor: deref(balance), Currency: deref(currency)},
			Version:        deref(version),
		}
		if created != nil {
			row.account.CreatedAt = created.UTC()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read consents and accounts: %w", err)
	}
	return out, nil
}

// accessAndAccount is accessGrant followed by ownAccount in one database
// round trip (the hot path of AISP reads): the grant's errors first, then
// ErrNotFound for an unknown account and ErrForbidden for one that is not a
// customer account of the PSU.
//
// The round trip is shared: concurrent reads go through s.accessReads, which
// answers all reads that arrived while earlier batches ran with one statement
// (see consentAccountSelect). A read is always answered by a statement that
// started after the read arrived, so nothing is cached: it sees the balance
// committed before it arrived, and a consent revoked before it arrived
// refuses it, exactly as with a query of its own.
func (s *Service) accessAndAccount(ctx context.Context, c Caller, accountID string, perms ...Permission) (grant, models.Account, error) {
	if c.ClientID == "" || c.PSU == "" || c.ConsentID == "" {
		return grant{}, models.Account{}, ErrForbidden
	}
	aid, okA := canonicalID(accountID)
	cid, okC := canonicalID(c.ConsentID)
	if !okA || !okC {
		// Not a UUID: no such account (or consent); the grant's answer
		// comes first, as in the two-step path.
		g, err := s.accessGrant(ctx, c, perms...)
		if err != nil {
			return grant{}, models.Account{}, err
		}
		_, err = s.ownAccount(ctx, g, accountID)
		return grant{}, models.Account{}, err
	}
	row, err := s.accessReads.Do(ctx, accessKey{account: aid, consent: cid})
	switch {
	case err != nil:
		// A read whose own context ended gets the context's error, whatever
		// became of its batch.
		return grant{}, models.Account{}, dbError(ctx, err)
	case !row.hasConsent:
		return grant{}, models.Account{}, ErrForbidden
	}
	g, err := s.grantOf(c, row.consent, perms)
	if err != nil {
		return grant{}, models.Account{}, err
	}
	if !row.hasAccount {
		return grant{}, models.Account{}, ErrNotFound
	}
	if a := row.account; a.Kind != models.KindCustomer || a.Owner != g.psu {
		return grant{}, models.Account{}, ErrForbidden
	}
	return g, row.account, nil
}

// ownAccount returns the account id if it is a customer account of g's PSU.
func (s *Service) ownAccount(ctx context.Context, g grant, id string) (models.Account, error) {
	a, err := s.ledger.Account(ctx, models.AccountID(id))
	switch {
	case errors.Is(err, ledger.ErrAccountNotFound):
		return models.Account{}, ErrNotFound
	case err != nil:
		return models.Account{}, err
	case a.Kind != models.KindCustomer || a.Owner != g.psu:
		return models.Account{}, ErrForbidden
	}
	return a, nil
}

// Accounts lists the PSU's accounts; it needs ReadAccountsBasic or
// ReadAccountsDetail (the Grant says which, to show identifications only with
// Detail).
//
// Errors: ErrForbidden, ErrStorage, ledger errors, or a context error.
func (s *Service) Accounts(ctx context.Context, c Caller) ([]models.Account, Grant, error) {
	g, err := s.accessGrant(ctx, c, ReadAccountsBasic, ReadAccountsDetail)
	if err != nil {
		return nil, Grant{}, err
	}
	accts, err := s.ledger.AccountsByOwner(ctx, g.psu)
	if err != nil {
		return nil, Grant{}, err
	}
	return accts, Grant{Permissions: g.perms}, nil
}

// Account returns one of the PSU's accounts; it needs ReadAccountsBasic or
// ReadAccountsDetail.
//
// Errors: ErrForbidden (no grant, or another PSU's account), ErrNotFound,
// ErrStorage, ledger errors, or a context error.
func (s *Service) Account(ctx context.Context, c Caller, accountID string) (models.Account, Grant, error) {
	g, a, err := s.accessAndAccount(ctx, c, accountID, ReadAccountsBasic, ReadAccountsDetail)
	if err != nil {
		return models.Account{}, Grant{}, err
	}
	return a, Grant{Permissions: g.perms}, nil
}

// Balance returns one of the PSU's accounts with its booked balance; it needs
// ReadBalances.
//
// Errors: those of Account.
func (s *Service) Balance(ctx context.Context, c Caller, accountID string) (models.Account, time.Time, error) {
	_, a, err := s.accessAndAccount(ctx, c, accountID, ReadBalances)
	if err != nil {
		return models.Account{}, time.Time{}, err
	}
	return a, s.clock(), nil
}

// TransactionsQuery selects a page of an account's transactions. From and To
// are inclusive booking-time bounds (nil: none); Cursor is "" for the first
// page, else TransactionsPage.Next of the previous one.
type TransactionsQuery struct {
	From, To *time.Time
	Cursor   string
}

// TransactionsPage is one page of transactions, oldest first. Next is "" on
// the last page. A page may hold fewer entries than the page size (even none)
// when the consent grants only credits or only debits; Next still leads on.
type TransactionsPage struct {
	Entries []models.Entry
	Next    string
	Grant   Grant
}

// Transactions returns a page of the PSU's account's entries within q's
// window and the consent's TransactionFrom/To, keyset-paginated so that every
// entry appears exactly once across pages while new ones are booked. It needs
// ReadTransactionsBasic or ReadTransactionsDetail; ReadTransactionsCredits or
// ReadTransactionsDebits alone restrict it to that direction.
//
// Errors: ErrForbidden, ErrNotFound, *FieldError (From after To, bad
// cursor), ErrStorage, ledger errors, or a context error.
func (s *Service) Transactions(ctx context.Context, c Caller, accountID string, q TransactionsQuery) (TransactionsPage, error) {
	if q.From != nil && q.To != nil && q.From.After(*q.To) {
		return TransactionsPage{}, invalidField("fromBookingDateTime", "must not be after toBookingDateTime")
	}
	var after *ledger.Cursor
	if q.Cursor != "" {
		cur, err := ledger.ParseCursor(q.Cursor)
		if err != nil {
			return TransactionsPage{}, invalidField("cursor", "not a cursor this server issued")
		}
		after = &cur
	}
	g, err := s.accessGrant(ctx, c, ReadTransactionsBasic, ReadTransactionsDetail)
	if err != nil {
		return TransactionsPage{}, err
	}
	a, err := s.ownAccount(ctx, g, accountID)
	if err != nil {
		return TransactionsPage{}, err
	}
	out := TransactionsPage{Entries: []models.Entry{}, Grant: Grant{Permissions: g.perms}}
	from, to := later(q.From, g.from), earlier(q.To, g.to)
	if from != nil && to != nil && from.After(*to) {
		return out, nil // the consent's window and the query's do not meet
	}
	page, err := s.ledger.Entries(ctx, ledger.EntriesQuery{Account: a.ID, From: from, To: to, After: after, Limit: s.pageSize})
	if err != nil {
		return TransactionsPage{}, err
	}
	credits, debits := g.has(ReadTransactionsCredits), g.has(ReadTransactionsDebits)
	for _, e := range page.Entries {
		if credits != debits && (e.Direction == models.Credit) != credits {
			continue
		}
		out.Entries = append(out.Entries, e)
	}
	if page.Next != nil {
		out.Next = page.Next.String()
	}
	return out, nil
}

func later(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.After(*a)) {
		return b
	}
	return a
}

func earlier(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.Before(*a)) {
		return b
	}
	return a
}
