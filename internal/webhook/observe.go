package webhook

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// observeEvery is how often every replica reads the backlog for the metrics.
const observeEvery = 15 * time.Second

// Observe sets the backlog gauges of every endpoint from the store, every
// observeEvery until ctx ends. Every replica runs it, so the gauges do not
// depend on which one holds the lease.
func Observe(ctx context.Context, st store.Deliveries, eps []Endpoint, m *metrics.Metrics, now func() time.Time, log *zap.Logger) {
	for _, ep := range eps {
		m.WebhookEndpoint(ep.Name())
	}
	for ctx.Err() == nil {
		for _, b := range Backlogs(ctx, st, eps, now) {
			if b.Err != nil {
				if ctx.Err() == nil {
					log.Warn("read webhook backlog", zap.String("endpoint", b.Name), zap.Error(b.Err))
				}
				continue
			}
			m.WebhookBacklog(b.Name, b.Pending, b.OldestAge)
		}
		sleep(ctx, jitter(observeEvery))
	}
}

// Backlog is one endpoint's delivery state and what waits for it.
type Backlog struct {
	Name      string
	State     store.Endpoint
	Pending   int
	OldestAge time.Duration // 0 when nothing is pending
	Err       error
}

// Backlogs reads the state and backlog of each configured endpoint (one
// not yet opened has none pending).
func Backlogs(ctx context.Context, st store.Deliveries, eps []Endpoint, now func() time.Time) []Backlog {
	states, err := st.Endpoints(ctx)
	out := make([]Backlog, len(eps))
	for i, ep := range eps {
		b := &out[i]
		b.Name, b.Err = ep.Name(), err
		if err != nil {
			continue
		}
		found := false
		for _, s := range states {
			if s.URL == ep.URL {
				b.State, found = s, true
			}
		}
		if !found {
			continue
		}
		kinds, err := KindsOf(ep.Types)
		if err != nil {
			b.Err = err
			continue
		}
		var oldest time.Time
		b.Pending, oldest, b.Err = st.Backlog(ctx, b.State.Cursor, kinds)
		if b.Pending > 0 && !oldest.IsZero() {
			b.OldestAge = now().Sub(oldest)
		}
	}
	return out
}
