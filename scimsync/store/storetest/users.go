package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

func testCreateUserSnapshot(t *testing.T, st store.Store) {
	u := NewUser("u1", "alice")
	u.Active = false
	evs, err := st.CreateUser(context.Background(), u, "okta")
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if len(evs) != 1 {
		t.Fatalf("CreateUser returned %d events, want 1", len(evs))
	}
	e := evs[0]
	if e.Kind != store.EventUserCreated || e.ResourceType != "User" || e.ResourceID != "u1" || e.Actor != "okta" {
		t.Errorf("event = %s %s %s by %s, want user.created User u1 by okta", e.Kind, e.ResourceType, e.ResourceID, e.Actor)
	}
	if e.Seq <= 0 || e.Time.IsZero() {
		t.Errorf("event Seq = %d, Time = %v: both must be set", e.Seq, e.Time)
	}
	if diff := cmp.Diff(u, e.User, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("event user (-want +got):\n%s", diff)
	}
	s := wantSnapshot(t, st, []*store.User{u}, nil)
	if s.Seq != e.Seq {
		t.Errorf("snapshot Seq = %d, want %d", s.Seq, e.Seq)
	}
	stored := allEvents(t, st)
	if len(stored) != 1 {
		t.Fatalf("event log has %d events, want 1", len(stored))
	}
	if diff := cmp.Diff(e, stored[0], cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("EventsAfter differs from the event CreateUser returned (-returned +stored):\n%s", diff)
	}
}

func testUserNameUniqueIgnoringCase(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "Alice"), NewUser("u2", "ÉLODIE"))
	for _, tc := range []struct{ id, userName string }{
		{"u3", "alice"},
		{"u4", "ALICE"},
		{"u5", "élodie"}, // the directory lowercases with Unicode rules; the store must agree
	} {
		_, err := st.CreateUser(context.Background(), NewUser(tc.id, tc.userName), "test")
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateUser(%q) error = %v, want ErrConflict", tc.userName, err)
		}
	}
	s := snapshot(t, st)
	if len(s.Users) != 2 {
		t.Errorf("snapshot has %d users, want 2", len(s.Users))
	}
	if n := len(allEvents(t, st)); n != 2 {
		t.Errorf("event log has %d events, want 2 (a refused create appends none)", n)
	}
}

func testDuplicateUserID(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"))
	_, err := st.CreateUser(context.Background(), NewUser("u1", "bob"), "test")
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateUser with a taken ID: error = %v, want ErrConflict", err)
	}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice")}, nil)
}

func testConcurrentCreateSameUserName(t *testing.T, st store.Store) {
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = st.CreateUser(context.Background(), NewUser(fmt.Sprintf("u%d", i), fmt.Sprintf("Bob%c", "bB"[i%2])), "test")
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("create %d: error = %v, want nil or ErrConflict", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d creates succeeded, want exactly 1", ok)
	}
	if s := snapshot(t, st); len(s.Users) != 1 {
		t.Errorf("snapshot has %d users, want 1", len(s.Users))
	}
}

func testCreateUserCopiesInput(t *testing.T, st store.Store) {
	u := NewUser("u1", "alice")
	want := NewUser("u1", "alice")
	createUsers(t, st, u)
	u.Doc[2] = 'X'
	u.UserName = "mallory"
	wantSnapshot(t, st, []*store.User{want}, nil)

	g := NewGroup("g1", "staff", "u1")
	createGroup(t, st, g)
	g.Members[0] = "u2"
	g.Doc[2] = 'X'
	rd, _ := st.(store.Reader)
	got, err := rd.GetGroup(context.Background(), "g1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(NewGroup("g1", "staff", "u1"), got, setOpts); diff != "" {
		t.Errorf("group changed with the caller's slices (-want +got):\n%s", diff)
	}
}

// counter reads {"n": N} from a Doc.
func counter(t *testing.T, doc []byte) int {
	var d struct{ N int }
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Errorf("doc %q: %v", doc, err)
	}
	return d.N
}

func testConcurrentUpdates(t *testing.T, st store.Store) {
	u := NewUser("u1", "alice")
	u.Doc = []byte(`{"n":0}`)
	createUsers(t, st, u)
	const n = 20
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := st.UpdateUser(context.Background(), "u1", func(cur *store.User) (*store.User, error) {
				nu := next(cur)
				nu.Doc = fmt.Appendf(nil, `{"n":%d}`, counter(t, cur.Doc)+1)
				return nu, nil
			}, "test")
			if err != nil {
				t.Errorf("UpdateUser: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	got, err := storedUser(t, st, "u1")
	if err != nil {
		t.Fatalf("user u1: %v", err)
	}
	if c := counter(t, got.Doc); c != n {
		t.Errorf("counter = %d after %d concurrent increments: updates were lost", c, n)
	}
	if got.Version != 1+n {
		t.Errorf("Version = %d, want %d", got.Version, 1+n)
	}
	if evs := allEvents(t, st); len(evs) != 1+n {
		t.Errorf("event log has %d events, want %d", len(evs), 1+n)
	}
}

func testUpdateUserFuncError(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"))
	mine := errors.New("scim: invalid value")
	for _, want := range []error{mine, store.ErrPrecondition} {
		called := false
		_, err := st.UpdateUser(context.Background(), "u1", func(cur *store.User) (*store.User, error) {
			called = true
			cur.UserName = "mallory" // a copy: must not reach the store
			cur.Doc[2] = 'X'
			cur.Active = false
			return nil, want
		}, "test")
		if !called {
			t.Fatal("update function not called")
		}
		if err != want {
			t.Errorf("UpdateUser error = %v, want %v unchanged", err, want)
		}
	}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice")}, nil)
	if n := len(allEvents(t, st)); n != 1 {
		t.Errorf("event log has %d events, want 1", n)
	}
}

func testUpdateUserRenameConflict(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"), NewUser("u2", "bob"))
	_, err := st.UpdateUser(context.Background(), "u2", func(cur *store.User) (*store.User, error) {
		nu := next(cur)
		nu.UserName = "ALICE"
		return nu, nil
	}, "test")
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("rename onto another user's name: error = %v, want ErrConflict", err)
	}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice"), NewUser("u2", "bob")}, nil)
}

func testUpdateUserCaseRename(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"))
	evs, err := st.UpdateUser(context.Background(), "u1", func(cur *store.User) (*store.User, error) {
		nu := next(cur)
		nu.UserName = "Alice"
		return nu, nil
	}, "test")
	if err != nil {
		t.Fatalf("renaming alice to Alice: %v", err)
	}
	if len(evs) != 1 || evs[0].User == nil || evs[0].User.UserName != "Alice" {
		t.Errorf("events = %+v, want one carrying userName Alice", evs)
	}
	if got := userByID(snapshot(t, st), "u1"); got == nil || got.UserName != "Alice" {
		t.Errorf("stored user = %+v, want userName Alice", got)
	}
}

func testUpdateUserReplay(t *testing.T, st store.Store) {
	u := NewUser("u1", "alice")
	createUsers(t, st, u)
	evs, err := st.UpdateUser(context.Background(), "u1", func(cur *store.User) (*store.User, error) {
		return next(cur), nil // same attributes, new version and time: a replayed PATCH
	}, "test")
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if len(evs) != 0 {
		t.Errorf("replay returned events %v, want none", kinds(evs))
	}
	wantSnapshot(t, st, []*store.User{u}, nil) // old Version and LastModified kept
	if n := len(allEvents(t, st)); n != 1 {
		t.Errorf("event log has %d events, want 1", n)
	}
}

func testUserLifecycleEvents(t *testing.T, st store.Store) {
	ctx := context.Background()
	u := NewUser("u1", "alice")
	var got []store.Event
	collect := func(evs []store.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, evs...)
	}
	update := func(change func(u *store.User)) ([]store.Event, error) {
		return st.UpdateUser(ctx, "u1", func(cur *store.User) (*store.User, error) {
			nu := next(cur)
			change(nu)
			return nu, nil
		}, "azure")
	}
	collect(st.CreateUser(ctx, u, "azure"))
	collect(update(func(u *store.User) { u.Email = "alice@example.org" }))
	collect(update(func(u *store.User) { u.Active = false; u.ValidAfter = at(5000) }))
	collect(update(func(u *store.User) { u.Active = true; u.ValidAfter = at(9000) }))
	collect(update(func(u *store.User) { u.Doc = []byte(`{"title":"CTO"}`) }))
	collect(st.DeleteUser(ctx, "u1", func(*store.User) error { return nil }, "azure"))

	want := []string{
		store.EventUserCreated, store.EventUserUpdated, store.EventUserDeactivated,
		store.EventUserReactivated, store.EventUserUpdated, store.EventUserDeleted,
	}
	if diff := cmp.Diff(want, kinds(got)); diff != "" {
		t.Fatalf("returned event kinds (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(got, allEvents(t, st), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("event log differs from the events returned (-returned +log):\n%s", diff)
	}
	for i, e := range got {
		if i > 0 && e.Seq <= got[i-1].Seq {
			t.Errorf("event %d Seq %d not after %d", i, e.Seq, got[i-1].Seq)
		}
		if e.ResourceType != "User" || e.ResourceID != "u1" || e.Actor != "azure" {
			t.Errorf("event %d = %s %s by %s, want User u1 by azure", i, e.ResourceType, e.ResourceID, e.Actor)
		}
		if e.Kind == store.EventUserDeleted { // the user as it was just before
			if prev := got[i-1].User; e.User == nil || prev == nil || !reflect.DeepEqual(*e.User, *prev) {
				t.Errorf("user.deleted carries user %+v, want the user as the event before left it: %+v", e.User, prev)
			}
			continue
		}
		if e.User == nil || e.User.Version != int64(i+1) {
			t.Errorf("event %d (%s) user = %+v, want Version %d", i, e.Kind, e.User, i+1)
		}
	}
	if e := got[2]; e.User == nil || e.User.Active || !e.User.ValidAfter.Equal(at(5000)) {
		t.Errorf("user.deactivated user = %+v, want inactive with ValidAfter %v", e.User, at(5000))
	}
	if len(snapshot(t, st).Users) != 0 {
		t.Error("deleted user still in snapshot")
	}
}

func testDeleteUserFuncError(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"))
	var seen *store.User
	_, err := st.DeleteUser(context.Background(), "u1", func(cur *store.User) error {
		seen = cur
		return store.ErrPrecondition
	}, "test")
	if err != store.ErrPrecondition {
		t.Errorf("DeleteUser error = %v, want ErrPrecondition unchanged", err)
	}
	if seen == nil || seen.ID != "u1" || seen.Version != 1 {
		t.Errorf("fn saw %+v, want the current user u1 at version 1", seen)
	}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice")}, nil)
}

func testUpdateUserFuncModifiesCurrent(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"))
	evs, err := st.UpdateUser(context.Background(), "u1", func(cur *store.User) (*store.User, error) {
		cur.Active = false // cur is fn's own copy: changing it and returning it is a normal update
		cur.Version++
		return cur, nil
	}, "test")
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if diff := cmp.Diff([]string{store.EventUserDeactivated}, kinds(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	want := NewUser("u1", "alice")
	want.Active, want.Version = false, 2
	wantSnapshot(t, st, []*store.User{want}, nil)
}
