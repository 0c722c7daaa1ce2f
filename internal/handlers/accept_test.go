package handlers

import "testing"

func TestAcceptsJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"application/json":                true,
		"Application/JSON; charset=utf-8": true,
		"*/*":                             true,
		"application/*;q=0.5":             true,
		"text/html, application/xml;q=0.9, */*;q=0.8": true,
		"application/xml":            false,
		"text/html, application/xml": false,
		"application/json;q=0":       false,
		"application/json;q=abc":     false,
		"application/jsonx":          false,
	} {
		if got := acceptsJSON([]string{accept}); got != want {
			t.Errorf("Accept %q: %v, want %v", accept, got, want)
		}
	}
}
