//go:build unix

package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obpay/payments/internal/embedpg"
)

// Under root the embedded PostgreSQL runs as an unprivileged user; a data
// directory that user cannot reach (a mktemp -d parent, /root) is refused at
// once with the directory and the fix, not retried.
func TestServeRefusesADataDirTheServerUserCannotReach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the embedded PostgreSQL as another user")
	}
	if _, err := embedpg.FindLocal(); err != nil {
		t.Skipf("no local PostgreSQL: %v", err)
	}
	private := t.TempDir() // 0700, root's
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(private, "payments")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := serveCommand(ctx, nil, env(map[string]string{
		"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_DATA_DIR": dataDir, "PAYMENTS_ADDR": "127.0.0.1:0",
	}), io.Discard, io.Discard, nil)
	if err == nil {
		t.Fatal("serve started on an unreachable data directory")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("refusal took %s", time.Since(start))
	}
	block := firstClosed(t, private)
	for _, want := range []string{"PAYMENTS_DATA_DIR=" + dataDir, "cannot reach " + block + " ", "chmod o+x " + block + "`", "DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// firstClosed returns the first directory on the way to dir (dir included)
// that others may not pass through.
func firstClosed(t *testing.T, dir string) string {
	t.Helper()
	var chain []string
	for p := dir; ; p = filepath.Dir(p) {
		chain = append([]string{p}, chain...)
		if p == filepath.Dir(p) {
			break
		}
	}
	for _, p := range chain {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return p
		}
	}
	t.Fatalf("every directory up to %s is open", dir)
	return ""
}
