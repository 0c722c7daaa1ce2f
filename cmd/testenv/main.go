//go:build unix

// Command testenv runs a command (the test suite) with a PostgreSQL server
// and a Redis server for it, so that `make test` needs nothing but Go:
//
//	go run ./cmd/testenv -- go test ./...
//
// TEST_DATABASE_URL, when set, names the PostgreSQL server to use; otherwise
// testenv starts one embedded server for the whole run (embedpg: a local
// installation, PAYMENTS_POSTGRES_BIN, or the pinned download), or, when
// there are no binaries but a Docker engine answers, leaves the choice to
// the tests' containers. TEST_REDIS_URL, when set, names the Redis;
// otherwise testenv starts a redis-server from the PATH on a free port, or
// else serves an in-process Redis (miniredis) and says so. What cannot be
// provided stops the run at once, with what to install.
//
// The servers it starts are private to the run and removed when the
// command ends; the command's exit status is testenv's.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/obpay/payments/internal/embedpg"
	"github.com/obpay/payments/internal/testdb"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: testenv [--] command [args...]")
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env, cleanup, err := provide(log)
	if err != nil {
		cleanup()
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(2)
	}
	code := run(args, env)
	cleanup()
	os.Exit(code)
}

// provide returns the environment entries the tests need and the function
// that stops what it started.
func provide(log *slog.Logger) ([]string, func(), error) {
	var stops []func()
	cleanup := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	var env []string
	if os.Getenv("TEST_DATABASE_URL") == "" {
		url, stop, err := startPostgres(log)
		if err != nil {
			return nil, cleanup, err
		}
		if stop != nil {
			stops = append(stops, stop)
		}
		if url != "" {
			env = append(env, "TEST_DATABASE_URL="+url)
		}
	}
	if os.Getenv("TEST_REDIS_URL") == "" {
		url, stop, err := startRedis()
		if err != nil {
			return nil, cleanup, err
		}
		stops = append(stops, stop)
		env = append(env, "TEST_REDIS_URL="+url)
	}
	return env, cleanup, nil
}

// startPostgres starts the run's embedded PostgreSQL. With no binaries to
// be had, a reachable Docker engine lets the tests start containers
// instead ("" and no error).
func startPostgres(log *slog.Logger) (string, func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cache, err := embedpg.DefaultCacheDir()
	if err != nil {
		return "", nil, err
	}
	bin, err := embedpg.Resolve(ctx, os.Getenv("PAYMENTS_POSTGRES_BIN"), cache, nil, log)
	if err != nil {
		if testdb.DockerReachable() {
			fmt.Fprintln(os.Stderr, "testenv: no PostgreSQL binaries; the tests start PostgreSQL containers through Docker")
			return "", nil, nil
		}
		return "", nil, fmt.Errorf("no PostgreSQL for the tests: %v.\n"+
			"Install PostgreSQL (Debian/Ubuntu: apt install postgresql; macOS: brew install postgresql@15), "+
			"set PAYMENTS_POSTGRES_BIN to its bin directory, or set TEST_DATABASE_URL to a server", err)
	}
	dir, err := os.MkdirTemp("", "payments-test-pg-")
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // reachable by the server's user under root
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	srv, err := embedpg.Start(embedpg.Config{
		DataDir:   filepath.Join(dir, "data"),
		BinDir:    bin,
		TCPPort:   port,
		Ephemeral: true,
		// Several test packages run at once, each with its own databases
		// and pools.
		Settings: map[string]string{"max_connections": "300"},
		Log:      log,
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("start the tests' PostgreSQL: %w", err)
	}
	fmt.Fprintf(os.Stderr, "testenv: PostgreSQL %s for this run on 127.0.0.1:%d (binaries %s)\n", srv.Version(), port, bin)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
		os.RemoveAll(dir)
	}
	return srv.TCPURL("postgres"), stop, nil
}

// startRedis starts a redis-server from the PATH on a free port, or else
// an in-process one.
func startRedis() (string, func(), error) {
	if path, err := exec.LookPath("redis-server"); err == nil {
		url, stop, err := startRedisServer(path)
		if err == nil {
			return url, stop, nil
		}
		fmt.Fprintf(os.Stderr, "testenv: %v; using an in-process Redis instead\n", err)
	} else {
		fmt.Fprintln(os.Stderr, "testenv: TEST_REDIS_URL is unset and redis-server is not on the PATH: "+
			"the tests use an in-process Redis (miniredis); install redis-server to test against the real one")
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, fmt.Errorf("in-process Redis: %w", err)
	}
	return "redis://" + m.Addr() + "/0", m.Close, nil
}

func startRedisServer(path string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--loglevel", "warning")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if redisAnswers(addr) {
			fmt.Fprintf(os.Stderr, "testenv: redis-server for this run on %s\n", addr)
			return "redis://" + addr + "/0", stop, nil
		}
		select {
		case <-exited:
			return "", nil, errors.New("redis-server exited at start")
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("redis-server did not answer within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func redisAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// run runs the command with env added and returns its exit status. A
// terminal's Ctrl-C reaches the command directly (same process group);
// SIGTERM sent to testenv is passed on.
func run(args, env []string) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 2
	}
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGTERM {
				_ = cmd.Process.Signal(sig)
			}
		}
	}()
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
