package main

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer the server may write to from any goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveInProcess runs `payments serve` in this process with vars and returns
// once it listens. stop shuts it down, fails the test unless it exits 0, and
// returns its JSON log lines.
func serveInProcess(t *testing.T, vars map[string]string) (stop func() []map[string]any) {
	t.Helper()
	return serveInProcessWith(t, vars, &serveHooks{})
}

// serveInProcessWith is serveInProcess with hooks (its listening hook is
// set here).
func serveInProcessWith(t *testing.T, vars map[string]string, hooks *serveHooks) (stop func() []map[string]any) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	listening := make(chan struct{}, 1)
	done := make(chan int, 1)
	hooks.listening = func(string) { listening <- struct{}{} }
	go func() { done <- run(ctx, []string{"serve"}, env(vars), io.Discard, logs, hooks) }()
	stopped := false
	stop = func() []map[string]any {
		t.Helper()
		if !stopped {
			stopped = true
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("serve exit code = %d; log:\n%s", code, logs.String())
			}
		}
		b := bytes.NewBufferString(logs.String())
		return logLines(t, b)
	}
	t.Cleanup(func() { stop() })
	select {
	case <-listening:
	case code := <-done:
		stopped = true
		cancel()
		t.Fatalf("serve exited with %d before listening; log:\n%s", code, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start within 60s")
	}
	return stop
}

// serveOnce starts `payments serve` in this process, stops it, and returns
// its JSON log lines.
func serveOnce(t *testing.T, vars map[string]string) []map[string]any {
	t.Helper()
	return serveInProcess(t, vars)()
}
