// Command loadgen measures the payments service end to end, next to the
// physical references it is judged against, in one run on one machine.
//
// It starts the payments binary (PAYMENTS_DEV_AUTH=true: the sandbox
// authorization server, introspected in-process; nonces required) on a
// loopback port against a scratch database it creates and drops, opens
// funded accounts through the back-office API with the Go SDK, and drives two
// loads for a fixed time at a fixed concurrency:
//
//   - DPoP-protected balance reads, GET .../aisp/accounts/{AccountId}/balances;
//   - payments on pre-authorised consents, POST .../pisp/domestic-payments.
//
// Every request carries a real proof with the service's current nonce, for a
// real token bound to the proof key. Consents, tokens and proofs are made
// before each measured window, so that the client's signing does not take the
// CPU the server needs: proofs are signed in one batch just before the window
// they are used in, with a window well under the 60 s iat limit.
//
// The references, in the same run:
//
//   - the signature floor: the same load generator against a child process
//     (loadgen -serve-floor) serving echo with the service's http.Server
//     settings, whose only work per request is one standard-library ES256
//     verification of a fixed signature;
//   - the read floor: the same server in another child process (loadgen
//     -serve-read-floor), whose handler does that verification and one
//     primary-key SELECT of the balance of a random fixture account, in the
//     service's own scratch database through a pool of the service's size:
//     the physical cost of a fresh, sender-constrained read;
//   - pgbench's built-in tpcb-like script at the payments' client count
//     against the same PostgreSQL server.
//
// After the run it checks, through the back-office API, that the ledger
// reconciles with no drift, and in the scratch database that every payment
// answered 201 is booked exactly once. It prints requests/s, p50/p90/p99 and
// the count of every status code per load, and the ratios of the targets.
// With -profile-dir it also takes CPU and allocation profiles of the server
// during an extra window of each load. `make bench-e2e` runs it.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/obpay/payments/internal/pgbench"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type config struct {
	server       string
	binary       string
	pgbench      string
	accounts     int
	readConc     []int
	payConc      int
	duration     time.Duration
	calibrate    time.Duration
	rounds       int
	pgbenchTime  time.Duration
	scale        int
	dbConns      int
	maxRequests  int
	setupWorkers int
	profileDir   string
	profileTime  time.Duration
	serverLog    string
	introspect   string
	serveFloor   string
	// serveReadFloor and readFloorDB are the read floor's internal flags:
	// serve it on this address, reading this database (with a pool of
	// dbConns connections).
	serveReadFloor string
	readFloorDB    string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	defServer := os.Getenv("E2E_BENCH_DATABASE_URL")
	if defServer == "" {
		defServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	fs.StringVar(&c.server, "server", defServer, "Postgres URL of any database on the server to use (env E2E_BENCH_DATABASE_URL); scratch databases are created and dropped on it")
	fs.StringVar(&c.binary, "payments", "bin/payments", "the payments binary to start")
	fs.StringVar(&c.pgbench, "pgbench", "pgbench", "the pgbench program; empty skips the pgbench reference")
	fs.IntVar(&c.accounts, "accounts", 64, "funded customer accounts to open (one PSU each)")
	conc := fs.String("concurrency", "8,32", "comma-separated concurrencies of the read load and the two floors")
	fs.IntVar(&c.payConc, "payment-concurrency", 8, "concurrency of the payment load and pgbench's client count")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of each measured window (at most 40s: proofs are signed before it and live 60s)")
	fs.IntVar(&c.rounds, "rounds", 2, "measured windows per concurrency for the two floors and the reads, alternated (signature floor, read floor, reads, signature floor ...) so that all see the same machine; the report sums them")
	fs.DurationVar(&c.calibrate, "calibrate", 2*time.Second, "length of the warm-up window that sizes each measured window's batch")
	fs.DurationVar(&c.pgbenchTime, "pgbench-duration", 20*time.Second, "pgbench -T")
	fs.IntVar(&c.scale, "scale", 10, "pgbench -i scale factor")
	fs.IntVar(&c.dbConns, "db-conns", 16, "the server's PAYMENTS_DB_MAX_OPEN_CONNS (and MAX_IDLE_CONNS), and the read floor's pool size")
	fs.IntVar(&c.maxRequests, "max-requests", 200000, "cap on the requests prepared for one window")
	fs.IntVar(&c.setupWorkers, "setup-workers", 8, "concurrency of consent and token set-up")
	fs.StringVar(&c.profileDir, "profile-dir", "", "when set, take CPU and allocation profiles of the server during an extra window of each load and write them here")
	fs.DurationVar(&c.profileTime, "profile-duration", 8*time.Second, "length of each profiled window")
	fs.StringVar(&c.introspect, "introspection", "http", "how the server introspects tokens: http (RFC 7662 over loopback against the sandbox's own /oauth2/introspect, through the production client and its cache) or in-process (the sandbox's token store, no HTTP)")
	fs.StringVar(&c.serverLog, "server-log-level", "info", "the server's PAYMENTS_LOG_LEVEL (info, the production default, writes one access-log line per request)")
	fs.StringVar(&c.serveFloor, "serve-floor", "", "internal: serve the signature floor on this address and do nothing else")
	fs.StringVar(&c.serveReadFloor, "serve-read-floor", "", "internal: serve the read floor on this address, reading -read-floor-db through a pool of -db-conns connections, and do nothing else")
	fs.StringVar(&c.readFloorDB, "read-floor-db", "", "internal: the Postgres URL of the database the read floor reads (its customer accounts)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	switch {
	case c.serveFloor != "" && c.serveReadFloor != "":
		return config{}, errors.New("-serve-floor and -serve-read-floor: one server per process")
	case c.serveFloor != "":
		return c, nil
	case c.serveReadFloor != "":
		if c.readFloorDB == "" {
			return config{}, errors.New("-serve-read-floor needs -read-floor-db")
		}
		if c.dbConns < 1 {
			return config{}, errors.New("-db-conns must be positive")
		}
		return c, nil
	case c.readFloorDB != "":
		return config{}, errors.New("-read-floor-db is only for -serve-read-floor")
	}
	var err error
	if c.readConc, err = parseInts(*conc); err != nil {
		return config{}, fmt.Errorf("-concurrency: %w", err)
	}
	switch {
	case c.accounts < 2:
		return config{}, errors.New("-accounts: at least 2")
	case c.rounds < 1:
		return config{}, errors.New("-rounds: at least 1")
	case c.introspect != "http" && c.introspect != "in-process":
		return c, fmt.Errorf("-introspection %q: want http or in-process", c.introspect)
	case c.payConc < 1 || c.setupWorkers < 1 || c.dbConns < 1:
		return config{}, errors.New("-payment-concurrency, -setup-workers and -db-conns must be positive")
	case c.duration < time.Second || c.duration > 40*time.Second:
		return config{}, errors.New("-duration: between 1s and 40s")
	case c.calibrate < 500*time.Millisecond || c.calibrate > 10*time.Second:
		return config{}, errors.New("-calibrate: between 500ms and 10s")
	case c.profileTime < time.Second || c.profileTime > 40*time.Second:
		return config{}, errors.New("-profile-duration: between 1s and 40s")
	}
	return c, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// row is one line of the report.
type row struct {
	load string
	conc int
	o    outcome
}

// report is everything measured in one run.
type report struct {
	rows        []row
	pgbenchTPS  float64
	pgClients   int
	pgbenchRuns string
	reconcile   string
	ledger      string
	failures    []string
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	switch {
	case cfg.serveFloor != "":
		return serveFloor(cfg.serveFloor)
	case cfg.serveReadFloor != "":
		return serveReadFloor(cfg.serveReadFloor, cfg.readFloorDB, cfg.dbConns)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := url.Parse(cfg.server); err != nil {
		return fmt.Errorf("-server is not a URL: %v", err)
	}
	admin, err := sql.Open("pgx", cfg.server)
	if err != nil {
		return err
	}
	defer admin.Close()

	var rep report
	var segment func() (float64, error)
	if cfg.pgbench != "" {
		seg, drop, err := preparePgbench(ctx, cfg, admin, stderr)
		if err != nil {
			return err
		}
		defer func() {
			if err := drop(); err != nil {
				fmt.Fprintln(stderr, "loadgen: drop pgbench database:", err)
			}
		}()
		segment = seg
		rep.pgClients = cfg.payConc
	}
	if err := runService(ctx, cfg, admin, &rep, segment, stderr); err != nil {
		return err
	}
	printReport(stdout, cfg, rep)
	if len(rep.failures) > 0 {
		return fmt.Errorf("checks failed:\n  %s", strings.Join(rep.failures, "\n  "))
	}
	return nil
}

// preparePgbench initialises a scratch database with pgbench -i and returns
// a function that runs tpcb-like at the payment load's client count for half
// of -pgbench-duration and returns its tps. The payment window runs between
// two such halves, so that both see the same machine.
func preparePgbench(ctx context.Context, cfg config, admin *sql.DB, stderr io.Writer) (func() (float64, error), func() error, error) {
	const name = "e2e_bench_pgbench"
	_, drop, err := scratchDB(ctx, admin, cfg.server, name)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(stderr, "pgbench -i -s %d ...\n", cfg.scale)
	if _, err := pgbench.Run(ctx, cfg.pgbench, cfg.server, name, "-i", "-q", "-s", strconv.Itoa(cfg.scale)); err != nil {
		_ = drop()
		return nil, nil, err
	}
	c := strconv.Itoa(cfg.payConc)
	secs := strconv.Itoa(max(1, int(cfg.pgbenchTime.Seconds())/2))
	segment := func() (float64, error) {
		fmt.Fprintf(stderr, "pgbench -b tpcb-like -c %s -j %s -T %s ...\n", c, c, secs)
		out, err := pgbench.Run(ctx, cfg.pgbench, cfg.server, name, "-b", "tpcb-like", "-c", c, "-j", c, "-T", secs)
		if err != nil {
			return 0, err
		}
		return pgbench.ParseTPS(out)
	}
	return segment, drop, nil
}

func printReport(w io.Writer, cfg config, rep report) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "End to end, one run, one machine (client and servers share its cores)")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "load\tconc\trequests\tseconds\treq/s\tp50 ms\tp90 ms\tp99 ms\tstatus counts")
	for _, r := range rep.rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.0f\t%.2f\t%.2f\t%.2f\t%s\n", r.load, r.conc, r.o.Requests, r.o.Elapsed.Seconds(),
			r.o.RPS(), ms(r.o.Percentile(50)), ms(r.o.Percentile(90)), ms(r.o.Percentile(99)), statusSummary(r.o))
	}
	if rep.pgbenchTPS > 0 {
		fmt.Fprintf(tw, "pgbench tpcb-like (tps; mean of the runs before and after the payments)\t%d\t\t%.0f\t%.0f\t\t\t\t%s\n",
			rep.pgClients, cfg.pgbenchTime.Seconds(), rep.pgbenchTPS, rep.pgbenchRuns)
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintln(w, "CPU during each window (cores; other is mostly Postgres)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rep.rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", r.load, r.conc, cpuSummary(r.o))
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios (targets in brackets)")
	for _, c := range cfg.readConc {
		reads, ok := find(rep.rows, loadReads, c)
		if !ok {
			continue
		}
		if floor, ok := find(rep.rows, loadFloor, c); ok && floor.RPS() > 0 {
			fmt.Fprintf(w, "  DPoP balance reads / signature floor, %d conc: %.2f  [>= 0.70]\n", c, reads.RPS()/floor.RPS())
		}
		if floor, ok := find(rep.rows, loadReadFloor, c); ok && floor.RPS() > 0 {
			fmt.Fprintf(w, "  DPoP balance reads / read floor, %d conc: %.2f\n", c, reads.RPS()/floor.RPS())
		}
	}
	if pay, ok := find(rep.rows, loadPayments, cfg.payConc); ok && rep.pgbenchTPS > 0 {
		fmt.Fprintf(w, "  payments / pgbench tpcb-like tps, %d clients: %.2f  [>= 0.50]\n", cfg.payConc, pay.RPS()/rep.pgbenchTPS)
	}
	var fivexx int
	for _, r := range rep.rows {
		fivexx += r.o.Count5xx()
	}
	fmt.Fprintf(w, "  5xx answers: %d  [0]\n", fivexx)
	fmt.Fprintf(w, "  reconcile: %s\n", rep.reconcile)
	fmt.Fprintf(w, "  ledger: %s\n", rep.ledger)
}

func find(rows []row, load string, conc int) (outcome, bool) {
	for _, r := range rows {
		if r.load == load && r.conc == conc {
			return r.o, true
		}
	}
	return outcome{}, false
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
