package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestWarnReplayStore(t *testing.T) {
	const secret = "a nonce secret of at least 32 characters"
	tests := []struct {
		name  string
		store string
		nonce string
		warn  bool
	}{
		{"memory store with a shared nonce secret", "memory", secret, true},
		{"redis store with a shared nonce secret", "redis://127.0.0.1:6379/0", secret, false},
		{"memory store without a nonce secret (one node)", "memory", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			warnReplayStore(context.Background(), config{ReplayStore: tt.store, DPoPNonceSecret: tt.nonce}, log)
			out := buf.String()
			lines := logLines(t, &buf)
			if !tt.warn {
				if len(lines) != 0 {
					t.Errorf("logged %v, want nothing", lines)
				}
				return
			}
			if len(lines) != 1 || lines[0]["level"] != "WARN" || lines[0]["msg"] != msgMemoryReplayStore {
				t.Fatalf("logged %v, want one WARN %q", lines, msgMemoryReplayStore)
			}
			if strings.Contains(out, secret) {
				t.Error("the warning logs the nonce secret")
			}
			if !strings.Contains(out, "PAYMENTS_REPLAY_STORE=redis://") {
				t.Error("the warning does not name the fix, PAYMENTS_REPLAY_STORE=redis://...")
			}
		})
	}
}
