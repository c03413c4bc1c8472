package scimsync

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

func metricValue(t *testing.T, m *metrics.Metrics, name string, labels ...string) float64 {
	t.Helper()
	v, _, err := metrics.Value(m.Gatherer(), name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// newSCIMWithMetrics is newSCIM with a registry on the service and the
// directory, rebuilt around the harness's store and directory.
func newSCIMWithMetrics(t *testing.T) (*scimHarness, *metrics.Metrics) {
	t.Helper()
	h := newSCIM(t)
	m := metrics.New()
	h.dir.SetMetrics(m)
	m.WatchDirectory(h.dir)
	svc, err := NewService(Options{
		Config: h.svcConfig(), Store: h.store, Reader: h.store, Directory: h.dir,
		Tokens: mustTokens(t), Now: h.clock.Now, Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(svc)
	t.Cleanup(h.srv.Close)
	return h, m
}

func (h *scimHarness) svcConfig() *config.Config {
	pub, _ := url.Parse("https://app.example.com")
	return &config.Config{Public: pub, SCIM: config.SCIM{Enabled: true, BasePath: "/scim/v2", MaxBodyBytes: 64 << 10, MaxPageSize: 100}}
}

func mustTokens(t *testing.T) []Token {
	t.Helper()
	tokens, err := ParseTokens([]byte("okta " + testToken + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// SCIM requests through the real handler are counted by resource,
// operation and status; applied events by kind; and the directory gauges
// follow the view. No label is a user name, an ID or a path.
func TestMetrics_SCIMRequestsEventsAndGauges(t *testing.T) {
	t.Parallel()
	h, m := newSCIMWithMetrics(t)
	id := h.createUser("alice@example.com")
	h.mustStatus(h.req("GET", "/Users/"+id, ""), 200)
	h.mustStatus(h.req("GET", "/Users?filter="+url.QueryEscape(`userName eq "alice@example.com"`), ""), 200)
	h.mustStatus(h.req("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`), 200)
	h.mustStatus(h.req("GET", "/Users/no-such-id", ""), 404)
	h.mustStatus(h.req("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"staff"}`), 201)
	h.mustStatus(h.req("GET", "/ServiceProviderConfig", ""), 200)
	h.mustStatus(h.req("GET", "/Users/"+id, "", "Authorization", "Bearer wrong-token-0123456789"), 401)

	for _, c := range []struct {
		resource, op, status string
		want                 float64
	}{
		{"Users", "create", "201", 1}, {"Users", "get", "200", 1}, {"Users", "list", "200", 1},
		{"Users", "patch", "200", 1}, {"Users", "get", "404", 1}, {"Users", "get", "401", 1},
		{"Groups", "create", "201", 1}, {"ServiceProviderConfig", "list", "200", 1},
	} {
		if got := metricValue(t, m, metrics.NameSCIMRequests, "resource", c.resource, "operation", c.op, "status", c.status); got != c.want {
			t.Errorf("scim_requests{%s,%s,%s} = %v, want %v", c.resource, c.op, c.status, got, c.want)
		}
	}
	for kind, want := range map[string]float64{store.EventUserCreated: 1, store.EventUserDeactivated: 1, store.EventGroupCreated: 1} {
		if got := metricValue(t, m, metrics.NameDirectoryEvents, "kind", kind); got != want {
			t.Errorf("directory_events{%s} = %v, want %v", kind, got, want)
		}
	}
	if got := metricValue(t, m, metrics.NameDirectoryUsers, "state", "inactive"); got != 1 {
		t.Errorf("inactive users %v, want 1", got)
	}
	if got := metricValue(t, m, metrics.NameDirectoryGroups); got != 1 {
		t.Errorf("groups %v, want 1", got)
	}
	if got := metricValue(t, m, metrics.NameAppliedSeq); got != float64(h.dir.Seq()) || got < 3 {
		t.Errorf("applied seq %v, want the view's %d", got, h.dir.Seq())
	}
	if got := metricValue(t, m, metrics.NameLastEvent); got != float64(h.dir.LastEventTime().UnixNano())/1e9 || got == 0 {
		t.Errorf("last event %v, want the newest event's time %v", got, h.dir.LastEventTime())
	}
	if got := metricValue(t, m, metrics.NamePropagationLag); got != 0 {
		t.Errorf("propagation lag observed %v times for local writes, want 0", got)
	}
	all, err := metrics.LabelValues(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range all {
		for _, v := range vals {
			if strings.Contains(v, "alice") || strings.Contains(v, id) || strings.Contains(v, "/") {
				t.Errorf("%s carries label value %q", name, v)
			}
		}
	}
}

// eventLog is a Store with only an event log, for the follower.
type eventLog struct {
	store.Store
	mu  sync.Mutex
	evs []store.Event
}

func (l *eventLog) EventsAfter(_ context.Context, seq int64, limit int) ([]store.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []store.Event
	for _, e := range l.evs {
		if e.Seq > seq && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// Events the follower brings in (written by another replica) have their
// propagation lag measured from the event's time.
func TestMetrics_FollowerMeasuresPropagationLag(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	dir, err := NewDirectory("userName")
	if err != nil {
		t.Fatal(err)
	}
	dir.SetMetrics(m)
	written := time.Now().Add(-2 * time.Second) // another replica wrote it 2 s ago
	log := &eventLog{evs: []store.Event{{Seq: 1, Time: written, Kind: store.EventUserCreated, ResourceType: "User", ResourceID: "u1",
		User: &store.User{ID: "u1", UserName: "bob", Active: true}}}}
	f := NewFollower(dir, log, nil, FollowerOptions{Poll: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for dir.Seq() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := metricValue(t, m, metrics.NamePropagationLag); got != 1 {
		t.Fatalf("lag observations %v, want 1", got)
	}
	fams, _ := m.Gatherer().Gather()
	for _, fam := range fams {
		if fam.GetName() == metrics.NamePropagationLag {
			if sum := fam.GetMetric()[0].GetHistogram().GetSampleSum(); sum < 2 {
				t.Errorf("lag %.3fs, want at least the 2 s since the event was written", sum)
			}
		}
	}
	if !dir.LastEventTime().Equal(written) {
		t.Errorf("last event time %v, want %v", dir.LastEventTime(), written)
	}
}

func TestPrimeLastEvent_ReadsTheSnapshotsLastEvent(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	log := &eventLog{evs: []store.Event{{Seq: 1, Time: at.Add(-time.Hour)}, {Seq: 2, Time: at}}}
	dir, err := NewDirectory("userName")
	if err != nil {
		t.Fatal(err)
	}
	dir.Load(&store.Snapshot{Seq: 2})
	if err := dir.PrimeLastEvent(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	if !dir.LastEventTime().Equal(at) {
		t.Errorf("last event %v, want %v", dir.LastEventTime(), at)
	}
}

func TestSCIMLabels(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ method, path, resource, op string }{
		{"POST", "/scim/v2/Users", "Users", "create"},
		{"POST", "/scim/v2/Users/.search", "Users", "list"},
		{"GET", "/scim/v2/Groups", "Groups", "list"},
		{"GET", "/scim/v2/Groups/abc", "Groups", "get"},
		{"PUT", "/scim/v2/Users/abc", "Users", "replace"},
		{"PATCH", "/scim/v2/Groups/abc", "Groups", "patch"},
		{"DELETE", "/scim/v2/Users/abc", "Users", "delete"},
		{"HEAD", "/scim/v2/Users", "Users", "other"},
	} {
		res, op := scimLabels("/scim/v2", c.method, c.path)
		if res != c.resource || op != c.op {
			t.Errorf("%s %s: %s %s, want %s %s", c.method, c.path, res, op, c.resource, c.op)
		}
	}
}
