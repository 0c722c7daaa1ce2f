package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obpay/payments/client/obapi"
)

// curlScript is the README's curl walk-through.
const curlScript = "../examples/curl/sandbox.sh"

// needTools skips the test when a program it runs is missing, or fails it
// under CI=true, where every documented example must run, saying what to
// install.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s needs %s, which is not on PATH: install it (apt-get install %s, or brew install %s)",
				strings.TrimPrefix(curlScript, "../"), tool, tool, tool)
			if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// TestCurlScript runs examples/curl/sandbox.sh against the sandbox, on a
// port other than 8080 (the script builds every htu from
// PAYMENTS_PUBLIC_URL), and checks that it exits 0 having paid bob from
// alice's seeded account: alice's balance, read through the SDK, is down by
// the amount, and the ledger reconciles.
func TestCurlScript(t *testing.T) {
	needTools(t, "bash", "curl", "openssl", "jq")
	s := startServer(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", curlScript)
	cmd.Env = append(os.Environ(), "PAYMENTS_PUBLIC_URL="+s.URL, "AMOUNT=12.34")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v; output:\n%s\nserver log:\n%s", curlScript, err, out, tail(s.Logs(), 4000))
	}
	for _, want := range []string{"use_dpop_nonce", "done: the payment is booked"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the script's output does not show %q:\n%s", want, out)
		}
	}
	// A JWS (a proof) starts with the base64url of `{"`.
	if strings.Contains(string(out), "eyJ") {
		t.Errorf("the script prints a proof:\n%s", out)
	}

	// What the script did, seen by another aggregator key: alice's only
	// account, the one the sandbox opened with 1,000.00 GBP, lost 12.34.
	sb := newSandbox(t, s)
	consent := sb.accessConsent(t, []obapi.OBExternalPermissions1Code{"ReadAccountsBasic", "ReadBalances"}, nil)
	alice := sb.psuClient(t, consent, "alice", "", "accounts")
	res, err := alice.GetAccountsWithResponse(sb.ctx, &obapi.GetAccountsParams{})
	if err != nil || res.JSON200 == nil {
		t.Fatalf("alice's accounts = %v %v", err, res)
	}
	if n := len(res.JSON200.Data.Account); n != 1 {
		t.Fatalf("alice has %d accounts, want the one the sandbox opened: %s", n, res.Body)
	}
	if got := sb.balance(t, alice, res.JSON200.Data.Account[0].AccountId); got != "987.66" {
		t.Errorf("alice's balance = %s, want 987.66 (1000.00 - 12.34)", got)
	}
	assertBalanced(t, sb)
}
