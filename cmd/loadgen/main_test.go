package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
)

func TestPercentile(t *testing.T) {
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name string
		o    outcome
		p    float64
		want time.Duration
	}{
		{"median of 1..100 ms", outcome{Latencies: lat}, 50, 50 * time.Millisecond},
		{"p90 of 1..100 ms", outcome{Latencies: lat}, 90, 90 * time.Millisecond},
		{"p99 of 1..100 ms", outcome{Latencies: lat}, 99, 99 * time.Millisecond},
		{"p100 is the slowest", outcome{Latencies: lat}, 100, 100 * time.Millisecond},
		{"one answer is every percentile", outcome{Latencies: []time.Duration{7}}, 99, 7},
		{"no answers", outcome{}, 50, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.Percentile(tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestOutcomeAdd(t *testing.T) {
	a := outcome{Requests: 2, Elapsed: time.Second, Latencies: []time.Duration{1, 5}, Status: map[int]int{200: 2}}
	b := outcome{Requests: 1, Elapsed: time.Second, Latencies: []time.Duration{3}, Status: map[int]int{200: 1, 503: 1}, Errors: 1}
	got := a.add(b)
	want := outcome{Requests: 3, Elapsed: 2 * time.Second, Latencies: []time.Duration{1, 3, 5}, Status: map[int]int{200: 3, 503: 1}, Errors: 1}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(outcome{})); diff != "" {
		t.Errorf("add (-want +got):\n%s", diff)
	}
	if got.RPS() != 1.5 || got.Count5xx() != 1 {
		t.Errorf("RPS, Count5xx = %v, %d, want 1.5, 1", got.RPS(), got.Count5xx())
	}
	if s := statusSummary(got); s != "200:3 503:1 transport-errors:1" {
		t.Errorf("statusSummary = %q", s)
	}
}

func TestSizeBatch(t *testing.T) {
	tests := []struct {
		name  string
		rps   float64
		d     time.Duration
		limit int
		want  int
	}{
		{"40% over the warm-up rate plus 100", 1000, 10 * time.Second, 1 << 20, 14100},
		{"capped by the limit", 1000, 10 * time.Second, 5000, 5000},
		{"at least 100 when nothing answered", 0, 10 * time.Second, 5000, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sizeBatch(tc.rps, tc.d, tc.limit); got != tc.want {
				t.Errorf("sizeBatch(%v, %v, %d) = %d, want %d", tc.rps, tc.d, tc.limit, got, tc.want)
			}
		})
	}
}

// TestDriveSendsEachRequestOnce drives a server that answers each request
// with the status named in its path and checks counts and kept bodies.
func TestDriveSendsEachRequestOnce(t *testing.T) {
	seen := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("DPoP") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		seen <- r.Header.Get("DPoP")
		code, _ := strconv.Atoi(r.URL.Path[1:])
		w.WriteHeader(code)
		_, _ = w.Write([]byte(r.Header.Get("DPoP")))
	}))
	defer srv.Close()
	var reqs []request
	for i, code := range []int{201, 201, 201, 200, 503, 401} {
		h := http.Header{}
		h.Set("DPoP", "proof-"+strconv.Itoa(i))
		reqs = append(reqs, request{method: http.MethodPost, url: srv.URL + "/" + strconv.Itoa(code), body: []byte("{}"), header: h})
	}
	o := drive(context.Background(), newHTTPClient(3), reqs, 3, time.Minute, func(c int) bool { return c == http.StatusCreated })
	close(seen)
	proofs := map[string]int{}
	for p := range seen {
		proofs[p]++
	}
	for p, n := range proofs {
		if n != 1 {
			t.Errorf("proof %s sent %d times, want once", p, n)
		}
	}
	if diff := cmp.Diff(map[int]int{201: 3, 200: 1, 503: 1, 401: 1}, o.Status); diff != "" {
		t.Errorf("status counts (-want +got):\n%s", diff)
	}
	if o.Requests != 6 || len(o.Latencies) != 6 || len(o.Kept) != 3 || o.Count5xx() != 1 {
		t.Errorf("drive = %d requests, %d latencies, %d kept, %d 5xx; want 6, 6, 3, 1", o.Requests, len(o.Latencies), len(o.Kept), o.Count5xx())
	}
}

func TestPaymentIDs(t *testing.T) {
	got, err := paymentIDs([][]byte{[]byte(`{"Data":{"DomesticPaymentId":"p1","Status":"AcceptedCreditSettlementCompleted"}}`)})
	if err != nil || len(got) != 1 || got[0] != "p1" {
		t.Errorf("paymentIDs = %v, %v, want [p1]", got, err)
	}
	if _, err := paymentIDs([][]byte{[]byte(`{"Data":{}}`)}); err == nil {
		t.Error("paymentIDs accepted a 201 body without an id")
	}
}

func TestFloorHandlerVerifies(t *testing.T) {
	f, err := newFloorVerifier()
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.GET("/*", floorHandler(f))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/open-banking/v3.1/aisp/accounts/x/balances", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("floor answered %d, want 200", rec.Code)
	}
	f.s.Add(f.s, f.s) // tamper with the signature
	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("floor with a bad signature answered %d, want 500", rec.Code)
	}
}
