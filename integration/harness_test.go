// Package integration holds black-box tests: they build the real payments
// binary, run it against real PostgreSQL (and Redis) and talk to it only
// through HTTP.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/obpay/payments/internal/testdb"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "payments-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "payments")
	build := exec.Command("go", "build", "-race", "-o", binary, "../cmd/payments")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build payments:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logBuffer collects the server's log output; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is one running payments process.
type server struct {
	URL  string // base URL, also its PAYMENTS_PUBLIC_URL
	DSN  string // its database
	cmd  *exec.Cmd
	logs *logBuffer
	done chan error
}

// Logs returns everything the server wrote to stderr so far.
func (s *server) Logs() string { return s.logs.String() }

// startServer runs the binary on a free loopback port against a fresh
// database, with the sandbox authorization server on unless env overrides it.
// env entries are KEY=VALUE.
func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	return startServerAt(t, freePort(t), env...)
}

// startServerAt is startServer on a port the caller chose, for tests that
// must give the server's URL to another process before it starts.
func startServerAt(t *testing.T, port int, env ...string) *server {
	t.Helper()
	dsn := testdb.New(t)
	return launchServer(t, port, dsn, append([]string{"DATABASE_URL=" + dsn}, env...)...)
}

// launchServer runs the binary on port with env (KEY=VALUE entries, after
// the harness's own) and waits until it is healthy; dsn only labels the
// server (an empty one means the server runs its embedded PostgreSQL).
func launchServer(t *testing.T, port int, dsn string, env ...string) *server {
	t.Helper()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("PAYMENTS_ADDR=127.0.0.1:%d", port),
		"PAYMENTS_PUBLIC_URL="+base,
		"PAYMENTS_DEV_AUTH=true",
		"PAYMENTS_LOG_LEVEL=debug",
		"PAYMENTS_SHUTDOWN_GRACE=5s",
		// Test packages run in parallel against one Postgres: keep each
		// server's pool small.
		"PAYMENTS_DB_MAX_OPEN_CONNS=10",
		"PAYMENTS_DB_MAX_IDLE_CONNS=10",
	)
	cmd.Env = append(cmd.Env, env...)
	s := &server{URL: base, DSN: dsn, cmd: cmd, logs: &logBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start payments: %v", err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { s.stop(t) })

	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("payments exited early (%v); log:\n%s", err, s.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("payments did not become healthy; log:\n%s", s.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Errorf("payments exit: %v; log tail:\n%s", err, tail(s.Logs(), 4000))
		}
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Errorf("payments did not stop within 20s after SIGTERM")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// do sends a raw request with the given headers and returns the response
// with its body read.
func do(t *testing.T, method, url string, body []byte, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return res, b.Bytes()
}

func contains(haystack string, needles ...string) []string {
	var found []string
	for _, n := range needles {
		if strings.Contains(haystack, n) {
			found = append(found, n)
		}
	}
	return found
}

// redisURLForTest returns the Redis the tests share (TEST_REDIS_URL, or a
// container), failing when there is none.
func redisURLForTest(t *testing.T) string {
	t.Helper()
	return testdb.RedisURL(t)
}
