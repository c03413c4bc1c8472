package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// deliveryTests are the webhook delivery and feed tests; each opens its
// own store (some with a clock of their own).
var deliveryTests = []struct {
	name string
	fn   func(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store)
}{
	{"Deliveries_SessionEventsShareTheLogAndFilterByKind", testSessionEventsInFeed},
	{"Deliveries_RolledBackWriteLeavesNoEvent", testRolledBackWriteNoEvent},
	{"Deliveries_SessionsEndedWithTheirUserAreEventsNotRevocations", testSessionsEndedWithUser},
	{"Deliveries_LeaseOneHolderUntilExpiry", testLease},
	{"Deliveries_SaveEndpointNeedsTheLeaseAndNeverMovesBack", testSaveEndpointFenced},
	{"Deliveries_ConfigChangeReenablesEndpoint", testEndpointReenabled},
	{"Deliveries_PruneForgetsDeletedUsersAndFeedAnswersGone", testPrune},
	{"Deliveries_UserEventsCarryTheirGroupsAndDeletedTheUserAsItWas", testUserEventGroups},
	{"Deliveries_OnEventsToldOfEachCommittedWriteWithEvents", testOnEvents},
}

// deliveries is st's delivery side: a backend's store gives it by its Deliveries method.
func deliveries(t *testing.T, st store.Store) store.Deliveries {
	t.Helper()
	d, ok := st.(interface{ Deliveries() store.Deliveries })
	if !ok {
		t.Fatalf("%T has no Deliveries() store.Deliveries", st)
	}
	return d.Deliveries()
}

// clock is a settable clock for the store.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time       { return at(int(c.ms.Load())) }
func (c *clock) add(d time.Duration)  { c.ms.Add(d.Milliseconds()) }
func withClock(c *clock) store.Option { return store.WithClock(c.now) }

func testSessionEventsInFeed(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	st := openClosed(t, open)
	d := deliveries(t, st)
	createUsers(t, st, NewUser("u1", "alice"))
	got, err := d.AppendSessionCreated(ctx, store.RevokedSession{ID: "s1", UserID: "u1", User: "alice",
		Email: "alice@example.com", Issued: at(1), Expires: at(60_000)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 2 || got.ResourceID != "s1" || got.Kind != store.EventSessionCreated {
		t.Errorf("appended = %+v, want session.created seq 2 of s1", got)
	}
	if _, err := d.AppendSessionCreated(ctx, store.RevokedSession{UserID: "u1"}); err == nil {
		t.Error("AppendSessionCreated accepted a session without ID or expiry")
	}
	evs, err := d.FeedEvents(ctx, 0, 0, []string{store.EventSessionCreated}, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := store.RevokedSession{Org: store.DefaultOrg, ID: "s1", UserID: "u1", User: "alice", Email: "alice@example.com",
		Issued: at(1), Expires: at(60_000)}
	if len(evs) != 1 || evs[0].Session == nil || *evs[0].Session != want {
		t.Fatalf("feed of session.created = %+v, want the one event with its session %+v", evs, want)
	}
	all, err := d.FeedEvents(ctx, 0, 1, nil, 10)
	if err != nil || len(all) != 1 || all[0].Kind != store.EventUserCreated {
		t.Errorf("feed up to seq 1 = %+v, %v; want user.created only", all, err)
	}
	if last, err := d.LastSeq(ctx); err != nil || last != 2 {
		t.Errorf("LastSeq = %d, %v; want 2", last, err)
	}
	n, oldest, err := d.Backlog(ctx, 0, []string{store.EventUserCreated})
	if err != nil || n != 1 || oldest.IsZero() {
		t.Errorf("Backlog = %d, %v, %v; want 1 with a time", n, oldest, err)
	}
}

func testRolledBackWriteNoEvent(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	st := openClosed(t, open)
	createUsers(t, st, NewUser("u1", "alice"))
	if _, err := st.CreateUser(ctx, NewUser("u2", "ALICE"), "test"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateUser of a taken userName = %v, want ErrConflict", err)
	}
	// The group row is inserted before the unknown member fails the write.
	if _, err := st.CreateGroup(ctx, &store.Group{ID: "g1", DisplayName: "g", Members: []string{"u1", "nobody"}}, "test"); err == nil {
		t.Fatal("CreateGroup with an unknown member succeeded")
	}
	if last, err := deliveries(t, st).LastSeq(ctx); err != nil || last != 1 {
		t.Errorf("LastSeq after two failed writes = %d, %v; want 1", last, err)
	}
}

func testLease(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	var c clock
	d := deliveries(t, openClosed(t, open, withClock(&c)))
	take := func(holder string, want bool) {
		t.Helper()
		got, err := d.Lease(ctx, "webhooks", holder, 10*time.Second)
		if err != nil || got != want {
			t.Fatalf("Lease(%s) = %v, %v; want %v", holder, got, err, want)
		}
	}
	take("a", true)
	take("b", false)
	c.add(9 * time.Second)
	take("a", true) // renewed until 19 s
	c.add(9 * time.Second)
	take("b", false)
	c.add(2 * time.Second)
	take("b", true) // a's lease expired
	take("a", false)
	if err := d.ReleaseLease(ctx, "webhooks", "a"); err != nil {
		t.Fatal(err)
	}
	take("a", false) // a cannot release b's lease
	if err := d.ReleaseLease(ctx, "webhooks", "b"); err != nil {
		t.Fatal(err)
	}
	take("a", true)
}

func testSaveEndpointFenced(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	var c clock
	d := deliveries(t, openClosed(t, open, withClock(&c)))
	e, err := d.OpenEndpoint(ctx, "http://app/hook", "h1", 7)
	if err != nil || e.Cursor != 7 || e.ConfigHash != "h1" {
		t.Fatalf("OpenEndpoint = %+v, %v", e, err)
	}
	e.Cursor, e.Delivered, e.LastSuccess = 9, 2, at(5)
	if err := d.SaveEndpoint(ctx, e, "webhooks", "a"); err != nil {
		t.Fatal(err)
	}
	if got := endpoint(t, d); got.Cursor != 7 {
		t.Errorf("a save without the lease moved the cursor to %d", got.Cursor)
	}
	if ok, err := d.Lease(ctx, "webhooks", "a", time.Minute); !ok || err != nil {
		t.Fatalf("Lease = %v, %v", ok, err)
	}
	if err := d.SaveEndpoint(ctx, e, "webhooks", "a"); err != nil {
		t.Fatal(err)
	}
	got := endpoint(t, d)
	if got.Cursor != 9 || got.Delivered != 2 || !got.LastSuccess.Equal(at(5)) {
		t.Errorf("saved = %+v, want cursor 9, delivered 2, last success set", got)
	}
	e.Cursor, e.Attempts, e.NextAttempt = 8, 3, at(100)
	if err := d.SaveEndpoint(ctx, e, "webhooks", "a"); err != nil {
		t.Fatal(err)
	}
	if got := endpoint(t, d); got.Cursor != 9 || got.Attempts != 3 || !got.NextAttempt.Equal(at(100)) {
		t.Errorf("after saving cursor 8: %+v, want cursor still 9 and the retry state saved", got)
	}
}

func endpoint(t *testing.T, d store.Deliveries) store.Endpoint {
	t.Helper()
	es, err := d.Endpoints(context.Background())
	if err != nil || len(es) != 1 {
		t.Fatalf("Endpoints = %+v, %v; want one", es, err)
	}
	return es[0]
}

func testEndpointReenabled(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	var c clock
	d := deliveries(t, openClosed(t, open, withClock(&c)))
	e, _ := d.OpenEndpoint(ctx, "http://app/hook", "h1", 0)
	if ok, err := d.Lease(ctx, "webhooks", "a", time.Minute); !ok || err != nil {
		t.Fatalf("Lease = %v, %v", ok, err)
	}
	e.Disabled, e.DisabledStatus, e.Attempts = at(1), 410, 2
	if err := d.SaveEndpoint(ctx, e, "webhooks", "a"); err != nil {
		t.Fatal(err)
	}
	if again, _ := d.OpenEndpoint(ctx, "http://app/hook", "h1", 0); again.Disabled.IsZero() || again.DisabledStatus != 410 {
		t.Errorf("reopened with the same config: %+v, want still disabled", again)
	}
	changed, err := d.OpenEndpoint(ctx, "http://app/hook", "h2", 0)
	if err != nil || !changed.Disabled.IsZero() || changed.Attempts != 0 || changed.ConfigHash != "h2" {
		t.Errorf("reopened with a new config: %+v, %v; want enabled, retries cleared", changed, err)
	}
}

func testPrune(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	var c clock
	st := openClosed(t, open, withClock(&c))
	d := deliveries(t, st)
	lg := ledger(t, st)
	createUsers(t, st, NewUser("u1", "alice"), NewUser("u2", "bob"))
	for _, who := range []string{"alice", "bob"} {
		if err := lg.RecordLogin(ctx, store.Login{MatchKey: who, User: who, SessionID: "s-" + who,
			Issued: c.now(), Expires: c.now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	c.add(time.Minute)
	if _, err := st.DeleteUser(ctx, "u1", func(*store.User) error { return nil }, "test"); err != nil {
		t.Fatal(err)
	}
	c.add(time.Hour)
	createUsers(t, st, NewUser("u3", "carol")) // seq 4, young
	n, err := d.Prune(ctx, c.now().Add(-30*time.Minute), 100)
	if err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want the 3 old events", n, err)
	}
	if _, err := d.FeedEvents(ctx, 2, 0, nil, 10); !errors.Is(err, store.ErrGone) {
		t.Errorf("feed after a pruned event: %v, want ErrGone", err)
	}
	if evs, err := d.FeedEvents(ctx, 3, 0, nil, 10); err != nil || len(evs) != 1 || evs[0].Seq != 4 {
		t.Errorf("feed after the last pruned event = %+v, %v; want seq 4", evs, err)
	}
	if l, err := lg.LoginsOf(ctx, "", "alice", time.Time{}, c.now().Add(-time.Hour)); err != nil || !l.Last.IsZero() || l.LiveTotal != 0 {
		t.Errorf("deleted user's ledger after prune = %+v, %v; want forgotten", l, err)
	}
	if l, err := lg.LoginsOf(ctx, "", "bob", time.Time{}, c.now().Add(-time.Hour)); err != nil || l.Last.IsZero() {
		t.Errorf("living user's ledger after prune = %+v, %v; want kept", l, err)
	}
	if n, err := d.Prune(ctx, c.now(), 3); err != nil || n != 0 {
		t.Errorf("Prune bounded by upto 3 = %d, %v; want nothing more", n, err)
	}
}

func testSessionsEndedWithUser(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	var c clock
	st := openClosed(t, open, withClock(&c))
	d := deliveries(t, st)
	for _, sid := range []string{"s1", "s2"} {
		if err := ledger(t, st).RecordLogin(ctx, store.Login{MatchKey: "alice", User: "alice", SessionID: sid,
			Issued: c.now(), Expires: c.now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := d.AppendSessionsEnded(ctx, "", "alice", store.ReasonDeactivated, "scim")
	if err != nil || len(evs) != 2 {
		t.Fatalf("AppendSessionsEnded = %+v, %v; want two events", evs, err)
	}
	for _, e := range evs {
		if e.Kind != store.EventSessionRevoked || e.Session.Reason != store.ReasonDeactivated || e.Session.User != "" {
			t.Errorf("event %+v: want session.revoked, reason deactivated, no user name", e)
		}
	}
	if _, err := d.AppendSessionsEnded(ctx, "", "alice", "logout", "scim"); err == nil {
		t.Error("AppendSessionsEnded took reason logout, which SessionEnder owns")
	}
	snap := snapshot(t, st)
	if len(snap.RevokedSessions) != 0 {
		t.Errorf("snapshot has revoked sessions %+v: ending with the user must not mark the ledger", snap.RevokedSessions)
	}
}

func testUserEventGroups(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	st := openClosed(t, open)
	d := deliveries(t, st)
	alice := NewUser("u1", "alice")
	alice.Doc = []byte(`{"userName":"alice","name":{"givenName":"Alice"},"emails":[{"value":"alice@example.com"}]}`)
	createUsers(t, st, alice, NewUser("u2", "bob"))
	createGroup(t, st, &store.Group{ID: "g2", DisplayName: "staff", Members: []string{"u1", "u2"}})
	createGroup(t, st, &store.Group{ID: "g1", DisplayName: "admins", Members: []string{"u1"}})
	both := []store.GroupRef{{ID: "g1", DisplayName: "admins"}, {ID: "g2", DisplayName: "staff"}}
	evs, err := st.UpdateUser(ctx, "u1", func(cur *store.User) (*store.User, error) {
		cur.Active = false
		return cur, nil
	}, "test")
	if err != nil || len(evs) != 1 || evs[0].Kind != store.EventUserDeactivated || !reflect.DeepEqual(evs[0].Groups, both) {
		t.Fatalf("deactivation's events = %+v, %v; want user.deactivated with groups %v", evs, err, both)
	}
	// The deletion carries the groups left at its time.
	if _, err := st.DeleteGroup(ctx, "g2", func(*store.Group) error { return nil }, "test"); err != nil {
		t.Fatal(err)
	}
	del, err := st.DeleteUser(ctx, "u1", func(*store.User) error { return nil }, "test")
	if err != nil || len(del) != 1 {
		t.Fatalf("DeleteUser = %+v, %v", del, err)
	}
	feed, err := d.FeedEvents(ctx, 0, 0, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	var created, deleted []store.Event
	for _, e := range feed {
		switch {
		case e.Kind == store.EventUserCreated:
			created = append(created, e)
		case e.Kind == store.EventUserDeleted:
			deleted = append(deleted, e)
		case e.Kind == store.EventUserDeactivated && !reflect.DeepEqual(e.Groups, both):
			t.Errorf("stored user.deactivated has groups %+v, want %+v", e.Groups, both)
		}
	}
	for _, e := range created {
		if e.Groups == nil || len(e.Groups) != 0 {
			t.Errorf("user.created of %s has groups %#v, want none recorded as empty, not nil", e.ResourceID, e.Groups)
		}
	}
	wantGroups := []store.GroupRef{{ID: "g1", DisplayName: "admins"}}
	for _, e := range append(del, deleted...) {
		u := e.User
		if u == nil || u.ID != "u1" || u.UserName != "alice" || u.Active || u.ExternalID != "ext-u1" ||
			string(u.Doc) != string(alice.Doc) || !reflect.DeepEqual(e.Groups, wantGroups) {
			t.Errorf("user.deleted = %+v (user %+v); want alice as she was, inactive, her doc, groups %v", e, u, wantGroups)
		}
	}
	if len(deleted) != 1 {
		t.Errorf("feed has %d user.deleted, want 1", len(deleted))
	}
}

func testOnEvents(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	st := openClosed(t, open)
	d := deliveries(t, st)
	var told atomic.Int32
	d.OnEvents(func() { told.Add(1) })
	want := func(n int32, after string) {
		t.Helper()
		if got := told.Load(); got != n {
			t.Errorf("after %s: told %d times, want %d", after, got, n)
		}
	}
	createUsers(t, st, NewUser("u1", "alice"))
	want(1, "a user created")
	if _, err := st.CreateUser(ctx, NewUser("u2", "ALICE"), "test"); err == nil {
		t.Fatal("a taken userName was created")
	}
	want(1, "a refused write")
	if _, err := st.UpdateUser(ctx, "u1", func(cur *store.User) (*store.User, error) { return cur, nil }, "test"); err != nil {
		t.Fatal(err)
	}
	want(1, "a write that changed nothing")
	if _, err := d.AppendSessionCreated(ctx, store.RevokedSession{ID: "s1", UserID: "u1", Issued: at(1), Expires: at(60_000)}); err != nil {
		t.Fatal(err)
	}
	want(2, "a session event")
	if o, ok := st.(interface{ ForOrg(string) *store.OrgStore }); ok {
		createUsers(t, o.ForOrg("acme"), NewUser("u3", "carol"))
		want(3, "another organization's write")
	}
}
