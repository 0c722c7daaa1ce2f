//go:build unix

package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/obpay/payments/internal/embedpg"
	"github.com/obpay/payments/internal/testdb"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestProvideStartsAPostgresAndARedisForTheRun(t *testing.T) {
	if _, err := embedpg.FindLocal(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("no local PostgreSQL: %v", err)
	}
	t.Setenv("TEST_DATABASE_URL", "")
	t.Setenv("TEST_REDIS_URL", "")
	env, cleanup, err := provide(discard())
	if err != nil {
		cleanup()
		t.Fatal(err)
	}
	vals := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	pg, redis := vals["TEST_DATABASE_URL"], vals["TEST_REDIS_URL"]
	if pg == "" || redis == "" {
		cleanup()
		t.Fatalf("env = %q", env)
	}
	if err := ping(pg); err != nil {
		cleanup()
		t.Fatalf("PostgreSQL at %s: %v", pg, err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(redis, "redis://"), "/0")
	if !redisAnswers(addr) {
		cleanup()
		t.Fatalf("Redis at %s does not answer", addr)
	}
	cleanup()
	if ping(pg) == nil {
		t.Error("PostgreSQL still answers after the run")
	}
	if redisAnswers(addr) {
		t.Error("Redis still answers after the run")
	}
}

func TestProvideKeepsTheServersItIsGiven(t *testing.T) {
	t.Setenv("TEST_DATABASE_URL", "postgres://db.example/postgres")
	t.Setenv("TEST_REDIS_URL", "redis://cache.example:6379/0")
	env, cleanup, err := provide(discard())
	defer cleanup()
	if err != nil || len(env) != 0 {
		t.Fatalf("env = %q, %v; want nothing added", env, err)
	}
}

func TestRedisWithoutRedisServerIsInProcess(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	url, stop, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if addr := strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0"); !redisAnswers(addr) {
		t.Fatalf("in-process Redis at %s does not answer", addr)
	}
}

func TestNoPostgresStopsTheRunWithWhatToInstall(t *testing.T) {
	if testdb.DockerReachable() {
		t.Skip("a Docker engine answers: the tests would use containers")
	}
	t.Setenv("PAYMENTS_POSTGRES_BIN", t.TempDir()) // holds no binaries
	_, _, err := startPostgres(discard())
	if err == nil {
		t.Fatal("started without binaries")
	}
	for _, want := range []string{"no PostgreSQL for the tests", "apt install postgresql", "brew install", "TEST_DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestRunPassesTheExitStatusAndEnvironment(t *testing.T) {
	if code := run([]string{"sh", "-c", `test "$EXTRA" = yes && exit 3`}, []string{"EXTRA=yes"}); code != 3 {
		t.Fatalf("exit status %d, want 3", code)
	}
	if code := run([]string{"true"}, nil); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
}

func ping(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.Ping(ctx)
}
