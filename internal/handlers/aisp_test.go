package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/openbanking"
)

// fakeTransactions answers GET .../transactions with empty pages and records
// the queries it gets: the first page leads to a second through Next. The
// tests call no other method of Service.
type fakeTransactions struct {
	Service

	mu      sync.Mutex
	queries []openbanking.TransactionsQuery
}

func (f *fakeTransactions) Transactions(_ context.Context, _ openbanking.Caller, _ string, q openbanking.TransactionsQuery) (openbanking.TransactionsPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	page := openbanking.TransactionsPage{Entries: []models.Entry{}}
	if q.Cursor == "" {
		page.Next = "page-2"
	}
	return page, nil
}

func (f *fakeTransactions) got() []openbanking.TransactionsQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]openbanking.TransactionsQuery(nil), f.queries...)
}

// newFakeTransactionsAPI serves the API over fakeTransactions, reading
// query date-times in loc (nil: the default).
func newFakeTransactionsAPI(t *testing.T, loc *time.Location) (*api, *fakeTransactions) {
	t.Helper()
	f := &fakeTransactions{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := NewHandler(HandlerConfig{Service: f, Logger: log, PublicURL: testBase, Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Logger: log, Registry: prometheus.NewRegistry(), BodyLimit: 4096,
		Ping:   func(context.Context) error { return nil },
		Routes: func(e *echo.Echo) error { return RegisterRoutes(e, h, fakeDPoP) }})
	if err != nil {
		t.Fatal(err)
	}
	return &api{t: t, e: e}, f
}

const fakeTransactionsPath = "/open-banking/v3.1/aisp/accounts/acc-1/transactions"

var fakeReader = psuToken("tpp-a", "alice", "consent-1", "accounts")

func mustLoadLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q) = %v", name, err)
	}
	return loc
}

// TestTransactionsBookingDateTimes checks how fromBookingDateTime and
// toBookingDateTime are read (OB Read/Write Data API Specification, Date
// Formats: query-string dates are not timezone aware, so a value without an
// offset is in the bank's timezone), that Links.Self and Links.Next repeat
// them as sent, and that following Links.Next asks for the same window.
func TestTransactionsBookingDateTimes(t *testing.T) {
	london := mustLoadLocation(t, "Europe/London")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name     string
		loc      *time.Location
		from, to string // as sent; "" not sent
		wantFrom time.Time
		wantTo   time.Time
	}{
		{"no offset read in UTC by default", nil, "2026-01-31T00:00:00", "", utc("2026-01-31T00:00:00Z"), time.Time{}},
		{"fractional seconds without offset", nil, "2026-01-31T00:00:00.123", "2026-01-31T23:59:59.999999999", utc("2026-01-31T00:00:00.123Z"), utc("2026-01-31T23:59:59.999999999Z")},
		{"Z", nil, "2026-01-31T00:00:00Z", "", utc("2026-01-31T00:00:00Z"), time.Time{}},
		{"positive offset", nil, "2026-01-31T00:00:00+01:00", "", utc("2026-01-30T23:00:00Z"), time.Time{}},
		{"negative offset with fraction", nil, "", "2026-01-31T00:00:00.5-05:30", time.Time{}, utc("2026-01-31T05:30:00.5Z")},
		{"no offset in Europe/London in summer", london, "2026-07-01T00:00:00", "2026-07-01T12:00:00", utc("2026-06-30T23:00:00Z"), utc("2026-07-01T11:00:00Z")},
		{"no offset in Europe/London in winter", london, "2026-01-31T00:00:00", "", utc("2026-01-31T00:00:00Z"), time.Time{}},
		{"Z in Europe/London in summer", london, "2026-07-01T00:00:00Z", "", utc("2026-07-01T00:00:00Z"), time.Time{}},
		{"offset in Europe/London in summer", london, "2026-07-01T00:00:00+02:00", "", utc("2026-06-30T22:00:00Z"), time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, f := newFakeTransactionsAPI(t, tc.loc)
			q := url.Values{}
			if tc.from != "" {
				q.Set("fromBookingDateTime", tc.from)
			}
			if tc.to != "" {
				q.Set("toBookingDateTime", tc.to)
			}
			var first struct{ Links struct{ Self, Next string } }
			a.want(a.do(http.MethodGet, fakeTransactionsPath+"?"+q.Encode(), "", fakeReader), http.StatusOK, &first)

			for _, link := range []string{first.Links.Self, first.Links.Next} {
				u, err := url.Parse(link)
				if err != nil {
					t.Fatalf("link %q: %v", link, err)
				}
				if got := u.Query().Get("fromBookingDateTime"); got != tc.from {
					t.Errorf("link %q carries fromBookingDateTime %q, want %q as sent", link, got, tc.from)
				}
				if got := u.Query().Get("toBookingDateTime"); got != tc.to {
					t.Errorf("link %q carries toBookingDateTime %q, want %q as sent", link, got, tc.to)
				}
			}
			if !strings.HasPrefix(first.Links.Next, testBase+fakeTransactionsPath+"?") {
				t.Fatalf("Links.Next = %q, want a link to the next page", first.Links.Next)
			}
			var second struct{ Links struct{ Self, Next string } }
			a.want(a.do(http.MethodGet, strings.TrimPrefix(first.Links.Next, testBase), "", fakeReader), http.StatusOK, &second)
			if second.Links.Next != "" {
				t.Errorf("second page Links.Next = %q, want none", second.Links.Next)
			}

			got := f.got()
			if len(got) != 2 {
				t.Fatalf("service called %d times, want 2", len(got))
			}
			for i, q := range got {
				if !sameInstant(q.From, tc.wantFrom) || !sameInstant(q.To, tc.wantTo) {
					t.Errorf("page %d: From, To = %v, %v, want %v, %v", i+1, q.From, q.To, tc.wantFrom, tc.wantTo)
				}
			}
			if got[0].Cursor != "" || got[1].Cursor != "page-2" {
				t.Errorf("cursors = %q, %q, want \"\", \"page-2\"", got[0].Cursor, got[1].Cursor)
			}
		})
	}
}

// sameInstant reports whether got is want, where a zero want means no filter
// (nil).
func sameInstant(got *time.Time, want time.Time) bool {
	if want.IsZero() {
		return got == nil
	}
	return got != nil && got.Equal(want)
}

// TestTransactionsRefusesMalformedBookingDateTimes sends values that are not
// ISO 8601 date-times and checks each gets 400 UK.OBIE.Field.Invalid naming
// the parameter, before the service is called.
func TestTransactionsRefusesMalformedBookingDateTimes(t *testing.T) {
	cases := []struct {
		name, query, path string
	}{
		{"a word", "fromBookingDateTime=yesterday", "fromBookingDateTime"},
		{"empty", "fromBookingDateTime=", "fromBookingDateTime"},
		{"date only", "fromBookingDateTime=2026-01-31", "fromBookingDateTime"},
		{"no seconds", "fromBookingDateTime=2026-01-31T00:00", "fromBookingDateTime"},
		{"space for T", "fromBookingDateTime=2026-01-31+00:00:00", "fromBookingDateTime"},
		{"lower-case t", "fromBookingDateTime=2026-01-31t00:00:00", "fromBookingDateTime"},
		{"month 13", "fromBookingDateTime=2026-13-01T00:00:00", "fromBookingDateTime"},
		{"30 February", "fromBookingDateTime=2026-02-30T00:00:00", "fromBookingDateTime"},
		{"hour 24", "fromBookingDateTime=2026-01-31T24:00:00", "fromBookingDateTime"},
		{"ten fraction digits", "fromBookingDateTime=2026-01-31T00:00:00.1234567890", "fromBookingDateTime"},
		{"empty fraction", "fromBookingDateTime=2026-01-31T00:00:00.", "fromBookingDateTime"},
		{"offset without colon", "fromBookingDateTime=2026-01-31T00:00:00%2B0100", "fromBookingDateTime"},
		{"offset hour 25", "fromBookingDateTime=2026-01-31T00:00:00%2B25:00", "fromBookingDateTime"},
		{"unescaped plus read as a space", "fromBookingDateTime=2026-01-31T00:00:00+01:00", "fromBookingDateTime"},
		{"sent twice", "fromBookingDateTime=2026-01-31T00:00:00&fromBookingDateTime=2026-02-01T00:00:00", "fromBookingDateTime"},
		{"bad to", "toBookingDateTime=31/01/2026", "toBookingDateTime"},
		{"good from, bad to", "fromBookingDateTime=2026-01-31T00:00:00&toBookingDateTime=2026-01-31T00:00:00ZZ", "toBookingDateTime"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, f := newFakeTransactionsAPI(t, nil)
			rec := a.do(http.MethodGet, fakeTransactionsPath+"?"+tc.query, "", fakeReader)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", rec.Code, rec.Body.String())
			}
			b := decodeError(t, rec)
			if b.Errors[0].ErrorCode != CodeFieldInvalid || b.Errors[0].Path != tc.path {
				t.Errorf("error = %s at %q, want %s at %q", b.Errors[0].ErrorCode, b.Errors[0].Path, CodeFieldInvalid, tc.path)
			}
			if n := len(f.got()); n != 0 {
				t.Errorf("service called %d times, want 0", n)
			}
		})
	}
}

func TestParseBookingDateTime(t *testing.T) {
	london := mustLoadLocation(t, "Europe/London")
	cases := []struct {
		in   string
		loc  *time.Location
		want string // RFC 3339 in UTC; "" for an error
	}{
		{"2026-01-31T00:00:00", time.UTC, "2026-01-31T00:00:00Z"},
		{"2026-01-31T00:00:00.123", time.UTC, "2026-01-31T00:00:00.123Z"},
		{"2026-07-01T00:00:00", london, "2026-06-30T23:00:00Z"},
		{"2026-07-01T00:00:00.000001", london, "2026-06-30T23:00:00.000001Z"},
		{"2026-07-01T00:00:00Z", london, "2026-07-01T00:00:00Z"},
		{"2026-07-01T00:00:00-01:00", london, "2026-07-01T01:00:00Z"},
		{"2026-07-01", time.UTC, ""},
		{"2026-07-01T00:00:00+01", time.UTC, ""},
		{" 2026-07-01T00:00:00", time.UTC, ""},
		{"2026-07-01T00:00:00\n", time.UTC, ""},
		{"２026-07-01T00:00:00", time.UTC, ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseBookingDateTime(tc.in, tc.loc)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("parseBookingDateTime(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got.UTC().Format(time.RFC3339Nano) != tc.want {
				t.Fatalf("parseBookingDateTime(%q) = %v, %v, want %s", tc.in, got, err, tc.want)
			}
		})
	}
}
