package security

import (
	"strings"
	"testing"
)

// TestAllCompactChars checks the eight-at-a-time scan against the plain
// definition for every byte value at every position of short and long
// inputs (both the unrolled part and the tail).
func TestAllCompactChars(t *testing.T) {
	plain := func(s string) bool {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(isAlnum(c) || c == '-' || c == '_' || c == '.') {
				return false
			}
		}
		return true
	}
	for _, n := range []int{0, 1, 7, 8, 9, 17} {
		base := strings.Repeat("aZ9-_.", 3)[:n]
		if !allCompactChars(base) {
			t.Fatalf("allCompactChars(%q) = false", base)
		}
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				s := base[:pos] + string([]byte{byte(c)}) + base[pos+1:]
				if got, want := allCompactChars(s), plain(s); got != want {
					t.Fatalf("allCompactChars(%q) = %v, want %v", s, got, want)
				}
			}
		}
	}
}
