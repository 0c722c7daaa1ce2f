package openbanking

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/obpay/payments/internal/ledger"
)

// Operations an idempotency key is scoped to (with the client), on v3.1;
// see operation for the other versions.
const (
	opCreatePaymentConsent = "domestic-payment-consents"
	opCreatePayment        = "domestic-payments"
)

// operation is the scope of an idempotency key for op on API version v. OB
// scopes a key to its endpoint, and each version has its own: a key used on
// v3.1 is new on v4.0, so that a request there never replays a resource of
// the other version. v3.1 keeps the plain names it used before v4.0 existed.
func operation(op string, v APIVersion) string {
	if v == V3_1 {
		return op
	}
	return "v" + string(v) + "/" + op
}

// CheckIdempotencyKey is the one rule for an x-idempotency-key value: 1 to
// MaxIdempotencyKeyLen characters of storable text (models.CheckText: valid
// UTF-8 without NUL) without leading or trailing white space. The refusal
// never contains the key.
//
// Errors: *FieldError (ErrInvalidField, Path "x-idempotency-key"; Missing
// when key is empty).
func CheckIdempotencyKey(key string) error {
	if key == "" {
		return &FieldError{Path: "x-idempotency-key", Reason: "is required", Missing: true, Err: ErrInvalidField}
	}
	if ledger.CheckText(key, MaxIdempotencyKeyLen) != nil || strings.TrimFunc(key, unicode.IsSpace) != key {
		return invalidField("x-idempotency-key", "must be 1 to 40 characters without surrounding white space")
	}
	return nil
}

// checkKey is CheckIdempotencyKey on k's key.
func checkKey(k Idempotency) error { return CheckIdempotencyKey(k.Key) }

// PurgeExpiredKeys deletes at most limit idempotency keys whose lifetime
// (Config.IdempotencyTTL, 24 hours by default) ended before the service's
// clock, and returns how many it deleted. Only expired keys go: such a key no
// longer deduplicates anything (a new claim reclaims it), so deleting it
// changes no answer. Rows that a concurrent request holds locked are skipped,
// so several nodes may purge at once without waiting on each other or on
// traffic; call it again while it returns limit. Unexpected database failures
// match ErrStorage; a done ctx gives its error.
func (s *Service) PurgeExpiredKeys(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("openbanking: purge limit %d is not positive", limit)
	}
	return s.store.PurgeExpiredKeys(ctx, s.clock(), limit)
}

// claim is the KeyClaim of k for (clientID, op) and a resource about to be
// created with id resourceID, at the service's time.
func (s *Service) claim(clientID, op string, k Idempotency, resourceID string, now time.Time) KeyClaim {
	return KeyClaim{ClientID: clientID, Operation: op, Key: k, ResourceID: resourceID, Now: now, ExpiresAt: now.Add(s.keyTTL)}
}
