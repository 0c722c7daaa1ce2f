package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/internal/testdb"
)

// childEnv marks the re-executed test binary that runs `payments serve` as a
// real process, with a slow route added, so that signals and the exit code are
// real.
const childEnv = "PAYMENTS_TEST_SERVE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		hooks := &serveHooks{
			routes: func(e *echo.Echo) {
				e.GET("/test/slow", func(c echo.Context) error {
					time.Sleep(1500 * time.Millisecond)
					return c.String(http.StatusOK, "finished")
				})
			},
			listening: func(addr string) { fmt.Printf("LISTENING %s\n", addr) },
		}
		code := run(ctx, []string{"serve"}, os.Getenv, os.Stdout, os.Stderr, hooks)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestHelpListsEveryVariableWithDefault(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, env(nil), &out, io.Discard, nil); code != 0 {
		t.Fatalf("--help exit code = %d", code)
	}
	for _, name := range []string{
		"PAYMENTS_ADDR", "DATABASE_URL", "PAYMENTS_PUBLIC_URL", "PAYMENTS_INTROSPECTION_URL",
		"PAYMENTS_INTROSPECTION_CLIENT_ID", "PAYMENTS_INTROSPECTION_CLIENT_SECRET", "PAYMENTS_INTROSPECTION_CACHE_TTL",
		"PAYMENTS_AUDIENCE", "PAYMENTS_DEV_AUTH", "PAYMENTS_DPOP_ALGS", "PAYMENTS_DPOP_NONCE",
		"PAYMENTS_DPOP_NONCE_SECRET", "PAYMENTS_DPOP_NONCE_WINDOW", "PAYMENTS_DPOP_MAX_AGE", "PAYMENTS_DPOP_SKEW",
		"PAYMENTS_REPLAY_STORE", "PAYMENTS_LOG_LEVEL", "PAYMENTS_LOG_FORMAT", "PAYMENTS_MIGRATE",
		"PAYMENTS_DATA_DIR", "PAYMENTS_POSTGRES_BIN",
	} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("--help does not list %s", name)
		}
	}
	for _, def := range []string{"ES256,EdDSA,Ed25519,PS256", "60s", "10s", "5m", "30s", "memory", "required",
		"unset: an embedded PostgreSQL", "/var/lib/payments for root", "http://localhost:8080", ":8080"} {
		if !strings.Contains(out.String(), def) {
			t.Errorf("--help does not show default %q", def)
		}
	}
}

func TestInvalidConfigurationNamesTheVariable(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad duration", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_DPOP_MAX_AGE": "soon"}, "PAYMENTS_DPOP_MAX_AGE"},
		{"short nonce secret", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_DPOP_NONCE_SECRET": "short"}, "PAYMENTS_DPOP_NONCE_SECRET"},
		{"unknown alg", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_DPOP_ALGS": "ES256,HS256"}, "PAYMENTS_DPOP_ALGS"},
		{"nonce mode", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_DPOP_NONCE": "maybe"}, "PAYMENTS_DPOP_NONCE"},
		{"no introspection", map[string]string{}, "PAYMENTS_INTROSPECTION_URL"},
		{"public url with query", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_PUBLIC_URL": "https://x.example/?a=b"}, "PAYMENTS_PUBLIC_URL"},
		{"replay store", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_REPLAY_STORE": "mysql://x"}, "PAYMENTS_REPLAY_STORE"},
		{"skew above 60s", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_DPOP_SKEW": "2m"}, "PAYMENTS_DPOP_SKEW"},
		{"log level", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_LOG_LEVEL": "loud"}, "PAYMENTS_LOG_LEVEL"},
		{"page size below 25", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_TRANSACTIONS_PAGE_SIZE": "10"}, "PAYMENTS_TRANSACTIONS_PAGE_SIZE"},
		{"audience with the sandbox", map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_AUDIENCE": "https://api.bank.example"}, "PAYMENTS_AUDIENCE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), []string{"serve"}, env(tc.env), io.Discard, &stderr, nil)
			if code != 1 {
				t.Fatalf("exit code = %d, want 1; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr does not name %s:\n%s", tc.want, stderr.String())
			}
		})
	}
}

func TestSecretsAreNotEchoedInConfigErrors(t *testing.T) {
	var stderr bytes.Buffer
	run(context.Background(), []string{"serve"}, env(map[string]string{
		"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_DPOP_NONCE_SECRET": "tiny-secret-value",
	}), io.Discard, &stderr, nil)
	if strings.Contains(stderr.String(), "tiny-secret-value") {
		t.Fatalf("config error reveals the secret:\n%s", stderr.String())
	}
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := loadConfig(env(map[string]string{"PAYMENTS_DEV_AUTH": "true"}))
	if err != nil {
		t.Fatalf("loadConfig(defaults) = %v", err)
	}
	if c.Addr != ":8080" || c.DPoPMaxAge != time.Minute || c.DPoPSkew != 10*time.Second || c.BodyLimit != 64<<10 {
		t.Errorf("defaults = %+v", c)
	}
}

// startChild runs `payments serve` in a child process on a fresh database.
func startChild(t *testing.T, extra ...string) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	dsn := scratchDatabase(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "DATABASE_URL="+dsn, "PAYMENTS_ADDR=127.0.0.1:0",
		"PAYMENTS_DEV_AUTH=true", "PAYMENTS_SHUTDOWN_GRACE=10s")
	cmd.Env = append(cmd.Env, extra...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(out)
	addr := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if a, ok := strings.CutPrefix(lines.Text(), "LISTENING "); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("server exited before listening; stderr:\n%s", stderr.String())
		}
		return cmd, "http://" + a, &stderr
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start; stderr:\n%s", stderr.String())
	}
	return nil, "", nil
}

func dropDatabase(t *testing.T, name string) {
	db, err := sql.Open("pgx", testdb.ServerURL(t))
	if err != nil {
		t.Errorf("drop %s: %v", name, err)
		return
	}
	defer db.Close()
	if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
		t.Errorf("drop %s: %v", name, err)
	}
}

// scratchDatabase names a database that does not exist yet (serve or migrate
// creates it) and drops it when the test ends.
func scratchDatabase(t *testing.T) string {
	name := fmt.Sprintf("p_%d_%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { dropDatabase(t, name) })
	return testdb.WithDatabase(t, testdb.ServerURL(t), name)
}

func TestMigrateUpThenStatusShowsEveryMigrationApplied(t *testing.T) {
	e := env(map[string]string{"DATABASE_URL": scratchDatabase(t)})
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "up"}, e, &out, &errOut, nil); code != 0 {
		t.Fatalf("migrate up = %d; stderr:\n%s", code, errOut.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"migrate", "status"}, e, &out, &errOut, nil); code != 0 {
		t.Fatalf("migrate status = %d; stderr:\n%s", code, errOut.String())
	}
	if strings.Contains(out.String(), "pending") || !strings.Contains(out.String(), "applied") {
		t.Fatalf("migrate status:\n%s", out.String())
	}
}

func TestServeCreatesDatabaseMigratesAndIsReady(t *testing.T) {
	_, base, _ := startChild(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, res.StatusCode)
		}
	}
}

func TestSIGTERMFinishesInFlightRequestAndExitsZero(t *testing.T) {
	cmd, base, stderr := startChild(t)
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.Get(base + "/test/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- result{status: res.StatusCode, body: string(b)}
	}()
	time.Sleep(400 * time.Millisecond) // the slow request is now in flight
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.status != http.StatusOK || r.body != "finished" {
		t.Fatalf("in-flight request = %d %q %v, want 200 finished", r.status, r.body, r.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("process exit = %v, want 0; stderr:\n%s", err, stderr.String())
	}
	// New connections are refused after shutdown.
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still accepts requests after SIGTERM")
	}
}

func TestShutdownIsNotHeldUpByAnUnusedConnection(t *testing.T) {
	cmd, base, stderr := startChild(t)
	// A connection that never sends a request: http.Server alone would count
	// it as busy for five seconds.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("process exit = %v, want 0; stderr:\n%s", err, stderr.String())
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %s with one unused connection open", d)
	}
}
