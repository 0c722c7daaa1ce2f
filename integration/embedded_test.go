package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obpay/payments/client"
	"github.com/obpay/payments/client/obapi"
	"github.com/obpay/payments/internal/embedpg"
)

// With DATABASE_URL unset, serve runs its own PostgreSQL in
// PAYMENTS_DATA_DIR: a payment booked before a restart is there after it,
// balances included, and a stopped server leaves no PostgreSQL behind. Run
// as root (as CI does), the cluster runs as an unprivileged user.
func TestEmbeddedPostgresKeepsDataAcrossRestarts(t *testing.T) {
	if _, err := embedpg.FindLocal(); err != nil && os.Getenv("CI") != "true" {
		t.Skipf("no local PostgreSQL to embed (%v)", err)
	}
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil { // reachable by the server's user under root
			t.Fatal(err)
		}
	}
	dataDir := filepath.Join(root, "payments")
	port := freePort(t)
	env := []string{"DATABASE_URL=", "PAYMENTS_DATA_DIR=" + dataDir}

	s := launchServer(t, port, "", env...)
	for _, want := range []string{"using the embedded PostgreSQL", dataDir, "DATABASE_URL="} {
		if !strings.Contains(s.Logs(), want) {
			t.Errorf("the start log does not say where the data lives and how to use an external server: no %q", want)
		}
	}
	sb := newSandbox(t, s)
	alice := sb.openAccount(t, "alice", "100.00")
	bob := sb.openAccount(t, "bob", "")
	init := initiation(bob, "30.00", "kept-1")
	consentID := sb.createConsent(t, init)
	psu := sb.psuClient(t, consentID, "alice", alice.AccountId, "payments")
	res := sb.pay(t, psu, consentID, init, client.NewIdempotencyKey())
	if res.JSON201 == nil {
		t.Fatalf("payment = %d %s", res.StatusCode(), res.Body)
	}
	paymentID := res.JSON201.Data.DomesticPaymentId

	s.stop(t)
	assertNoPostgresOf(t, dataDir)

	s2 := launchServer(t, port, "", env...)
	sb2 := newSandbox(t, s2)
	get, err := sb2.tppAPI.GetDomesticPaymentsDomesticPaymentIdWithResponse(sb2.ctx, paymentID, &obapi.GetDomesticPaymentsDomesticPaymentIdParams{})
	if err != nil {
		t.Fatal(err)
	}
	if get.StatusCode() != http.StatusOK || get.JSON200 == nil {
		t.Fatalf("payment %s after the restart = %d %s", paymentID, get.StatusCode(), get.Body)
	}
	if got := get.JSON200.Data.Status; got != res.JSON201.Data.Status {
		t.Errorf("payment status after the restart = %s, before %s", got, res.JSON201.Data.Status)
	}
	aliceReader := sb2.accountReader(t, "alice")
	if got := sb2.balance(t, aliceReader, alice.AccountId); got != "70.00" {
		t.Errorf("alice's balance after the restart = %s, want 70.00", got)
	}
	assertBalanced(t, sb2)

	s2.stop(t)
	assertNoPostgresOf(t, dataDir)
}

// assertNoPostgresOf fails when a process still runs with dataDir in its
// command line or as its working directory.
func assertNoPostgresOf(t *testing.T, dataDir string) {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil || len(procs) == 0 {
		t.Log("no /proc: not checking for leftover processes")
		return
	}
	for _, p := range procs {
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		cwd, _ := os.Readlink(filepath.Join(p, "cwd"))
		if strings.Contains(string(cmdline), dataDir) || strings.HasPrefix(cwd, dataDir) {
			t.Errorf("process %s (%s) of the embedded PostgreSQL is still running", filepath.Base(p),
				strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
}
