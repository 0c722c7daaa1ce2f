package openbanking

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/obpay/payments/internal/coalesce"
	"github.com/obpay/payments/internal/ledger"
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
	// DB is the Postgres database, migrated with this module's migrations.
	// Required.
	DB *gorm.DB
	// Ledger books the payments; it must use the same database. Required.
	Ledger *ledger.Ledger
	// Now is the clock for creation and status times and expiry checks; nil
	// means time.Now.
	Now func() time.Time
	// IdempotencyTTL is how long an x-idempotency-key is remembered; zero
	// means DefaultIdempotencyTTL.
	IdempotencyTTL time.Duration
	// TransactionsPageSize is the number of ledger entries read per page of
	// transactions, MinTransactionsPageSize to MaxTransactionsPageSize; zero
	// means DefaultTransactionsPageSize.
	TransactionsPageSize int
	// AccountReadBatches is the number of batched account and balance reads
	// that may run at once (see accessAndAccount); zero means
	// DefaultAccountReadBatches.
	AccountReadBatches int
}

// Service implements the Open Banking resources. It is safe for concurrent
// use: all state is in the database.
type Service struct {
	db       *gorm.DB
	ledger   *ledger.Ledger
	now      func() time.Time
	keyTTL   time.Duration
	pageSize int
	// accessReads coalesces the database reads of concurrent AISP account
	// and balance reads.
	accessReads *coalesce.Batcher[accessKey, accessRow]
}

// New returns a Service. It validates cfg and fills its defaults.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Ledger == nil {
		return nil, errors.New("openbanking: DB and Ledger are required")
	}
	s := &Service{db: cfg.DB, ledger: cfg.Ledger, now: cfg.Now, keyTTL: cfg.IdempotencyTTL, pageSize: cfg.TransactionsPageSize}
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
	switch {
	case cfg.AccountReadBatches == 0:
		cfg.AccountReadBatches = DefaultAccountReadBatches
	case cfg.AccountReadBatches < 0:
		return nil, fmt.Errorf("openbanking: AccountReadBatches %d is negative", cfg.AccountReadBatches)
	}
	s.accessReads = s.newAccessReads(cfg.AccountReadBatches)
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

// canonicalID returns the lower-case form of a UUID string, or false when s
// is not a UUID in its 36-character form (such an id is simply unknown).
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
