package security

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of HTTPIntrospector.Introspect, the values of the outcome label
// of payments_introspection_answers_total. The error_* outcomes answer 503.
const (
	outcomeActive        = "active"             // the server said active
	outcomeInactive      = "inactive"           // the server said inactive, or 400 invalid_token / unsupported_token_type
	outcomeCacheActive   = "cache_hit_active"   // a cached active answer, no call
	outcomeCacheInactive = "cache_hit_inactive" // a cached inactive answer, no call
	outcomeThrottled     = "throttled"          // the proof key's bound on inactive answers, no call
	outcomeCredentials   = "error_as_401_403"   // the server refused our own credentials
	outcomeAS4xx         = "error_as_4xx"       // any other 4xx
	outcomeAS5xx         = "error_as_5xx"
	outcomeASStatus      = "error_as_status" // 1xx, 3xx (redirects are not followed) or a 2xx other than 200
	outcomeTimeout       = "error_timeout"
	outcomeTransport     = "error_transport" // no answer: connection refused, TLS, reset
	outcomeMalformed     = "error_malformed" // 200 that is not an RFC 7662 JSON answer
	outcomeRequest       = "error_request"   // the call could not be built (client authentication)
	outcomeCanceled      = "canceled"        // the request went away first; not the server's fault
)

var introspectionOutcomes = []string{
	outcomeActive, outcomeInactive, outcomeCacheActive, outcomeCacheInactive, outcomeThrottled,
	outcomeCredentials, outcomeAS4xx, outcomeAS5xx, outcomeASStatus, outcomeTimeout, outcomeTransport,
	outcomeMalformed, outcomeRequest, outcomeCanceled,
}

// introspectionMetrics count the introspector's answers by outcome and time
// its calls to the authorization server. They work unregistered when
// IntrospectionConfig.Registerer is nil.
type introspectionMetrics struct {
	answers  *prometheus.CounterVec
	duration prometheus.Histogram
	// byOutcome holds each outcome's counter, resolved once, so that
	// counting on the request path is a map read, not a label lookup.
	byOutcome map[string]prometheus.Counter
}

func newIntrospectionMetrics(reg prometheus.Registerer) (*introspectionMetrics, error) {
	m := &introspectionMetrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payments_introspection_answers_total",
			Help: "Access tokens resolved by the RFC 7662 introspector, by outcome (cache hits, answers, failures by class).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "payments_introspection_request_duration_seconds",
			Help:    "Time of one introspection call to the authorization server, failures included.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
	}
	if reg != nil {
		if err := m.register(reg); err != nil {
			return nil, err
		}
	}
	m.byOutcome = make(map[string]prometheus.Counter, len(introspectionOutcomes))
	for _, o := range introspectionOutcomes {
		m.byOutcome[o] = m.answers.WithLabelValues(o) // every outcome is exported, at zero until it happens
	}
	return m, nil
}

// register adds the metrics to reg, or takes over the ones another
// introspector registered there.
func (m *introspectionMetrics) register(reg prometheus.Registerer) error {
	// Introspectors on one registry share the metrics: an introspector whose
	// endpoint is discovered is rebuilt when the endpoint changes, and the
	// counts must go on.
	var are prometheus.AlreadyRegisteredError
	if err := reg.Register(m.answers); errors.As(err, &are) {
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return errors.New("security: another collector is registered as the introspection answers")
		}
		m.answers = existing
	} else if err != nil {
		return err
	}
	if err := reg.Register(m.duration); errors.As(err, &are) {
		existing, ok := are.ExistingCollector.(prometheus.Histogram)
		if !ok {
			return errors.New("security: another collector is registered as the introspection duration")
		}
		m.duration = existing
	} else if err != nil {
		return err
	}
	return nil
}

func (m *introspectionMetrics) count(outcome string) { m.byOutcome[outcome].Inc() }
