package security

import "testing"

func TestNormalizeHTU(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"https://api.bank.example/a/b", "https://api.bank.example/a/b"},
		{"HTTPS://API.Bank.EXAMPLE/a/B", "https://api.bank.example/a/B"},
		{"https://api.bank.example:443/a", "https://api.bank.example/a"},
		{"http://api.bank.example:80/a", "http://api.bank.example/a"},
		{"http://api.bank.example:443/a", "http://api.bank.example:443/a"},
		{"https://api.bank.example:08443/a", "https://api.bank.example:8443/a"},
		{"https://api.bank.example:/a", "https://api.bank.example/a"},
		{"https://api.bank.example", "https://api.bank.example/"},
		{"https://api.bank.example/a?x=1#f", "https://api.bank.example/a"},
		{"https://api.bank.example/a#f?x", "https://api.bank.example/a"},
		{"https://api.bank.example/a/./b/../c", "https://api.bank.example/a/c"},
		{"https://api.bank.example/a/..", "https://api.bank.example/"},
		{"https://api.bank.example/%7euser/%2f", "https://api.bank.example/~user/%2F"},
		{"https://api.bank.example/a%2Eb", "https://api.bank.example/a.b"},
		{"https://api.bank.example/a;p=1/", "https://api.bank.example/a;p=1/"},
		{"https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"},
		{"https://127.0.0.1:8080/x", "https://127.0.0.1:8080/x"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizeHTU(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("normalizeHTU(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNormalizeHTURejects(t *testing.T) {
	for _, in := range []string{
		"",
		"/relative/path",
		"ftp://api.bank.example/a",
		"https:/api.bank.example/a",
		"https://user:pw@api.bank.example/a",
		"https://api.ban\u212a.example/a", // Kelvin sign
		"https://api.bank.example./a",
		"https:///a",
		"https://:443/a",
		"https://api.bank.example:99999/a",
		"https://api.bank.example:0/a",
		"https://api.bank.example:x/a",
		"https://api.bank.example/a b",
		"https://api.bank.example/a%zz",
		"https://api.bank.example/a%2",
		"https://api.bank.example/a\"",
		"https://api%2ebank.example/a",
		"https://[::1/a",
	} {
		t.Run(in, func(t *testing.T) {
			if got, err := normalizeHTU(in); err == nil {
				t.Errorf("normalizeHTU(%q) = %q, want an error", in, got)
			}
		})
	}
}

func TestAsciiFolding(t *testing.T) {
	if asciiEqualFold("payment\u017f", "payments") {
		t.Error("asciiEqualFold folded the long s")
	}
	if !asciiEqualFold("dPoP", "DPoP") {
		t.Error("asciiEqualFold(dPoP, DPoP) = false")
	}
	if got := asciiLower("API.BAN\u212a.EXAMPLE"); got != "api.ban\u212a.example" {
		t.Errorf("asciiLower = %q", got)
	}
}

// TestIsToken68 checks the Authorization credentials grammar (RFC 9110
// §11.2) at the table's edges: every allowed byte, padding only at the end.
func TestIsToken68(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"=", false},
		{"==", false},
		{"a", true},
		{"a=", true},
		{"a==", true},
		{"AZaz09-._~+/", true},
		{"abcdefgh-._~+/ABCDEFGH==", true},
		{"a=b", false},
		{"abcdefgh=abcdefgh", false},
		{"abc def", false},
		{"abcdefghijklmnop,", false},
		{"abcdefghijklmnop\x00", false},
		{"abcdefgh\"ijklmnop", false},
		{"ab\xffcdefghijklmnop", false},
		{"=a", false},
	} {
		if got := isToken68(tc.in); got != tc.want {
			t.Errorf("isToken68(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
