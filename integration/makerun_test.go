package integration

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/obpay/payments/internal/testdb"
)

// `make run` builds the binary and execs it, so a SIGTERM sent to make
// reaches the server, which stops: nothing is left serving on the port.
func TestMakeRunStopsWithMake(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("make is needed under CI")
		}
		t.Skip("no make")
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command("make", "--no-print-directory", "run")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "DATABASE_URL="+testdb.New(t), "PAYMENTS_ADDR="+fmt.Sprintf("127.0.0.1:%d", port),
		"PAYMENTS_PUBLIC_URL="+base, "PAYMENTS_SHUTDOWN_GRACE=5s")
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(3 * time.Minute) // includes the build
	for {
		if res, err := http.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("make run exited (%v):\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("make run did not serve:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "building bin/payments") {
		t.Errorf("make run does not say what it builds:\n%s", logs)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not end within 30s of SIGTERM:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("the server did not shut down cleanly:\n%s", tail(logs.String(), 2000))
	}
	if res, err := http.Get(base + "/healthz"); err == nil {
		res.Body.Close()
		t.Fatalf("something still serves on port %d after make run ended", port)
	}
}
