package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/obpay/payments/internal/pgbench"
)

// child is a server process the tool started: payments or the floor. Its
// output goes to a temporary file, as a server's log would in production:
// through a pipe, the tool would spend its own CPU (the client's, during the
// measured windows) copying every access-log line.
type child struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// tailSize is how much of a child's log an error message shows.
const tailSize = 8 << 10

// tail returns the last tailSize bytes of the child's log.
func (c *child) tail() string {
	st, err := c.log.Stat()
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	off := max(st.Size()-tailSize, 0)
	b := make([]byte, st.Size()-off)
	n, err := c.log.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return string(b[:n])
}

// startChild runs path with args and extra environment entries and waits
// until GET healthURL answers 200.
func startChild(ctx context.Context, name, path string, args, env []string, healthURL string) (*child, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	log, err := os.CreateTemp("", "loadgen-child-*.log")
	if err != nil {
		return nil, fmt.Errorf("log file for %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: log, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		c.removeLog()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { c.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, healthURL, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		select {
		case err := <-c.done:
			c.done <- err
			defer c.removeLog()
			return nil, fmt.Errorf("%s exited early (%v):\n%s", name, err, c.tail())
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tail := c.tail()
			c.stop()
			return nil, fmt.Errorf("%s did not become healthy within 60s:\n%s", name, tail)
		}
	}
}

// removeLog closes and deletes the child's log file.
func (c *child) removeLog() {
	c.log.Close()
	os.Remove(c.log.Name())
}

// stop sends SIGTERM and waits up to 20 s, then kills the process; its log
// file is deleted.
func (c *child) stop() error {
	if c == nil {
		return nil
	}
	defer c.removeLog()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			return fmt.Errorf("%s exit: %w", c.name, err)
		}
		return nil
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		return fmt.Errorf("%s did not stop within 20s after SIGTERM", c.name)
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// scratchDB creates the database name on the server of serverURL (dropping
// a leftover one first) and returns its URL and a function that drops it.
func scratchDB(ctx context.Context, admin *sql.DB, serverURL, name string) (string, func() error, error) {
	if err := pgbench.DropDatabase(ctx, admin, name); err != nil {
		return "", nil, fmt.Errorf("drop old scratch database %s: %w", name, err)
	}
	if err := pgbench.CreateDatabase(ctx, admin, name); err != nil {
		return "", nil, fmt.Errorf("create scratch database %s: %w", name, err)
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() error {
		return pgbench.DropDatabase(context.Background(), admin, name)
	}
	return u.String(), drop, nil
}
