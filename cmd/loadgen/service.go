package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/obpay/payments/internal/devauth"
	"github.com/obpay/payments/internal/fixtures"
)

// Load names in the report.
const (
	loadFloor     = "signature floor (ES256 verify)"
	loadReadFloor = "read floor (ES256 verify + balance SELECT)"
	loadReads     = "DPoP balance reads"
	loadPayments  = "payments, pre-authorised"
)

// readTarget is a server the balance reads are sent to: the service or one
// of the floors.
type readTarget struct {
	load string // the report's name of its rows
	name string // its name in progress messages
	base string // the URL the requests go to instead of the service's; "" for the service
	pid  int    // the process the window's server CPU is charged to
}

// openingBalance funds each account: far more than the run can spend.
const openingBalance = "1000000.00"

// runService starts the payments service and the two floors, prepares the
// fixture, drives every window and checks the ledger.
func runService(ctx context.Context, cfg config, admin *sql.DB, rep *report, pgSegment func() (float64, error), stderr io.Writer) error {
	const name = "e2e_bench_payments"
	dsn, drop, err := scratchDB(ctx, admin, cfg.server, name)
	if err != nil {
		return err
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintln(stderr, "loadgen: drop", name+":", err)
		}
	}()
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	base := "http://" + addr
	env := []string{
		"DATABASE_URL=" + dsn,
		"PAYMENTS_ADDR=" + addr,
		"PAYMENTS_PUBLIC_URL=" + base,
		"PAYMENTS_DEV_AUTH=true",
		"PAYMENTS_DPOP_NONCE=required",
		"PAYMENTS_DB_MAX_OPEN_CONNS=" + strconv.Itoa(cfg.dbConns),
		"PAYMENTS_DB_MAX_IDLE_CONNS=" + strconv.Itoa(cfg.dbConns),
		"PAYMENTS_LOG_LEVEL=" + cfg.serverLog,
		"PAYMENTS_SHUTDOWN_GRACE=5s",
		// One aggregator client gets a token for every payment of the run,
		// far more than the sandbox lets one client hold by default.
		"PAYMENTS_DEV_AUTH_MAX_TOKENS_PER_CLIENT=1000000",
	}
	if cfg.introspect == "http" {
		// The production path: the HTTP introspection client with its cache
		// (PAYMENTS_INTROSPECTION_CACHE_TTL, default 30s), asking the
		// sandbox authorization server of the same process over loopback.
		env = append(env,
			"PAYMENTS_INTROSPECTION_URL="+base+"/oauth2/introspect",
			"PAYMENTS_INTROSPECTION_CLIENT_ID="+devauth.ResourceServerClientID,
			"PAYMENTS_INTROSPECTION_CLIENT_SECRET="+devauth.ResourceServerClientSecret)
	}
	var prof *profiler
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return err
		}
		pa, err := freeAddr()
		if err != nil {
			return err
		}
		env = append(env, "PAYMENTS_DEBUG_PPROF_ADDR="+pa)
		prof = &profiler{addr: pa, dir: cfg.profileDir}
	}
	fmt.Fprintf(stderr, "starting %s on %s ...\n", cfg.binary, base)
	svc, err := startChild(ctx, "payments", cfg.binary, []string{"serve"}, env, base+"/healthz")
	if err != nil {
		return err
	}
	defer func() {
		if err := svc.stop(); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
		}
	}()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	floorAddr, err := freeAddr()
	if err != nil {
		return err
	}
	floorBase := "http://" + floorAddr
	floor, err := startChild(ctx, "signature floor", self, []string{"-serve-floor", floorAddr}, nil, floorBase+"/healthz")
	if err != nil {
		return err
	}
	defer func() {
		if err := floor.stop(); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
		}
	}()

	f, err := newFixture(base)
	if err != nil {
		return err
	}
	f.progress = stderr
	f.serverPID = svc.cmd.Process.Pid
	fmt.Fprintf(stderr, "opening %d funded accounts through the back office ...\n", cfg.accounts)
	if err := f.openAccounts(ctx, cfg.accounts, openingBalance); err != nil {
		return err
	}

	// The read floor reads the accounts just opened, so it starts now.
	readFloorAddr, err := freeAddr()
	if err != nil {
		return err
	}
	readFloorBase := "http://" + readFloorAddr
	readFloor, err := startChild(ctx, "read floor", self,
		[]string{"-serve-read-floor", readFloorAddr, "-read-floor-db", dsn, "-db-conns", strconv.Itoa(cfg.dbConns)},
		nil, readFloorBase+"/healthz")
	if err != nil {
		return err
	}
	defer func() {
		if err := readFloor.stop(); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
		}
	}()
	readers := min(cfg.accounts, 32)
	fmt.Fprintf(stderr, "authorising %d account-access consents ...\n", readers)
	tokens, err := f.readTokens(ctx, readers)
	if err != nil {
		return err
	}

	// The floors and the reads, adjacent in time at each concurrency, so
	// that all see the same machine.
	service := readTarget{load: loadReads, name: "reads", pid: svc.cmd.Process.Pid}
	targets := []readTarget{
		{load: loadFloor, name: "signature floor", base: floorBase, pid: floor.cmd.Process.Pid},
		{load: loadReadFloor, name: "read floor", base: readFloorBase, pid: readFloor.cmd.Process.Pid},
		service,
	}
	for _, c := range cfg.readConc {
		hc := newHTTPClient(c)
		sums := make([]outcome, len(targets))
		for r := 0; r < cfg.rounds; r++ {
			for i, t := range targets {
				o, err := f.readWindow(ctx, cfg, hc, tokens, c, t, nil)
				if err != nil {
					return err
				}
				sums[i] = sums[i].add(o)
			}
		}
		for i, t := range targets {
			rep.rows = append(rep.rows, row{load: t.load, conc: c, o: sums[i]})
		}
		hc.CloseIdleConnections()
	}

	var tps []float64
	if pgSegment != nil {
		t, err := pgSegment()
		if err != nil {
			return err
		}
		tps = append(tps, t)
	}
	ids, err := f.paymentWindows(ctx, cfg, rep, prof, pgSegment, &tps, stderr)
	if err != nil {
		return err
	}
	if len(tps) > 0 {
		var sum float64
		parts := make([]string, len(tps))
		for i, t := range tps {
			sum += t
			parts[i] = strconv.FormatFloat(t, 'f', 0, 64)
		}
		rep.pgbenchTPS = sum / float64(len(tps))
		rep.pgbenchRuns = "runs: " + strings.Join(parts, ", ")
	}

	if prof != nil {
		c := cfg.readConc[0]
		fmt.Fprintf(stderr, "profiling reads at %d for %s ...\n", c, cfg.profileTime)
		hc := newHTTPClient(c)
		if _, err := f.readWindow(ctx, cfg, hc, tokens, c, service, prof); err != nil {
			return err
		}
		hc.CloseIdleConnections()
	}

	// Checks: the ledger reconciles through the API, and every 201 is booked
	// once in the service's database.
	if r, err := f.checkReconcile(ctx); err != nil {
		rep.failures = append(rep.failures, err.Error())
		rep.reconcile = "FAILED: " + err.Error()
	} else {
		rep.reconcile = fmt.Sprintf("balanced, drift 0 over %d accounts", r.AccountsChecked)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	// Opening balances: the accounts opened here and the sandbox's own
	// customers, which serve opens at start.
	openings := cfg.accounts + len(fixtures.Customers())
	if lc, err := checkLedger(ctx, db, ids, openings); err != nil {
		rep.failures = append(rep.failures, err.Error())
		rep.ledger = "FAILED: " + err.Error()
	} else {
		rep.ledger = fmt.Sprintf("every 201 payment booked exactly once (%d payments, %d payment transfers, no other transfer)", lc.Payments, lc.Transfers)
	}
	return nil
}

// readWindow runs a warm-up window of balance reads to learn the rate, then
// a measured window with a batch sized for it, against t: the service, or a
// floor, which gets the very same requests (same headers, same sizes). With
// prof set the measured window lasts cfg.profileTime and is profiled.
func (f *fixture) readWindow(ctx context.Context, cfg config, hc *http.Client, tokens []string, c int, t readTarget, prof *profiler) (outcome, error) {
	d := cfg.duration
	if prof != nil {
		d = cfg.profileTime
	}
	batch := func(n int) ([]request, error) {
		nonce, err := f.currentNonce(ctx, tokens[0])
		if err != nil {
			return nil, err
		}
		reqs, err := f.balanceReads(n, tokens, nonce)
		if err != nil {
			return nil, err
		}
		if t.base != "" {
			for i := range reqs {
				reqs[i].url = t.base + strings.TrimPrefix(reqs[i].url, f.base)
			}
		}
		return reqs, nil
	}
	warm, err := batch(min(cfg.maxRequests, 4000))
	if err != nil {
		return outcome{}, err
	}
	w := drive(ctx, hc, warm, c, cfg.calibrate, nil)
	n := sizeBatch(w.RPS(), d, cfg.maxRequests)
	fmt.Fprintf(f.progress, "%s at %d: warm-up %.0f req/s, signing %d proofs for %s ...\n", t.name, c, w.RPS(), n, d)
	reqs, err := batch(n)
	if err != nil {
		return outcome{}, err
	}
	var wait func() error
	if prof != nil {
		wait = prof.during(ctx, "reads", d)
	}
	before := readCPU(t.pid)
	o := drive(ctx, hc, reqs, c, d, nil)
	o.CPU = cpuSince(before, readCPU(t.pid))
	if wait != nil {
		if err := wait(); err != nil {
			return outcome{}, err
		}
	}
	return o, nil
}

// paymentWindows runs the payment load: a warm-up batch to learn the rate,
// then a measured window (and a profiled one with prof), each with consents
// authorised and tokens issued beforehand and proofs signed just before it.
// It returns the ids of every payment answered 201.
func (f *fixture) paymentWindows(ctx context.Context, cfg config, rep *report, prof *profiler, pgSegment func() (float64, error), tps *[]float64, stderr io.Writer) ([]string, error) {
	c := cfg.payConc
	hc := newHTTPClient(c)
	defer hc.CloseIdleConnections()
	var (
		ids  []string
		next int
	)
	window := func(n int, d time.Duration, profile bool) (outcome, error) {
		start := time.Now()
		ts, err := f.paymentTickets(ctx, next, n, cfg.setupWorkers)
		if err != nil {
			return outcome{}, err
		}
		next += n
		fmt.Fprintf(stderr, "payments: %d consents authorised and tokens issued in %.1fs\n", n, time.Since(start).Seconds())
		nonce, err := f.currentNonce(ctx, ts[0].token)
		if err != nil {
			return outcome{}, err
		}
		reqs, err := f.paymentRequests(ts, nonce)
		if err != nil {
			return outcome{}, err
		}
		var wait func() error
		if profile {
			wait = prof.during(ctx, "payments", d)
		}
		before := readCPU(f.serverPID)
		o := drive(ctx, hc, reqs, c, d, func(code int) bool { return code == http.StatusCreated })
		o.CPU = cpuSince(before, readCPU(f.serverPID))
		if wait != nil {
			if err := wait(); err != nil {
				return outcome{}, err
			}
		}
		got, err := paymentIDs(o.Kept)
		if err != nil {
			return outcome{}, err
		}
		ids = append(ids, got...)
		return o, nil
	}
	warm, err := window(max(c*25, 100), cfg.calibrate*3, false)
	if err != nil {
		return nil, err
	}
	n := sizeBatch(warm.RPS(), cfg.duration, cfg.maxRequests)
	fmt.Fprintf(stderr, "payments at %d: warm-up %.0f/s, preparing %d for %s ...\n", c, warm.RPS(), n, cfg.duration)
	o, err := window(n, cfg.duration, false)
	if err != nil {
		return nil, err
	}
	rep.rows = append(rep.rows, row{load: loadPayments, conc: c, o: o})
	if pgSegment != nil {
		t, err := pgSegment()
		if err != nil {
			return nil, err
		}
		*tps = append(*tps, t)
	}
	if prof != nil {
		n := sizeBatch(warm.RPS(), cfg.profileTime, cfg.maxRequests)
		fmt.Fprintf(stderr, "profiling payments at %d for %s ...\n", c, cfg.profileTime)
		if _, err := window(n, cfg.profileTime, true); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// sizeBatch returns how many requests to prepare for a window of d at a
// warm-up rate of rps: 40% more than the warm-up rate needs, so that the
// window is normally ended by time, not by an exhausted batch (the report
// shows the seconds each window really lasted).
func sizeBatch(rps float64, d time.Duration, limit int) int {
	n := int(math.Ceil(rps*d.Seconds()*1.4)) + 100
	return max(100, min(n, limit))
}
