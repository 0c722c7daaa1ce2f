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
