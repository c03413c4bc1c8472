package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

func testDeleteUserLeavesGroups(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"), NewUser("u2", "bob"))
	createGroup(t, st, NewGroup("g1", "staff", "u1", "u2"))
	createGroup(t, st, NewGroup("g2", "admins", "u1"))
	evs, err := st.DeleteUser(context.Background(), "u1", func(*store.User) error { return nil }, "test")
	if err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	// Decided: only user.deleted; whoever applies it drops the memberships.
	if diff := cmp.Diff([]string{store.EventUserDeleted}, kinds(evs)); diff != "" {
		t.Errorf("DeleteUser events (-want +got):\n%s", diff)
	}
	s := snapshot(t, st)
	if g := groupByID(s, "g1"); g == nil || !slices.Equal(g.Members, []string{"u2"}) {
		t.Errorf("g1 = %+v, want members [u2]", g)
	}
	if g := groupByID(s, "g2"); g == nil || len(g.Members) != 0 {
		t.Errorf("g2 = %+v, want no members", g)
	}
	// The user's ID is free again and the new user is in no group.
	createUsers(t, st, NewUser("u1", "alice"))
	for _, g := range snapshot(t, st).Groups {
		if slices.Contains(g.Members, "u1") {
			t.Errorf("recreated u1 is a member of %s", g.ID)
		}
	}
}

func testCreateGroupWithMembers(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"), NewUser("u2", "bob"), NewUser("u3", "carol"))
	g := NewGroup("g1", "staff", "u3", "u1", "u3") // unsorted, a duplicate
	evs, err := st.CreateGroup(context.Background(), g, "okta")
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if diff := cmp.Diff([]string{store.EventGroupCreated, store.EventGroupMemberAdded}, kinds(evs)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	attrs := NewGroup("g1", "staff")
	attrs.Members = nil
	if diff := cmp.Diff(attrs, evs[0].Group); diff != "" {
		t.Errorf("group.created group (-want +got; Members must be nil):\n%s", diff)
	}
	if evs[0].Members != nil {
		t.Errorf("group.created Members = %v, want nil", evs[0].Members)
	}
	if diff := cmp.Diff([]string{"u1", "u3"}, evs[1].Members, setOpts); diff != "" {
		t.Errorf("group.member_added members (-want +got):\n%s", diff)
	}
	if evs[1].Group != nil || evs[1].ResourceID != "g1" || evs[1].ResourceType != "Group" {
		t.Errorf("group.member_added = %+v, want Group nil, Group g1", evs[1])
	}
	wantSnapshot(t, st,
		[]*store.User{NewUser("u1", "alice"), NewUser("u2", "bob"), NewUser("u3", "carol")},
		[]*store.Group{NewGroup("g1", "staff", "u1", "u3")})
	if diff := cmp.Diff(evs, allEvents(t, st)[3:], cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("event log differs from the events returned (-returned +log):\n%s", diff)
	}
}

func testCreateGroupWithoutMembers(t *testing.T, st store.Store) {
	evs, err := st.CreateGroup(context.Background(), NewGroup("g1", "staff"), "test")
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if diff := cmp.Diff([]string{store.EventGroupCreated}, kinds(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	wantSnapshot(t, st, nil, []*store.Group{NewGroup("g1", "staff")})
}

func testDuplicateGroupID(t *testing.T, st store.Store) {
	createGroup(t, st, NewGroup("g1", "staff"))
	_, err := st.CreateGroup(context.Background(), NewGroup("g1", "other"), "test")
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateGroup with a taken ID: error = %v, want ErrConflict", err)
	}
	wantSnapshot(t, st, nil, []*store.Group{NewGroup("g1", "staff")})
}

func testCreateGroupUnknownMember(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"))
	_, err := st.CreateGroup(context.Background(), NewGroup("g1", "staff", "u1", "ghost"), "test")
	if !errors.Is(err, store.ErrUnknownMember) {
		t.Errorf("CreateGroup with member ghost: error = %v, want ErrUnknownMember", err)
	}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice")}, nil)
	if n := len(allEvents(t, st)); n != 1 {
		t.Errorf("event log has %d events, want 1", n)
	}
}

func testUpdateGroupMemberDiff(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"), NewUser("u2", "bob"), NewUser("u3", "carol"), NewUser("u4", "dave"))
	createGroup(t, st, NewGroup("g1", "staff", "u1", "u2"))
	var seen []string
	evs, err := st.UpdateGroup(context.Background(), "g1", func(cur *store.Group) (*store.Group, error) {
		seen = slices.Clone(cur.Members)
		ng := nextGroup(cur)
		ng.Members = []string{"u2", "u4", "u3", "u4"}
		return ng, nil
	}, "okta")
	if err != nil {
		t.Fatalf("UpdateGroup: %v", err)
	}
	if diff := cmp.Diff([]string{"u1", "u2"}, seen, setOpts); diff != "" {
		t.Errorf("fn saw members (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{store.EventGroupMemberAdded, store.EventGroupMemberRemoved}, kinds(evs)); diff != "" {
		t.Fatalf("events (-want +got; no group.updated when only members change):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"u3", "u4"}, evs[0].Members, setOpts); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"u1"}, evs[1].Members); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	g := groupByID(snapshot(t, st), "g1")
	if g == nil {
		t.Fatal("g1 missing from snapshot")
	}
	if diff := cmp.Diff([]string{"u2", "u3", "u4"}, g.Members, setOpts); diff != "" {
		t.Errorf("stored members (-want +got):\n%s", diff)
	}
	if g.Version != 2 {
		t.Errorf("Version = %d after a membership change, want 2", g.Version)
	}
}

func testUpdateGroupAttributes(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"))
	createGroup(t, st, NewGroup("g1", "staff", "u1"))
	evs, err := st.UpdateGroup(context.Background(), "g1", func(cur *store.Group) (*store.Group, error) {
		ng := nextGroup(cur)
		ng.DisplayName = "employees"
		return ng, nil
	}, "test")
	if err != nil {
		t.Fatalf("UpdateGroup: %v", err)
	}
	if diff := cmp.Diff([]string{store.EventGroupUpdated}, kinds(evs)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	want := NewGroup("g1", "staff")
	want.DisplayName, want.Version, want.LastModified = "employees", 2, at(1000)
	if diff := cmp.Diff(want, evs[0].Group); diff != "" {
		t.Errorf("group.updated group (-want +got; Members nil):\n%s", diff)
	}
	want.Members = []string{"u1"}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice")}, []*store.Group{want})
}

func testUpdateGroupUnknownMember(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"), NewUser("u2", "bob"))
	createGroup(t, st, NewGroup("g1", "staff", "u1"))
	_, err := st.UpdateGroup(context.Background(), "g1", func(cur *store.Group) (*store.Group, error) {
		ng := nextGroup(cur)
		ng.DisplayName = "renamed"
		ng.Members = []string{"u2", "ghost"}
		return ng, nil
	}, "test")
	if !errors.Is(err, store.ErrUnknownMember) {
		t.Errorf("adding member ghost: error = %v, want ErrUnknownMember", err)
	}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice"), NewUser("u2", "bob")},
		[]*store.Group{NewGroup("g1", "staff", "u1")})
	if n := len(allEvents(t, st)); n != 4 {
		t.Errorf("event log has %d events, want 4", n)
	}
}

func testUpdateGroupReplay(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"), NewUser("u2", "bob"))
	createGroup(t, st, NewGroup("g1", "staff", "u1", "u2"))
	evs, err := st.UpdateGroup(context.Background(), "g1", func(cur *store.Group) (*store.Group, error) {
		ng := nextGroup(cur)
		slices.Reverse(ng.Members) // same set, other order
		return ng, nil
	}, "test")
	if err != nil {
		t.Fatalf("UpdateGroup: %v", err)
	}
	if len(evs) != 0 {
		t.Errorf("replay returned events %v, want none", kinds(evs))
	}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice"), NewUser("u2", "bob")},
		[]*store.Group{NewGroup("g1", "staff", "u1", "u2")})
	if n := len(allEvents(t, st)); n != 4 {
		t.Errorf("event log has %d events, want 4", n)
	}
}

func testUpdateGroupFuncError(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"))
	createGroup(t, st, NewGroup("g1", "staff", "u1"))
	mine := errors.New("scim: mutability")
	_, err := st.UpdateGroup(context.Background(), "g1", func(cur *store.Group) (*store.Group, error) {
		cur.Members[0] = "ghost" // a copy: must not reach the store
		cur.DisplayName = "x"
		return nil, mine
	}, "test")
	if err != mine {
		t.Errorf("UpdateGroup error = %v, want %v unchanged", err, mine)
	}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice")}, []*store.Group{NewGroup("g1", "staff", "u1")})
}

func testDeleteGroup(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"))
	createGroup(t, st, NewGroup("g1", "staff", "u1"))
	_, err := st.DeleteGroup(context.Background(), "g1", func(cur *store.Group) error {
		if !slices.Equal(cur.Members, []string{"u1"}) {
			t.Errorf("fn saw members %v, want [u1]", cur.Members)
		}
		return store.ErrPrecondition
	}, "test")
	if err != store.ErrPrecondition {
		t.Errorf("DeleteGroup error = %v, want ErrPrecondition unchanged", err)
	}
	evs, err := st.DeleteGroup(context.Background(), "g1", func(*store.Group) error { return nil }, "okta")
	if err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	if len(evs) != 1 || evs[0].Kind != store.EventGroupDeleted || evs[0].ResourceID != "g1" || evs[0].ResourceType != "Group" {
		t.Errorf("events = %+v, want one group.deleted for Group g1", evs)
	}
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice")}, nil)
}

func testLargeGroupAddOne(t *testing.T, st store.Store) {
	n := 10_000
	if testing.Short() {
		n = 1_000
	}
	ids := make([]string, n+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%05d", i)
		createUsers(t, st, NewUser(ids[i], "user"+ids[i]))
	}
	evs, err := st.CreateGroup(context.Background(), NewGroup("g1", "everyone", ids[:n]...), "test")
	if err != nil {
		t.Fatalf("CreateGroup with %d members: %v", n, err)
	}
	if len(evs) != 2 || len(evs[1].Members) != n {
		t.Fatalf("CreateGroup events = %v, want group.created and group.member_added with %d IDs", kinds(evs), n)
	}
	evs, err = st.UpdateGroup(context.Background(), "g1", func(cur *store.Group) (*store.Group, error) {
		if len(cur.Members) != n {
			t.Errorf("fn saw %d members, want %d", len(cur.Members), n)
		}
		ng := nextGroup(cur)
		ng.Members = append(ng.Members, ids[n])
		return ng, nil
	}, "test")
	if err != nil {
		t.Fatalf("UpdateGroup: %v", err)
	}
	if len(evs) != 1 || evs[0].Kind != store.EventGroupMemberAdded || !slices.Equal(evs[0].Members, ids[n:]) {
		t.Errorf("events = %+v, want one group.member_added with [%s]", evs, ids[n])
	}
	g := groupByID(snapshot(t, st), "g1")
	if g == nil || len(g.Members) != n+1 {
		t.Fatalf("snapshot group = %v members, want %d", g, n+1)
	}
	if diff := cmp.Diff(ids, g.Members, setOpts); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
}

func testUpdateGroupFuncModifiesCurrent(t *testing.T, st store.Store) {
	createUsers(t, st, NewUser("u1", "alice"), NewUser("u2", "bob"))
	createGroup(t, st, NewGroup("g1", "staff", "u1"))
	evs, err := st.UpdateGroup(context.Background(), "g1", func(cur *store.Group) (*store.Group, error) {
		cur.Members = append(cur.Members, "u2") // fn's own copy, returned changed
		cur.Version++
		return cur, nil
	}, "test")
	if err != nil {
		t.Fatalf("UpdateGroup: %v", err)
	}
	if len(evs) != 1 || evs[0].Kind != store.EventGroupMemberAdded || !slices.Equal(evs[0].Members, []string{"u2"}) {
		t.Errorf("events = %+v, want one group.member_added [u2]", evs)
	}
	want := NewGroup("g1", "staff", "u1", "u2")
	want.Version = 2
	wantSnapshot(t, st, []*store.User{NewUser("u1", "alice"), NewUser("u2", "bob")}, []*store.Group{want})
}
