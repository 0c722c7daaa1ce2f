package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkTransfer/workers=1-2         	     922	   1424710 ns/op	       701.9 transfers/s
BenchmarkTransfer/workers=32          	    1340	    827810 ns/op	      1208 transfers/s
BenchmarkTransfer/hot/workers=8-2     	     626	   2391856 ns/op	       418.1 transfers/s
PASS`
	want := map[string]float64{"workers=1": 701.9, "workers=32": 1208, "hot/workers=8": 418.1}
	if diff := cmp.Diff(want, parseGoBench(out)); diff != "" {
		t.Errorf("parseGoBench mismatch (-want +got):\n%s", diff)
	}
}

func TestParsePgbenchTPS(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    float64
		wantErr bool
	}{
		{"pgbench 15", "latency average = 1.2 ms\ninitial connection time = 3.1 ms\ntps = 812.345678 (without initial connection time)\n", 812.345678, false},
		{"no tps line", "error\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePgbenchTPS(tc.out)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parsePgbenchTPS = %v, %v, want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
