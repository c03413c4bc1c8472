package metrics

import (
	"io"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeView struct {
	active, inactive, groups int
	seq                      int64
	last                     time.Time
}

func (v *fakeView) Counts() (int, int, int)  { return v.active, v.inactive, v.groups }
func (v *fakeView) Seq() int64               { return v.seq }
func (v *fakeView) LastEventTime() time.Time { return v.last }

func value(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	v, ok, err := Value(m.Gatherer(), name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("no sample %s%v", name, labels)
	}
	return v
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.Request(OutcomeAllowed, time.Millisecond)
	m.Login("default", "")
	m.Login("default", "replay")
	m.MetadataRefreshFailed("default")
	m.OrganizationServed("default")
	m.SCIMRequest("Users", "create", 201)
	m.DirectoryEvent("user.created")
	m.PropagationLag(time.Second)
	m.SessionRevoked()
	m.StreamsClosed(2)
	m.Drift(DriftInactive)
	m.WatchMetadata(orgsLoadedAt(map[string]time.Time{"default": time.Now()}))
	m.WatchDirectory(&fakeView{})
	m.WatchFreshness(time.Now)
}

// TestHandler_ServesEveryContractName scrapes /metrics as Prometheus would
// and finds every name the dashboards, alerts and status page rely on.
func TestHandler_ServesEveryContractName(t *testing.T) {
	m := New()
	m.WatchMetadata(orgsLoadedAt(map[string]time.Time{"default": time.Now().Add(-time.Minute)}))
	m.WatchDirectory(&fakeView{active: 3, inactive: 1, groups: 2, seq: 42, last: time.Unix(1_700_000_000, 0)})
	m.WatchFreshness(time.Now)
	m.Request(OutcomeAllowed, 200*time.Microsecond)
	m.Login("default", "")
	m.Login("default", "replay")
	m.SCIMRequest("Users", "create", 201)
	m.DirectoryEvent("user.created")
	m.PropagationLag(30 * time.Millisecond)
	m.SessionRevoked()
	m.StreamsClosed(1)
	m.MetadataRefreshFailed("default")

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, name := range []string{
		NameRequests, NameRequestOverhead + "_bucket", NameSAMLLogins, NameMetadataAge, NameMetadataFailures,
		NameSCIMRequests, NameDirectoryEvents, NameLastEvent, NameDirectoryUsers, NameDirectoryGroups,
		NameSessionsRevoked, NameStreamsClosed, NameAppliedSeq, NamePropagationLag + "_bucket", NameIdentityDrift,
		NameDirectoryConfirmed, "go_goroutines", "process_start_time_seconds",
	} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if got := value(t, m, NameDirectoryUsers, "state", "active"); got != 3 {
		t.Errorf("active users %v, want 3", got)
	}
	if got := value(t, m, NameDirectoryUsers, "state", "inactive"); got != 1 {
		t.Errorf("inactive users %v, want 1", got)
	}
	if got := value(t, m, NameAppliedSeq); got != 42 {
		t.Errorf("seq %v, want 42", got)
	}
	if got := value(t, m, NameLastEvent); got != 1_700_000_000 {
		t.Errorf("last event %v, want 1700000000", got)
	}
	if got := value(t, m, NameMetadataAge); got < 59 || got > 120 {
		t.Errorf("metadata age %v, want about 60", got)
	}
	if got := value(t, m, NameSAMLLogins, "result", "failed", "reason", "replay"); got != 1 {
		t.Errorf("failed logins %v, want 1", got)
	}
}

func TestStartsAtZero(t *testing.T) {
	m := New()
	for _, o := range []string{"allowed", "login_required", "denied_inactive", "denied_unprovisioned",
		"denied_group", "upstream_error", "unavailable", "other"} {
		if got := value(t, m, NameRequests, "outcome", o); got != 0 {
			t.Errorf("outcome %s starts at %v", o, got)
		}
	}
	for _, k := range DriftKinds {
		if got := value(t, m, NameIdentityDrift, "kind", k); got != 0 {
			t.Errorf("drift %s starts at %v", k, got)
		}
	}
}

func TestMetadataAge_InfiniteWhileNoneLoaded(t *testing.T) {
	m := New()
	m.WatchMetadata(orgsLoadedAt(map[string]time.Time{"default": {}}))
	m.WatchMetadata(orgsLoadedAt(map[string]time.Time{"default": time.Now()})) // second call ignored, not a duplicate registration panic
	if got := value(t, m, NameMetadataAge); !math.IsInf(got, 1) {
		t.Errorf("age %v with no metadata, want +Inf", got)
	}
}

func TestLabelsStayBounded(t *testing.T) {
	m := New()
	m.SCIMRequest("Users/../../etc", "TRACE", 999)
	m.Drift("alice@example.com")
	m.Request(Outcome(200), 0)
	if got := value(t, m, NameSCIMRequests, "resource", "other", "operation", "other", "status", "other"); got != 1 {
		t.Errorf("unknown SCIM labels counted %v under other, want 1", got)
	}
	if _, ok, _ := Value(m.Gatherer(), NameIdentityDrift, "kind", "alice@example.com"); ok {
		t.Error("a drift kind outside the set became a label value")
	}
	if got := value(t, m, NameRequests, "outcome", "other"); got != 1 {
		t.Errorf("unknown outcome counted %v as other, want 1", got)
	}
}

// TestRequest_DoesNotAllocate guards the proxy's hot path.
func TestRequest_DoesNotAllocate(t *testing.T) {
	m := New()
	if n := testing.AllocsPerRun(1000, func() { m.Request(OutcomeDeniedGroup, 120*time.Microsecond) }); n != 0 {
		t.Errorf("Request allocates %v times", n)
	}
	if got := value(t, m, NameRequests, "outcome", "denied_group"); got < 1000 {
		t.Errorf("denied_group %v, want ≥ 1000", got)
	}
}

// orgsLoadedAt is a WatchMetadata source serving the organizations of at.
func orgsLoadedAt(at map[string]time.Time) func(func(string, time.Time)) {
	return func(fn func(string, time.Time)) {
		for org, t := range at {
			fn(org, t)
		}
	}
}

// TestOrganizationLabel: logins, failed refreshes and metadata ages are
// told apart by organization, and an organization no longer served drops
// out of the age gauge at the next scrape.
func TestOrganizationLabel(t *testing.T) {
	m := New()
	served := map[string]time.Time{"default": time.Now().Add(-time.Minute), "acme": {}, "globex": time.Now().Add(-2 * time.Hour)}
	m.WatchMetadata(orgsLoadedAt(served))
	m.Login("acme", "")
	m.Login("acme", "domain_not_allowed")
	m.Login("globex", "")
	m.Login("globex", "")
	m.Login("default", "")
	m.MetadataRefreshFailed("acme")
	m.OrganizationServed("globex")
	for _, c := range []struct {
		name  string
		pairs []string
		want  float64
	}{
		{NameSAMLLogins, []string{"result", "succeeded", "organization", "acme"}, 1},
		{NameSAMLLogins, []string{"result", "failed", "reason", "domain_not_allowed", "organization", "acme"}, 1},
		{NameSAMLLogins, []string{"result", "succeeded", "organization", "globex"}, 2},
		{NameSAMLLogins, []string{"result", "succeeded", "organization", "default"}, 1},
		{NameMetadataFailures, []string{"organization", "acme"}, 1},
		{NameMetadataFailures, []string{"organization", "globex"}, 0},
	} {
		if got := value(t, m, c.name, c.pairs...); got != c.want {
			t.Errorf("%s %v = %v, want %v", c.name, c.pairs, got, c.want)
		}
	}
	if got := value(t, m, NameMetadataAge, "organization", "acme"); !math.IsInf(got, 1) {
		t.Errorf("acme's age %v with no metadata, want +Inf", got)
	}
	if got := value(t, m, NameMetadataAge, "organization", "globex"); got < 7100 || got > 7300 {
		t.Errorf("globex's age %v, want about 7200", got)
	}
	delete(served, "globex")
	if _, ok, _ := Value(m.Gatherer(), NameMetadataAge, "organization", "globex"); ok {
		t.Error("a removed organization still has a metadata age")
	}
}
