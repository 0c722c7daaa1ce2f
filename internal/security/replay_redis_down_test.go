package security

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// TestRedisReplayStoreDownFailsFast: with nothing listening at the Redis
// address every call fails (closed) within milliseconds, not the seconds of
// the client's default dials and retries.
func TestRedisReplayStoreDownFailsFast(t *testing.T) {
	m := miniredis.RunT(t)
	s, err := NewRedisReplayStore("redis://" + m.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if seen, err := s.Seen(ctx, "k0", time.Now().Add(time.Minute)); err != nil || seen {
		t.Fatalf("Seen with Redis up = %v, %v; want false, nil", seen, err)
	}
	m.Close() // Redis goes away: connection refused from now on
	for i := range 10 {
		start := time.Now()
		_, err := s.Seen(ctx, "k"+string(rune('a'+i)), time.Now().Add(time.Minute))
		if err == nil {
			t.Fatalf("call %d: Seen with Redis down succeeded", i)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("call %d: Seen with Redis down took %v, want well under a second", i, d)
		}
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with Redis down = nil")
	}
}

// TestRedisReplayStoreCircuit uses a Redis that accepts connections and
// never answers: calls are bounded by the call timeout, and after a few
// failures the store stops waiting at all. Once Redis answers a ping again,
// calls go through at once.
func TestRedisReplayStoreCircuit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	s, err := NewRedisReplayStore("redis://" + ln.Addr().String() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range redisTripAfter {
		start := time.Now()
		if _, err := s.Seen(ctx, "slow", time.Now().Add(time.Minute)); err == nil {
			t.Fatal("Seen against a silent Redis succeeded")
		}
		if d := time.Since(start); d > redisCallTimeout+500*time.Millisecond {
			t.Errorf("call %d took %v, want about the call timeout %v", i, d, redisCallTimeout)
		}
	}
	start := time.Now()
	if _, err := s.Seen(ctx, "fast", time.Now().Add(time.Minute)); !errors.Is(err, ErrReplayStoreDown) {
		t.Fatalf("Seen with the circuit open = %v, want ErrReplayStoreDown", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Seen with the circuit open took %v, want no wait", d)
	}

	// A Redis that answers errors trips the circuit the same way, and a
	// good ping closes it.
	m := miniredis.RunT(t)
	up, err := NewRedisReplayStore("redis://" + m.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	m.SetError("LOADING Redis is loading the dataset in memory")
	for range redisTripAfter {
		if _, err := up.Seen(ctx, "x", time.Now().Add(time.Minute)); err == nil {
			t.Fatal("Seen against a failing Redis succeeded")
		}
	}
	if _, err := up.Seen(ctx, "y", time.Now().Add(time.Minute)); !errors.Is(err, ErrReplayStoreDown) {
		t.Fatalf("Seen with the circuit open = %v, want ErrReplayStoreDown", err)
	}
	m.SetError("")
	if err := up.Ping(ctx); err != nil {
		t.Fatalf("Ping with Redis back = %v", err)
	}
	if seen, err := up.Seen(ctx, "y", time.Now().Add(time.Minute)); err != nil || seen {
		t.Errorf("Seen after a good ping = %v, %v; want false, nil (circuit closed)", seen, err)
	}
}
