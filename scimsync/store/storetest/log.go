package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

func testMissingIDs(t *testing.T, st store.Store) {
	ctx := context.Background()
	createUsers(t, st, NewUser("u1", "alice"))
	createGroup(t, st, NewGroup("g1", "staff"))
	called := false
	for _, tc := range []struct {
		name string
		call func() ([]store.Event, error)
	}{
		{"UpdateUser", func() ([]store.Event, error) {
			return st.UpdateUser(ctx, "nobody", func(u *store.User) (*store.User, error) { called = true; return u, nil }, "t")
		}},
		{"DeleteUser", func() ([]store.Event, error) {
			return st.DeleteUser(ctx, "nobody", func(*store.User) error { called = true; return nil }, "t")
		}},
		{"UpdateGroup", func() ([]store.Event, error) {
			return st.UpdateGroup(ctx, "u1", func(g *store.Group) (*store.Group, error) { called = true; return g, nil }, "t")
		}},
		{"DeleteGroup", func() ([]store.Event, error) {
			return st.DeleteGroup(ctx, "nogroup", func(*store.Group) error { called = true; return nil }, "t")
		}},
		{"UpdateUserWithGroupID", func() ([]store.Event, error) {
			return st.UpdateUser(ctx, "g1", func(u *store.User) (*store.User, error) { called = true; return u, nil }, "t")
		}},
	} {
		called = false
		evs, err := tc.call()
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: error = %v, want ErrNotFound", tc.name, err)
		}
		if called || len(evs) != 0 {
			t.Errorf("%s: fn called = %v, events = %v; want neither", tc.name, called, kinds(evs))
		}
	}
}

func testEventsAfterPages(t *testing.T, st store.Store) {
	ctx := context.Background()
	var users []*store.User
	for i := range 5 {
		users = append(users, NewUser(fmt.Sprintf("u%d", i), fmt.Sprintf("user%d", i)))
	}
	createUsers(t, st, users...)
	createGroup(t, st, NewGroup("g1", "staff", "u0", "u1")) // two events
	if evs, err := st.EventsAfter(ctx, 0, 0); err == nil && len(evs) > 0 {
		t.Errorf("EventsAfter(0, 0) returned %d events", len(evs))
	}

	var got []store.Event
	pages := 0
	for seq := int64(0); ; pages++ {
		page, err := st.EventsAfter(ctx, seq, 3)
		if err != nil {
			t.Fatalf("EventsAfter(%d, 3): %v", seq, err)
		}
		if len(page) > 3 {
			t.Fatalf("EventsAfter(%d, 3) returned %d events", seq, len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Seq <= seq {
				t.Fatalf("event Seq %d not after %d", e.Seq, seq)
			}
			seq = e.Seq
		}
		got = append(got, page...)
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	want := []string{
		store.EventUserCreated, store.EventUserCreated, store.EventUserCreated, store.EventUserCreated,
		store.EventUserCreated, store.EventGroupCreated, store.EventGroupMemberAdded,
	}
	if diff := cmp.Diff(want, kinds(got)); diff != "" {
		t.Errorf("paged kinds (-want +got):\n%s", diff)
	}
	if pages != 3 {
		t.Errorf("%d pages of 3 for 7 events, want 3", pages)
	}
	for i, e := range got[:5] {
		if e.ResourceID != users[i].ID {
			t.Errorf("event %d is for %s, want %s", i, e.ResourceID, users[i].ID)
		}
	}
	s := snapshot(t, st)
	if last := got[len(got)-1].Seq; s.Seq != last {
		t.Errorf("snapshot Seq = %d, want the last event %d", s.Seq, last)
	}
	if evs, err := st.EventsAfter(ctx, s.Seq, 10); err != nil || len(evs) != 0 {
		t.Errorf("EventsAfter(last) = %d events, %v; want none", len(evs), err)
	}
}

func testTimesRoundTrip(t *testing.T, st store.Store) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	created := time.Date(2025, 6, 7, 8, 9, 10, 123_456_789, zone)
	u := NewUser("u1", "alice")
	u.Created, u.LastModified, u.ValidAfter = created, created.Add(time.Nanosecond), created.Add(400*time.Microsecond)
	g := NewGroup("g1", "staff")
	g.Created, g.LastModified = created, created.Add(1500*time.Microsecond)
	createUsers(t, st, u)
	createGroup(t, st, g)

	wantT := time.Date(2025, 6, 7, 2, 39, 10, 123_000_000, time.UTC)
	s := snapshot(t, st)
	gu, gg := userByID(s, "u1"), groupByID(s, "g1")
	if gu == nil || gg == nil {
		t.Fatal("user or group missing from snapshot")
	}
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"user.Created", gu.Created, wantT},
		{"user.LastModified", gu.LastModified, wantT},
		{"user.ValidAfter", gu.ValidAfter, wantT},
		{"group.Created", gg.Created, wantT},
		{"group.LastModified", gg.LastModified, wantT.Add(time.Millisecond)},
	} {
		// == compares the location too: UTC is required, not just the same instant.
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v (UTC, milliseconds)", tc.name, tc.got, tc.want)
		}
	}
	for _, e := range allEvents(t, st) {
		if e.Time.Location() != time.UTC || e.Time.Nanosecond()%int(time.Millisecond) != 0 {
			t.Errorf("event %d Time = %v, want UTC milliseconds", e.Seq, e.Time)
		}
		if e.User != nil && e.User.Created != wantT {
			t.Errorf("event user Created = %v, want %v", e.User.Created, wantT)
		}
	}

	// The zero time stays zero (no session cut-off, never modified).
	z := NewUser("u2", "zero")
	z.ValidAfter, z.LastModified = time.Time{}, time.Time{}
	createUsers(t, st, z)
	if gz := userByID(snapshot(t, st), "u2"); gz == nil || !gz.ValidAfter.IsZero() || !gz.LastModified.IsZero() {
		t.Errorf("user with zero times came back as %+v", gz)
	}
}

func testCancelledContext(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.CreateUser(ctx, NewUser("u2", "bob"), "test"); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateUser with a cancelled context: error = %v, want context.Canceled", err)
	}
	_, err := st.UpdateUser(ctx, "u1", func(cur *store.User) (*store.User, error) {
		nu := next(cur)
		nu.Active = false
		return nu, nil
	}, "test")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateUser with a cancelled context: error = %v, want context.Canceled", err)
	}
	if _, err := st.Snapshot(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Snapshot with a cancelled context: error = %v, want context.Canceled", err)
	}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice")}, nil)
}

func testEventsCarryDocExactly(t *testing.T, st store.Store) {
	docs := [][]byte{
		[]byte(`{ "title" : "R&D <lead>",` + "\n" + `  "x": "\u2028" }`), // spaces, HTML characters, an escape
		[]byte(`{"title":"R&D <lead>"}`),
		[]byte("{\"raw\":\"\xe2\x80\xa8\"}"), // a raw U+2028
	}
	for i, doc := range docs {
		u := NewUser(fmt.Sprintf("u%d", i), fmt.Sprintf("user%d", i))
		u.Doc = doc
		createUsers(t, st, u)
	}
	g := NewGroup("g1", "staff")
	g.Doc = docs[0]
	createGroup(t, st, g)

	evs := allEvents(t, st)
	if len(evs) != len(docs)+1 {
		t.Fatalf("event log has %d events, want %d", len(evs), len(docs)+1)
	}
	for i, doc := range docs {
		if e := evs[i]; e.User == nil || string(e.User.Doc) != string(doc) {
			t.Errorf("event %d user doc = %q, want %q byte for byte", i, e.User.Doc, doc)
		}
	}
	if e := evs[len(docs)]; e.Group == nil || string(e.Group.Doc) != string(docs[0]) {
		t.Errorf("group.created doc = %q, want %q", e.Group.Doc, docs[0])
	}
	for i, doc := range docs {
		if u, err := storedUser(t, st, fmt.Sprintf("u%d", i)); err != nil || string(u.Doc) != string(doc) {
			t.Errorf("GetUser %d: doc = %q (%v), want %q", i, u.Doc, err, doc)
		}
	}
	// The snapshot, for the directory view, carries no documents.
	for _, u := range snapshot(t, st).Users {
		if u.Doc != nil {
			t.Errorf("snapshot user %s has a Doc: %q", u.ID, u.Doc)
		}
	}
}
