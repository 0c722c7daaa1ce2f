package openbanking_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/obpay/payments/internal/openbanking"
)

// TestCheckIdempotencyKey covers every refusal of the one key rule, which the
// HTTP edge and the Service both apply.
func TestCheckIdempotencyKey(t *testing.T) {
	tests := []struct {
		name        string
		key         string
		wantErr     bool
		wantMissing bool
	}{
		{"accepts one character", "k", false, false},
		{"accepts 40 characters", strings.Repeat("k", openbanking.MaxIdempotencyKeyLen), false, false},
		{"counts characters, not bytes", strings.Repeat("é", openbanking.MaxIdempotencyKeyLen), false, false},
		{"accepts inner white space", "a b", false, false},
		{"rejects empty key as missing", "", true, true},
		{"rejects 41 characters", strings.Repeat("k", openbanking.MaxIdempotencyKeyLen+1), true, false},
		{"rejects invalid UTF-8", "k\xff", true, false},
		{"rejects NUL", "k\x00k", true, false},
		{"rejects leading space", " k", true, false},
		{"rejects trailing space", "k ", true, false},
		{"rejects trailing tab", "k\t", true, false},
		{"rejects only white space", "  ", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := openbanking.CheckIdempotencyKey(tc.key)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("CheckIdempotencyKey(%q) = %v, want nil", tc.key, err)
				}
				return
			}
			var fe *openbanking.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, openbanking.ErrInvalidField) || fe.Path != "x-idempotency-key" {
				t.Fatalf("CheckIdempotencyKey(%q) = %v, want a FieldError on x-idempotency-key", tc.key, err)
			}
			if fe.Missing != tc.wantMissing {
				t.Errorf("CheckIdempotencyKey(%q).Missing = %v, want %v", tc.key, fe.Missing, tc.wantMissing)
			}
		})
	}
}
