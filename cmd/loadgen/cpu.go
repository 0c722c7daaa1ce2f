package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// cpuUse is where the machine's CPU time went during a window, in
// core-seconds: the server under test, this load generator, everything else
// (Postgres, mostly) and idle. It explains a ratio: a window whose idle is
// near zero is bound by CPU, one with idle left is bound by latency.
type cpuUse struct {
	Server, Client, Other, Idle float64
	Known                       bool // false where /proc cannot be read (not Linux)
}

// add sums two windows' use; a window without readings adds nothing (the
// zero cpuUse is where sums start).
func (u cpuUse) add(v cpuUse) cpuUse {
	switch {
	case !u.Known:
		return v
	case !v.Known:
		return u
	}
	return cpuUse{Server: u.Server + v.Server, Client: u.Client + v.Client, Other: u.Other + v.Other,
		Idle: u.Idle + v.Idle, Known: true}
}

// cpuSnap is one reading of the counters cpuUse is computed from, in clock
// ticks.
type cpuSnap struct {
	total, idle, server, self uint64
	ok                        bool
}

// clockTicks is USER_HZ, the unit of /proc's CPU counters: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// readCPU reads the machine's CPU counters and those of the server process
// pid and of this process.
func readCPU(pid int) cpuSnap {
	total, idle, ok := machineTicks()
	if !ok {
		return cpuSnap{}
	}
	server, ok1 := processTicks(strconv.Itoa(pid))
	self, ok2 := processTicks("self")
	return cpuSnap{total: total, idle: idle, server: server, self: self, ok: ok1 && ok2}
}

// cpuSince returns the use between two readings.
func cpuSince(a, b cpuSnap) cpuUse {
	if !a.ok || !b.ok || b.total < a.total {
		return cpuUse{}
	}
	sec := func(t uint64) float64 { return float64(t) / clockTicks }
	total, idle := b.total-a.total, b.idle-a.idle
	server, self := b.server-a.server, b.self-a.self
	busy := total - min(idle, total)
	other := busy - min(busy, server+self)
	return cpuUse{Server: sec(server), Client: sec(self), Other: sec(other), Idle: sec(idle), Known: true}
}

// machineTicks reads parseStat's figures from /proc/stat.
func machineTicks() (total, idle uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseStat(b)
}

// parseStat returns the sum of every CPU state and idle plus iowait from the
// first line of a /proc/stat text.
func parseStat(b []byte) (total, idle uint64, ok bool) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 6 || string(fields[0]) != "cpu" {
		return 0, 0, false
	}
	// user nice system idle iowait irq softirq steal (guest time is already
	// counted in user and nice).
	for i, f := range fields[1:min(len(fields), 9)] {
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return total, idle, true
}

// processTicks reads parsePidStat's figure from /proc/<pid>/stat.
func processTicks(pid string) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	return parsePidStat(b)
}

// parsePidStat returns utime+stime of a /proc/<pid>/stat text.
func parsePidStat(b []byte) (uint64, bool) {
	// The command name in parentheses may hold spaces; fields count from
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is the state (field 3); utime and stime are fields 14, 15.
	if len(fields) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(string(fields[11]), 10, 64)
	s, err2 := strconv.ParseUint(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return u + s, true
}

// cpuSummary formats a window's CPU use as cores (core-seconds per second)
// and the server's CPU per answered request, e.g.
// "server 1.15 client 0.44 other 0.30 idle 0.11 | 136 µs/req".
func cpuSummary(o outcome) string {
	u := o.CPU
	if !u.Known || o.Elapsed <= 0 {
		return "n/a"
	}
	s := o.Elapsed.Seconds()
	out := fmt.Sprintf("server %.2f  client %.2f  other %.2f  idle %.2f", u.Server/s, u.Client/s, u.Other/s, u.Idle/s)
	if o.Requests > 0 {
		out += fmt.Sprintf("  | server %.0f µs/req", u.Server/float64(o.Requests)*1e6)
	}
	return out
}
