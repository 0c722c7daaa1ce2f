package main

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obpay/payments/internal/openbanking"
	"github.com/obpay/payments/internal/security"
)

// businessMetrics counts what the Open Banking service did (it is the
// service's openbanking.Observer). Every label has a handful of values.
type businessMetrics struct {
	consents *prometheus.CounterVec
	payments *prometheus.CounterVec
	replays  *prometheus.CounterVec
}

func newBusinessMetrics(reg prometheus.Registerer) (*businessMetrics, error) {
	m := &businessMetrics{
		consents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_consents_total",
			Help: "Consents by kind (payment, account-access) and event (created, authorised, rejected, consumed, revoked).",
		}, []string{"kind", "event"}),
		payments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_payments_total",
			Help: "Domestic payments booked, by outcome: settled, or rejected_insufficient_funds. Refused requests are in payments_api_errors_total.",
		}, []string{"outcome"}),
		replays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_idempotent_replays_total",
			Help: "Requests answered with the resource their idempotency key first created, by resource.",
		}, []string{"resource"}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "payments_build_info",
		Help: "Always 1; the labels say which build runs.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(buildVersion(), runtime.Version()).Set(1)
	for _, c := range []prometheus.Collector{m.consents, m.payments, m.replays, build} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Known series start at zero, so rates and alerts work from the start.
	for _, k := range []openbanking.ConsentKind{openbanking.KindPayment, openbanking.KindAccountAccess} {
		for _, e := range []openbanking.ConsentEvent{openbanking.ConsentCreated, openbanking.ConsentAuthorised,
			openbanking.ConsentRejected, openbanking.ConsentConsumed, openbanking.ConsentRevoked} {
			if (k == openbanking.KindPayment) != (e == openbanking.ConsentRevoked) {
				m.consents.WithLabelValues(string(k), string(e))
			}
		}
	}
	m.payments.WithLabelValues("settled")
	m.payments.WithLabelValues("rejected_insufficient_funds")
	m.replays.WithLabelValues("payment")
	m.replays.WithLabelValues("payment-consent")
	return m, nil
}

func (m *businessMetrics) ConsentChanged(k openbanking.ConsentKind, e openbanking.ConsentEvent) {
	m.consents.WithLabelValues(string(k), string(e)).Inc()
}

func (m *businessMetrics) PaymentBooked(s openbanking.PaymentStatus) {
	if s == openbanking.PaymentRejected {
		m.payments.WithLabelValues("rejected_insufficient_funds").Inc()
		return
	}
	m.payments.WithLabelValues("settled").Inc()
}

func (m *businessMetrics) IdempotentReplay(resource string) {
	m.replays.WithLabelValues(resource).Inc()
}

// registerReplayFill exposes how full the memory replay store is (Redis
// reports its own memory). Its errors and refusals are in
// payments_dpop_rejections_total (reasons replay_store_unavailable,
// replay_share_exceeded).
func registerReplayFill(reg prometheus.Registerer, s *security.MemoryReplayStore) error {
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "payments_replay_store_entries",
		Help: "DPoP proofs held by this node's memory replay store.",
	}, func() float64 { return float64(s.Len()) })
	capacity := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "payments_replay_store_capacity",
		Help: "The most DPoP proofs this node's memory replay store may hold.",
	})
	capacity.Set(float64(s.Cap()))
	for _, c := range []prometheus.Collector{entries, capacity} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
