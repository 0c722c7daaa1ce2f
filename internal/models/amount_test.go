package models_test

import (
	"errors"
	"math"
	"testing"

	"github.com/obpay/payments/internal/models"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		currency string
		want     int64
		wantErr  error
	}{
		{"two decimals GBP", "100.00", "GBP", 10000, nil},
		{"one decimal is scaled", "100.5", "GBP", 10050, nil},
		{"integer is scaled", "5", "GBP", 500, nil},
		{"zero", "0", "EUR", 0, nil},
		{"zero with decimals", "0.00", "USD", 0, nil},
		{"leading zeros", "007.10", "GBP", 710, nil},
		{"smallest unit", "0.01", "GBP", 1, nil},
		{"JPY integer", "5", "JPY", 5, nil},
		{"BHD three decimals", "1.234", "BHD", 1234, nil},
		{"thirteen integer digits", "9999999999999.99", "GBP", 999999999999999, nil},
		{"thirteen integer digits BHD", "9999999999999.999", "BHD", 9999999999999999, nil},

		{"unknown currency", "1.00", "XXX", 0, models.ErrUnknownCurrency},
		{"lower-case currency", "1.00", "gbp", 0, models.ErrUnknownCurrency},
		{"empty currency", "1.00", "", 0, models.ErrUnknownCurrency},
		{"empty", "", "GBP", 0, models.ErrAmountEmpty},
		{"leading space", " 1.00", "GBP", 0, models.ErrAmountWhitespace},
		{"trailing newline", "1.00\n", "GBP", 0, models.ErrAmountWhitespace},
		{"inner space", "1 000.00", "GBP", 0, models.ErrAmountWhitespace},
		{"no-break space", "1.00\u00a0", "GBP", 0, models.ErrAmountWhitespace},
		{"negative", "-1.00", "GBP", 0, models.ErrAmountNegative},
		{"negative zero", "-0", "GBP", 0, models.ErrAmountNegative},
		{"plus sign", "+1.00", "GBP", 0, models.ErrAmountPlusSign},
		{"exponent", "1e3", "GBP", 0, models.ErrAmountExponent},
		{"exponent with decimals", "1.5E2", "GBP", 0, models.ErrAmountExponent},
		{"three decimals GBP", "1.001", "GBP", 0, models.ErrAmountPrecision},
		{"trailing zero beyond exponent", "1.000", "GBP", 0, models.ErrAmountPrecision},
		{"decimals for JPY", "5.0", "JPY", 0, models.ErrAmountPrecision},
		{"six decimals", "1.000000", "BHD", 0, models.ErrAmountPrecision},
		{"fourteen integer digits", "10000000000000", "GBP", 0, models.ErrAmountOverflow},
		{"huge", "99999999999999999999999", "JPY", 0, models.ErrAmountOverflow},
		{"point only", ".", "GBP", 0, models.ErrAmountSyntax},
		{"no integer part", ".50", "GBP", 0, models.ErrAmountSyntax},
		{"no fraction after point", "1.", "GBP", 0, models.ErrAmountSyntax},
		{"two points", "1.0.0", "GBP", 0, models.ErrAmountSyntax},
		{"comma", "1,00", "GBP", 0, models.ErrAmountSyntax},
		{"letters", "ten", "GBP", 0, models.ErrAmountSyntax},
		{"hex", "0x10", "GBP", 0, models.ErrAmountSyntax},
		{"NaN", "NaN", "GBP", 0, models.ErrAmountSyntax},
		{"arabic-indic digits", "١٠", "GBP", 0, models.ErrAmountSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := models.ParseAmount(tc.in, tc.currency)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ParseAmount(%q, %q) = %v, %v, want %v", tc.in, tc.currency, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAmount(%q, %q) = %v", tc.in, tc.currency, err)
			}
			want := models.Amount{Minor: tc.want, Currency: tc.currency}
			if got != want {
				t.Fatalf("ParseAmount(%q, %q) = %+v, want %+v", tc.in, tc.currency, got, want)
			}
		})
	}
}

func TestAmountFormat(t *testing.T) {
	tests := []struct {
		name string
		in   models.Amount
		want string
	}{
		{"GBP", models.Amount{Minor: 10000, Currency: "GBP"}, "100.00"},
		{"one penny", models.Amount{Minor: 1, Currency: "GBP"}, "0.01"},
		{"zero GBP", models.Amount{Minor: 0, Currency: "GBP"}, "0.00"},
		{"JPY", models.Amount{Minor: 5, Currency: "JPY"}, "5"},
		{"BHD", models.Amount{Minor: 1005, Currency: "BHD"}, "1.005"},
		{"negative settlement balance", models.Amount{Minor: -10050, Currency: "EUR"}, "-100.50"},
		{"negative fraction only", models.Amount{Minor: -5, Currency: "EUR"}, "-0.05"},
		{"max int64", models.Amount{Minor: math.MaxInt64, Currency: "GBP"}, "92233720368547758.07"},
		{"min int64", models.Amount{Minor: math.MinInt64, Currency: "GBP"}, "-92233720368547758.08"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.Format(); got != tc.want {
				t.Fatalf("%+v.Format() = %q, want %q", tc.in, got, tc.want)
			}
			if got := tc.in.String(); got != tc.want {
				t.Fatalf("%+v.String() = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAmountAdd(t *testing.T) {
	tests := []struct {
		name    string
		a, b    models.Amount
		want    models.Amount
		wantErr error
	}{
		{"sum", models.Amount{Minor: 5, Currency: "GBP"}, models.Amount{Minor: -7, Currency: "GBP"}, models.Amount{Minor: -2, Currency: "GBP"}, nil},
		{"currency mismatch", models.Amount{Minor: 5, Currency: "GBP"}, models.Amount{Minor: 5, Currency: "EUR"}, models.Amount{}, models.ErrCurrencyMismatch},
		{"overflow", models.Amount{Minor: math.MaxInt64, Currency: "GBP"}, models.Amount{Minor: 1, Currency: "GBP"}, models.Amount{}, models.ErrAmountOverflow},
		{"underflow", models.Amount{Minor: math.MinInt64, Currency: "GBP"}, models.Amount{Minor: -1, Currency: "GBP"}, models.Amount{}, models.ErrAmountOverflow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.a.Add(tc.b)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("%v.Add(%v) = %+v, %v, want %+v, %v", tc.a, tc.b, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCurrencyExponent(t *testing.T) {
	tests := []struct {
		code   string
		want   int
		wantOK bool
	}{
		{"GBP", 2, true}, {"EUR", 2, true}, {"USD", 2, true}, {"JPY", 0, true}, {"KWD", 3, true},
		{"XXX", 0, false}, {"gbp", 0, false}, {"", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			got, ok := models.CurrencyExponent(tc.code)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("CurrencyExponent(%q) = %d, %v, want %d, %v", tc.code, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestPostingValidate(t *testing.T) {
	gbp := func(m int64) models.Amount { return models.Amount{Minor: m, Currency: "GBP"} }
	tests := []struct {
		name string
		p    models.Posting
		want error
	}{
		{"valid", models.Posting{From: "a", To: "b", Amount: gbp(1)}, nil},
		{"zero", models.Posting{From: "a", To: "b", Amount: gbp(0)}, models.ErrPostingNotPositive},
		{"negative", models.Posting{From: "a", To: "b", Amount: gbp(-1)}, models.ErrPostingNotPositive},
		{"same account", models.Posting{From: "a", To: "a", Amount: gbp(1)}, models.ErrPostingSameAccount},
		{"unknown currency", models.Posting{From: "a", To: "b", Amount: models.Amount{Minor: 1, Currency: "ZZZ"}}, models.ErrUnknownCurrency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Validate(); !errors.Is(err, tc.want) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzParseAmount checks that the parser never panics, that whatever it
// accepts matches the Open Banking pattern and formats back to a value that
// parses to the same amount, and that every formatted amount in range parses
// back to itself.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"0", "100.00", "1.5", "0.001", "-1", "+1", "1e5", " 1", "", ".", "9999999999999.99", "١"} {
		f.Add(s, "GBP", int64(1234))
	}
	f.Add("5", "JPY", int64(-5))
	f.Add("1.234", "BHD", int64(1<<62))
	currencies := []string{"GBP", "JPY", "BHD", "EUR"}
	f.Fuzz(func(t *testing.T, s, currency string, minor int64) {
		// Parse never panics; what it accepts round-trips through Format.
		if a, err := models.ParseAmount(s, currency); err == nil {
			if a.Minor < 0 || a.Currency != currency {
				t.Fatalf("ParseAmount(%q, %q) = %+v", s, currency, a)
			}
			if !validPattern(s) {
				t.Fatalf("ParseAmount(%q) accepted a string outside the OB pattern", s)
			}
			back, err := models.ParseAmount(a.Format(), currency)
			if err != nil || back != a {
				t.Fatalf("ParseAmount(Format(%+v)=%q) = %+v, %v", a, a.Format(), back, err)
			}
		}
		// parse(format(x)) == x for every x the pattern can express.
		cur := currencies[uint64(minor)%uint64(len(currencies))]
		exp, _ := models.CurrencyExponent(cur)
		limit := int64(1)
		for i := 0; i < models.MaxIntegerDigits+exp; i++ {
			limit *= 10
		}
		x := models.Amount{Minor: minor % limit, Currency: cur}
		if x.Minor < 0 {
			x.Minor = -x.Minor
		}
		got, err := models.ParseAmount(x.Format(), cur)
		if err != nil || got != x {
			t.Fatalf("ParseAmount(%q) = %+v, %v, want %+v", x.Format(), got, err, x)
		}
	})
}

// validPattern is ^\d{1,13}(\.\d{1,5})?$ written out by hand.
func validPattern(s string) bool {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i < 1 || i > 13 {
		return false
	}
	if i == len(s) {
		return true
	}
	if s[i] != '.' {
		return false
	}
	j := i + 1
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	return j == len(s) && j-i-1 >= 1 && j-i-1 <= 5
}
