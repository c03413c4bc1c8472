package status

import (
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// absent is what the page shows for a number it does not have: a metric
// not registered (yet), a store not configured.
const absent = "—"

// samples is one Gather of the registry, by metric name, so that every
// number on a page comes from the same instant.
type samples map[string][]*dto.Metric

// gather reads g once; a nil Gatherer or a failed Gather gives no samples
// (every metric then shows as absent) and the error.
func gather(g prometheus.Gatherer) (samples, error) {
	s := samples{}
	if g == nil {
		return s, nil
	}
	fams, err := g.Gather()
	for _, f := range fams { // Gather may return some families with its error
		s[f.GetName()] = f.GetMetric()
	}
	return s, err
}

// value is the one sample of name whose labels include pairs: a counter or
// gauge value, a histogram's count.
func (s samples) value(name string, pairs ...string) (float64, bool) {
	for _, m := range s[name] {
		if hasLabels(m, pairs) {
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true
			}
		}
	}
	return 0, false
}

// sum adds every counter or gauge sample of name for which keep (given the
// sample's label value for label) is true.
func (s samples) sum(name, label string, keep func(v string) bool) (float64, bool) {
	ms, ok := s[name]
	if !ok {
		return 0, false
	}
	var total float64
	for _, m := range ms {
		if !keep(labelValue(m, label)) {
			continue
		}
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return total, true
}

// mean is a histogram's mean and sample count.
func (s samples) mean(name string) (mean float64, n uint64, ok bool) {
	for _, m := range s[name] {
		if h := m.GetHistogram(); h != nil {
			if h.GetSampleCount() == 0 {
				return 0, 0, true
			}
			return h.GetSampleSum() / float64(h.GetSampleCount()), h.GetSampleCount(), true
		}
	}
	return 0, 0, false
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if labelValue(m, pairs[i]) != pairs[i+1] {
			return false
		}
	}
	return true
}

func labelValue(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// count renders a counter or gauge as a whole number, or absent.
func count(v float64, ok bool) string {
	if !ok || math.IsNaN(v) {
		return absent
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// age renders how long ago t was, in a person's units: "3m12s ago".
func age(now, t time.Time) string {
	if t.IsZero() {
		return absent
	}
	d := now.Sub(t)
	switch {
	case d < -time.Second:
		return "in " + roughDuration(-d)
	case d < time.Second:
		return "just now"
	}
	return roughDuration(d) + " ago"
}

// roughDuration is d to the second under an hour, to the minute under a
// day, and in days and hours beyond.
func roughDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Hour:
		return d.Truncate(time.Second).String()
	case d < 24*time.Hour:
		return d.Truncate(time.Minute).String()
	default:
		days := int(d / (24 * time.Hour))
		return strconv.Itoa(days) + "d" + strconv.Itoa(int(d%(24*time.Hour)/time.Hour)) + "h"
	}
}

// secondsAge renders a gauge of seconds (an age) as a duration; +Inf (none
// loaded) as "never loaded".
func secondsAge(v float64, ok bool) string {
	switch {
	case !ok || math.IsNaN(v):
		return absent
	case math.IsInf(v, 1):
		return "never loaded"
	}
	return roughDuration(time.Duration(v * float64(time.Second)))
}

// unixAge renders a gauge of unix seconds as an age; 0 as "never".
func unixAge(now time.Time, v float64, ok bool) string {
	if !ok || math.IsNaN(v) {
		return absent
	}
	if v == 0 {
		return "never"
	}
	return age(now, time.Unix(0, int64(v*1e9)))
}
