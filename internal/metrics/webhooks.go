package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhook metric names (the contract, like the others).
const (
	NameWebhookDelivered      = "portcullis_webhook_events_delivered_total"
	NameWebhookAttemptsFailed = "portcullis_webhook_attempts_failed_total"
	NameWebhookFailed         = "portcullis_webhook_events_failed_total"
	NameWebhookPending        = "portcullis_webhook_events_pending"
	NameWebhookOldestPending  = "portcullis_webhook_oldest_pending_age_seconds"
	NameWebhookLatency        = "portcullis_webhook_delivery_latency_seconds"
	NameSessionEventFailures  = "portcullis_session_event_write_failures_total"
)

// webhookMetrics are the collectors of webhook delivery. The endpoint
// label is a configured endpoint's URL without user information, query or
// fragment: a value from the config file, never from a client.
type webhookMetrics struct {
	delivered      *prometheus.CounterVec
	attemptsFailed *prometheus.CounterVec
	failed         *prometheus.CounterVec
	pending        *prometheus.GaugeVec
	oldest         *prometheus.GaugeVec
	latency        *prometheus.HistogramVec
	sessionFails   prometheus.Counter
}

func newWebhookMetrics(reg *prometheus.Registry) webhookMetrics {
	ep := []string{"endpoint"}
	w := webhookMetrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameWebhookDelivered,
			Help: "Events delivered to a webhook endpoint (answered 2xx), by this replica."}, ep),
		attemptsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameWebhookAttemptsFailed,
			Help: "Webhook delivery attempts that failed (network error, timeout or a status other than 2xx) and will be retried or given up."}, ep),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: NameWebhookFailed,
			Help: "Events given up on: still failing once older than events.webhookMaxAge (the feed still has them)."}, ep),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameWebhookPending,
			Help: "Events of the endpoint's types not yet delivered to it, as the store says (every replica reports it)."}, ep),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: NameWebhookOldestPending,
			Help: "Age of the oldest event not yet delivered to the endpoint; 0 when none is pending."}, ep),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: NameWebhookLatency,
			Help:    "Time from an event being written to its delivery being acknowledged (2xx), retries included.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600}}, ep),
		sessionFails: prometheus.NewCounter(prometheus.CounterOpts{Name: NameSessionEventFailures,
			Help: "session.created and session.revoked events that could not be written (the sign-in or revocation itself went ahead)."}),
	}
	reg.MustRegister(w.delivered, w.attemptsFailed, w.failed, w.pending, w.oldest, w.latency, w.sessionFails)
	return w
}

// WebhookEndpoint starts the endpoint's series at zero, so that rate()
// and the backlog alert work from the first scrape.
func (m *Metrics) WebhookEndpoint(endpoint string) {
	if m == nil {
		return
	}
	m.wh.delivered.WithLabelValues(endpoint)
	m.wh.attemptsFailed.WithLabelValues(endpoint)
	m.wh.failed.WithLabelValues(endpoint)
	m.wh.pending.WithLabelValues(endpoint)
	m.wh.oldest.WithLabelValues(endpoint)
}

// WebhookDelivered counts one event delivered, latency after it was written.
func (m *Metrics) WebhookDelivered(endpoint string, latency time.Duration) {
	if m == nil {
		return
	}
	m.wh.delivered.WithLabelValues(endpoint).Inc()
	m.wh.latency.WithLabelValues(endpoint).Observe(max(latency, 0).Seconds())
}

// WebhookAttemptFailed counts one failed attempt.
func (m *Metrics) WebhookAttemptFailed(endpoint string) {
	if m == nil {
		return
	}
	m.wh.attemptsFailed.WithLabelValues(endpoint).Inc()
}

// WebhookGivenUp counts one event given up on.
func (m *Metrics) WebhookGivenUp(endpoint string) {
	if m == nil {
		return
	}
	m.wh.failed.WithLabelValues(endpoint).Inc()
}

// WebhookBacklog sets the endpoint's pending events and the age of the oldest.
func (m *Metrics) WebhookBacklog(endpoint string, pending int, oldest time.Duration) {
	if m == nil {
		return
	}
	m.wh.pending.WithLabelValues(endpoint).Set(float64(pending))
	m.wh.oldest.WithLabelValues(endpoint).Set(max(oldest, 0).Seconds())
}

// SessionEventFailed counts a session event that could not be written.
func (m *Metrics) SessionEventFailed() {
	if m == nil {
		return
	}
	m.wh.sessionFails.Inc()
}
