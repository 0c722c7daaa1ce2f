// Package testdb gives tests their own fresh, migrated PostgreSQL database and
// a Redis URL.
//
// The server comes from TEST_DATABASE_URL. `make test` sets it: to the
// machine's server when the caller set it (CI), else to an embedded
// PostgreSQL that cmd/testenv starts for the whole run. When it is unset (a
// plain `go test`) and a Docker engine is reachable, one Postgres container
// is started per test binary with testcontainers-go. Otherwise the test
// fails with a message that says how to provide a database: tests never skip
// because a database is missing.
//
// NewCluster gives a test a private PostgreSQL server of its own that it may
// stop and start (database outages); it needs the PostgreSQL binaries and is
// the one helper that skips without them (outside CI).
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"
	gormpostgres "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/obpay/payments/internal/postgres"
)

const howTo = "run the tests with `make test` (it starts a PostgreSQL for the run), " +
	"set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), " +
	"or make a Docker engine reachable for testcontainers"

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error

	redisOnce sync.Once
	redisURL  string
	redisErr  error
)

// ServerURL returns the URL of the Postgres server the tests use (any database
// on it; New creates the per-test databases). It fails the test when there is
// none.
func ServerURL(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() {
		if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
			serverURL = u
			return
		}
		if !DockerReachable() {
			serverErr = fmt.Errorf("no test database: %s", howTo)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c, err := tcpostgres.Run(ctx, "postgres:16-alpine",
			tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("postgres"),
			tcpostgres.BasicWaitStrategies())
		if err != nil {
			serverErr = fmt.Errorf("start postgres container: %w (%s)", err, howTo)
			return
		}
		serverURL, serverErr = c.ConnectionString(ctx, "sslmode=disable")
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return serverURL
}

// New creates a fresh database on the test server, applies every migration and
// returns its URL. The database is dropped when the test ends.
func New(t testing.TB) string {
	t.Helper()
	return newOn(t, ServerURL(t), true)
}

// NewEmpty creates a fresh database on the test server without applying the
// migrations (for tests of migrating itself) and returns its URL. The
// database is dropped when the test ends.
func NewEmpty(t testing.TB) string {
	t.Helper()
	return create(t, ServerURL(t), true)
}

// newOn creates a fresh, migrated database on the server of base (a URL of
// any database there), dropped when the test ends if drop is set.
func newOn(t testing.TB, base string, drop bool) string {
	t.Helper()
	dsn := create(t, base, drop)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("testdb: open %s: %v", redact(dsn), err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postgres.MigrateUp(ctx, db, nil); err != nil {
		t.Fatalf("testdb: migrate %s: %v", redact(dsn), err)
	}
	return dsn
}

// create creates a fresh, empty database on the server of base, dropped when
// the test ends if drop is set, and returns its URL.
func create(t testing.TB, base string, drop bool) string {
	t.Helper()
	name := "t_" + randomHex(8)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("testdb: open %s: %v", redact(base), err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testdb: create database on %s: %v (%s)", redact(base), err, howTo)
	}
	dsn := WithDatabase(t, base, name)
	t.Cleanup(func() {
		if !drop {
			return
		}
		a, err := sql.Open("pgx", base)
		if err != nil {
			t.Errorf("testdb: reopen admin: %v", err)
			return
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := a.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
	return dsn
}

// Open returns a gorm handle on a fresh, migrated database (see New). The
// handle is closed when the test ends.
func Open(t testing.TB) *gorm.DB {
	t.Helper()
	dsn := New(t)
	db, err := gorm.Open(gormpostgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("testdb: gorm open: %v", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	sqlDB.SetMaxOpenConns(32) // several test packages share one server (max_connections is often 100)
	t.Cleanup(func() { _ = sqlDB.Close() })
	return db
}

// WithDatabase returns base with its database name replaced by name.
func WithDatabase(t testing.TB, base, name string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testdb: TEST_DATABASE_URL is not a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// RedisURL returns a Redis URL for tests: TEST_REDIS_URL when set, else a
// container when a Docker engine is reachable, else the test fails.
func RedisURL(t testing.TB) string {
	t.Helper()
	redisOnce.Do(func() {
		if u := os.Getenv("TEST_REDIS_URL"); u != "" {
			redisURL = u
			return
		}
		if !DockerReachable() {
			redisErr = fmt.Errorf("no test redis: run the tests with `make test` (it provides one), set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0), or make a Docker engine reachable")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
			ContainerRequest: testcontainers.ContainerRequest{
				Image:        "redis:7-alpine",
				ExposedPorts: []string{"6379/tcp"},
				WaitingFor:   wait.ForListeningPort("6379/tcp"),
			},
			Started: true,
		})
		if err != nil {
			redisErr = fmt.Errorf("start redis container: %w", err)
			return
		}
		ep, err := c.PortEndpoint(ctx, "6379/tcp", "redis")
		redisURL, redisErr = ep+"/0", err
	})
	if redisErr != nil {
		t.Fatal(redisErr)
	}
	return redisURL
}

// DockerReachable reports whether a Docker engine answers, so that
// testcontainers can start containers.
func DockerReachable() (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return false
	}
	defer p.Close()
	return p.Health(ctx) == nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return strings.TrimSpace(u.String())
}
