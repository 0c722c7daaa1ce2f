package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/labstack/echo/v4"

	"github.com/obpay/payments/client"
)

// privateRedis is a Redis of this test only, on its own port: redis-server
// when it is installed, else miniredis. Stop and Start take it down and
// bring it back on the same port.
type privateRedis struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
	mini *miniredis.Miniredis
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	r := &privateRedis{t: t, port: freeLoopbackPort(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

func (r *privateRedis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *privateRedis) Start() {
	r.t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(r.port)
	if bin, err := exec.LookPath("redis-server"); err == nil {
		r.cmd = exec.Command(bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
		if err := r.cmd.Start(); err != nil {
			r.t.Fatal(err)
		}
	} else {
		r.mini = miniredis.NewMiniRedis()
		if err := r.mini.StartAddr(addr); err != nil {
			r.t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("private Redis on %s did not start: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *privateRedis) Stop() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
	if r.mini != nil {
		r.mini.Close()
		r.mini = nil
	}
}

// readyz answers /readyz's status and the messages of its 503 body.
func readyz(t *testing.T, base string) (int, []string) {
	t.Helper()
	code, body := get(t, base+"/readyz")
	var b struct{ Errors []struct{ Message string } }
	_ = json.Unmarshal([]byte(body), &b)
	var msgs []string
	for _, e := range b.Errors {
		msgs = append(msgs, e.Message)
	}
	return code, msgs
}

// waitReady polls /readyz until it answers want.
func waitReady(t *testing.T, base string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, msgs := readyz(t, base)
		if code == want {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %v, want %d within 15s", code, msgs, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReadinessFollowsRedis: with the replay store on a private Redis,
// /readyz is 200, then 503 naming Redis while it is down (with /healthz still
// 200, and a DPoP request refused at once), then 200 again when it is back.
func TestReadinessFollowsRedis(t *testing.T) {
	redis := startPrivateRedis(t)
	r := startServe(t, map[string]string{"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
		"PAYMENTS_ADDR": "127.0.0.1:0", "PAYMENTS_REPLAY_STORE": redis.URL()})
	base := "http://" + r.addr
	waitReady(t, base, 200)

	redis.Stop()
	if msgs := waitReady(t, base, 503); strings.Join(msgs, "|") != "Redis unreachable" {
		t.Errorf("/readyz 503 causes = %q, want [Redis unreachable]", msgs)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz with Redis down = %d, want 200", code)
	}
	// A DPoP request is refused (fail closed) without waiting on Redis.
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewTokenClient(client.TokenConfig{BaseURL: "http://localhost:8080", ClientID: sandboxTPPID, ClientSecret: sandboxTPPSecret, Key: key,
		HTTPClient: &http.Client{Transport: redirectTo(r.addr), Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		start := time.Now()
		_, err := tc.ClientCredentials(context.Background(), "accounts")
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("token request %d with Redis down = %v, want a 503", i, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("token request %d with Redis down took %v, want well under a second", i, d)
		}
	}

	redis.Start()
	waitReady(t, base, 200)
	if _, err := tc.ClientCredentials(context.Background(), "accounts"); err != nil {
		t.Errorf("token request with Redis back = %v", err)
	}
}

// TestReplayStoreRequired: with Redis down at start, serve warns and serves,
// or exits when PAYMENTS_REPLAY_STORE_REQUIRED=true.
func TestReplayStoreRequired(t *testing.T) {
	down := fmt.Sprintf("redis://127.0.0.1:%d/0", freeLoopbackPort(t))
	vars := map[string]string{"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
		"PAYMENTS_ADDR": "127.0.0.1:0", "PAYMENTS_REPLAY_STORE": down}

	r := startServe(t, vars)
	if !strings.Contains(r.logs.String(), msgReplayStoreDown) {
		t.Errorf("serve with Redis down did not warn %q; log:\n%s", msgReplayStoreDown, r.logs.String())
	}
	if msgs := waitReady(t, "http://"+r.addr, 503); strings.Join(msgs, "|") != "Redis unreachable" {
		t.Errorf("/readyz 503 causes = %q, want [Redis unreachable]", msgs)
	}
	r.cancel()
	r.wait(t)

	vars["PAYMENTS_REPLAY_STORE_REQUIRED"] = "true"
	var stderr lockedBuffer
	code := run(context.Background(), []string{"serve"}, env(vars), io.Discard, &stderr, nil)
	if code != 1 || !strings.Contains(stderr.String(), "PAYMENTS_REPLAY_STORE_REQUIRED=true") {
		t.Errorf("serve with Redis down and required = %d; stderr:\n%s", code, stderr.String())
	}
}

// TestShutdownDelay: after the signal, /readyz answers 503 "Shutting down"
// for PAYMENTS_SHUTDOWN_DELAY while other requests are still served; then
// serve stops.
func TestShutdownDelay(t *testing.T) {
	const delay = 2 * time.Second
	r := startServe(t, map[string]string{"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
		"PAYMENTS_ADDR": "127.0.0.1:0", "PAYMENTS_SHUTDOWN_DELAY": delay.String()})
	base := "http://" + r.addr
	waitReady(t, base, 200)
	start := time.Now()
	r.cancel()
	if msgs := waitReady(t, base, 503); strings.Join(msgs, "|") != "Shutting down" {
		t.Errorf("/readyz while draining = %q, want [Shutting down]", msgs)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining = %d, want 200", code)
	}
	if code, _ := get(t, base+"/openapi.yaml"); code != 200 {
		t.Errorf("GET /openapi.yaml while draining = %d, want 200", code)
	}
	if code := r.wait(t); code != 0 {
		t.Errorf("serve exit code = %d; log:\n%s", code, r.logs.String())
	}
	if d := time.Since(start); d < delay {
		t.Errorf("serve stopped %v after the signal, before the %v delay", d, delay)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the listener still accepts after serve stopped")
	}
}

// TestEveryLineIsJSON runs serve with JSON logging, Redis down, and requests
// that make go-redis, net/http and the access log speak: every line written
// is a JSON object, and the probes are not at INFO.
func TestEveryLineIsJSON(t *testing.T) {
	down := fmt.Sprintf("redis://127.0.0.1:%d/0", freeLoopbackPort(t))
	adminPort := freeLoopbackPort(t)
	r := startServe(t, map[string]string{"DATABASE_URL": scratchDatabase(t), "PAYMENTS_DEV_AUTH": "true",
		"PAYMENTS_ADDR": "127.0.0.1:0", "PAYMENTS_REPLAY_STORE": down, "PAYMENTS_LOG_FORMAT": "json",
		"PAYMENTS_ADMIN_ADDR": fmt.Sprintf("127.0.0.1:%d", adminPort)},
		func(e *echo.Echo) {
			// A handler that answers twice: net/http complains through
			// the server's ErrorLog.
			e.GET("/test/twice", func(c echo.Context) error {
				c.Response().Writer.WriteHeader(http.StatusOK)
				return c.NoContent(http.StatusAccepted)
			})
		})
	base := "http://" + r.addr
	get(t, base+"/test/twice")
	for range 3 {
		get(t, base+"/healthz")
		get(t, base+"/readyz")
	}
	key, err := client.GenerateKey(client.ES256)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewTokenClient(client.TokenConfig{BaseURL: "http://localhost:8080", ClientID: sandboxTPPID, ClientSecret: sandboxTPPSecret, Key: key,
		HTTPClient: &http.Client{Transport: redirectTo(r.addr), Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tc.ClientCredentials(context.Background(), "accounts") // 503: Redis is down
	r.cancel()
	r.wait(t)

	out := r.logs.String()
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("line %d is not JSON: %q", i+1, line)
			continue
		}
		if p, _ := m["path"].(string); m["msg"] == "http request" && (p == "/healthz" || p == "/readyz") && m["level"] != "DEBUG" {
			t.Errorf("probe access-logged at %v: %s", m["level"], line)
		}
	}
	for _, want := range []string{msgReplayStoreDown, `"component":"redis"`, `superfluous response.WriteHeader`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s; log:\n%s", want, out)
		}
	}
}

func TestReadinessConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		errs string // "" when accepted
	}{
		{"delay default", nil, ""},
		{"delay", map[string]string{"PAYMENTS_SHUTDOWN_DELAY": "15s"}, ""},
		{"delay too long", map[string]string{"PAYMENTS_SHUTDOWN_DELAY": "10m"}, "PAYMENTS_SHUTDOWN_DELAY=10m: must be at most 5m"},
		{"negative delay", map[string]string{"PAYMENTS_SHUTDOWN_DELAY": "-1s"}, "PAYMENTS_SHUTDOWN_DELAY"},
		{"required with Redis", map[string]string{"PAYMENTS_REPLAY_STORE": "redis://127.0.0.1:6379/0", "PAYMENTS_REPLAY_STORE_REQUIRED": "true"}, ""},
		{"required with the memory store", map[string]string{"PAYMENTS_REPLAY_STORE_REQUIRED": "true"}, "PAYMENTS_REPLAY_STORE_REQUIRED=true: needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"PAYMENTS_DEV_AUTH": "true"}
			for k, v := range tc.vars {
				vars[k] = v
			}
			_, err := loadConfig(env(vars))
			if tc.errs == "" && err != nil {
				t.Fatalf("loadConfig = %v", err)
			}
			if tc.errs != "" && (err == nil || !strings.Contains(err.Error(), tc.errs)) {
				t.Fatalf("loadConfig = %v, want an error with %q", err, tc.errs)
			}
		})
	}
}
