package security

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the verifier's Prometheus collectors. They work unregistered
// when Config.Registerer is nil.
type metrics struct {
	rejections *prometheus.CounterVec
	accepted   prometheus.Counter
	iatOffset  prometheus.Histogram
	latency    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_dpop_rejections_total",
			Help: "Protected requests refused by the DPoP verifier, by reason.",
		}, []string{"reason", "code"}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "payments_dpop_accepted_total",
			Help: "Protected requests whose DPoP proof and token passed every check.",
		}),
		iatOffset: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "payments_dpop_iat_offset_seconds",
			Help:    "Proof iat minus the server clock (positive: client clock ahead).",
			Buckets: []float64{-3600, -300, -60, -30, -10, -5, -2, -1, 0, 1, 2, 5, 10, 30, 60, 300, 3600},
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "payments_dpop_verify_duration_seconds",
			Help:    "Time spent verifying a protected request, introspection included.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5},
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.rejections, m.accepted, m.iatOffset, m.latency} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("security: DPoP metrics already registered on this registry")
			}
			return nil, err
		}
	}
	return m, nil
}
