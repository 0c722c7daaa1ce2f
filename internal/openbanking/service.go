package openbanking

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
const (
	DefaultIdempotencyTTL       = 24 * time.Hour
	DefaultTransactionsPageSize = 100
	MinTransactionsPageSize     = 25
	MaxTransactionsPageSize     = 1000
)

// Config configures New.
type Config struct {
	// Store keeps the ledger, consents, payments and idempotency keys
	// (internal/postgres implements it). Required.
	Store Store
	// Now is the clock for creation, status and booking times and expiry
	// checks; nil means time.Now.
	Now func() time.Time
	// IdempotencyTTL is how long an x-idempotency-key is remembered; zero
	// means DefaultIdempotencyTTL.
	IdempotencyTTL time.Duration
	// TransactionsPageSize is the number of ledger entries read per page of
	// transactions, MinTransactionsPageSize to MaxTransactionsPageSize; zero
	// means DefaultTransactionsPageSize.
	TransactionsPageSize int
	// Observer hears of consents created and decided, payments booked and
	// idempotent replays; nil means nobody listens.
	Observer Observer
}

// Service implements the Open Banking resources. It is safe for concurrent
// use: all state is in the Store.
type Service struct {
	store    Store
	now      func() time.Time
	keyTTL   time.Duration
	pageSize int
	observe  Observer
}

// New returns a Service. It validates cfg and fills its defaults.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("openbanking: Store is required")
	}
	s := &Service{store: cfg.Store, now: cfg.Now, keyTTL: cfg.IdempotencyTTL, pageSize: cfg.TransactionsPageSize, observe: cfg.Observer}
	if s.observe == nil {
		s.observe = nopObserver{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case s.keyTTL == 0:
		s.keyTTL = DefaultIdempotencyTTL
	case s.keyTTL < 0:
		return nil, fmt.Errorf("openbanking: IdempotencyTTL %v is negative", s.keyTTL)
	}
	switch {
	case s.pageSize == 0:
		s.pageSize = DefaultTransactionsPageSize
	case s.pageSize < MinTransactionsPageSize || s.pageSize > MaxTransactionsPageSize:
		return nil, fmt.Errorf("openbanking: TransactionsPageSize %d not in %d..%d",
			s.pageSize, MinTransactionsPageSize, MaxTransactionsPageSize)
	}
	return s, nil
}

// Caller is the verified client of a request. PSU and ConsentID are set only
// for a PSU token (authorization code flow): the customer and the consent the
// token was issued for.
type Caller struct {
	ClientID  string
	PSU       string
	ConsentID string
}

// Idempotency is the x-idempotency-key of a request and the SHA-256 of its
// raw body.
type Idempotency struct {
	Key         string
	RequestHash [32]byte
}

// MaxIdempotencyKeyLen is the longest x-idempotency-key, in characters.
const MaxIdempotencyKeyLen = 40

// clock returns the service time at the database's precision.
func (s *Service) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}
