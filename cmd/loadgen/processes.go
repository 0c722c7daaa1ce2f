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
	"sync"
	"syscall"
	"time"

	"github.com/obpay/payments/internal/pgbench"
)

// child is a server process the tool started: payments or the floor.
type child struct {
	name string
	cmd  *exec.Cmd
	logs *tailBuffer
	done chan error
}

// tailBuffer keeps the last bytes a child wrote, for error messages; safe for
// concurrent use.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const tailSize = 8 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*tailSize {
		t.b = append([]byte(nil), t.b[len(t.b)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) > tailSize {
		return string(t.b[len(t.b)-tailSize:])
	}
	return string(t.b)
}

// startChild runs path with args and extra environment entries and waits
// until GET healthURL answers 200.
func startChild(ctx context.Context, name, path string, args, env []string, healthURL string) (*child, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	c := &child{name: name, cmd: cmd, logs: &tailBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	if err := cmd.Start(); err != nil {
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
			return nil, fmt.Errorf("%s exited early (%v):\n%s", name, err, c.logs.String())
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("%s did not become healthy within 60s:\n%s", name, c.logs.String())
		}
	}
}

// stop sends SIGTERM and waits up to 20 s, then kills the process.
func (c *child) stop() error {
	if c == nil {
		return nil
	}
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
