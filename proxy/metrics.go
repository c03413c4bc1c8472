package proxy

import (
	"time"

	"github.com/portcullis-sso/portcullis/internal/metrics"
)

// verdictOutcome is the requests_total outcome of a gate refusal.
func verdictOutcome(v verdict) metrics.Outcome {
	switch v {
	case verdictRemoved:
		return metrics.OutcomeDeniedInactive
	case verdictUnprovisioned, verdictAmbiguous: // no single directory user for the session
		return metrics.OutcomeDeniedUnprovisioned
	case verdictStale:
		return metrics.OutcomeUnavailable
	case verdictSessionVoided:
		return metrics.OutcomeLoginRequired
	}
	return metrics.OutcomeOther
}

// epoch is what requestState's upstream times are measured from; Sub
// between it and time.Now uses the monotonic clock.
var epoch = time.Now()

func sinceEpoch(t time.Time) time.Duration { return t.Sub(epoch) }

// observe counts a finished request with the proxy's own share of its
// time: the whole of it, less the upstream round trip and the streaming of
// the response (from the moment Rewrite handed the request to the transport
// until ReverseProxy returned). It does not allocate.
func (p *Proxy) observe(st *requestState, start, end time.Time) {
	if p.metrics == nil {
		return
	}
	overhead := end.Sub(start)
	if st.upstreamStart != 0 {
		upEnd := st.upstreamEnd
		if upEnd == 0 { // ReverseProxy aborted (panic): the upstream had the rest
			upEnd = sinceEpoch(end)
		}
		overhead -= upEnd - st.upstreamStart
	}
	p.metrics.Request(st.outcome, max(overhead, 0))
}
