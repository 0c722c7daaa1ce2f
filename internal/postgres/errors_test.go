package postgres_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	gormpostgres "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/obpay/payments/internal/ledger"
	"github.com/obpay/payments/internal/models"
	"github.com/obpay/payments/internal/postgres"
	"github.com/obpay/payments/internal/testdb"
)

// timeoutError is a net.Error that timed out, as a dial or read deadline
// reports it.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// refusedConnect returns the error pgconn gives for a server that refuses
// the connection.
func refusedConnect(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, "postgres://postgres@"+closedPort(t)+"/postgres?sslmode=disable&connect_timeout=5")
	if err == nil {
		conn.Close(ctx)
		t.Fatal("connect to a closed port succeeded")
	}
	return err
}

func TestIsUnavailable(t *testing.T) {
	refused := refusedConnect(t)
	var connectErr *pgconn.ConnectError
	if !errors.As(refused, &connectErr) {
		t.Fatalf("connect to a closed port = %T %v, want a *pgconn.ConnectError", refused, refused)
	}
	inner, cancelInner := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancelInner()
	<-inner.Done()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused while connecting", refused, true},
		{"connection refused as a syscall error", fmt.Errorf("dial: %w", os.NewSyscallError("connect", syscall.ECONNREFUSED)), true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"connection reset bare", fmt.Errorf("write: %w", syscall.ECONNRESET), true},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true},
		{"EOF", fmt.Errorf("receive message: %w", io.EOF), true},
		{"unexpected EOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"bad connection", driver.ErrBadConn, true},
		{"network timeout", fmt.Errorf("dial: %w", timeoutError{}), true},
		{"connect timeout of an inner context", fmt.Errorf("connect: %w", inner.Err()), true},
		{"57P03 cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"57P01 admin shutdown", fmt.Errorf("query: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"57P02 crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"08006 connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"08001 cannot establish", &pgconn.PgError{Code: "08001"}, true},
		{"already classified", fmt.Errorf("again: %w", ledger.ErrUnavailable), true},

		{"nil", nil, false},
		{"a bug", errors.New("scan: unsupported type"), false},
		{"undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, false},
		{"bad password", &pgconn.PgError{Code: "28P01"}, false},
		{"query cancelled by the server", &pgconn.PgError{Code: "57014"}, false},
		{"storage error", ledger.ErrStorage, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := postgres.IsUnavailable(context.Background(), tc.err); got != tc.want {
				t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestIsUnavailableNotForOwnContext: a request whose own context was
// cancelled or expired is not an outage, even though the driver reports the
// cut-off I/O as a network error or a timeout.
func TestIsUnavailableNotForOwnContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancelExpired := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancelExpired()
	<-expired.Done()
	errs := []error{
		&net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}},
		fmt.Errorf("write: %w", syscall.ECONNRESET),
		context.Canceled,
		context.DeadlineExceeded,
		io.ErrUnexpectedEOF,
	}
	for name, ctx := range map[string]context.Context{"cancelled": cancelled, "expired": expired} {
		for _, err := range errs {
			if postgres.IsUnavailable(ctx, err) {
				t.Errorf("IsUnavailable(%s ctx, %v) = true, want false", name, err)
			}
			got := postgres.Translate(ctx, err)
			if errors.Is(got, ledger.ErrUnavailable) || !errors.Is(got, ctx.Err()) {
				t.Errorf("translate(%s ctx, %v) = %v, want the context's error", name, err, got)
			}
		}
	}
}

func TestTranslateUnavailable(t *testing.T) {
	ctx := context.Background()
	if err := postgres.Translate(ctx, refusedConnect(t)); !errors.Is(err, ledger.ErrUnavailable) || errors.Is(err, ledger.ErrStorage) {
		t.Errorf("translate(connection refused) = %v, want ErrUnavailable", err)
	}
	if err := postgres.Translate(ctx, &pgconn.PgError{Code: "57P01"}); !errors.Is(err, ledger.ErrUnavailable) {
		t.Errorf("translate(57P01) = %v, want ErrUnavailable", err)
	}
	if err := postgres.Translate(ctx, errors.New("bug")); !errors.Is(err, ledger.ErrStorage) || errors.Is(err, ledger.ErrUnavailable) {
		t.Errorf("translate(bug) = %v, want ErrStorage", err)
	}
}

// TestLedgerUnavailableWhenTheDatabaseIsDown triggers ErrUnavailable from the
// exported entry points: against a server that refuses connections, and
// against a real server stopped under an open pool and started again.
func TestLedgerUnavailableWhenTheDatabaseIsDown(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T, dsn string) *postgres.Ledger {
		t.Helper()
		db, err := gorm.Open(gormpostgres.Open(dsn), &gorm.Config{Logger: logger.Discard, DisableAutomaticPing: true})
		if err != nil {
			t.Fatal(err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sqlDB.Close() })
		l, err := postgres.NewLedger(db)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	t.Run("connection refused", func(t *testing.T) {
		l := open(t, "postgres://postgres@"+closedPort(t)+"/postgres?sslmode=disable")
		if _, err := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "alice", Currency: "GBP"}); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("OpenAccount = %v, want ErrUnavailable", err)
		}
		if _, err := l.Reconcile(ctx); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Reconcile = %v, want ErrUnavailable", err)
		}
	})
	t.Run("server stopped and started", func(t *testing.T) {
		cluster := testdb.NewCluster(t)
		l := open(t, cluster.NewDatabase(t))
		alice, err := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "alice", Currency: "GBP", Opening: &models.Amount{Minor: 1000, Currency: "GBP"}})
		if err != nil {
			t.Fatal(err)
		}
		cluster.Stop(t)
		if _, err := l.Balance(ctx, alice.ID); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Balance with the server stopped = %v, want ErrUnavailable", err)
		}
		if _, err := l.OpenAccount(ctx, ledger.OpenAccountParams{Owner: "bob", Currency: "GBP"}); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("OpenAccount with the server stopped = %v, want ErrUnavailable", err)
		}
		cluster.Start(t)
		bal, err := l.Balance(ctx, alice.ID)
		if err != nil || bal.Minor != 1000 {
			t.Errorf("Balance after restart = %v, %v, want 10.00", bal, err)
		}
		rep, err := l.Reconcile(ctx)
		if err != nil || !rep.Balanced || len(rep.Drift) != 0 {
			t.Errorf("Reconcile after restart = %+v, %v, want balanced", rep, err)
		}
	})
}

func ExampleIsUnavailable() {
	// A database that refuses connections is an outage: answer 503 and
	// let the client retry. The same error under a cancelled request is not.
	err := fmt.Errorf("connect: %w", syscall.ECONNREFUSED)
	fmt.Println(postgres.IsUnavailable(context.Background(), err))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fmt.Println(postgres.IsUnavailable(ctx, err))
	// Output:
	// true
	// false
}
