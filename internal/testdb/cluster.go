package testdb

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Cluster is a private PostgreSQL server that one test owns and may stop
// and start, to see what the service does while its database is down. It
// runs the machine's own PostgreSQL binaries (initdb, pg_ctl) on a free
// loopback port with its data in a temporary directory, so the shared test
// server is never touched. PostgreSQL refuses to run as root: under root the
// binaries run as the unprivileged "postgres" user (else "nobody") through
// runuser, and the directory is handed to that user.
//
// A Cluster is not safe for concurrent Stop and Start calls.
type Cluster struct {
	bin   string // directory of initdb and pg_ctl
	dir   string // temporary directory: data/, the socket, the log
	port  int
	runAs string // user to run the binaries as; "" means the current user
}

// NewCluster creates and starts a private cluster with a trusted superuser
// "postgres" and removes it when the test ends. When the PostgreSQL binaries
// cannot be found the test is skipped with a message that says so, except
// under CI=true, where it fails.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testdb: private PostgreSQL cluster needed under CI: %v", err)
		}
		t.Skipf("testdb: no PostgreSQL binaries for a private cluster (%v); install postgresql (initdb, pg_ctl) to run this test", err)
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		c.runAs, err = unprivilegedUser()
		if err != nil {
			t.Fatalf("testdb: running as root and %v", err)
		}
	}
	c.dir, err = os.MkdirTemp("", "testdb-cluster-")
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		// Immediate: nothing of this cluster needs to survive, and the test
		// may have left it stopped already (pg_ctl then just fails).
		_ = c.pgctl("stop", "-m", "immediate", "-w")
		if err := os.RemoveAll(c.dir); err != nil {
			t.Logf("testdb: remove %s: %v", c.dir, err)
		}
	})
	if c.runAs != "" {
		if err := chownTo(c.dir, c.runAs); err != nil {
			t.Fatalf("testdb: hand %s to %s: %v", c.dir, c.runAs, err)
		}
	}
	c.port = freeLoopbackPort(t)
	out, err := c.command(filepath.Join(bin, "initdb"), "-D", c.dataDir(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-sync", "--no-instructions").CombinedOutput()
	if err != nil {
		t.Fatalf("testdb: initdb: %v\n%s", err, out)
	}
	c.Start(t)
	return c
}

// URL returns the URL of database name on the cluster (superuser
// postgres, no password, no TLS).
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// NewDatabase creates a fresh database on the cluster, applies every
// migration and returns its URL (see New). It goes with the cluster, which
// may be stopped when the test ends, so it is not dropped on its own.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	return newOn(t, c.URL("postgres"), false)
}

// Stop stops the server at once, like a crash (pg_ctl stop -m immediate):
// open connections are cut and new ones are refused until Start.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if err := c.pgctl("stop", "-m", "immediate", "-w", "-t", "60"); err != nil {
		t.Fatalf("testdb: stop cluster: %v\n%s", err, c.log())
	}
}

// Start starts the server and waits until it accepts connections (after a
// Stop that includes crash recovery).
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c max_connections=40 -c shared_buffers=16MB",
		c.port, c.dir)
	if err := c.pgctl("start", "-w", "-t", "120", "-l", filepath.Join(c.dir, "server.log"), "-o", opts); err != nil {
		t.Fatalf("testdb: start cluster: %v\n%s", err, c.log())
	}
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) pgctl(args ...string) error {
	args = append([]string{"-D", c.dataDir()}, args...)
	out, err := c.command(filepath.Join(c.bin, "pg_ctl"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", args[2], err, strings.TrimSpace(string(out)))
	}
	return nil
}

// command runs name as the cluster's user, in the cluster's directory (the
// test's own directory may not be readable by that user).
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.runAs, "--", name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	return cmd
}

func (c *Cluster) log() string {
	b, err := os.ReadFile(filepath.Join(c.dir, "server.log"))
	if err != nil {
		return "(no server log)"
	}
	return tailOf(string(b), 4000)
}

// postgresBin finds a directory holding initdb and pg_ctl: the newest
// /usr/lib/postgresql/<version>/bin (Debian and Ubuntu), else the PATH.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		return "", fmt.Errorf("initdb is neither in /usr/lib/postgresql/*/bin nor on the PATH")
	}
	d := filepath.Dir(initdb)
	if !isExecutable(filepath.Join(d, "pg_ctl")) {
		return "", fmt.Errorf("no pg_ctl next to %s", initdb)
	}
	return d, nil
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// unprivilegedUser returns a user that PostgreSQL agrees to run as when the
// test runs as root, and checks that runuser is there to switch to it.
func unprivilegedUser() (string, error) {
	if _, err := exec.LookPath("runuser"); err != nil {
		return "", fmt.Errorf("runuser is missing (PostgreSQL refuses to run as root)")
	}
	for _, name := range []string{"postgres", "nobody"} {
		if _, err := user.Lookup(name); err == nil {
			return name, nil
		}
	}
	return "", fmt.Errorf("neither a postgres nor a nobody user exists to run PostgreSQL as")
}

func chownTo(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
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

func tailOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
