package pgbench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/obpay/payments/internal/testdb"
)

// fakeEnv makes the test binary act as pgbench: it prints its arguments and
// PGPASSWORD, one a line, and fails when its database argument is "fail".
const fakeEnv = "PGBENCH_TEST_FAKE"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		args := os.Args[1:]
		if len(args) > 0 && args[len(args)-1] == "fail" {
			fmt.Fprintln(os.Stderr, "pgbench: error: connection refused")
			os.Exit(1)
		}
		for _, a := range args {
			fmt.Println(a)
		}
		fmt.Println("PGPASSWORD=" + os.Getenv("PGPASSWORD"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseTPS(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    float64
		wantErr bool
	}{
		{"pgbench 15", "latency average = 1.2 ms\ninitial connection time = 3.1 ms\ntps = 812.345678 (without initial connection time)\n", 812.345678, false},
		{"pgbench 15 summary", "number of failed transactions: 0 (0.000%)\nlatency average = 4.5 ms\ninitial connection time = 12.3 ms\ntps = 1771.234567 (without initial connection time)\n", 1771.234567, false},
		{"older pgbench, both lines", "tps = 900.5 (including connections establishing)\ntps = 950.25 (without initial connection time)\n", 950.25, false},
		{"only the including line", "tps = 900.5 (including connections establishing)\n", 0, true},
		{"no tps line", "error\n", 0, true},
		{"connection refused", "pgbench: error: connection refused\n", 0, true},
		{"empty", "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTPS(tc.out)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseTPS = %v, %v, want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name         string
		serverURL    string
		args         []string
		wantArgs     []string
		wantPassword string // "" for no PGPASSWORD entry
	}{
		{
			name:      "host, port and user",
			serverURL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
			args:      []string{"-i", "-q", "-s", "10"},
			wantArgs:  []string{"pgbench", "-h", "127.0.0.1", "-U", "postgres", "-p", "5432", "-i", "-q", "-s", "10", "scratch"},
		},
		{
			name:      "no port",
			serverURL: "postgres://bench@db.example/postgres",
			args:      []string{"-b", "tpcb-like", "-c", "8", "-j", "8", "-T", "10"},
			wantArgs:  []string{"pgbench", "-h", "db.example", "-U", "bench", "-b", "tpcb-like", "-c", "8", "-j", "8", "-T", "10", "scratch"},
		},
		{
			name:         "password goes to the environment",
			serverURL:    "postgres://bench:s3cret@127.0.0.1:6432/postgres",
			args:         []string{"-i"},
			wantArgs:     []string{"pgbench", "-h", "127.0.0.1", "-U", "bench", "-p", "6432", "-i", "scratch"},
			wantPassword: "s3cret",
		},
		{
			name:      "no user",
			serverURL: "postgres://127.0.0.1/postgres",
			wantArgs:  []string{"pgbench", "-h", "127.0.0.1", "-U", "", "scratch"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := command(context.Background(), "pgbench", tc.serverURL, "scratch", tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantArgs, cmd.Args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			added := cmd.Env[len(os.Environ()):]
			var want []string
			if tc.wantPassword != "" {
				want = []string{"PGPASSWORD=" + tc.wantPassword}
			}
			if diff := cmp.Diff(want, added, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("environment added to the parent's (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCommandBadURL(t *testing.T) {
	if _, err := command(context.Background(), "pgbench", "postgres://[::1", "scratch", nil); err == nil {
		t.Error("command accepted a URL that does not parse")
	}
}

func TestRun(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeEnv, "1")
	t.Setenv("PGPASSWORD", "")
	tests := []struct {
		name     string
		database string
		args     []string
		want     string
		wantErr  string // prefix and suffix the error must have; "" for none
	}{
		{
			name:     "standard output",
			database: "scratch",
			args:     []string{"-i", "-q"},
			want:     "-h\n127.0.0.1\n-U\nbench\n-p\n5432\n-i\n-q\nscratch\nPGPASSWORD=pw\n",
		},
		{
			name:     "failure names the arguments and keeps standard error",
			database: "fail",
			args:     []string{"-b", "tpcb-like"},
			wantErr:  "pgbench -b tpcb-like: exit status 1\npgbench: error: connection refused\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Run(context.Background(), self, "postgres://bench:pw@127.0.0.1:5432/postgres", tc.database, tc.args...)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Run error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Run = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCreateAndDropDatabase(t *testing.T) {
	ctx := context.Background()
	admin, err := sql.Open("pgx", testdb.ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	const name = "pgbench_pkg_test_scratch"
	exists := func() bool {
		t.Helper()
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	steps := []struct {
		name    string
		do      func() error
		wantErr bool
		exists  bool
	}{
		{"drop a leftover or nothing", func() error { return DropDatabase(ctx, admin, name) }, false, false},
		{"create", func() error { return CreateDatabase(ctx, admin, name) }, false, true},
		{"create again fails", func() error { return CreateDatabase(ctx, admin, name) }, true, true},
		{"drop", func() error { return DropDatabase(ctx, admin, name) }, false, false},
		{"drop again is fine", func() error { return DropDatabase(ctx, admin, name) }, false, false},
	}
	t.Cleanup(func() { _ = DropDatabase(context.Background(), admin, name) })
	for _, s := range steps {
		if err := s.do(); (err != nil) != s.wantErr {
			t.Fatalf("%s: error %v, want error %v", s.name, err, s.wantErr)
		}
		if got := exists(); got != s.exists {
			t.Fatalf("%s: database exists = %v, want %v", s.name, got, s.exists)
		}
	}
}
