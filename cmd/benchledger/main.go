// Command benchledger compares the ledger's transfer throughput with
// PostgreSQL's own pgbench on the same server.
//
// It creates a scratch database, initialises it with `pgbench -i`, runs
// pgbench's built-in tpcb-like script at each client count, runs the Go
// benchmark BenchmarkTransfer of internal/postgres (which makes its own scratch
// database on the same server), drops the scratch database, and prints both
// figures side by side with their ratio. `make bench-ledger` runs it.
//
// tpcb-like is the closest standard yardstick for a ledger posting: one
// transaction of three balance UPDATEs, one SELECT and one history INSERT.
// A ledger transfer is one transaction holding one call, through gorm, of
// the database function ledger_post (a locking SELECT, the funds check, a
// booking-time lookup, one UPDATE of both balances, the transfer and its two
// entries), plus a deferred balance check at commit.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/obpay/payments/internal/pgbench"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchledger:", err)
		os.Exit(1)
	}
}

type config struct {
	server    string
	pgbench   string
	clients   []int
	duration  time.Duration
	scale     int
	benchtime string
	pkg       string
	scratch   string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("benchledger", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := config{}
	defServer := os.Getenv("LEDGER_BENCH_DATABASE_URL")
	if defServer == "" {
		defServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	fs.StringVar(&c.server, "server", defServer, "Postgres URL of any database on the server to benchmark (env LEDGER_BENCH_DATABASE_URL)")
	fs.StringVar(&c.pgbench, "pgbench", "pgbench", "the pgbench program")
	clients := fs.String("clients", "1,8,32", "comma-separated client (worker) counts; must match the Go benchmark's")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "pgbench run time per client count (-T)")
	fs.IntVar(&c.scale, "scale", 10, "pgbench scale factor (-s): 10 branches, 1,000,000 accounts")
	fs.StringVar(&c.benchtime, "benchtime", "3s", "go test -benchtime for each ledger sub-benchmark")
	fs.StringVar(&c.pkg, "pkg", "./internal/postgres", "the package holding BenchmarkTransfer")
	fs.StringVar(&c.scratch, "scratch-db", "ledger_bench_pgbench", "name of the scratch database for pgbench (dropped and recreated)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return config{}, fmt.Errorf("-clients: %q is not a positive number", s)
		}
		c.clients = append(c.clients, n)
	}
	if !regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`).MatchString(c.scratch) {
		return config{}, fmt.Errorf("-scratch-db %q: use lower-case letters, digits and _", c.scratch)
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := url.Parse(cfg.server); err != nil {
		return fmt.Errorf("-server is not a URL: %v", err)
	}

	admin, err := sql.Open("pgx", cfg.server)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := pgbench.DropDatabase(ctx, admin, cfg.scratch); err != nil {
		return fmt.Errorf("drop old scratch database: %w", err)
	}
	if err := pgbench.CreateDatabase(ctx, admin, cfg.scratch); err != nil {
		return fmt.Errorf("create scratch database: %w", err)
	}
	defer func() {
		if err := pgbench.DropDatabase(context.Background(), admin, cfg.scratch); err != nil {
			fmt.Fprintln(stderr, "benchledger: drop scratch database:", err)
		}
	}()

	fmt.Fprintf(stderr, "pgbench -i -s %d on %s ...\n", cfg.scale, cfg.scratch)
	if _, err := pgbench.Run(ctx, cfg.pgbench, cfg.server, cfg.scratch, "-i", "-q", "-s", strconv.Itoa(cfg.scale)); err != nil {
		return err
	}
	pg := map[int]float64{}
	for _, c := range cfg.clients {
		fmt.Fprintf(stderr, "pgbench tpcb-like, %d clients, %s ...\n", c, cfg.duration)
		out, err := pgbench.Run(ctx, cfg.pgbench, cfg.server, cfg.scratch, "-b", "tpcb-like", "-c", strconv.Itoa(c), "-j", strconv.Itoa(c),
			"-T", strconv.Itoa(int(cfg.duration.Seconds())))
		if err != nil {
			return err
		}
		tps, err := pgbench.ParseTPS(out)
		if err != nil {
			return err
		}
		pg[c] = tps
	}

	fmt.Fprintf(stderr, "go test -bench BenchmarkTransfer -benchtime %s %s ...\n", cfg.benchtime, cfg.pkg)
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkTransfer$",
		"-benchtime", cfg.benchtime, "-count", "1", cfg.pkg)
	cmd.Env = append(os.Environ(), "TEST_DATABASE_URL="+cfg.server)
	var goOut bytes.Buffer
	cmd.Stdout = io.MultiWriter(&goOut, stderr)
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go test -bench: %w", err)
	}
	ledger := parseGoBench(goOut.String())

	fmt.Fprintf(stdout, "Ledger transfers/s (go test -bench BenchmarkTransfer, 1,000 accounts) vs pgbench tpcb-like tps (scale %d), same server\n\n", cfg.scale)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tpgbench tps\tledger transfers/s\tratio\tledger hot-account transfers/s\thot ratio\t")
	for _, c := range cfg.clients {
		spread, okS := ledger[fmt.Sprintf("workers=%d", c)]
		hot, okH := ledger[fmt.Sprintf("hot/workers=%d", c)]
		if !okS || !okH {
			return fmt.Errorf("no ledger result for %d workers in the go test output", c)
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.2f\t%.0f\t%.2f\t\n", c, pg[c], spread, spread/pg[c], hot, hot/pg[c])
	}
	return tw.Flush()
}

// benchLine matches e.g. "BenchmarkTransfer/hot/workers=8-2   626   2391856 ns/op   418.1 transfers/s".
var benchLine = regexp.MustCompile(`^BenchmarkTransfer/(\S+?)(?:-\d+)?\s+\d+\s+.*?([0-9.]+) transfers/s`)

func parseGoBench(out string) map[string]float64 {
	res := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			if v, err := strconv.ParseFloat(m[2], 64); err == nil {
				res[m[1]] = v
			}
		}
	}
	return res
}
