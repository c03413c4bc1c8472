package scimsync

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// admits is the gate's rule for one session of key issued at issued: the
// key's user is active and the session is not older than its cut-off.
func (h *scimHarness) admits(key string, issued time.Time) bool {
	st := h.dir.Standing(key)
	return st.State == identity.StateActive && !issued.Before(st.ValidAfter)
}

func (h *scimHarness) setUserName(id, userName string) {
	h.t.Helper()
	h.mustStatus(h.req("PATCH", "/Users/"+id, patchBody(`{"op":"replace","path":"userName","value":`+fmt.Sprintf("%q", userName)+`}`)), 200)
}

// The scenario through the SCIM handler: spare@ and dee@ exist,
// dee signs in, is deactivated, renamed to dee-departed@, and spare is
// renamed to dee@. dee's session must stay void: before the fix the gate
// read spare's ValidAfter (its creation, before dee's sign-in) for dee@.
func TestSCIM_RenameChainKeepsARevokedSessionVoid(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	spare := h.createUser("spare@example.com")
	spareSession := h.clock.Now()
	dee := h.createUser("dee@example.com")
	deeSession := h.clock.Now()
	if !h.admits("dee@example.com", deeSession) {
		t.Fatal("dee's session is refused before anything happened")
	}
	h.mustStatus(h.req("PATCH", "/Users/"+dee, patchBody(`{"op":"replace","value":{"active":false}}`)), 200)
	if h.admits("dee@example.com", deeSession) {
		t.Fatal("dee's session still admitted after her deactivation")
	}
	h.setUserName(dee, "dee-departed@example.com")
	if st := h.dir.Standing("dee@example.com"); st.State != identity.StateUnknown || !deeSession.Before(st.ValidAfter) {
		t.Errorf("dee@ after dee's rename: %+v, want unknown with the sessions from before void", st)
	}
	h.setUserName(spare, "dee@example.com")
	if h.admits("dee@example.com", deeSession) {
		t.Error("dee's revoked session is admitted again once spare is renamed to dee@")
	}
	if h.admits("spare@example.com", spareSession) || h.admits("dee@example.com", spareSession) {
		t.Error("a session from before spare's rename is admitted under the old or the new key")
	}
	if fresh := h.clock.Now(); !h.admits("dee@example.com", fresh) {
		t.Error("a session of dee@ issued after the rename is refused; the key's new holder is active")
	}
}

// DELETE, then another user renamed to the deleted user's name: the
// tombstone must outlive the change of hands.
func TestSCIM_DeletedUsersNameTakenByRenameKeepsSessionVoid(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	spare := h.createUser("spare@example.com")
	dee := h.createUser("dee@example.com")
	deeSession := h.clock.Now()
	h.mustStatus(h.req("DELETE", "/Users/"+dee, ""), http.StatusNoContent)
	if st := h.dir.Standing("dee@example.com"); st.State != identity.StateDeleted {
		t.Fatalf("dee@ after the DELETE: %v, want deleted", st.State)
	}
	h.setUserName(spare, "DEE@example.com")
	if h.admits("dee@example.com", deeSession) {
		t.Error("the deleted dee's session is admitted again once spare is renamed to dee@")
	}
}

// With email as the match key, two users may not share an email (in any
// ASCII case): POST, PUT and PATCH that would get 409 uniqueness.
func TestSCIM_EmailMatchKeyIsUnique(t *testing.T) {
	t.Parallel()
	h := newSCIMMatch(t, "email")
	body := func(userName, email string) string {
		return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,
			"emails":[{"primary":true,"value":%q}],"active":true}`, userName, email)
	}
	h.mustStatus(h.req("POST", "/Users", body("a", "shared@example.com")), 201)
	r := h.req("POST", "/Users", body("b", "SHARED@example.com"))
	assertSCIMError(t, r, http.StatusConflict, "uniqueness")
	b := h.mustStatus(h.req("POST", "/Users", body("b", "b@example.com")), 201).body["id"].(string)
	assertSCIMError(t, h.req("PUT", "/Users/"+b, body("b", "Shared@Example.com")), http.StatusConflict, "uniqueness")
	assertSCIMError(t, h.req("PATCH", "/Users/"+b, patchBody(`{"op":"replace","path":"emails[primary eq true].value","value":"shared@example.com"}`)),
		http.StatusConflict, "uniqueness")
	if st := h.dir.Standing("shared@example.com"); st.State != identity.StateActive {
		t.Errorf("shared@ is %v after the refused writes, want active (a's)", st.State)
	}
	// A look-alike that strings.ToLower folds to shared@ is another key.
	h.mustStatus(h.req("POST", "/Users", body("c", "shared@example.\u212Aom")), 201)
}

// Data from before match keys were unique: two users with one email. The
// view reports the key as ambiguous (the gate denies it) until one of them
// lets go of it.
func TestDirectory_AmbiguousKeyFromOldData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openSQLite(t) // userName rule: emails may repeat
	for _, id := range []string{"u1", "u2"} {
		u := &store.User{ID: id, UserName: id, Email: "Shared@example.com", Active: true, Version: 1, ValidAfter: dt0}
		if _, err := st.CreateUser(ctx, u, "old"); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := NewDirectory("email")
	d.Load(snap)
	if got := d.Standing("shared@example.com"); got.State != identity.StateAmbiguous || got.Groups != nil {
		t.Fatalf("shared key: %+v, want ambiguous", got)
	}
	if d.Ambiguous() != 1 {
		t.Errorf("Ambiguous() = %d, want 1", d.Ambiguous())
	}
	evs, err := st.DeleteUser(ctx, "u1", func(*store.User) error { return nil }, "old")
	if err != nil {
		t.Fatal(err)
	}
	d.Apply(evs)
	if got := d.Standing("shared@example.com"); got.State != identity.StateActive {
		t.Errorf("after u1's delete: %v, want u2 active", got.State)
	}
	// The same from the event log: a second holder makes it ambiguous again.
	d.Apply([]store.Event{{Seq: evs[0].Seq + 1, Time: dt0, Kind: store.EventUserCreated, ResourceType: "User", ResourceID: "u3",
		User: &store.User{ID: "u3", UserName: "u3", Email: "SHARED@example.com", Active: true}}})
	if got := d.Standing("shared@example.com"); got.State != identity.StateAmbiguous {
		t.Errorf("after u3 took the key too: %v, want ambiguous", got.State)
	}
}

func TestDirectory_CutoffsFromSnapshotAndEvents(t *testing.T) {
	t.Parallel()
	d, _ := NewDirectory("userName")
	now := dt0.Add(time.Hour)
	d.now = func() time.Time { return now }
	d.Load(&store.Snapshot{Seq: 1,
		Users: []*store.User{{ID: "u1", UserName: "spare", Active: true, ValidAfter: dt0}},
		Cutoffs: []store.KeyCutoff{
			{Key: "spare", VoidsBefore: dt0.Add(time.Minute), Expires: dt0.Add(8 * time.Hour)},
			{Key: "gone", VoidsBefore: dt0.Add(2 * time.Minute), Expires: dt0.Add(8 * time.Hour), Deleted: true},
		}})
	if st := d.Standing("SPARE"); st.State != identity.StateActive || !st.ValidAfter.Equal(dt0.Add(time.Minute)) {
		t.Errorf("spare: %+v, want active, ValidAfter the key's cut-off (later than the user's)", st)
	}
	if st := d.Standing("gone"); st.State != identity.StateDeleted || !st.ValidAfter.Equal(dt0.Add(2*time.Minute)) {
		t.Errorf("gone: %+v, want deleted until its cut-off expires", st)
	}
	var revoked []string
	d.OnRevoke(func(k string) { revoked = append(revoked, k) })
	d.Apply([]store.Event{{Seq: 2, Time: now, Kind: store.EventUserUpdated, ResourceType: "User", ResourceID: "u1",
		User:    &store.User{ID: "u1", UserName: "Gone", Active: true, ValidAfter: dt0},
		Cutoffs: []store.KeyCutoff{{Key: "spare", VoidsBefore: now, Expires: now.Add(time.Hour)}, {Key: "gone", VoidsBefore: now, Expires: now.Add(time.Hour)}}}})
	if fmt.Sprint(revoked) != "[spare gone]" {
		t.Errorf("revoked %v, want both keys of the rename", revoked)
	}
	if st := d.Standing("gone"); st.State != identity.StateActive || !st.ValidAfter.Equal(now) {
		t.Errorf("gone after spare took it: %+v, want active with ValidAfter the rename", st)
	}
	if st := d.Standing("spare"); st.State != identity.StateUnknown || !st.ValidAfter.Equal(now) {
		t.Errorf("spare after the rename: %+v, want unknown, the sessions from before the rename void", st)
	}
	now = dt0.Add(9 * time.Hour) // past both cut-offs on spare (the later expiry wins)
	if st := d.Standing("spare"); st.State != identity.StateUnknown || !st.ValidAfter.IsZero() {
		t.Errorf("spare once its cut-off expired: %+v, want unknown without a cut-off", st)
	}
}
