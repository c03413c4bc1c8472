package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// ledgerTests are the login ledger and event stats tests; Run runs them
// with the others.
var ledgerTests = []struct {
	name string
	fn   func(t *testing.T, st store.Store)
}{
	{"Ledger_LastLoginAndLiveSessions", testLedgerLiveSessions},
	{"Ledger_ExpiredSessionsArePruned", testLedgerPrunesExpired},
	{"Ledger_RequiresMatchKeyAndSession", testLedgerRequiresKeys},
	{"Ledger_LoginsOfOneOrganizationOnly", testLedgerOrgScoped},
	{"EventStats_LastOfEachKindAndCountSince", testEventStats},
	{"EventStats_OfOneOrganizationOnly", testEventStatsOrgScoped},
}

// ledger is st's login ledger: a backend's store gives it by its Ledger method.
func ledger(t *testing.T, st store.Store) store.Ledger {
	t.Helper()
	lg, ok := st.(interface{ Ledger() store.Ledger })
	if !ok {
		t.Fatalf("%T has no Ledger() store.Ledger", st)
	}
	return lg.Ledger()
}

// future is a base for ledger times after the store's real clock, so that
// the store's pruning (which uses its own clock) leaves them alone.
func future(ms int) time.Time {
	return time.Now().Add(48 * time.Hour).Truncate(time.Hour).Add(time.Duration(ms) * time.Millisecond).UTC()
}

func testLedgerLiveSessions(t *testing.T, st store.Store) {
	ctx := context.Background()
	lg := ledger(t, st)
	b0 := future(0)
	rec := func(l store.Login) {
		t.Helper()
		if err := lg.RecordLogin(ctx, l); err != nil {
			t.Fatalf("RecordLogin(%s): %v", l.SessionID, err)
		}
	}
	hour := time.Hour
	voided := store.Login{MatchKey: "alice@example.com", User: "alice", SessionID: "s-voided",
		Issued: b0, Expires: b0.Add(8 * hour)}
	ended := store.Login{MatchKey: "alice@example.com", User: "alice", SessionID: "s-ended",
		Issued: b0.Add(2 * hour), Expires: b0.Add(3 * hour)}
	live1 := store.Login{MatchKey: "alice@example.com", User: "alice", SessionID: "s-live1",
		Issued: b0.Add(3 * hour), Expires: b0.Add(11 * hour), IdPInitiated: true}
	live2 := store.Login{MatchKey: "alice@example.com", User: "Alice", SessionID: "s-live2",
		Issued: b0.Add(4 * hour), Expires: b0.Add(12 * hour)}
	other := store.Login{MatchKey: "bob@example.com", User: "bob", SessionID: "s-bob",
		Issued: b0.Add(5 * hour), Expires: b0.Add(13 * hour)}
	for _, l := range []store.Login{voided, ended, live2, live1, other} {
		rec(l)
	}
	rec(live1) // recorded twice (a retried hook): still one session

	validAfter, now := b0.Add(time.Hour), b0.Add(5*hour)
	got, err := lg.LoginsOf(ctx, "", "alice@example.com", validAfter, now)
	if err != nil {
		t.Fatalf("LoginsOf: %v", err)
	}
	want := store.Logins{Last: live2.Issued, Live: []store.Login{live2, live1}, LiveTotal: 2}
	if diff := cmp.Diff(want, got, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("LoginsOf(alice) (-want +got):\n%s", diff)
	}

	// Without a ValidAfter the voided session is live again; the ended one never is.
	got, err = lg.LoginsOf(ctx, "", "alice@example.com", time.Time{}, now)
	if err != nil {
		t.Fatalf("LoginsOf: %v", err)
	}
	if got.LiveTotal != 3 || len(got.Live) != 3 || got.Live[2].SessionID != "s-voided" {
		t.Errorf("LoginsOf(alice, no validAfter) = %+v, want live2, live1, voided", got)
	}

	none, err := lg.LoginsOf(ctx, "", "carol@example.com", time.Time{}, now)
	if err != nil {
		t.Fatalf("LoginsOf(carol): %v", err)
	}
	if !none.Last.IsZero() || none.LiveTotal != 0 || len(none.Live) != 0 {
		t.Errorf("LoginsOf(never logged in) = %+v, want nothing", none)
	}
}

func testLedgerPrunesExpired(t *testing.T, st store.Store) {
	ctx := context.Background()
	lg := ledger(t, st)
	// Expired by the store's clock: the next RecordLogin deletes it. The
	// query's own now is before its expiry, so only the prune can hide it.
	old := store.Login{MatchKey: "dave@example.com", User: "dave", SessionID: "s-old",
		Issued: at(0), Expires: at(60_000)}
	for _, l := range []store.Login{old, {MatchKey: "erin@example.com", User: "erin", SessionID: "s-new",
		Issued: future(0), Expires: future(3_600_000)}} {
		if err := lg.RecordLogin(ctx, l); err != nil {
			t.Fatalf("RecordLogin(%s): %v", l.SessionID, err)
		}
	}
	got, err := lg.LoginsOf(ctx, "", "dave@example.com", time.Time{}, at(1000))
	if err != nil {
		t.Fatalf("LoginsOf: %v", err)
	}
	if got.LiveTotal != 0 {
		t.Errorf("expired session still stored: %+v", got.Live)
	}
	if !got.Last.Equal(at(0)) {
		t.Errorf("Last = %v, want %v: the last login outlives its session", got.Last, at(0))
	}
}

func testLedgerRequiresKeys(t *testing.T, st store.Store) {
	lg := ledger(t, st)
	for _, l := range []store.Login{
		{User: "x", SessionID: "s", Issued: future(0), Expires: future(1)},
		{MatchKey: "x", User: "x", Issued: future(0), Expires: future(1)},
	} {
		if err := lg.RecordLogin(context.Background(), l); err == nil {
			t.Errorf("RecordLogin(%+v) = nil, want an error", l)
		}
	}
}

func testEventStats(t *testing.T, st store.Store) {
	ctx := context.Background()
	lg := as[store.EventSummary](t, st)
	empty, err := lg.EventStats(ctx, "", time.Time{})
	if err != nil {
		t.Fatalf("EventStats(empty): %v", err)
	}
	if len(empty.Last) != 0 || empty.Since != 0 {
		t.Errorf("EventStats of an empty log = %+v", empty)
	}

	var evs []store.Event
	collect := func(e []store.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e...)
	}
	collect(st.CreateUser(ctx, NewUser("u1", "alice"), "azure"))
	collect(st.CreateUser(ctx, NewUser("u2", "bob"), "azure"))
	time.Sleep(5 * time.Millisecond) // a distinct event time for the since cut
	collect(st.UpdateUser(ctx, "u1", func(cur *store.User) (*store.User, error) {
		nu := next(cur)
		nu.Active = false
		return nu, nil
	}, "okta"))
	collect(st.CreateGroup(ctx, NewGroup("g1", "eng", "u2"), "okta"))

	want, cut := wantEventStats(evs)
	if want.Since == len(evs) {
		t.Fatalf("test setup: every event at or after %v", cut)
	}
	got, err := lg.EventStats(ctx, "", cut)
	if err != nil {
		t.Fatalf("EventStats: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EventStats(since deactivation) (-want +got):\n%s", diff)
	}
	all, err := lg.EventStats(ctx, "", time.Time{})
	if err != nil {
		t.Fatalf("EventStats: %v", err)
	}
	if all.Since != len(evs) {
		t.Errorf("EventStats(zero).Since = %d, want %d", all.Since, len(evs))
	}
}

// testEventStatsOrgScoped: EventStats of one organization counts and
// shows that organization's events only, though another's are newer; ""
// is every organization's; an organization with no events has none.
func testEventStatsOrgScoped(t *testing.T, st store.Store) {
	ctx := context.Background()
	sc, ok := st.(scoped)
	if !ok {
		t.Fatalf("%T has no ForOrg", st)
	}
	es := as[store.EventSummary](t, st)
	orgs := map[string]*store.OrgStore{store.DefaultOrg: sc.ForOrg(""), "acme": sc.ForOrg("acme")}
	evs := map[string][]store.Event{}
	into := func(org string) func([]store.Event, error) {
		return func(e []store.Event, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", org, err)
			}
			evs[org] = append(evs[org], e...)
		}
	}
	deactivate := func(cur *store.User) (*store.User, error) {
		nu := next(cur)
		nu.Active = false
		return nu, nil
	}
	// Interleaved, so that each kind's newest event overall is the other
	// organization's at least once.
	into("acme")(orgs["acme"].CreateUser(ctx, NewUser("a1", "alice"), "okta-acme"))
	into("default")(orgs["default"].CreateUser(ctx, NewUser("d1", "alice"), "azure-default"))
	into("default")(orgs["default"].CreateUser(ctx, NewUser("d2", "bob"), "azure-default"))
	time.Sleep(5 * time.Millisecond) // a distinct event time for each since cut
	into("default")(orgs["default"].UpdateUser(ctx, "d1", deactivate, "azure-default"))
	into("acme")(orgs["acme"].CreateUser(ctx, NewUser("a2", "bob"), "okta-acme"))
	time.Sleep(5 * time.Millisecond)
	into("acme")(orgs["acme"].UpdateUser(ctx, "a1", deactivate, "okta-acme"))
	into("acme")(orgs["acme"].CreateGroup(ctx, NewGroup("ag", "eng", "a2"), "okta-acme"))
	into("default")(orgs["default"].CreateGroup(ctx, NewGroup("dg", "eng", "d2"), "azure-default"))

	for _, org := range []string{store.DefaultOrg, "acme"} {
		want, cut := wantEventStats(evs[org])
		got, err := es.EventStats(ctx, org, cut)
		if err != nil {
			t.Fatalf("EventStats(%s): %v", org, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("EventStats(%s, since its deactivation) (-want +got):\n%s", org, diff)
		}
	}
	all, err := es.EventStats(ctx, "", time.Time{})
	if err != nil {
		t.Fatalf("EventStats(every organization): %v", err)
	}
	if n := len(evs[store.DefaultOrg]) + len(evs["acme"]); all.Since != n {
		t.Errorf("EventStats(every organization).Since = %d, want %d", all.Since, n)
	}
	none, err := es.EventStats(ctx, "globex", time.Time{})
	if err != nil {
		t.Fatalf("EventStats(globex): %v", err)
	}
	if len(none.Last) != 0 || none.Since != 0 {
		t.Errorf("EventStats of an organization without events = %+v", none)
	}
}

// wantEventStats is what EventStats should say of evs, the events some
// writes returned, since the last deactivation among them (cut).
func wantEventStats(evs []store.Event) (want store.EventStats, cut time.Time) {
	last := map[string]store.Event{}
	for _, e := range evs {
		last[e.Kind] = e // in seq order: the newest wins
	}
	for _, k := range store.EventKinds {
		if e, ok := last[k]; ok {
			want.Last = append(want.Last, store.LastEvent{Kind: k, Seq: e.Seq, Time: e.Time, Actor: e.Actor})
		}
	}
	cut = last[store.EventUserDeactivated].Time
	for _, e := range evs {
		if !e.Time.Before(cut) {
			want.Since++
		}
	}
	return want, cut
}

// testLedgerOrgScoped: the same match key signed in to two organizations
// is two people. LoginsOf of one organization shows neither the other's
// last login nor its sessions, and a revocation in one leaves the other's
// session live.
func testLedgerOrgScoped(t *testing.T, st store.Store) {
	ctx := context.Background()
	lg := ledger(t, st)
	b := future(0)
	for _, l := range []store.Login{
		{Org: "", MatchKey: "alice@example.com", User: "alice", SessionID: "s-default", Issued: b, Expires: b.Add(8 * time.Hour)},
		{Org: "acme", MatchKey: "alice@example.com", User: "Alice A", SessionID: "s-acme-1", Issued: b.Add(time.Hour), Expires: b.Add(9 * time.Hour)},
		{Org: "acme", MatchKey: "alice@example.com", User: "Alice A", SessionID: "s-acme-2", Issued: b.Add(2 * time.Hour), Expires: b.Add(10 * time.Hour)},
		{Org: "globex", MatchKey: "gina@globex.test", User: "gina", SessionID: "s-globex", Issued: b.Add(3 * time.Hour), Expires: b.Add(9 * time.Hour)},
	} {
		if err := lg.RecordLogin(ctx, l); err != nil {
			t.Fatalf("RecordLogin(%s): %v", l.SessionID, err)
		}
	}
	now := b.Add(4 * time.Hour)
	ids := func(l store.Logins) []string {
		var out []string
		for _, s := range l.Live {
			out = append(out, s.SessionID)
		}
		return out
	}
	for _, tc := range []struct {
		org, key string
		last     time.Time
		live     []string
	}{
		{"", "alice@example.com", b, []string{"s-default"}},
		{"default", "alice@example.com", b, []string{"s-default"}},
		{"acme", "alice@example.com", b.Add(2 * time.Hour), []string{"s-acme-2", "s-acme-1"}},
		{"globex", "alice@example.com", time.Time{}, nil},
		{"acme", "gina@globex.test", time.Time{}, nil},
		{"", "gina@globex.test", time.Time{}, nil},
		{"globex", "gina@globex.test", b.Add(3 * time.Hour), []string{"s-globex"}},
	} {
		got, err := lg.LoginsOf(ctx, tc.org, tc.key, time.Time{}, now)
		if err != nil {
			t.Fatalf("LoginsOf(%q, %s): %v", tc.org, tc.key, err)
		}
		if !got.Last.Equal(tc.last) || got.LiveTotal != len(tc.live) || !cmp.Equal(ids(got), tc.live) {
			t.Errorf("LoginsOf(%q, %s) = last %v, %d live %v; want last %v, live %v",
				tc.org, tc.key, got.Last, got.LiveTotal, ids(got), tc.last, tc.live)
		}
	}
	evs, err := as[store.SessionRevoker](t, st).RevokeSessions(ctx, store.SessionQuery{Org: "acme", MatchKey: "alice@example.com"}, "admin", "test")
	if err != nil || len(evs) != 2 {
		t.Fatalf("RevokeSessions(acme, alice) = %d events, %v; want acme's two sessions", len(evs), err)
	}
	if got, err := lg.LoginsOf(ctx, "acme", "alice@example.com", time.Time{}, now); err != nil || got.LiveTotal != 0 {
		t.Errorf("acme's alice after revocation: %+v, %v; want no live session", got, err)
	}
	if got, err := lg.LoginsOf(ctx, "", "alice@example.com", time.Time{}, now); err != nil || !cmp.Equal(ids(got), []string{"s-default"}) {
		t.Errorf("default's alice after acme's revocation: %+v, %v; want s-default still live", got, err)
	}
}
