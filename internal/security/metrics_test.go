package security

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsCountRejectionsByReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, "ES256", func(c *Config) { c.Registerer = reg })
	ctx := context.Background()
	if _, _, err := f.v.Verify(ctx, f.request(f.proof())); err != nil {
		t.Fatal(err)
	}
	req := f.request(f.proof())
	req.Method = "GET"
	if _, _, err := f.v.Verify(ctx, req); err == nil {
		t.Fatal("Verify with the wrong method succeeded")
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				name := mf.GetName()
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" {
						name += "/" + l.GetValue()
					}
				}
				got[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"payments_dpop_rejections_total/htm_mismatch": 1,
		"payments_dpop_accepted_total":                1,
		"payments_dpop_iat_offset_seconds":            1, // htm fails before iat
		"payments_dpop_verify_duration_seconds":       2,
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], w, got)
		}
	}
	// A second verifier on the same registry is a configuration error.
	cfg := Config{PublicURL: testPublicURL, ReplayStore: f.store, Introspector: f.intro, Registerer: reg}
	if _, err := NewVerifier(cfg); err == nil {
		t.Error("second registration on one registry succeeded")
	}
}
