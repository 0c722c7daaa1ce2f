package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// logLines decodes the JSON lines a test logger wrote.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	dec := json.NewDecoder(buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("log line: %v", err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestPurgeAll(t *testing.T) {
	errDown := errors.New("database down")
	tests := []struct {
		name      string
		results   []int // rows each call deletes
		fail      bool  // the call after results fails
		wantCalls int
		wantLevel string
		wantMsg   string
		wantCount float64
	}{
		{"drains in batches and logs the count", []int{10, 10, 3}, false, 3, "INFO", "retention purge", 23},
		{"a full last batch asks again", []int{10, 0}, false, 2, "INFO", "retention purge", 10},
		{"nothing expired logs at debug", []int{0}, false, 1, "DEBUG", "retention purge", 0},
		{"a failure is logged and ends the run", []int{10}, true, 2, "WARN", "retention purge failed", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			calls := 0
			purge := func(_ context.Context, limit int) (int, error) {
				if limit != 10 {
					t.Errorf("purge limit = %d, want 10", limit)
				}
				calls++
				if calls > len(tt.results) {
					if tt.fail {
						return 0, errDown
					}
					t.Fatal("purge called after a short batch")
				}
				return tt.results[calls-1], nil
			}
			purgeAll(context.Background(), "idempotency_keys", purge, 10, log)
			if calls != tt.wantCalls {
				t.Errorf("purge called %d times, want %d", calls, tt.wantCalls)
			}
			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1: %v", len(lines), lines)
			}
			l := lines[0]
			if l["level"] != tt.wantLevel || l["msg"] != tt.wantMsg || l["table"] != "idempotency_keys" || l["deleted"] != tt.wantCount {
				t.Errorf("log = %v, want level %s, msg %q, table idempotency_keys, deleted %v", l, tt.wantLevel, tt.wantMsg, tt.wantCount)
			}
		})
	}
}

// TestStartPurgeRunsUntilStopped: the loop purges at once and on every tick,
// and after stop returns it never purges again.
func TestStartPurgeRunsUntilStopped(t *testing.T) {
	var mu sync.Mutex
	runs := 0
	ran := make(chan struct{}, 10)
	purge := func(context.Context, int) (int, error) {
		mu.Lock()
		runs++
		mu.Unlock()
		select {
		case ran <- struct{}{}:
		default:
		}
		return 0, nil
	}
	stop := startPurge(context.Background(), "idempotency_keys", purge, time.Millisecond, 10, slog.New(slog.DiscardHandler))
	for range 3 {
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("the purge loop did not run")
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	after := runs
	mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if runs != after {
		t.Errorf("purge ran %d more times after stop", runs-after)
	}
}

// TestStartPurgeStopsWithContext: the loop ends when serve's context does.
func TestStartPurgeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := startPurge(ctx, "idempotency_keys", func(context.Context, int) (int, error) { return 0, nil },
		time.Hour, 10, slog.New(slog.DiscardHandler))
	cancel()
	stopped := make(chan struct{})
	go func() { _ = stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the purge loop did not end with its context")
	}
}
