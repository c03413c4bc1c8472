package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/config"
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

// overheadSum is the sum of portcullis_request_overhead_seconds.
func overheadSum(t *testing.T, m *metrics.Metrics) float64 {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == metrics.NameRequestOverhead {
			return f.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	t.Fatal("no overhead histogram")
	return 0
}

// TestMetrics_RequestsByOutcome drives one request of each outcome through
// the real chain and reads the counters back from the registry.
func TestMetrics_RequestsByOutcome(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	carol := identity.Principal{User: "carol", Email: "carol@example.com"}
	dave := identity.Principal{User: "dave", Email: "dave@example.com"}
	erin := identity.Principal{User: "erin", Email: "erin@example.com"}
	gate := &mapGate{m: map[string]identity.Standing{
		"alice@example.com": {State: identity.StateActive, ValidAfter: past, Groups: []string{"admins"}},
		"bob@example.com":   {State: identity.StateActive, ValidAfter: past, Groups: []string{"staff"}},
		"carol@example.com": {State: identity.StateInactive, ValidAfter: past},
		"erin@example.com":  {State: identity.StateActive, ValidAfter: time.Now().Add(time.Minute)},
	}}
	h := newHarnessWith(t, newEcho(t).URL, func(c *config.Config) {
		c.SCIM = config.SCIM{Enabled: true, RequireProvisioned: true, GroupsSource: "scim", Match: config.Match{IdentityField: "email"}}
	}, func(o *Options) { o.Gate, o.Metrics = gate, m })
	exp := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		path    string
		cookies []*http.Cookie
		status  int
	}{
		{"/app/alice", h.sessionCookies(alice, exp), 200},
		{"/admin/alice", h.sessionCookies(alice, exp), 200},
		{"/app/anon", nil, 302},
		{"/app/carol", h.sessionCookies(carol, exp), 403},
		{"/app/dave", h.sessionCookies(dave, exp), 403},
		{"/admin/bob", h.sessionCookies(bob, exp), 403},
		{"/app/erin", h.sessionCookies(erin, exp), 302},
		{"/saml/login", nil, http.StatusTeapot}, // fakeAuth
		{"/healthz", nil, 200},
	} {
		if resp := h.do("GET", tc.path, browser, tc.cookies); resp.StatusCode != tc.status {
			t.Fatalf("GET %s: status %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
	}
	want := map[string]float64{
		"allowed": 3, "login_required": 2, "denied_inactive": 1, "denied_unprovisioned": 1,
		"denied_group": 1, "other": 1, "upstream_error": 0, "unavailable": 0,
	}
	var total float64
	for outcome, n := range want {
		total += n
		if got := metricValue(t, m, metrics.NameRequests, "outcome", outcome); got != n {
			t.Errorf("requests{outcome=%s} = %v, want %v", outcome, got, n)
		}
	}
	if got := metricValue(t, m, metrics.NameRequestOverhead); got != total {
		t.Errorf("overhead observations %v, want one per request (%v)", got, total)
	}
	if got := metricValue(t, m, metrics.NameSessionsRevoked); got != 1 {
		t.Errorf("sessions revoked %v, want 1 (erin's)", got)
	}
	assertNoPersonalLabels(t, m)
}

// assertNoPersonalLabels fails if any label value names a user, an email
// or a request path.
func assertNoPersonalLabels(t *testing.T, m *metrics.Metrics) {
	t.Helper()
	all, err := metrics.LabelValues(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range all {
		for _, v := range vals {
			for _, bad := range []string{"alice", "bob", "carol", "dave", "erin", "example.com", "/"} {
				if strings.Contains(v, bad) {
					t.Errorf("%s has label value %q (contains %q)", name, v, bad)
				}
			}
		}
	}
}

func TestMetrics_UpstreamErrorAndUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := metrics.New()
	h := newHarnessWith(t, "http://"+addr, nil, func(o *Options) { o.Metrics = m })
	if resp := h.do("GET", "/healthz", nil, nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if got := metricValue(t, m, metrics.NameRequests, "outcome", "upstream_error"); got != 1 {
		t.Errorf("upstream_error %v, want 1", got)
	}
	if got := metricValue(t, m, metrics.NameRequests, "outcome", "allowed"); got != 0 {
		t.Errorf("allowed %v, want 0: a failed upstream is not an allowed request", got)
	}

	m2 := metrics.New()
	gate := &mapGate{m: map[string]identity.Standing{"bob@example.com": {State: identity.StateActive, ValidAfter: past}}}
	fresh := &fakeFreshness{confirmed: time.Now().Add(-time.Hour)}
	h2 := newHarnessWith(t, newEcho(t).URL, func(c *config.Config) {
		c.SCIM = config.SCIM{Enabled: true, RequireProvisioned: true, GroupsSource: "scim", Match: config.Match{IdentityField: "email"}}
		c.Store = config.Store{MaxStaleness: time.Minute}
	}, func(o *Options) { o.Gate, o.Freshness, o.Metrics = gate, fresh, m2 })
	if resp := h2.do("GET", "/app", browser, h2.sessionCookies(bob, time.Now().Add(time.Hour))); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d with a stale view, want 503", resp.StatusCode)
	}
	if got := metricValue(t, m2, metrics.NameRequests, "outcome", "unavailable"); got != 1 {
		t.Errorf("unavailable %v, want 1", got)
	}
}

// The overhead histogram leaves out the upstream's time: an upstream that
// takes half a second adds nothing like it to the proxy's overhead.
func TestMetrics_OverheadExcludesUpstreamTime(t *testing.T) {
	t.Parallel()
	const upstreamDelay = 500 * time.Millisecond
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(upstreamDelay / 2)
		w.WriteHeader(200)
		_, _ = w.Write([]byte("part one\n"))
		http.NewResponseController(w).Flush()
		time.Sleep(upstreamDelay / 2) // the body streams slowly too
		_, _ = w.Write([]byte("part two\n"))
	}))
	t.Cleanup(slow.Close)
	m := metrics.New()
	h := newHarnessWith(t, slow.URL, nil, func(o *Options) { o.Metrics = m })
	start := time.Now()
	resp := h.do("GET", "/healthz", nil, nil)
	_, _ = io.ReadAll(resp.Body)
	if took := time.Since(start); took < upstreamDelay {
		t.Fatalf("request took %v, less than the upstream's %v: the test upstream is not slow", took, upstreamDelay)
	}
	if got := metricValue(t, m, metrics.NameRequests, "outcome", "allowed"); got != 1 {
		t.Fatalf("allowed %v, want 1", got)
	}
	if sum := overheadSum(t, m); sum >= (upstreamDelay / 2).Seconds() {
		t.Errorf("overhead %.3fs includes the upstream's %v", sum, upstreamDelay)
	}
}

func TestMetrics_StreamsClosedCounted(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	h := newHarnessWith(t, newEcho(t).URL, nil, func(o *Options) { o.Metrics = m })
	cancelled := make(chan struct{}, 2)
	for range 2 {
		defer h.proxy.streams.add("Bob@example.com", func() { cancelled <- struct{}{} })()
	}
	h.proxy.CloseStreams("bob@example.com")
	<-cancelled
	<-cancelled
	if got := metricValue(t, m, metrics.NameStreamsClosed); got != 2 {
		t.Errorf("streams closed %v, want 2", got)
	}
}

// BenchmarkHotPathWithMetrics is BenchmarkHotPath/gate with the metrics
// registry attached, to show that counting adds no allocation.
func BenchmarkHotPathWithMetrics(b *testing.B) {
	codec := newBenchCodec(b)
	gate := &mapGate{m: map[string]identity.Standing{"alice@example.com": {State: identity.StateActive, Groups: []string{"staff", "admins"}}}}
	p, err := New(Options{Config: benchConfig(true), Auth: fakeAuth{}, Sessions: codec, OwnCookiePrefixes: []string{"portcullis_t_"},
		Transport: cannedTransport{}, Gate: gate, Metrics: metrics.New()})
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := codec.Write(rec, nil, benchSession()); err != nil {
		b.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	req := httptest.NewRequest("GET", "http://app.example.com/app/page?x=1", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Cookie", "theme=dark; "+c.Name+"="+c.Value)
	req.RemoteAddr = "192.0.2.10:5555"
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
