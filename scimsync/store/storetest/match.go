package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// matchTests run on a store opened with their match rule.
var matchTests = []struct {
	name string
	rule store.MatchRule
	fn   func(t *testing.T, st store.Store, rule store.MatchRule)
}{
	{"MatchKey_EmailUniqueIgnoringASCIICaseOnly", store.MatchRule{Attribute: "email"}, testEmailKeyUnique},
	{"MatchKey_ExternalIDUniqueIgnoringASCIICaseOnly", store.MatchRule{Attribute: "externalId"}, testExternalIDKeyUnique},
	{"MatchKey_RenameOntoAnotherUsersKeyConflicts", store.MatchRule{Attribute: "email"}, testRenameOntoTakenKey},
	{"MatchKey_SharedEmailAllowedWhenMatchingOnUserName", store.MatchRule{}, testSharedEmailAllowed},
	{"MatchKey_ConcurrentClaimsOfOneKeyOneWins", store.MatchRule{Attribute: "email"}, testConcurrentClaims},
	{"MatchKey_RenameLeavesCutoffsOnOldAndNewKey", store.MatchRule{SessionLifetime: 2 * time.Hour}, testRenameCutoffs},
	{"MatchKey_DeleteLeavesCutoffThatOutlivesANewHolder", store.MatchRule{Attribute: "email"}, testDeleteCutoff},
	{"MatchKey_CaseOnlyChangeLeavesNoCutoff", store.MatchRule{}, testCaseOnlyChange},
	{"MatchKey_OtherChangesLeaveNoCutoff", store.MatchRule{Attribute: "email"}, testOtherChangesNoCutoff},
	{"MatchKey_ExpiredCutoffsLeaveTheSnapshot", store.MatchRule{SessionLifetime: time.Second}, testCutoffsExpire},
	{"MatchKey_UserNameAndEmailQueriesFoldASCIIOnly", store.MatchRule{}, testUserNameQueryFoldsASCIIOnly},
}

// keyUser is a user whose userName, email and externalId are set apart.
func keyUser(id, userName, email, ext string) *store.User {
	u := NewUser(id, userName)
	u.Email, u.ExternalID = email, ext
	return u
}

func wantTaken(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrMatchKeyTaken) || !errors.Is(err, store.ErrConflict) {
		t.Errorf("%s: error %v, want ErrMatchKeyTaken (an ErrConflict)", what, err)
	}
}

func testEmailKeyUnique(t *testing.T, st store.Store, _ store.MatchRule) {
	ctx := context.Background()
	createUsers(t, st, keyUser("u1", "dee", "Dee@Example.com", "e1"))
	_, err := st.CreateUser(ctx, keyUser("u2", "other", "dee@example.COM", "e2"), "test")
	wantTaken(t, "second user with the same email in other ASCII case", err)
	// Look-alikes that strings.ToLower folds into dee's key are other keys.
	for i, email := range []string{"DİE@example.com", "de\u212A@example.com"} {
		if _, err := st.CreateUser(ctx, keyUser(fmt.Sprint("l", i), fmt.Sprint("look", i), email, fmt.Sprint("x", i)), "test"); err != nil {
			t.Errorf("email %q (not dee's under ASCII folding): %v", email, err)
		}
	}
	if n := len(snapshot(t, st).Users); n != 3 {
		t.Errorf("snapshot has %d users, want 3 (the refused create wrote nothing)", n)
	}
	// The other way round: a stored look-alike must not be found by the
	// database's folding either (lower() and translate() fold ASCII only).
	createUsers(t, st, keyUser("k1", "kelvin", "\u212Aim@example.com", "k1"), keyUser("k2", "kim", "KIM@example.com", "k2"))
	// A user without an email claims no key: any number of them.
	createUsers(t, st, keyUser("n1", "none1", "", "n1"), keyUser("n2", "none2", "", "n2"))
}

func testExternalIDKeyUnique(t *testing.T, st store.Store, _ store.MatchRule) {
	ctx := context.Background()
	createUsers(t, st, keyUser("u1", "a", "a@example.com", "EXT-1"))
	_, err := st.CreateUser(ctx, keyUser("u2", "b", "b@example.com", "ext-1"), "test")
	wantTaken(t, "second user with the same externalId in other ASCII case", err)
	createUsers(t, st, keyUser("u3", "c", "a@example.com", "ext-2")) // email is not the key here
}

func testRenameOntoTakenKey(t *testing.T, st store.Store, _ store.MatchRule) {
	ctx := context.Background()
	a, b := keyUser("u1", "a", "a@example.com", "e1"), keyUser("u2", "b", "b@example.com", "e2")
	createUsers(t, st, a, b)
	evs, err := st.UpdateUser(ctx, "u2", func(cur *store.User) (*store.User, error) {
		nu := next(cur)
		nu.Email = "A@EXAMPLE.COM"
		return nu, nil
	}, "test")
	wantTaken(t, "PATCH b's email to a's", err)
	if len(evs) != 0 {
		t.Errorf("refused update returned events %v", kinds(evs))
	}
	wantSnapshot(t, st, []*store.User{a, b}, nil)
	// A user may keep its own key (a write that changes something else).
	if _, err := st.UpdateUser(ctx, "u1", func(cur *store.User) (*store.User, error) {
		nu := next(cur)
		nu.Doc = []byte(`{"title":"x"}`)
		return nu, nil
	}, "test"); err != nil {
		t.Errorf("update of a's document: %v", err)
	}
}

func testSharedEmailAllowed(t *testing.T, st store.Store, _ store.MatchRule) {
	createUsers(t, st, keyUser("u1", "a", "shared@example.com", "e1"), keyUser("u2", "b", "shared@example.com", "e2"))
}

func testConcurrentClaims(t *testing.T, st store.Store, _ store.MatchRule) {
	ctx := context.Background()
	for round := range 10 {
		email := fmt.Sprintf("race%d@example.com", round)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				id := fmt.Sprintf("r%d-%d", round, i)
				_, errs[i] = st.CreateUser(ctx, keyUser(id, id, email, id), "test")
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrMatchKeyTaken):
				t.Errorf("round %d: %v, want nil or ErrMatchKeyTaken", round, err)
			}
		}
		if won != 1 {
			t.Errorf("round %d: %d creates of one email succeeded (%v), want exactly 1", round, won, errs)
		}
	}
}

// cutoffsOf returns the cut-offs by key.
func cutoffsOf(cs []store.KeyCutoff) map[string]store.KeyCutoff {
	m := map[string]store.KeyCutoff{}
	for _, c := range cs {
		m[c.Key] = c
	}
	return m
}

// wantCutoffs checks cs names exactly keys, each voiding from within
// [from, to] and expiring lifetime later.
func wantCutoffs(t *testing.T, what string, cs []store.KeyCutoff, from, to time.Time, lifetime time.Duration, keys ...string) {
	t.Helper()
	got := cutoffsOf(cs)
	if len(got) != len(keys) {
		t.Errorf("%s: cut-offs %+v, want keys %q", what, cs, keys)
	}
	for _, k := range keys {
		c, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: no cut-off on %q in %+v", what, k, cs)
		case c.VoidsBefore.Before(from.Truncate(time.Millisecond)) || c.VoidsBefore.After(to):
			t.Errorf("%s: cut-off on %q voids before %v, want within [%v, %v]", what, k, c.VoidsBefore, from, to)
		case !c.Expires.Equal(c.VoidsBefore.Add(lifetime)):
			t.Errorf("%s: cut-off on %q expires %v, want %v later", what, k, c.Expires, lifetime)
		}
	}
}

func rename(t *testing.T, st store.Store, id, userName string) []store.Event {
	t.Helper()
	evs, err := st.UpdateUser(context.Background(), id, func(cur *store.User) (*store.User, error) {
		nu := next(cur)
		nu.UserName = userName
		return nu, nil
	}, "test")
	if err != nil {
		t.Fatalf("rename %s to %s: %v", id, userName, err)
	}
	return evs
}

// testRenameCutoffs is the scenario at the store: dee renamed away,
// then spare renamed to dee. Each rename leaves a cut-off on the key it
// leaves and the key it takes, in the event and in the snapshot.
func testRenameCutoffs(t *testing.T, st store.Store, rule store.MatchRule) {
	createUsers(t, st, NewUser("u1", "spare@example.com"), NewUser("u2", "dee@example.com"))
	t1 := time.Now()
	evs := rename(t, st, "u2", "dee-departed@example.com")
	t2 := time.Now()
	if len(evs) != 1 {
		t.Fatalf("rename returned %d events", len(evs))
	}
	wantCutoffs(t, "dee's rename", evs[0].Cutoffs, t1, t2, rule.SessionLifetime, "dee@example.com", "dee-departed@example.com")
	for _, c := range evs[0].Cutoffs {
		if c.Deleted {
			t.Errorf("a rename's cut-off is marked Deleted: %+v", c)
		}
	}
	time.Sleep(2 * time.Millisecond)
	t3 := time.Now()
	evs = rename(t, st, "u1", "DEE@example.com")
	t4 := time.Now()
	wantCutoffs(t, "spare's rename", evs[0].Cutoffs, t3, t4, rule.SessionLifetime, "spare@example.com", "dee@example.com")
	snap := snapshot(t, st)
	got := cutoffsOf(snap.Cutoffs)
	wantCutoffs(t, "snapshot", snap.Cutoffs, t1, t4, rule.SessionLifetime, "dee@example.com", "dee-departed@example.com", "spare@example.com")
	if dee := got["dee@example.com"]; dee.VoidsBefore.Before(t3.Truncate(time.Millisecond)) {
		t.Errorf("snapshot: dee@'s cut-off voids before %v, want the later rename's time (≥ %v)", dee.VoidsBefore, t3)
	}
	if diff := cmp.Diff(evs, allEvents(t, st)[3:], cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("event log differs from the events returned (-returned +log):\n%s", diff)
	}
	if u := userByID(snap, "u1"); u == nil || !u.ValidAfter.Equal(at(0)) {
		t.Errorf("spare's ValidAfter changed: %+v; the cut-offs carry the change", u)
	}
}

func testDeleteCutoff(t *testing.T, st store.Store, rule store.MatchRule) {
	ctx := context.Background()
	lifetime := rule.SessionLifetime
	if lifetime == 0 {
		lifetime = 8 * time.Hour // config.DefaultSessionLifetime
	}
	createUsers(t, st, keyUser("u1", "dee", "Dee@example.com", "e1"))
	t1 := time.Now()
	evs, err := st.DeleteUser(ctx, "u1", func(*store.User) error { return nil }, "test")
	t2 := time.Now()
	if err != nil || len(evs) != 1 {
		t.Fatalf("DeleteUser: %v, %d events", err, len(evs))
	}
	wantCutoffs(t, "delete", evs[0].Cutoffs, t1, t2, lifetime, "dee@example.com")
	if len(evs[0].Cutoffs) == 1 && !evs[0].Cutoffs[0].Deleted {
		t.Errorf("a delete's cut-off is not marked Deleted: %+v", evs[0].Cutoffs[0])
	}
	if diff := cmp.Diff(evs, allEvents(t, st)[1:], cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("event log differs from the events returned (-returned +log):\n%s", diff)
	}
	createUsers(t, st, keyUser("u2", "new", "dee@EXAMPLE.com", "e2"))
	cs := snapshot(t, st).Cutoffs
	wantCutoffs(t, "snapshot after another user took the key", cs, t1, t2, lifetime, "dee@example.com")
	// The tombstone stays one when the new holder leaves the key again.
	time.Sleep(2 * time.Millisecond)
	if _, err := st.UpdateUser(ctx, "u2", func(cur *store.User) (*store.User, error) {
		nu := next(cur)
		nu.Email = "new@example.com"
		return nu, nil
	}, "test"); err != nil {
		t.Fatal(err)
	}
	if c := cutoffsOf(snapshot(t, st).Cutoffs)["dee@example.com"]; !c.Deleted || !c.VoidsBefore.After(cs[0].VoidsBefore) {
		t.Errorf("dee@'s cut-off after the new holder left: %+v, want still Deleted, voiding from the later change", c)
	}
}

func testCaseOnlyChange(t *testing.T, st store.Store, _ store.MatchRule) {
	createUsers(t, st, NewUser("u1", "Dee@Example.com"))
	evs := rename(t, st, "u1", "dee@example.com")
	if len(evs) != 1 || len(evs[0].Cutoffs) != 0 {
		t.Errorf("case-only rename: events %+v, want one without cut-offs", evs)
	}
	if cs := snapshot(t, st).Cutoffs; len(cs) != 0 {
		t.Errorf("snapshot cut-offs %+v, want none", cs)
	}
}

func testOtherChangesNoCutoff(t *testing.T, st store.Store, _ store.MatchRule) {
	createUsers(t, st, keyUser("u1", "dee", "dee@example.com", "e1"))
	evs := rename(t, st, "u1", "dee-renamed") // the key is the email
	if _, err := st.UpdateUser(context.Background(), "u1", func(cur *store.User) (*store.User, error) {
		nu := next(cur)
		nu.Active = false
		return nu, nil
	}, "test"); err != nil {
		t.Fatal(err)
	}
	if len(evs[0].Cutoffs) != 0 || len(snapshot(t, st).Cutoffs) != 0 {
		t.Errorf("userName change under email matching left cut-offs: %+v", evs[0].Cutoffs)
	}
}

func testCutoffsExpire(t *testing.T, st store.Store, _ store.MatchRule) {
	createUsers(t, st, NewUser("u1", "dee"))
	rename(t, st, "u1", "dee2")
	time.Sleep(1100 * time.Millisecond)
	if cs := snapshot(t, st).Cutoffs; len(cs) != 0 {
		t.Errorf("snapshot has expired cut-offs %+v", cs)
	}
	rename(t, st, "u1", "dee3") // prunes the expired rows as it writes its own
	if cs := snapshot(t, st).Cutoffs; len(cs) != 2 {
		t.Errorf("snapshot cut-offs %+v, want dee2's and dee3's", cs)
	}
}

func testUserNameQueryFoldsASCIIOnly(t *testing.T, st store.Store, _ store.MatchRule) {
	rd := as[store.Reader](t, st)
	createUsers(t, st, keyUser("u1", "Alice@example.com", "Kim@example.com", "e1"))
	for _, tc := range []struct {
		attr, value string
		want        int
	}{
		{"username", "ALICE@EXAMPLE.COM", 1},
		{"username", "alİce@example.com", 0},
		{"email", "kim@EXAMPLE.com", 1},
		{"email", "\u212Aim@example.com", 0},
	} {
		us, total, err := rd.ListUsers(context.Background(), store.Query{Attr: tc.attr, Value: tc.value})
		if err != nil || total != tc.want || len(us) != tc.want {
			t.Errorf("ListUsers(%s %q) = %d users, total %d, %v; want %d", tc.attr, tc.value, len(us), total, err, tc.want)
		}
	}
}
