package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Value reads one sample from g: the metric called name whose labels
// include every pair in labels ("outcome", "allowed", ...). A counter or
// gauge gives its value, a histogram its sample count. ok is false when no
// such sample exists. It is for the status page and tests, not hot paths.
func Value(g prometheus.Gatherer, name string, labels ...string) (v float64, ok bool, err error) {
	if len(labels)%2 != 0 {
		return 0, false, fmt.Errorf("metrics: labels must be name, value pairs")
	}
	fams, err := g.Gather()
	if err != nil {
		return 0, false, fmt.Errorf("gather: %w", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true, nil
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true, nil
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true, nil
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true, nil
			}
		}
	}
	return 0, false, nil
}

// LabelValues returns every label value of every sample in g,
// by metric name, so tests can prove no value is a user name or path.
func LabelValues(g prometheus.Gatherer) (map[string][]string, error) {
	fams, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	out := map[string][]string{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				out[f.GetName()] = append(out[f.GetName()], lp.GetValue())
			}
		}
	}
	return out, nil
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i < len(pairs); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == pairs[i] && lp.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
