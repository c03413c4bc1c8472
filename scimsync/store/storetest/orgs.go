package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Organizations: one database, a directory per organization. Every test
// here writes through two or three organizations' stores over one backend
// and checks that nothing of one is seen, changed, counted or claimed by
// another (issue #15's isolation rules at the storage layer).

// scoped is what a backend offers to scope a store to an organization.
type scoped interface {
	ForOrg(org string) *store.OrgStore
}

// RunOrganizations runs the organization isolation tests. open is as for
// Run.
func RunOrganizations(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	tests := []struct {
		name string
		rule store.MatchRule
		fn   func(t *testing.T, def, acme, globex *store.OrgStore)
	}{
		{"SameUserNameInEveryOrganization", store.MatchRule{}, testOrgSameUserName},
		{"ReadsSeeOnlyTheirOrganization", store.MatchRule{}, testOrgReads},
		{"WritesCannotReachAnotherOrganization", store.MatchRule{}, testOrgWrites},
		{"GroupsTakeMembersOfTheirOrganizationOnly", store.MatchRule{}, testOrgMembers},
		{"SnapshotsAndCutoffsArePerOrganization", store.MatchRule{Attribute: "email", SessionLifetime: 8 * 3600e9}, testOrgSnapshots},
		{"EventsCarryTheirOrganization", store.MatchRule{}, testOrgEvents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts []store.Option
			if tc.rule.Attribute != "" {
				opts = append(opts, store.WithMatchRule(tc.rule))
			}
			st := openClosed(t, open, opts...)
			sc, ok := st.(scoped)
			if !ok {
				t.Fatalf("%T has no ForOrg", st)
			}
			tc.fn(t, sc.ForOrg(""), sc.ForOrg("acme"), sc.ForOrg("globex"))
		})
	}
}

func testOrgSameUserName(t *testing.T, def, acme, globex *store.OrgStore) {
	ctx := context.Background()
	for i, st := range []*store.OrgStore{def, acme, globex} {
		u := NewUser("u"+string(rune('1'+i)), "alice")
		if _, err := st.CreateUser(ctx, u, "okta"); err != nil {
			t.Fatalf("%s: alice: %v", st.Org(), err)
		}
	}
	if _, err := acme.CreateUser(ctx, NewUser("u9", "ALICE"), "okta"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second ALICE in acme: %v, want ErrConflict", err)
	}
	if _, err := globex.UpdateUser(ctx, "u3", func(cur *store.User) (*store.User, error) {
		cur.UserName = "Alice" // a case-only rename of its own
		return cur, nil
	}, "okta"); err != nil {
		t.Errorf("globex renames its alice to Alice: %v", err)
	}
}

func testOrgReads(t *testing.T, def, acme, globex *store.OrgStore) {
	ctx := context.Background()
	mustCreate := func(st *store.OrgStore, u *store.User) {
		t.Helper()
		if _, err := st.CreateUser(ctx, u, "okta"); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(acme, NewUser("a1", "alice"))
	mustCreate(acme, NewUser("a2", "bob"))
	mustCreate(globex, NewUser("g1", "alice"))
	if _, err := acme.CreateGroup(ctx, NewGroup("ag", "staff", "a1"), "okta"); err != nil {
		t.Fatal(err)
	}
	if _, err := globex.GetUser(ctx, "a1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("globex reads acme's user by id: %v", err)
	}
	if _, err := def.GetGroup(ctx, "ag"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("default reads acme's group by id: %v", err)
	}
	for _, tc := range []struct {
		st    *store.OrgStore
		q     store.Query
		total int
	}{
		{acme, store.Query{}, 2},
		{globex, store.Query{}, 1},
		{def, store.Query{}, 0},
		{globex, store.Query{Attr: "username", Value: "ALICE"}, 1},
		{globex, store.Query{Attr: "id", Value: "a1"}, 0},
		{def, store.Query{Attr: "emails", Value: "alice@example.com"}, 0},
		{acme, store.Query{Attr: "nameprefix", Value: "al"}, 1},
		{globex, store.Query{Any: [][]store.Cond{{{Attr: "username", Value: "bob"}}, {{Attr: "externalid", Value: "ext-a2"}}}}, 0},
	} {
		users, total, err := tc.st.ListUsers(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if total != tc.total || len(users) != tc.total {
			t.Errorf("%s %+v: %d users (total %d), want %d", tc.st.Org(), tc.q, len(users), total, tc.total)
		}
		for _, u := range users {
			if _, err := tc.st.GetUser(ctx, u.ID); err != nil {
				t.Errorf("%s listed %s, which it cannot read: %v", tc.st.Org(), u.ID, err)
			}
		}
	}
	if _, total, _ := globex.ListGroups(ctx, store.Query{Attr: "member", Value: "a1"}, false); total != 0 {
		t.Errorf("globex sees acme's group by member: %d", total)
	}
}

func testOrgWrites(t *testing.T, _, acme, globex *store.OrgStore) {
	ctx := context.Background()
	if _, err := acme.CreateUser(ctx, NewUser("a1", "alice"), "okta"); err != nil {
		t.Fatal(err)
	}
	if _, err := acme.CreateGroup(ctx, NewGroup("ag", "staff"), "okta"); err != nil {
		t.Fatal(err)
	}
	called := false
	_, err := globex.UpdateUser(ctx, "a1", func(cur *store.User) (*store.User, error) {
		called = true
		cur.Active = false
		return cur, nil
	}, "mallory")
	if !errors.Is(err, store.ErrNotFound) || called {
		t.Errorf("globex deactivates acme's user: %v (update function called: %v)", err, called)
	}
	if _, err := globex.DeleteUser(ctx, "a1", func(*store.User) error { return nil }, "mallory"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("globex deletes acme's user: %v", err)
	}
	if _, err := globex.DeleteGroup(ctx, "ag", func(*store.Group) error { return nil }, "mallory"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("globex deletes acme's group: %v", err)
	}
	u, err := acme.GetUser(ctx, "a1")
	if err != nil || !u.Active {
		t.Errorf("acme's alice after globex's attempts: %+v, %v", u, err)
	}
}

func testOrgMembers(t *testing.T, _, acme, globex *store.OrgStore) {
	ctx := context.Background()
	if _, err := acme.CreateUser(ctx, NewUser("a1", "alice"), "okta"); err != nil {
		t.Fatal(err)
	}
	if _, err := globex.CreateGroup(ctx, NewGroup("gg", "staff", "a1"), "mallory"); !errors.Is(err, store.ErrUnknownMember) {
		t.Errorf("globex's group with acme's user as member: %v, want ErrUnknownMember", err)
	}
	if _, err := globex.CreateGroup(ctx, NewGroup("gg", "staff"), "okta"); err != nil {
		t.Fatal(err)
	}
	_, err := globex.UpdateGroup(ctx, "gg", func(cur *store.Group) (*store.Group, error) {
		cur.Members = append(cur.Members, "a1")
		return cur, nil
	}, "mallory")
	if !errors.Is(err, store.ErrUnknownMember) {
		t.Errorf("globex adds acme's user to its group: %v, want ErrUnknownMember", err)
	}
}

func testOrgSnapshots(t *testing.T, def, acme, globex *store.OrgStore) {
	ctx := context.Background()
	a := NewUser("a1", "alice")
	g := NewUser("g1", "alice") // the same email, alice@example.com: the same match key
	if _, err := acme.CreateUser(ctx, a, "okta"); err != nil {
		t.Fatal(err)
	}
	if _, err := globex.CreateUser(ctx, g, "okta"); err != nil {
		t.Fatalf("globex's alice with acme's alice's match key: %v", err)
	}
	if _, err := acme.DeleteUser(ctx, "a1", func(*store.User) error { return nil }, "okta"); err != nil {
		t.Fatal(err)
	}
	as, gs, ds := snapshot(t, acme), snapshot(t, globex), snapshot(t, def)
	if len(as.Users) != 0 || len(gs.Users) != 1 || len(ds.Users) != 0 {
		t.Errorf("users: acme %d, globex %d, default %d; want 0, 1, 0", len(as.Users), len(gs.Users), len(ds.Users))
	}
	if len(as.Cutoffs) != 1 || as.Cutoffs[0].Key != "alice@example.com" || !as.Cutoffs[0].Deleted {
		t.Errorf("acme's cut-offs after deleting alice: %+v, want a tombstone on alice@example.com", as.Cutoffs)
	}
	if len(gs.Cutoffs) != 0 || len(ds.Cutoffs) != 0 {
		t.Errorf("acme's delete left cut-offs elsewhere: globex %+v, default %+v", gs.Cutoffs, ds.Cutoffs)
	}
}

func testOrgEvents(t *testing.T, def, acme, globex *store.OrgStore) {
	ctx := context.Background()
	for _, st := range []*store.OrgStore{acme, globex, def} {
		if _, err := st.CreateUser(ctx, NewUser(st.Org()+"-u", "alice"), "okta"); err != nil {
			t.Fatal(err)
		}
	}
	evs := allEvents(t, def) // the log is one for every organization
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for _, e := range evs {
		if e.ResourceID != e.Org+"-u" {
			t.Errorf("event of %s carries organization %q", e.ResourceID, e.Org)
		}
	}
}
