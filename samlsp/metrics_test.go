package samlsp

import (
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/metrics"
)

func metricValue(t *testing.T, m *metrics.Metrics, name string, labels ...string) float64 {
	t.Helper()
	v, _, err := metrics.Value(m.Gatherer(), name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Logins at the real ACS are counted by result and reason code, and no
// label carries the user or the response.
func TestMetrics_LoginsByResultAndReason(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	h := newHarnessWith(t, harnessOpts{options: func(o *Options) { o.Metrics = m }})
	l := h.startLogin("/")
	ok := h.makeResponse(respOpts{requestID: l.requestID})
	h.expectAccepted(t, h.postACS(ok, l.relay, l.cookie), "/")
	h.postACS(ok, l.relay, l.cookie) // the same response again
	if got := metricValue(t, m, metrics.NameSAMLLogins, "result", "succeeded", "reason", ""); got != 1 {
		t.Errorf("succeeded %v, want 1", got)
	}
	reason := h.lastReason()
	if reason == "" {
		t.Fatal("the replayed response was not refused")
	}
	if got := metricValue(t, m, metrics.NameSAMLLogins, "result", "failed", "reason", reason); got != 1 {
		t.Errorf("failed{reason=%s} %v, want 1", reason, got)
	}
	all, err := metrics.LabelValues(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range all[metrics.NameSAMLLogins] {
		if v != "" && v != "succeeded" && v != "failed" && v != reason && v != identity.DefaultOrg {
			t.Errorf("unexpected label value %q", v)
		}
	}
}

func TestMetrics_MetadataRefreshFailuresCounted(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	h := newHarnessWith(t, harnessOpts{noLoad: true, options: func(o *Options) { o.Metrics = m }})
	m.WatchMetadata(h.sp.EachMetadataLoadedAt)
	if err := os.Remove(h.mdFile); err != nil {
		t.Fatal(err)
	}
	h.sp.retryEvery = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.sp.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "two failed loads counted", func() bool {
		return metricValue(t, m, metrics.NameMetadataFailures) >= 2
	})
	if age := metricValue(t, m, metrics.NameMetadataAge); age < 1e300 {
		t.Errorf("metadata age %v with none loaded, want +Inf", age)
	}
}

// Each organization's logins are counted under its own id, a refused one
// included, and each organization's metadata has its own age.
func TestMetrics_ByOrganization(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	h := newOrgHarnessWith(t, false, func(o *Options) { o.Metrics = m })
	m.WatchMetadata(h.sp.EachMetadataLoadedAt)
	acme, globex := h.conn("acme"), h.conn("globex")
	l := h.startAt(acme, "app.example.com")
	h.expectAccepted(t, h.postTo(acme, from(h.acme, acme, l.requestID, "bob@acme.com"), l), "/page")
	l = h.startAt(globex, globexHost)
	h.postTo(globex, from(h.globex, globex, l.requestID, "mallory@acme.com"), l) // not globex's domain
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"result", "succeeded", "organization", "acme"}, 1},
		{[]string{"result", "failed", "organization", "globex"}, 1},
		{[]string{"result", "succeeded", "organization", "globex"}, 0},
		{[]string{"organization", identity.DefaultOrg}, 0},
	} {
		if got := metricValue(t, m, metrics.NameSAMLLogins, c.labels...); got != c.want {
			t.Errorf("logins %v = %v, want %v", c.labels, got, c.want)
		}
	}
	for _, org := range []string{identity.DefaultOrg, "acme", "globex"} {
		v, ok, err := metrics.Value(m.Gatherer(), metrics.NameMetadataAge, "organization", org)
		if err != nil || !ok || math.IsInf(v, 1) { // the harness's clock is not the scrape's: loaded is all we know
			t.Errorf("%s's metadata age %v (present %v, %v), want a loaded one", org, v, ok, err)
		}
	}
}
