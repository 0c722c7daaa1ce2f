package models

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// ErrInvalidText: text that cannot be stored: not valid UTF-8, or holding
// the NUL character (U+0000), which PostgreSQL's text and jsonb types refuse.
var ErrInvalidText = errors.New("models: text is not valid UTF-8 or contains NUL")

// CheckText is the one rule for every string the service stores, wherever it
// comes from (a JSON body, a query parameter, a form field): valid UTF-8
// without NUL. Length limits are the caller's.
//
// Errors: ErrInvalidText.
func CheckText(s string) error {
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		return ErrInvalidText
	}
	return nil
}
