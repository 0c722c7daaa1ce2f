package main

import (
	"strings"
	"testing"
)

func TestParseRateLimit(t *testing.T) {
	cases := []struct {
		value     string
		perSecond float64
		burst     int
		bad       bool
	}{
		{value: "", perSecond: 0, burst: 0}, // the default, off
		{value: "off"},
		{value: "50/s", perSecond: 50, burst: 50},
		{value: "50/s,burst=100", perSecond: 50, burst: 100},
		{value: " 50/s , burst=100 ", perSecond: 50, burst: 100},
		{value: "600/m", perSecond: 10, burst: 600},
		{value: "30/m,burst=1", perSecond: 0.5, burst: 1},
		{value: "1000000/s", perSecond: 1e6, burst: 1e6},
		{value: "50", bad: true},
		{value: "50/h", bad: true},
		{value: "0/s", bad: true},
		{value: "-1/s", bad: true},
		{value: "1.5/s", bad: true},
		{value: "1000001/s", bad: true},
		{value: "50/s,burst=0", bad: true},
		{value: "50/s,burst=", bad: true},
		{value: "50/s,100", bad: true},
		{value: "50/s,burst=10,burst=20", bad: true},
		{value: "on", bad: true},
	}
	for _, tc := range cases {
		c, err := loadConfig(env(map[string]string{"PAYMENTS_DEV_AUTH": "true", "PAYMENTS_RATE_LIMIT": tc.value}))
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "PAYMENTS_RATE_LIMIT") || !strings.Contains(err.Error(), "50/s,burst=100") {
				t.Errorf("PAYMENTS_RATE_LIMIT=%q: err = %v, want an error naming the setting and its form", tc.value, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("PAYMENTS_RATE_LIMIT=%q: %v", tc.value, err)
			continue
		}
		if c.RateLimit.PerSecond != tc.perSecond || c.RateLimit.Burst != tc.burst {
			t.Errorf("PAYMENTS_RATE_LIMIT=%q = %+v, want %v/s burst %d", tc.value, c.RateLimit, tc.perSecond, tc.burst)
		}
		if c.RateLimit.on() != (tc.perSecond > 0) {
			t.Errorf("PAYMENTS_RATE_LIMIT=%q: on = %v", tc.value, c.RateLimit.on())
		}
	}
}
