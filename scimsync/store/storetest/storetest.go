// Package storetest is the conformance suite for store.Store: every
// implementation (SQLite, PostgreSQL) runs the same tests, in the manner of
// oauth2-proxy's RunSessionStoreTests; its own tests run it against both.
// It also holds what the backends' tests share: PostgreSQL schemas for
// tests, the planted passwords of the migration tests, benchmarks. It
// imports no backend.
package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Run runs the suite. open is called once per subtest, possibly from
// parallel subtests, and must return a new, empty store that shares nothing
// with the others (a fresh file; a fresh schema or database), opened with
// opts. Run closes each store when its subtest ends.
func Run(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"CreateUser_SnapshotReturnsEveryField", testCreateUserSnapshot},
		{"CreateUser_UserNameUniqueIgnoringCase", testUserNameUniqueIgnoringCase},
		{"CreateUser_DuplicateIDConflicts", testDuplicateUserID},
		{"CreateUser_ConcurrentSameUserNameOneWins", testConcurrentCreateSameUserName},
		{"CreateUser_KeepsNoReferenceToCallerData", testCreateUserCopiesInput},
		{"UpdateUser_ConcurrentUpdatesLoseNothing", testConcurrentUpdates},
		{"UpdateUser_FuncErrorReturnedAsIsAndNothingWritten", testUpdateUserFuncError},
		{"UpdateUser_FuncMayModifyAndReturnCurrent", testUpdateUserFuncModifiesCurrent},
		{"UpdateUser_RenameOntoAnotherUserConflicts", testUpdateUserRenameConflict},
		{"UpdateUser_CaseOnlyRenameOfSelfAllowed", testUpdateUserCaseRename},
		{"UpdateUser_IdenticalReplayWritesNothing", testUpdateUserReplay},
		{"UserLifecycle_EventKindsAndOrder", testUserLifecycleEvents},
		{"DeleteUser_FuncErrorKeepsUser", testDeleteUserFuncError},
		{"DeleteUser_LeavesGroupsWithoutGroupEvents", testDeleteUserLeavesGroups},
		{"MissingIDs_ErrNotFoundWithoutCallingFunc", testMissingIDs},
		{"CreateGroup_MembersEmitCreatedThenMemberAdded", testCreateGroupWithMembers},
		{"CreateGroup_NoMembersEmitsOnlyCreated", testCreateGroupWithoutMembers},
		{"CreateGroup_DuplicateIDConflicts", testDuplicateGroupID},
		{"CreateGroup_UnknownMemberRejectedNothingWritten", testCreateGroupUnknownMember},
		{"UpdateGroup_MemberDiffEvents", testUpdateGroupMemberDiff},
		{"UpdateGroup_AttributeChangeEmitsOnlyGroupUpdated", testUpdateGroupAttributes},
		{"UpdateGroup_UnknownMemberRejectedNothingWritten", testUpdateGroupUnknownMember},
		{"UpdateGroup_IdenticalReplayWritesNothing", testUpdateGroupReplay},
		{"UpdateGroup_FuncErrorReturnedAsIsAndNothingWritten", testUpdateGroupFuncError},
		{"UpdateGroup_FuncMayModifyAndReturnCurrent", testUpdateGroupFuncModifiesCurrent},
		{"DeleteGroup_EmitsGroupDeleted", testDeleteGroup},
		{"LargeGroup_AddingOneMemberEmitsOneID", testLargeGroupAddOne},
		{"EventsAfter_PagesInOrderWithoutGapsOrRepeats", testEventsAfterPages},
		{"Events_CarryDocumentsByteForByte", testEventsCarryDocExactly},
		{"Times_RoundTripAtMillisecondsInUTC", testTimesRoundTrip},
		{"CancelledContext_WritesNothing", testCancelledContext},
	}
	tests = append(tests, ledgerTests...)
	tests = append(tests, readerTests...)
	tests = append(tests, emailTests...)
	tests = append(tests, sessionTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, openClosed(t, open))
		})
	}
	for _, tc := range deliveryTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
	for _, tc := range expiryTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
	for _, tc := range matchTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, openClosed(t, open, store.WithMatchRule(tc.rule)), tc.rule)
		})
	}
}

// openClosed opens a store that is closed when t ends.
func openClosed(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store,
	opts ...store.Option) store.Store {
	st := open(t, opts...)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// base is the suite's clock: every time it sets is base plus whole
// milliseconds, so it survives the store's millisecond precision.
var base = time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)

func at(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }

// NewUser is a user as the suite writes it: every field set, times on the suite's clock.
func NewUser(id, userName string) *store.User {
	return &store.User{
		ID:           id,
		UserName:     userName,
		ExternalID:   "ext-" + id,
		Email:        userName + "@example.com",
		Active:       true,
		Doc:          []byte(fmt.Sprintf(`{"userName":%q}`, userName)),
		Version:      1,
		Created:      at(0),
		LastModified: at(0),
		ValidAfter:   at(0),
	}
}

// NewGroup is NewUser for groups.
func NewGroup(id, name string, members ...string) *store.Group {
	return &store.Group{
		ID:           id,
		DisplayName:  name,
		ExternalID:   "ext-" + id,
		Doc:          []byte(fmt.Sprintf(`{"displayName":%q}`, name)),
		Members:      members,
		Version:      1,
		Created:      at(0),
		LastModified: at(0),
	}
}

func createUsers(t *testing.T, st store.Store, users ...*store.User) {
	t.Helper()
	for _, u := range users {
		if _, err := st.CreateUser(context.Background(), u, "test"); err != nil {
			t.Fatalf("CreateUser(%s): %v", u.ID, err)
		}
	}
}

func createGroup(t *testing.T, st store.Store, g *store.Group) {
	t.Helper()
	if _, err := st.CreateGroup(context.Background(), g, "test"); err != nil {
		t.Fatalf("CreateGroup(%s): %v", g.ID, err)
	}
}

func snapshot(t *testing.T, st store.Store) *store.Snapshot {
	t.Helper()
	s, err := st.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return s
}

func allEvents(t *testing.T, st store.Store) []store.Event {
	t.Helper()
	evs, err := st.EventsAfter(context.Background(), 0, 100_000)
	if err != nil {
		t.Fatalf("EventsAfter: %v", err)
	}
	return evs
}

// storedUser reads user id through st's Reader (with its Doc, which a
// snapshot does not carry).
func storedUser(t *testing.T, st store.Store, id string) (*store.User, error) {
	t.Helper()
	rd := as[store.Reader](t, st)
	return rd.GetUser(context.Background(), id)
}

func userByID(s *store.Snapshot, id string) *store.User {
	for _, u := range s.Users {
		if u.ID == id {
			return u
		}
	}
	return nil
}

func groupByID(s *store.Snapshot, id string) *store.Group {
	for _, g := range s.Groups {
		if g.ID == id {
			return g
		}
	}
	return nil
}

func kinds(evs []store.Event) []string {
	var ks []string
	for _, e := range evs {
		ks = append(ks, e.Kind)
	}
	return ks
}

// next is the usual update: a copy with Version+1 and a later LastModified.
func next(u *store.User) *store.User {
	c := *u
	c.Doc = slices.Clone(u.Doc)
	c.Version++
	c.LastModified = c.LastModified.Add(time.Second)
	return &c
}

func nextGroup(g *store.Group) *store.Group {
	c := *g
	c.Doc = slices.Clone(g.Doc)
	c.Members = slices.Clone(g.Members)
	c.Version++
	c.LastModified = c.LastModified.Add(time.Second)
	return &c
}

// setOpts compares Members as sets and treats nil and empty alike.
var setOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmpopts.SortSlices(func(a, b string) bool { return a < b }),
}

// snapOpts compares a snapshot's users and groups, which carry no Doc.
var snapOpts = cmp.Options{setOpts, cmpopts.IgnoreFields(store.User{}, "Doc"), cmpopts.IgnoreFields(store.Group{}, "Doc")}

// wantSnapshot checks that the snapshot of st holds exactly users and groups.
func wantSnapshot(t *testing.T, st store.Store, users []*store.User, groups []*store.Group) *store.Snapshot {
	t.Helper()
	s := snapshot(t, st)
	byID := func(x []*store.User) []*store.User {
		return slices.SortedFunc(slices.Values(x), func(a, b *store.User) int { return cmpString(a.ID, b.ID) })
	}
	gByID := func(x []*store.Group) []*store.Group {
		return slices.SortedFunc(slices.Values(x), func(a, b *store.Group) int { return cmpString(a.ID, b.ID) })
	}
	if diff := cmp.Diff(byID(users), byID(s.Users), snapOpts); diff != "" {
		t.Errorf("snapshot users (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(gByID(groups), gByID(s.Groups), snapOpts); diff != "" {
		t.Errorf("snapshot groups (-want +got):\n%s", diff)
	}
	return s
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// as returns st as the optional interface T, and fails the test when st
// does not implement it.
func as[T any](t *testing.T, st store.Store) T {
	t.Helper()
	v, ok := st.(T)
	if !ok {
		t.Fatalf("%T does not implement %s", st, reflect.TypeFor[T]())
	}
	return v
}
