package openbanking

import (
	"bytes"
	"context"
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
// A key held by a concurrent, uncommitted transaction makes the INSERT wait
// for that transaction: when it commits, the conflict branch locks its row
// and we read it; when it rolls back, our insert simply succeeds.
func (s *Service) claimKey(ctx context.Context, tx *gorm.DB, clientID, op string, k Idempotency, resourceID string) (string, error) {
	now := s.clock()
	var won []struct{ ResourceID string }
	// ON CONFLICT DO UPDATE locks the conflicting row even when its WHERE is
	// false, so a later read in this transaction sees it committed and stable.
	err := tx.Raw(`INSERT INTO idempotency_keys AS k
			(client_id, operation, key, request_hash, resource_id, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (client_id, operation, key) DO UPDATE
			SET request_hash = EXCLUDED.request_hash, resource_id = EXCLUDED.resource_id,
				created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
			WHERE k.expires_at <= EXCLUDED.created_at
		RETURNING k.resource_id::text AS resource_id`,
		clientID, op, k.Key, k.RequestHash[:], resourceID, now, now.Add(s.keyTTL)).Scan(&won).Error
	if err != nil {
		return "", dbError(ctx, err)
	}
	if len(won) == 1 {
		return "", nil
	}
	var prev []struct {
		RequestHash []byte
		ResourceID  string
	}
	if err := tx.Raw(`SELECT request_hash, resource_id::text AS resource_id FROM idempotency_keys
		WHERE client_id = ? AND operation = ? AND key = ?`, clientID, op, k.Key).Scan(&prev).Error; err != nil {
		return "", dbError(ctx, err)
	}
	if len(prev) != 1 {
		return "", fmt.Errorf("%w: idempotency key row vanished", ErrStorage)
	}
	if !bytes.Equal(prev[0].RequestHash, k.RequestHash[:]) {
		return "", ErrIdempotencyConflict
	}
	return prev[0].ResourceID, nil
}
