package models

import "github.com/google/uuid"

// CanonicalID returns the lower-case form of a UUID string, and false when s
// is not a UUID in its usual 36-character form. It is the one rule for the
// IDs of accounts, transfers, consents and payments: an ID that is not
// canonical is simply unknown.
func CanonicalID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}
