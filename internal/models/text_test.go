package models

import (
	"errors"
	"testing"
)

func TestCheckText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", nil},
		{"ASCII", "INV-1", nil},
		{"accents and emoji", "Zoë 💷", nil},
		{"NUL", "a\x00b", ErrInvalidText},
		{"NUL alone", "\x00", ErrInvalidText},
		{"invalid UTF-8", "a\xffb", ErrInvalidText},
		{"truncated UTF-8", "\xe2\x82", ErrInvalidText},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckText(tc.in); !errors.Is(err, tc.want) {
				t.Errorf("CheckText(%q) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
}
