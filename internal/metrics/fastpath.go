package metrics

import "github.com/prometheus/client_golang/prometheus"

// Names of the forward-auth fast loop's counters (the contract, like the
// others).
const (
	NameFastPathAnswers  = "portcullis_fastpath_answers_total"
	NameFastPathHandoffs = "portcullis_fastpath_handoffs_total"
)

type fastPathMetrics struct {
	answers, handoffs prometheus.Counter
}

func newFastPathMetrics(reg *prometheus.Registry) fastPathMetrics {
	f := fastPathMetrics{
		answers: prometheus.NewCounter(prometheus.CounterOpts{Name: NameFastPathAnswers,
			Help: "Forward-auth questions answered on the fast loop (forwardAuth on; they are also counted in portcullis_requests_total)."}),
		handoffs: prometheus.NewCounter(prometheus.CounterOpts{Name: NameFastPathHandoffs,
			Help: "Connections of the public listener the forward-auth fast loop handed to net/http: a request other than a plain HTTP/1.1 forward-auth question."}),
	}
	reg.MustRegister(f.answers, f.handoffs)
	return f
}

// FastPathAnswer counts a question answered on the fast loop.
func (m *Metrics) FastPathAnswer() {
	if m != nil {
		m.fp.answers.Inc()
	}
}

// FastPathHandoff counts a connection handed to net/http.
func (m *Metrics) FastPathHandoff() {
	if m != nil {
		m.fp.handoffs.Inc()
	}
}
