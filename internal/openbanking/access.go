package openbanking

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

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
// Version is the API version the request came on (required: the zero value
// is refused).
type AccountAccessRequest struct {
	Version         APIVersion
	Permissions     []Permission
	ExpiresAt       *time.Time
	TransactionFrom *time.Time
	TransactionTo   *time.Time
}

// AccountAccessConsent is an account access consent. It serves, and its PSU
// tokens read accounts, on every API version, whichever it was created on
// (Version).
type AccountAccessConsent struct {
	ID              string
	Version         APIVersion // the version it was created on
	ClientID        string
	Status          ConsentStatus
	CreatedAt       time.Time
	StatusUpdatedAt time.Time
	Permissions     []Permission
	ExpiresAt       *time.Time
	TransactionFrom *time.Time
	TransactionTo   *time.Time
}

func (r Consent) accessConsent() AccountAccessConsent {
	return AccountAccessConsent{
		ID: r.ID, Version: r.Version, ClientID: r.ClientID, Status: r.Status,
		CreatedAt: r.CreatedAt, StatusUpdatedAt: r.StatusUpdatedAt, Permissions: r.Permissions,
		ExpiresAt: r.ExpiresAt, TransactionFrom: r.TransactionFrom, TransactionTo: r.TransactionTo,
	}
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
// Errors: ErrUnsupportedVersion (req.Version is not V3_1 or V4_0),
// ErrForbidden (no client), *FieldError, ErrStorage, or a context error.
func (s *Service) CreateAccountAccessConsent(ctx context.Context, c Caller, req AccountAccessRequest) (AccountAccessConsent, error) {
	if err := checkVersion(req.Version); err != nil {
		return AccountAccessConsent{}, err
	}
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
		ID: uuid.NewString(), Version: req.Version, ClientID: c.ClientID, Status: StatusAwaitingAuthorisation, CreatedAt: now,
		StatusUpdatedAt: now, Permissions: perms, ExpiresAt: truncated(req.ExpiresAt),
		TransactionFrom: truncated(req.TransactionFrom), TransactionTo: truncated(req.TransactionTo),
	}
	if err := s.store.CreateAccessConsent(ctx, Consent{
		ID: out.ID, Kind: KindAccountAccess, Version: out.Version, ClientID: out.ClientID, Status: out.Status, CreatedAt: now,
		StatusUpdatedAt: now, Permissions: out.Permissions, ExpiresAt: out.ExpiresAt,
		TransactionFrom: out.TransactionFrom, TransactionTo: out.TransactionTo,
	}); err != nil {
		return AccountAccessConsent{}, err
	}
	s.observe.ConsentChanged(KindAccountAccess, ConsentCreated)
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
	r, err := s.store.Consent(ctx, id)
	if err != nil {
		return AccountAccessConsent{}, err
	}
	if r.Kind != KindAccountAccess {
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
	revoked := false
	err := s.store.UpdateConsent(ctx, id, func(r Consent) (*ConsentChange, error) {
		revoked = false // the store may call again after a conflict
		if r.Kind != KindAccountAccess {
			return nil, ErrNotFound
		}
		if err := checkOwner(c, r); err != nil {
			return nil, err
		}
		switch r.Status {
		case StatusRevoked:
			return nil, nil
		case StatusRejected:
			return nil, ErrInvalidConsentStatus
		}
		revoked = true
		return &ConsentChange{Status: StatusRevoked, At: s.clock()}, nil
	})
	if err == nil && revoked {
		s.observe.ConsentChanged(KindAccountAccess, ConsentRevoked)
	}
	return err
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
	if c.ClientID != "" && c.PSU == "" {
		return grant{}, ErrCustomerTokenRequired
	}
	if c.ClientID == "" || c.ConsentID == "" {
		return grant{}, ErrForbidden
	}
	r, err := s.store.Consent(ctx, c.ConsentID)
	switch {
	case errors.Is(err, ErrNotFound):
		return grant{}, ErrForbidden
	case err != nil:
		return grant{}, err
	}
	return s.grantOf(c, r, perms)
}

// grantOf checks the consent r read for c: see accessGrant.
func (s *Service) grantOf(c Caller, r Consent, perms []Permission) (grant, error) {
	ac := r.accessConsent()
	switch {
	case r.Kind != KindAccountAccess, r.ClientID != c.ClientID, r.PSU != c.PSU,
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

// accessAndAccount is accessGrant followed by ownAccount in one database
// round trip (the hot path of AISP reads): the grant's errors first, then
// ErrNotFound for an unknown account and ErrForbidden for one that is not a
// customer account of the PSU.
//
// The round trip is the Store's ConsentAndAccount, which concurrent reads may
// share (internal/postgres batches them). A read is always answered by a
// statement that started after the read arrived, so nothing is cached: it
// sees the balance committed before it arrived, and a consent revoked before
// it arrived refuses it, exactly as with a query of its own.
func (s *Service) accessAndAccount(ctx context.Context, c Caller, accountID string, perms ...Permission) (grant, models.Account, error) {
	if c.ClientID != "" && c.PSU == "" {
		return grant{}, models.Account{}, ErrCustomerTokenRequired
	}
	if c.ClientID == "" || c.ConsentID == "" {
		return grant{}, models.Account{}, ErrForbidden
	}
	aid, okA := models.CanonicalID(accountID)
	cid, okC := models.CanonicalID(c.ConsentID)
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
	con, hasConsent, a, hasAccount, err := s.store.ConsentAndAccount(ctx, cid, aid)
	switch {
	case err != nil:
		return grant{}, models.Account{}, err
	case !hasConsent:
		return grant{}, models.Account{}, ErrForbidden
	}
	g, err := s.grantOf(c, con, perms)
	if err != nil {
		return grant{}, models.Account{}, err
	}
	if !hasAccount {
		return grant{}, models.Account{}, ErrNotFound
	}
	if a.Kind != models.KindCustomer || a.Owner != g.psu {
		return grant{}, models.Account{}, ErrForbidden
	}
	return g, a, nil
}

// ownAccount returns the account id if it is a customer account of g's PSU.
func (s *Service) ownAccount(ctx context.Context, g grant, id string) (models.Account, error) {
	a, err := s.store.Account(ctx, models.AccountID(id))
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
	accts, err := s.store.AccountsByOwner(ctx, g.psu)
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
	page, err := s.store.Entries(ctx, ledger.EntriesQuery{Account: a.ID, From: from, To: to, After: after, Limit: s.pageSize})
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
