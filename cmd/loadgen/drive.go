package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// request is one prepared request of a measured window: everything, the
// DPoP proof included, is built before the window starts, so the load
// generator's CPU goes to sending and receiving only.
type request struct {
	method string
	url    string
	body   []byte
	header http.Header
}

// outcome is what the load generator saw in one window.
type outcome struct {
	Requests  int
	Elapsed   time.Duration
	Latencies []time.Duration // sorted
	Status    map[int]int     // HTTP status -> count
	Errors    int             // transport errors (no HTTP answer)
	// Kept holds the bodies of the answers keep selected, for checks after
	// the window.
	Kept [][]byte
	// CPU is where the machine's CPU went during the window.
	CPU cpuUse
}

// RPS returns the requests answered per second.
func (o outcome) RPS() float64 {
	if o.Elapsed <= 0 {
		return 0
	}
	return float64(o.Requests) / o.Elapsed.Seconds()
}

// Percentile returns the latency below which p percent of the answers came,
// by the nearest-rank method; zero without answers.
func (o outcome) Percentile(p float64) time.Duration {
	n := len(o.Latencies)
	if n == 0 {
		return 0
	}
	rank := int(p/100*float64(n)+0.999999) - 1
	rank = max(0, min(rank, n-1))
	return o.Latencies[rank]
}

// add returns the sum of two windows' outcomes, as one window as long as
// both together.
func (o outcome) add(p outcome) outcome {
	status := map[int]int{}
	for c, n := range o.Status {
		status[c] += n
	}
	for c, n := range p.Status {
		status[c] += n
	}
	lat := append(append(make([]time.Duration, 0, len(o.Latencies)+len(p.Latencies)), o.Latencies...), p.Latencies...)
	slices.Sort(lat)
	return outcome{Requests: o.Requests + p.Requests, Elapsed: o.Elapsed + p.Elapsed, Latencies: lat, Status: status,
		Errors: o.Errors + p.Errors, Kept: append(append([][]byte(nil), o.Kept...), p.Kept...), CPU: o.CPU.add(p.CPU)}
}

// Count5xx returns the number of 5xx answers.
func (o outcome) Count5xx() int {
	var n int
	for code, c := range o.Status {
		if code >= 500 {
			n += c
		}
	}
	return n
}

// newHTTPClient returns a keep-alive client with one idle connection per
// worker, so that a window measures requests, not connection set-up.
func newHTTPClient(concurrency int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = concurrency * 2
	tr.MaxIdleConnsPerHost = concurrency * 2
	tr.MaxConnsPerHost = 0
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// drive sends reqs with concurrency workers, each taking the next unsent
// request, until every request is sent or d has passed, whichever comes
// first. Each request is sent once. keep, when not nil, selects the status
// codes whose bodies are kept.
func drive(ctx context.Context, hc *http.Client, reqs []request, concurrency int, d time.Duration, keep func(status int) bool) outcome {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		wg       sync.WaitGroup
		all      []time.Duration
		status   = map[int]int{}
		errCount int
		kept     [][]byte
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, len(reqs)/concurrency+1)
			codes := map[int]int{}
			var errs int
			var mine [][]byte
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) || time.Now().After(deadline) {
					break
				}
				r := reqs[i]
				t0 := time.Now()
				code, body, err := send(ctx, hc, r, keep)
				if err != nil {
					errs++
					continue
				}
				lat = append(lat, time.Since(t0))
				codes[code]++
				if body != nil {
					mine = append(mine, body)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			for c, n := range codes {
				status[c] += n
			}
			errCount += errs
			kept = append(kept, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(all)
	return outcome{Requests: len(all), Elapsed: elapsed, Latencies: all, Status: status, Errors: errCount, Kept: kept}
}

// send sends one prepared request and reads the whole answer, so that the
// connection is reused; it returns the body when keep selects the status.
func send(ctx context.Context, hc *http.Client, r request, keep func(int) bool) (int, []byte, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header = r.header
	res, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	if keep != nil && keep(res.StatusCode) {
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil, err
}

// statusSummary lists the status counts in code order, e.g. "200:51234 401:2".
func statusSummary(o outcome) string {
	codes := make([]int, 0, len(o.Status))
	for c := range o.Status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var b bytes.Buffer
	for i, c := range codes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(c))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(o.Status[c]))
	}
	if o.Errors > 0 {
		b.WriteString(" transport-errors:")
		b.WriteString(strconv.Itoa(o.Errors))
	}
	return b.String()
}
