package models

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Amount is a quantity of money: an integer number of minor units of an ISO
// 4217 currency (pence for GBP, yen for JPY). It is never a float. The zero
// value has no currency and is not a valid amount for a transfer.
type Amount struct {
	Minor    int64
	Currency string
}

// Errors returned by ParseAmount. Each rejected input maps to exactly one of
// them, so callers (and the HTTP edge) can say precisely what was wrong.
var (
	ErrAmountEmpty      = errors.New("amount: empty")
	ErrAmountWhitespace = errors.New("amount: contains whitespace")
	ErrAmountNegative   = errors.New("amount: negative")
	ErrAmountPlusSign   = errors.New("amount: leading plus sign")
	ErrAmountExponent   = errors.New("amount: exponent notation")
	ErrAmountSyntax     = errors.New("amount: not a decimal of the form 123 or 123.45")
	ErrAmountPrecision  = errors.New("amount: more decimals than the currency allows")
	ErrAmountOverflow   = errors.New("amount: too large")
	ErrUnknownCurrency  = errors.New("amount: unknown currency")
)

// MaxIntegerDigits is the most digits the Open Banking amount pattern
// (^\d{1,13}(\.\d{1,5})?$) allows before the decimal point.
const MaxIntegerDigits = 13

// maxFractionDigits is the most digits the pattern allows after the point.
const maxFractionDigits = 5

// exponents maps ISO 4217 codes to their number of minor-unit digits. It holds
// the currencies a European or UK bank is likely to see; an unlisted code is
// rejected rather than guessed.
var exponents = map[string]int{
	"GBP": 2, "EUR": 2, "USD": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
	"CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "TRY": 2, "CAD": 2, "AUD": 2, "NZD": 2,
	"CNY": 2, "HKD": 2, "SGD": 2, "INR": 2, "ZAR": 2, "MXN": 2, "BRL": 2, "ILS": 2,
	"AED": 2, "SAR": 2, "THB": 2, "MYR": 2, "PHP": 2, "IDR": 2, "TWD": 2,
	"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "UGX": 0, "XOF": 0, "XAF": 0,
	"BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3, "IQD": 3, "LYD": 3,
}

// CurrencyExponent returns the number of minor-unit digits of an ISO 4217
// currency code (2 for GBP, 0 for JPY, 3 for BHD) and whether the code is known.
// Codes are upper case; "gbp" is unknown.
func CurrencyExponent(code string) (int, bool) {
	e, ok := exponents[code]
	return e, ok
}

// ParseAmount parses an Open Banking decimal string (^\d{1,13}(\.\d{1,5})?$)
// into minor units of currency, exactly. A value with fewer decimals than the
// currency has is scaled ("5" GBP is 500 pence); one with more decimals than
// the currency has is rejected even when they are zeros ("1.000" GBP).
//
// Errors: ErrUnknownCurrency, ErrAmountEmpty, ErrAmountWhitespace,
// ErrAmountNegative, ErrAmountPlusSign, ErrAmountExponent, ErrAmountSyntax,
// ErrAmountPrecision, ErrAmountOverflow. Zero ("0.00") is a valid amount; the
// ledger, not the parser, requires transfers to be positive.
func ParseAmount(s, currency string) (Amount, error) {
	exp, ok := CurrencyExponent(currency)
	if !ok {
		return Amount{}, fmt.Errorf("%w %q", ErrUnknownCurrency, currency)
	}
	if err := classify(s); err != nil {
		return Amount{}, err
	}
	intPart, fracPart, hasPoint := strings.Cut(s, ".")
	if intPart == "" || (hasPoint && fracPart == "") || !allDigits(intPart) || !allDigits(fracPart) {
		return Amount{}, ErrAmountSyntax
	}
	if len(fracPart) > maxFractionDigits || len(fracPart) > exp {
		return Amount{}, ErrAmountPrecision
	}
	if len(intPart) > MaxIntegerDigits {
		return Amount{}, ErrAmountOverflow
	}
	// At most 13 + 3 digits: always fits in an int64, but check anyway so that
	// a future currency with a larger exponent cannot wrap.
	digits := intPart + fracPart + strings.Repeat("0", exp-len(fracPart))
	minor, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return Amount{}, ErrAmountOverflow
	}
	return Amount{Minor: minor, Currency: currency}, nil
}

// classify reports the specific reason a string is not a plain unsigned
// decimal, for the failures that deserve their own error.
func classify(s string) error {
	if s == "" {
		return ErrAmountEmpty
	}
	if strings.ContainsFunc(s, isSpace) {
		return ErrAmountWhitespace
	}
	switch s[0] {
	case '-':
		return ErrAmountNegative
	case '+':
		return ErrAmountPlusSign
	}
	if strings.ContainsAny(s, "eE") && strings.ContainsAny(s, "0123456789") {
		return ErrAmountExponent
	}
	return nil
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f', 0x85, 0xA0:
		return true
	}
	return r == 0x1680 || (r >= 0x2000 && r <= 0x200a) || r == 0x2028 || r == 0x2029 ||
		r == 0x202f || r == 0x205f || r == 0x3000 || r == 0xfeff
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Format returns the amount as a decimal string with exactly the currency's
// number of decimals: "100.00" for 10000 GBP minor units, "5" for 5 JPY. A
// negative amount (a settlement account's balance) gets a leading "-". An
// unknown currency is formatted with two decimals.
func (a Amount) Format() string {
	exp, ok := CurrencyExponent(a.Currency)
	if !ok {
		exp = 2
	}
	var sign string
	mag := uint64(a.Minor)
	if a.Minor < 0 {
		sign = "-"
		mag = uint64(-(a.Minor + 1)) + 1 // no overflow for math.MinInt64
	}
	digits := strconv.FormatUint(mag, 10)
	if exp == 0 {
		return sign + digits
	}
	if len(digits) <= exp {
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	cut := len(digits) - exp
	return sign + digits[:cut] + "." + digits[cut:]
}

// String is Format; it implements fmt.Stringer.
func (a Amount) String() string { return a.Format() }

// IsPositive reports whether the amount is greater than zero.
func (a Amount) IsPositive() bool { return a.Minor > 0 }

// Add returns a + b. It fails with ErrCurrencyMismatch when the currencies
// differ and with ErrAmountOverflow when the sum does not fit in an int64.
func (a Amount) Add(b Amount) (Amount, error) {
	if a.Currency != b.Currency {
		return Amount{}, ErrCurrencyMismatch
	}
	if (b.Minor > 0 && a.Minor > math.MaxInt64-b.Minor) || (b.Minor < 0 && a.Minor < math.MinInt64-b.Minor) {
		return Amount{}, ErrAmountOverflow
	}
	return Amount{Minor: a.Minor + b.Minor, Currency: a.Currency}, nil
}

// ErrCurrencyMismatch is returned when two amounts of different currencies are
// combined.
var ErrCurrencyMismatch = errors.New("amount: currency mismatch")
