//go:build unix

package embedpg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config says where a server keeps its files and how it is reached.
type Config struct {
	// DataDir holds everything of the server. It is created when missing.
	DataDir string
	// BinDir holds initdb and postgres.
	BinDir string
	// TCPPort, when not zero, has the server listen on 127.0.0.1:TCPPort
	// besides its Unix socket. Local connections are trusted, so only
	// tests ask for it.
	TCPPort int
	// Settings are server settings passed as -c name=value.
	Settings map[string]string
	// Ephemeral trades durability for speed (no fsync): for data that need
	// not survive a crash of the machine, such as tests'. A crash of the
	// server alone still loses no committed transaction.
	Ephemeral bool
	// StartTimeout bounds initdb plus the start (crash recovery included);
	// zero means two minutes.
	StartTimeout time.Duration
	// Log receives lifecycle lines and the server's warnings and errors
	// (its routine messages at debug level); nil discards them.
	Log *slog.Logger
}

// Server is a running PostgreSQL server started by Start.
type Server struct {
	cfg     Config
	acct    *account
	pgdata  string
	sockDir string
	tempDir bool // sockDir was made in the temporary directory
	version string
	lock    *os.File
	cmd     *exec.Cmd
	tail    *lineTail
	done    chan struct{} // closed when the process has exited
	exitErr error
	stopped sync.Once
	// loud is set while the server runs for its callers: between its
	// first accepted connection and Stop. Outside it, its messages are
	// about starting and stopping and are logged at debug.
	loud atomic.Bool
}

const (
	clusterDir  = "postgres"
	socketDir   = "run"
	lockFile    = "lock"
	socketPort  = 5432
	maxSockPath = 100 // sun_path holds 104 to 108 bytes depending on the system
)

// Start starts the server in cfg.DataDir, creating the cluster on first use,
// and returns once it accepts connections. It refuses, with a message that
// says what to do, when another process uses the directory, when the user
// the server runs as cannot reach it, or when the cluster was made by
// another major version than the binaries'.
func Start(cfg Config) (*Server, error) {
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 2 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %q: %w", cfg.DataDir, err)
	}
	cfg.DataDir = dir
	if err := CheckBinaries(cfg.BinDir); err != nil {
		return nil, err
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, acct: acct, pgdata: filepath.Join(dir, clusterDir), tail: newLineTail(40), done: make(chan struct{})}
	if err := s.prepareDirs(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.release()
		}
	}()
	if s.version, err = MajorVersion(cfg.BinDir); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StartTimeout)
	defer cancel()
	if err := s.initCluster(ctx); err != nil {
		return nil, err
	}
	if err := s.clearStaleServer(); err != nil {
		return nil, err
	}
	if err := s.launch(); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		s.kill()
		return nil, err
	}
	ok = true
	s.loud.Store(true)
	cfg.Log.Info("embedded PostgreSQL ready", "data_dir", dir, "version", s.version, "binaries", cfg.BinDir, "socket_dir", s.sockDir)
	return s, nil
}

// prepareDirs creates the data directory, checks the server's user can
// reach it, takes the lock and makes the socket directory.
func (s *Server) prepareDirs() error {
	dir := s.cfg.DataDir
	if block, fi := s.acct.unreachable(filepath.Dir(dir)); block != "" {
		return s.acct.reachError("data directory", dir, block, fi)
	}
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if os.IsNotExist(statErr) {
		if err := s.acct.own(dir); err != nil {
			return fmt.Errorf("data directory %s: hand it to %s: %w", dir, s.acct, err)
		}
	}
	if block, fi := s.acct.unreachable(dir); block != "" {
		return s.acct.reachError("data directory", dir, block, fi)
	}
	if block, fi := s.acct.unreachable(s.cfg.BinDir); block != "" {
		return s.acct.reachError("PostgreSQL binaries in", s.cfg.BinDir, block, fi)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(lock, 32))
		lock.Close()
		return fmt.Errorf("data directory %s is in use by another process (pid %s): stop it, or choose another data directory",
			dir, strings.TrimSpace(string(holder)))
	}
	_ = lock.Truncate(0)
	_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lock = lock

	s.sockDir = filepath.Join(dir, socketDir)
	if len(s.sockDir)+len("/.s.PGSQL.")+5 > maxSockPath {
		// The socket's path would not fit: use a short private directory.
		if s.sockDir, err = os.MkdirTemp("", "payments-pg-"); err != nil {
			return fmt.Errorf("socket directory: %w", err)
		}
		s.tempDir = true
	} else if err := os.Mkdir(s.sockDir, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("socket directory %s: %w", s.sockDir, err)
	}
	if err := s.acct.own(s.sockDir); err != nil {
		return fmt.Errorf("socket directory %s: %w", s.sockDir, err)
	}
	return os.Chmod(s.sockDir, 0o700)
}

// initCluster runs initdb when the cluster does not exist yet. It works in a
// scratch directory renamed into place at the end, so an interrupted initdb
// leaves nothing that looks like a cluster.
func (s *Server) initCluster(ctx context.Context) error {
	if fi, err := os.Stat(s.pgdata); err == nil && fi.IsDir() {
		return s.checkClusterVersion()
	}
	scratch := s.pgdata + ".init"
	if err := os.RemoveAll(scratch); err != nil {
		return fmt.Errorf("remove an unfinished cluster: %w", err)
	}
	// Made here and handed over, so the server's user needs no right to
	// write in a data directory that someone else created.
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if err := s.acct.own(scratch); err != nil {
		return fmt.Errorf("initdb: hand %s to %s: %w", scratch, s.acct, err)
	}
	args := []string{"-D", scratch, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions"}
	if s.cfg.Ephemeral {
		args = append(args, "--no-sync")
	}
	cmd := s.command(ctx, filepath.Join(s.cfg.BinDir, "initdb"), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(scratch)
		return fmt.Errorf("initdb in %s: %w\n%s", s.cfg.DataDir, err, truncate(strings.TrimSpace(string(out)), 4000))
	}
	if err := os.Rename(scratch, s.pgdata); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	s.cfg.Log.Info("embedded PostgreSQL cluster created", "data_dir", s.cfg.DataDir, "version", s.version)
	return nil
}

func (s *Server) checkClusterVersion() error {
	b, err := os.ReadFile(filepath.Join(s.pgdata, "PG_VERSION"))
	if err != nil {
		return fmt.Errorf("%s is not a PostgreSQL cluster (%v): move it away to start a new one", s.pgdata, err)
	}
	if v := strings.TrimSpace(string(b)); v != s.version {
		return fmt.Errorf("the cluster in %s was made by PostgreSQL %s but the binaries in %s are PostgreSQL %s: "+
			"point PAYMENTS_POSTGRES_BIN at a PostgreSQL %s installation, or move %s away to start a new, empty one",
			s.pgdata, v, s.cfg.BinDir, s.version, v, s.cfg.DataDir)
	}
	return nil
}

// clearStaleServer deals with a postmaster.pid left by an earlier run. The
// lock is ours, so no live caller owns that server: if it still runs (its
// caller was killed), it is stopped; if the pid now belongs to another
// program, the file is removed so PostgreSQL does not mistake it for a
// server of its own.
func (s *Server) clearStaleServer() error {
	pidFile := filepath.Join(s.pgdata, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return os.Remove(pidFile)
	}
	if !processAlive(pid) {
		return nil // PostgreSQL removes a lock file of a dead process itself
	}
	switch servesDir(pid, s.pgdata) {
	case yes:
		s.cfg.Log.Warn("stopping an embedded PostgreSQL left running by an earlier run", "pid", pid, "data_dir", s.cfg.DataDir)
		return stopPid(pid, 30*time.Second)
	case no:
		return os.Remove(pidFile)
	default:
		return fmt.Errorf("%s names process %d, which is running: if it is not a PostgreSQL server of %s, remove the file and start again",
			pidFile, pid, s.cfg.DataDir)
	}
}

// launch starts postgres as a child process.
func (s *Server) launch() error {
	listen := ""
	port := socketPort
	if s.cfg.TCPPort != 0 {
		listen, port = "127.0.0.1", s.cfg.TCPPort
	}
	args := []string{"-D", s.pgdata, "-k", s.sockDir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=" + listen,
		"-c", "unix_socket_permissions=0700",
		"-c", "log_line_prefix=",
		"-c", "log_min_error_statement=panic", // statements may carry customer data
		"-c", "logging_collector=off",
	}
	if s.cfg.Ephemeral {
		// Writes still reach the operating system at each commit, so a
		// crash of the server (Crash) loses nothing; only a crash of the
		// machine would.
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off")
	}
	names := make([]string, 0, len(s.cfg.Settings))
	for k := range s.cfg.Settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "-c", k+"="+s.cfg.Settings[k])
	}
	// Not bound to a context: the server lives until Stop or Crash.
	cmd := s.command(context.Background(), filepath.Join(s.cfg.BinDir, "postgres"), args...)
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = nil
	s.cmd = cmd
	started := make(chan error, 1)
	go func() {
		// The parent-death signal is tied to the thread that started the
		// child: keep this goroutine on its thread until the child ends.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(s.done)
			return
		}
		started <- nil
		s.forwardLog(out)
		s.exitErr = cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	return nil
}

// waitReady returns once the server accepts connections: when the
// postmaster.pid of our child says "ready" (the status line PostgreSQL
// writes there, which pg_ctl waits for too).
func (s *Server) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.pidFileSaysReady() {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("embedded PostgreSQL exited while starting (%v); its last lines:\n%s", s.exitErr, s.tail.String())
		case <-ctx.Done():
			return fmt.Errorf("embedded PostgreSQL did not accept connections within %s; its last lines:\n%s", s.cfg.StartTimeout, s.tail.String())
		case <-tick.C:
		}
	}
}

// pidFileSaysReady reports whether postmaster.pid names our child and its
// status line (the eighth) is "ready".
func (s *Server) pidFileSaysReady() bool {
	b, err := os.ReadFile(filepath.Join(s.pgdata, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) >= 8 && strings.TrimSpace(lines[0]) == strconv.Itoa(s.cmd.Process.Pid) &&
		strings.TrimSpace(lines[7]) == "ready"
}

// URL returns the URL of database name on the server, through its socket.
func (s *Server) URL(name string) string {
	q := url.Values{"host": {s.sockDir}, "port": {strconv.Itoa(s.port())}, "sslmode": {"disable"}}
	return "postgres://postgres@/" + name + "?" + q.Encode()
}

// TCPURL returns the URL of database name through the loopback port
// (Config.TCPPort), or "" when the server has none.
func (s *Server) TCPURL(name string) string {
	if s.cfg.TCPPort == 0 {
		return ""
	}
	return LoopbackURL(s.cfg.TCPPort, name)
}

// LoopbackURL is the URL of database name on a server listening on
// 127.0.0.1:port (Config.TCPPort).
func LoopbackURL(port int, name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, name)
}

// DataDir returns the server's data directory (absolute).
func (s *Server) DataDir() string { return s.cfg.DataDir }

// Version returns the server's major version.
func (s *Server) Version() string { return s.version }

// SocketDir returns the directory of the server's Unix socket.
func (s *Server) SocketDir() string { return s.sockDir }

func (s *Server) port() int {
	if s.cfg.TCPPort != 0 {
		return s.cfg.TCPPort
	}
	return socketPort
}

// Stop shuts the server down cleanly (PostgreSQL's fast shutdown: sessions
// are ended, their transactions rolled back, and a checkpoint written),
// escalating to an immediate shutdown if that takes longer than ctx allows.
// It releases the data directory. Calling it again does nothing.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.stopped.Do(func() {
		defer s.release()
		err = s.signalAndWait(ctx, syscall.SIGINT)
		if err == nil {
			s.cfg.Log.Info("embedded PostgreSQL stopped", "data_dir", s.cfg.DataDir)
		}
	})
	return err
}

// Crash stops the server at once, as a crash would (immediate shutdown: the
// next start runs crash recovery), and releases the data directory. Tests
// use it to see what happens while the database is down.
func (s *Server) Crash() {
	s.stopped.Do(func() {
		defer s.release()
		s.kill()
	})
}

func (s *Server) kill() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.signalAndWait(ctx, syscall.SIGQUIT)
}

func (s *Server) signalAndWait(ctx context.Context, sig syscall.Signal) error {
	s.loud.Store(false)
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	if sig != syscall.SIGQUIT {
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	}
	select {
	case <-s.done:
		return fmt.Errorf("embedded PostgreSQL did not shut down in time and was stopped immediately")
	case <-time.After(10 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	return errors.New("embedded PostgreSQL did not shut down and was killed")
}

func (s *Server) release() {
	if s.tempDir {
		_ = os.RemoveAll(s.sockDir)
	}
	if s.lock != nil {
		_ = s.lock.Truncate(0)
		_ = s.lock.Close() // closing drops the flock
		s.lock = nil
	}
}

// command prepares a PostgreSQL program to run as the server's user, in the
// data directory, in its own process group (a terminal's Ctrl-C reaches the
// caller, which stops the server in order), with a fixed locale and zone.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.cfg.DataDir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.acct.credential()}
	setParentDeathSignal(cmd.SysProcAttr, syscall.SIGINT)
	return cmd
}

// forwardLog passes the server's log lines to the logger: while it serves,
// warnings and panics at their level; routine messages and the errors of a
// session (ERROR, FATAL: a missing database, a refused statement), which the
// service reports itself where they matter, at debug; while it starts or
// stops, everything at debug (Start reports a failed start with these
// lines). The last lines are kept for errors.
func (s *Server) forwardLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := truncate(sc.Text(), 1024)
		s.tail.add(line)
		level := slog.LevelDebug
		switch {
		case !s.loud.Load():
		case strings.HasPrefix(line, "WARNING:"):
			level = slog.LevelWarn
		case strings.HasPrefix(line, "PANIC:"):
			level = slog.LevelError
		}
		s.cfg.Log.Log(context.Background(), level, "postgres: "+line, "component", "embedded-postgres")
	}
	_, _ = io.Copy(io.Discard, r)
}

// lineTail keeps the last n lines written to it.
type lineTail struct {
	mu    sync.Mutex
	lines []string
	n     int
}

func newLineTail(n int) *lineTail { return &lineTail{n: n} }

func (t *lineTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == t.n {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:t.n-1]
	}
	t.lines = append(t.lines, line)
}

func (t *lineTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "(nothing)"
	}
	return strings.Join(t.lines, "\n")
}
