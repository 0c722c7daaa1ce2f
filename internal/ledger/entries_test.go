package ledger_test

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/obpay/payments/internal/ledger"
)

func TestParseCursor(t *testing.T) {
	for _, good := range []ledger.Cursor{
		{BookedAt: time.Date(2025, 3, 1, 9, 0, 0, 123000, time.UTC), EntryID: "42"},
		{BookedAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), EntryID: "1"},
		{BookedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), EntryID: "9223372036854775807"},
	} {
		if got, err := ledger.ParseCursor(good.String()); err != nil || got != good {
			t.Fatalf("ParseCursor(%q) = %+v, %v, want %+v", good.String(), got, err, good)
		}
	}
	enc := func(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }
	cases := []struct{ name, s string }{
		{"empty", ""},
		{"not base64", "!!!"},
		{"trailing garbage", "ZTEuMS4y" + "x"},
		{"other version", enc("e2.1.2")},
		{"id zero", enc("e1.1.0")},
		{"id not a number", enc("e1.a.2")},
		{"negative id", enc("e1.1.-2")},
		{"too long", string(make([]byte, 200))},
		{"time -2^63 µs", enc("e1.-9223372036854775808.1")},
		{"time 2^63-1 µs", enc("e1.9223372036854775807.1")},
		{"time before year 1", enc("e1.-62135596800000001.1")},
		{"time after year 9999", enc("e1.253402300800000000.1")},
		{"time beyond int64", enc("e1.9223372036854775808.1")},
		{"id beyond int64", enc("e1.1.9223372036854775808")},
		{"id with leading zero", enc("e1.1.02")},
		{"id with plus sign", enc("e1.1.+2")},
		{"time with leading zero", enc("e1.01.2")},
		{"time minus zero", enc("e1.-0.2")},
		{"padded base64", enc("e1.1.2") + "=="},
		{"extra part", enc("e1.1.2.3")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := ledger.ParseCursor(tc.s); !errors.Is(err, ledger.ErrInvalidCursor) {
				t.Fatalf("ParseCursor(%q) = %+v, %v, want ErrInvalidCursor", tc.s, c, err)
			}
		})
	}
}
