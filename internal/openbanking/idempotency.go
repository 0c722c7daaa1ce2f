package openbanking

import (
	"context"
	"database/sql"
	"fmt"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Operations an idempotency key is scoped to (with the client).
const (
	opCreatePaymentConsent = "domestic-payment-consents"
	opCreatePayment        = "domestic-payments"
)

// checkKey validates an idempotency key: 1 to MaxIdempotencyKeyLen
// characters of valid UTF-8.
func checkKey(k Idempotency) error {
	if k.Key == "" || !utf8.ValidString(k.Key) || utf8.RuneCountInString(k.Key) > MaxIdempotencyKeyLen {
		return invalidField("x-idempotency-key", "must be 1 to 40 characters")
	}
	return nil
}

// claimKey records k for (clientID, op) inside tx, pointing at resourceID, the
// id of the resource the caller is about to create in the same transaction.
// It returns "" when the caller now owns the key (a new key, or one whose
// previous use has expired) and must create the resource.
//
// When the key is already in use it returns the id of the resource recorded
// with it, or ErrIdempotencyConflict when the recorded request hash differs.
// The database function ob_claim_key does the work in one round trip (and
// ob_create_payment calls the same function for payments): a key held by a
// concurrent, uncommitted transaction makes it wait for that transaction,
// then read the committed record.
func (s *Service) claimKey(ctx context.Context, tx *gorm.DB, clientID, op string, k Idempotency, resourceID string) (string, error) {
	now := s.clock()
	var existing sql.NullString
	err := tx.Raw(`SELECT existing::text FROM ob_claim_key(?, ?, ?, ?, ?, ?, ?)`,
		clientID, op, k.Key, k.RequestHash[:], resourceID, now, now.Add(s.keyTTL)).Row().Scan(&existing)
	if err != nil {
		return "", refusalError(ctx, err)
	}
	return existing.String, nil
}

// PurgeExpiredKeys deletes at most limit idempotency keys whose lifetime
// (Config.IdempotencyTTL, 24 hours by default) ended before the service's
// clock, and returns how many it deleted. Only expired keys go: such a key no
// longer deduplicates anything (ob_claim_key reclaims it), so deleting it
// changes no answer. Rows that a concurrent request holds locked are skipped,
// so several nodes may purge at once without waiting on each other or on
// traffic; call it again while it returns limit. Unexpected database failures
// match ErrStorage; a done ctx gives its error.
func (s *Service) PurgeExpiredKeys(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("openbanking: purge limit %d is not positive", limit)
	}
	now := s.clock()
	res := s.db.WithContext(ctx).Exec(`DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM idempotency_keys WHERE expires_at < ? LIMIT ? FOR UPDATE SKIP LOCKED))
		AND expires_at < ?`, now, limit, now)
	if res.Error != nil {
		return 0, dbError(ctx, res.Error)
	}
	return int(res.RowsAffected), nil
}
