package testdb

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/obpay/payments/internal/embedpg"
)

// Cluster is a private PostgreSQL server that one test owns and may stop
// and start, to see what the service does while its database is down. It
// runs the machine's own PostgreSQL binaries on a free loopback port with
// its data in a temporary directory, so the shared test server is never
// touched (under root, as an unprivileged user: see package embedpg).
//
// A Cluster is not safe for concurrent Stop and Start calls.
type Cluster struct {
	cfg embedpg.Config
	srv *embedpg.Server // nil while stopped
}

// NewCluster creates and starts a private cluster with a trusted superuser
// "postgres" and removes it when the test ends. When the PostgreSQL binaries
// cannot be found the test is skipped with a message that says so, except
// under CI=true, where it fails.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := embedpg.FindLocal()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testdb: private PostgreSQL cluster needed under CI: %v", err)
		}
		t.Skipf("testdb: no PostgreSQL binaries for a private cluster (%v); install PostgreSQL to run this test", err)
	}
	dir, err := os.MkdirTemp("", "testdb-cluster-")
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // the server's user must reach it under root
		t.Fatalf("testdb: %v", err)
	}
	c := &Cluster{cfg: embedpg.Config{
		DataDir:   filepath.Join(dir, "data"),
		BinDir:    bin,
		TCPPort:   freeLoopbackPort(t),
		Ephemeral: true,
		Settings:  map[string]string{"max_connections": "40", "shared_buffers": "16MB"},
	}}
	t.Cleanup(func() {
		// Nothing of this cluster needs to survive, and the test may have
		// stopped it already.
		if c.srv != nil {
			c.srv.Crash()
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("testdb: remove %s: %v", dir, err)
		}
	})
	c.Start(t)
	return c
}

// URL returns the URL of database name on the cluster (superuser
// postgres, no password, no TLS).
func (c *Cluster) URL(name string) string {
	return embedpg.LoopbackURL(c.cfg.TCPPort, name)
}

// NewDatabase creates a fresh database on the cluster, applies every
// migration and returns its URL (see New). It goes with the cluster, which
// may be stopped when the test ends, so it is not dropped on its own.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	return newOn(t, c.URL("postgres"), false)
}

// Stop stops the server at once, like a crash (PostgreSQL's immediate
// shutdown): open connections are cut and new ones are refused until Start.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if c.srv == nil {
		t.Fatal("testdb: cluster already stopped")
	}
	c.srv.Crash()
	c.srv = nil
}

// Start starts the server and waits until it accepts connections (after a
// Stop, that includes crash recovery).
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	srv, err := embedpg.Start(c.cfg)
	if err != nil {
		t.Fatalf("testdb: start cluster: %v", err)
	}
	c.srv = srv
}

func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testdb: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
