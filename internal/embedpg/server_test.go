//go:build unix

package embedpg

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// localBinaries returns the machine's PostgreSQL binaries; without them the
// test is skipped, except under CI, where they are required.
func localBinaries(t *testing.T) string {
	t.Helper()
	dir, err := FindLocal()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL binaries are required under CI: %v", err)
		}
		t.Skipf("no local PostgreSQL (%v): install PostgreSQL to run this test", err)
	}
	return dir
}

// reachableDir returns an empty temporary directory that the server's
// user may reach when the test runs as root (temporary directories are made
// 0700).
func reachableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testConfig(t *testing.T, bin string) Config {
	return Config{
		DataDir:   filepath.Join(reachableDir(t), "data"),
		BinDir:    bin,
		Ephemeral: true,
		Settings:  map[string]string{"max_connections": "20", "shared_buffers": "16MB"},
		Log:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

func exec1(t *testing.T, url, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var out string
	if !strings.HasPrefix(sql, "SELECT") {
		_, err = conn.Exec(ctx, sql)
	} else {
		err = conn.QueryRow(ctx, sql).Scan(&out)
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func TestDataSurvivesRestart(t *testing.T) {
	cfg := testConfig(t, localBinaries(t))
	cfg.Ephemeral = false // the point is durability
	s := start(t, cfg)
	exec1(t, s.URL("postgres"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
	pid := s.cmd.Process.Pid
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if processAlive(pid) {
		t.Fatalf("postgres (pid %d) still runs after Stop", pid)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, clusterDir, "postmaster.pid")); !os.IsNotExist(err) {
		t.Fatalf("postmaster.pid after a clean stop: %v", err)
	}
	s2 := start(t, cfg)
	if got := exec1(t, s2.URL("postgres"), "SELECT v FROM kept"); got != "still here" {
		t.Fatalf("after restart: %q", got)
	}
	if os.Geteuid() == 0 {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(cfg.DataDir, clusterDir), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid == 0 {
			t.Fatal("the cluster belongs to root; it must belong to the unprivileged user the server runs as")
		}
	}
}

func TestSecondStartRefused(t *testing.T) {
	cfg := testConfig(t, localBinaries(t))
	start(t, cfg)
	_, err := Start(cfg)
	if err == nil || !strings.Contains(err.Error(), "in use by another process (pid "+strconv.Itoa(os.Getpid())+")") {
		t.Fatalf("second Start on one directory: %v", err)
	}
}

func TestUnreachableDataDirRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only a root caller runs the server as another user")
	}
	bin := localBinaries(t)
	private := t.TempDir() // 0700, owned by root
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, bin)
	cfg.DataDir = filepath.Join(private, "data")
	done := make(chan error, 1)
	go func() { _, err := Start(cfg); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Start succeeded in a directory the server's user cannot reach")
		}
		for _, want := range []string{cfg.DataDir, "cannot reach " + private, "chmod o+x " + private, "DATABASE_URL"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Start hangs on an unreachable directory")
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("the refused start left %s behind", cfg.DataDir)
	}
}

func TestClusterOfAnotherVersionRefused(t *testing.T) {
	cfg := testConfig(t, localBinaries(t))
	s := start(t, cfg)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, clusterDir, "PG_VERSION"), []byte("9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(cfg)
	if err == nil || !strings.Contains(err.Error(), "made by PostgreSQL 9") || !strings.Contains(err.Error(), "PAYMENTS_POSTGRES_BIN") {
		t.Fatalf("Start on a cluster of another version: %v", err)
	}
}

// A server whose caller lost it (the caller was killed before Stop) is
// stopped by the next Start, which then runs its own.
func TestServerLeftRunningIsStopped(t *testing.T) {
	cfg := testConfig(t, localBinaries(t))
	s := start(t, cfg)
	old := s.cmd.Process.Pid
	s.release() // as if the caller had died: the lock is gone, the server runs
	s2 := start(t, cfg)
	if processAlive(old) && servesDir(old, s2.pgdata) == yes {
		t.Fatalf("the earlier server (pid %d) still runs", old)
	}
	if got := exec1(t, s2.URL("postgres"), "SELECT 'up'"); got != "up" {
		t.Fatal(got)
	}
	<-s.done
}

// A killed caller takes its server down with it (Linux: parent-death
// signal), and the next Start recovers the directory.
func TestKilledCallerLeavesNoServer(t *testing.T) {
	if os.Getenv("EMBEDPG_CHILD_DIR") != "" {
		runChild()
		return
	}
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs /proc")
	}
	cfg := testConfig(t, localBinaries(t))
	child := exec.Command(os.Args[0], "-test.run=^TestKilledCallerLeavesNoServer$")
	child.Env = append(os.Environ(), "EMBEDPG_CHILD_DIR="+cfg.DataDir, "EMBEDPG_CHILD_BIN="+cfg.BinDir)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		_ = child.Process.Kill()
		t.Fatalf("child did not report its server: %v", err)
	}
	_ = child.Process.Kill() // SIGKILL: no chance to stop the server
	_ = child.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGQUIT)
			t.Fatalf("postgres (pid %d) outlived its killed caller by 30s", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := start(t, cfg)
	if got := exec1(t, s.URL("postgres"), "SELECT 'recovered'"); got != "recovered" {
		t.Fatal(got)
	}
}

func runChild() {
	s, err := Start(Config{DataDir: os.Getenv("EMBEDPG_CHILD_DIR"), BinDir: os.Getenv("EMBEDPG_CHILD_BIN"), Ephemeral: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s.cmd.Process.Pid)
	select {}
}

func TestFindLocalFindsInitdbAndPostgres(t *testing.T) {
	dir := localBinaries(t)
	if err := CheckBinaries(dir); err != nil {
		t.Fatal(err)
	}
	v, err := MajorVersion(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := strconv.Atoi(v); err != nil || n < 13 {
		t.Fatalf("major version %q", v)
	}
}

// A data directory that root made (0755, root's) still works: the server's
// user gets its own subdirectories.
func TestDataDirMadeByRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only a root caller runs the server as another user")
	}
	cfg := testConfig(t, localBinaries(t))
	if err := os.Mkdir(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := start(t, cfg)
	if got := exec1(t, s.URL("postgres"), "SELECT 'ok'"); got != "ok" {
		t.Fatal(got)
	}
}
