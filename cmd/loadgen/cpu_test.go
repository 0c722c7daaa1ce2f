package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	text := "cpu  100 5 50 800 20 3 2 7 0 0\ncpu0 50 2 25 400 10 1 1 3 0 0\nintr 1 2 3\n"
	total, idle, ok := parseStat([]byte(text))
	if !ok || total != 100+5+50+800+20+3+2+7 || idle != 820 {
		t.Fatalf("parseStat = %d, %d, %v; want 987, 820, true", total, idle, ok)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6\n", "cpu 1 2 x 4 5 6\n", "cpu 1 2\n"} {
		if _, _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func TestParsePidStat(t *testing.T) {
	// A command name with a space and a ')' must not shift the fields.
	text := "4242 (pay ments) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 9 0 100 0 0\n"
	got, ok := parsePidStat([]byte(text))
	if !ok || got != 1234+567 {
		t.Fatalf("parsePidStat = %d, %v; want 1801, true", got, ok)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 no parenthesis S 1 2 3 4 5 6 7 8 9 10 11 12 13",
		"4242 (x) S 1 2 3 4 5 6 7 8 9 10 u s 0"} {
		if _, ok := parsePidStat([]byte(bad)); ok {
			t.Errorf("parsePidStat(%q) accepted", bad)
		}
	}
}

func TestCPUSinceSplitsTheMachine(t *testing.T) {
	a := cpuSnap{total: 1000, idle: 300, server: 100, self: 50, ok: true}
	// 4 s of a 2-core machine: 800 ticks, 100 idle, server 400, client 150,
	// so 150 ticks went to other processes.
	b := cpuSnap{total: 1800, idle: 400, server: 500, self: 200, ok: true}
	got := cpuSince(a, b)
	want := cpuUse{Server: 4, Client: 1.5, Other: 1.5, Idle: 1, Known: true}
	if got != want {
		t.Fatalf("cpuSince = %+v, want %+v", got, want)
	}
	if u := cpuSince(a, cpuSnap{}); u.Known {
		t.Errorf("cpuSince without a second reading = %+v, want unknown", u)
	}
	o := outcome{Requests: 2000, Elapsed: 4 * time.Second, CPU: got}
	s := cpuSummary(o)
	for _, part := range []string{"server 1.00", "client 0.38", "other 0.38", "idle 0.25", "server 2000 µs/req"} {
		if !strings.Contains(s, part) {
			t.Errorf("cpuSummary = %q, missing %q", s, part)
		}
	}
	if s := cpuSummary(outcome{Elapsed: time.Second}); s != "n/a" {
		t.Errorf("cpuSummary without readings = %q, want n/a", s)
	}
}

func TestCPUUseAddStartsFromZero(t *testing.T) {
	u := cpuUse{Server: 1, Client: 2, Other: 3, Idle: 4, Known: true}
	if got := (cpuUse{}).add(u).add(cpuUse{}).add(u); got != (cpuUse{Server: 2, Client: 4, Other: 6, Idle: 8, Known: true}) {
		t.Fatalf("sum = %+v", got)
	}
}
