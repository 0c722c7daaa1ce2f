package main

import "testing"

func TestDebugPprofAddrMustBeLoopback(t *testing.T) {
	tests := []struct {
		name string
		addr string
		ok   bool
	}{
		{"off when empty", "", true},
		{"IPv4 loopback", "127.0.0.1:6060", true},
		{"IPv6 loopback", "[::1]:6060", true},
		{"localhost", "localhost:6060", true},
		{"every interface", ":6060", false},
		{"a public address", "192.0.2.10:6060", false},
		{"all IPv4 interfaces", "0.0.0.0:6060", false},
		{"no port", "127.0.0.1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_DEBUG_PPROF_ADDR": tc.addr}
			_, err := loadConfig(func(k string) string { return env[k] })
			if (err == nil) != tc.ok {
				t.Errorf("loadConfig(PAYMENTS_DEBUG_PPROF_ADDR=%q) = %v, want ok %v", tc.addr, err, tc.ok)
			}
		})
	}
}
