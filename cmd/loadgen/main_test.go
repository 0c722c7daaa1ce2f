package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
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

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want config // compared on the fields below
	}{
		{"defaults measure at 8 and 32 with a pool of 16", nil,
			config{readConc: []int{8, 32}, dbConns: 16}},
		{"the signature floor's child", []string{"-serve-floor", "127.0.0.1:9000"},
			config{serveFloor: "127.0.0.1:9000", dbConns: 16}},
		{"the read floor's child with the service's pool size",
			[]string{"-serve-read-floor", "127.0.0.1:9001", "-read-floor-db", "postgres://h/e2e_bench_payments", "-db-conns", "12"},
			config{serveReadFloor: "127.0.0.1:9001", readFloorDB: "postgres://h/e2e_bench_payments", dbConns: 12}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatalf("parseFlags(%q) = %v", tc.args, err)
			}
			pick := func(c config) config {
				return config{readConc: c.readConc, dbConns: c.dbConns, serveFloor: c.serveFloor,
					serveReadFloor: c.serveReadFloor, readFloorDB: c.readFloorDB}
			}
			if diff := cmp.Diff(pick(tc.want), pick(got), cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("parseFlags(%q) (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}

func TestParseFlagsRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"read floor without a database", []string{"-serve-read-floor", "127.0.0.1:9001"}},
		{"read floor with an empty pool", []string{"-serve-read-floor", "127.0.0.1:9001", "-read-floor-db", "postgres://h/db", "-db-conns", "0"}},
		{"read floor database without the read floor", []string{"-read-floor-db", "postgres://h/db"}},
		{"both floors in one process", []string{"-serve-floor", "127.0.0.1:9000", "-serve-read-floor", "127.0.0.1:9001", "-read-floor-db", "postgres://h/db"}},
		{"a concurrency of zero", []string{"-concurrency", "8,0"}},
		{"an empty pool", []string{"-db-conns", "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := parseFlags(tc.args, io.Discard); err == nil {
				t.Errorf("parseFlags(%q) = %+v, nil; want an error", tc.args, c)
			}
		})
	}
}

// TestPrintReportRatios checks that the report prints, at each
// concurrency, reads over the signature floor with its target and reads
// over the read floor without one, and leaves a ratio out when its floor
// was not measured.
func TestPrintReportRatios(t *testing.T) {
	window := func(requests int) outcome {
		return outcome{Requests: requests, Elapsed: 10 * time.Second, Status: map[int]int{200: requests}}
	}
	cfg := config{readConc: []int{8, 32, 64}, payConc: 8, pgbenchTime: 20 * time.Second}
	rep := report{
		rows: []row{
			{loadFloor, 8, window(100000)}, {loadReadFloor, 8, window(80000)}, {loadReads, 8, window(50000)},
			{loadFloor, 32, window(120000)}, {loadReadFloor, 32, window(60000)}, {loadReads, 32, window(84000)},
			{loadFloor, 64, window(100000)}, {loadReads, 64, window(70000)},
			{loadPayments, 8, window(10000)},
		},
		pgbenchTPS: 2000, pgClients: 8, pgbenchRuns: "runs: 1900, 2100",
		reconcile: "balanced", ledger: "booked once",
	}
	var buf bytes.Buffer
	printReport(&buf, cfg, rep)
	out := buf.String()
	_, ratios, ok := strings.Cut(out, "Ratios (targets in brackets)\n")
	if !ok {
		t.Fatalf("no ratios in the report:\n%s", out)
	}
	want := []string{
		"  DPoP balance reads / signature floor, 8 conc: 0.50  [>= 0.70]",
		"  DPoP balance reads / read floor, 8 conc: 0.62",
		"  DPoP balance reads / signature floor, 32 conc: 0.70  [>= 0.70]",
		"  DPoP balance reads / read floor, 32 conc: 1.40",
		"  DPoP balance reads / signature floor, 64 conc: 0.70  [>= 0.70]",
		"  payments / pgbench tpcb-like tps, 8 clients: 0.50  [>= 0.50]",
		"  5xx answers: 0  [0]",
		"  reconcile: balanced",
		"  ledger: booked once",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(ratios, "\n"), "\n")); diff != "" {
		t.Errorf("ratios (-want +got):\n%s", diff)
	}
	for _, line := range []string{
		`(?m)^` + regexp.QuoteMeta(loadReadFloor) + ` +8 +80000 +10\.0 +8000 .* 200:80000$`,
		`(?m)^` + regexp.QuoteMeta(loadReadFloor) + ` +32 +60000 +10\.0 +6000 .* 200:60000$`,
	} {
		if !regexp.MustCompile(line).MatchString(out) {
			t.Errorf("report has no line matching %s:\n%s", line, out)
		}
	}
}
