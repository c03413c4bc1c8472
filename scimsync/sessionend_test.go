package scimsync

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// TestSessionEnder_EndsOnThisReplicaAndInTheSnapshot: an IdP's logout
// ends that IdP's sessions of the NameID at once in this replica's view
// (hooks called, audit and counter written), leaves another IdP's session
// of the same NameID alone, and a replica loading the store afterwards
// refuses the same sessions.
func TestSessionEnder_EndsOnThisReplicaAndInTheSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openSQLite(t)
	dir, _ := NewDirectory("email")
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir.Load(snap)
	now := time.Now()
	for _, l := range []store.Login{
		{SessionID: "a1", IdP: "https://idp-a", NameID: "alice@example.com", SessionIndex: "x"},
		{SessionID: "b1", IdP: "https://idp-b", NameID: "alice@example.com", SessionIndex: "x"},
	} {
		l.MatchKey, l.User, l.Issued, l.Expires = "alice@example.com", "alice", now, now.Add(time.Hour)
		if err := st.Ledger().RecordLogin(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	core, logs := observer.New(zap.InfoLevel)
	m := metrics.New()
	e, err := NewSessionEnder(st, viewsOf(dir), zap.New(core), m)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var hooked, onEnded []string
	dir.OnSessionRevoke(func(id string) { mu.Lock(); hooked = append(hooked, id); mu.Unlock() })
	e.OnEnded(func(_ context.Context, rs store.RevokedSession) { onEnded = append(onEnded, rs.ID+":"+rs.Reason) })

	ended, err := e.End(ctx, store.SessionQuery{IdP: "https://idp-a", NameID: "alice@example.com"}, "idp_logout", "slo")
	if err != nil || len(ended) != 1 || ended[0].ID != "a1" {
		t.Fatalf("End = %+v, %v; want a1 only", ended, err)
	}
	if !dir.SessionRevoked("a1") || dir.SessionRevoked("b1") {
		t.Errorf("view: a1 revoked %v (want true), b1 revoked %v (want false)", dir.SessionRevoked("a1"), dir.SessionRevoked("b1"))
	}
	mu.Lock()
	if !slices.Equal(hooked, []string{"a1"}) {
		t.Errorf("OnSessionRevoke got %v, want a1", hooked)
	}
	mu.Unlock()
	if !slices.Equal(onEnded, []string{"a1:idp_logout"}) {
		t.Errorf("OnEnded got %v", onEnded)
	}
	audit := logs.FilterField(zap.String("event", "session_revoked")).All()
	if len(audit) != 1 || audit[0].ContextMap()["reason"] != "idp_logout" || audit[0].ContextMap()["user"] != "alice" {
		t.Errorf("audit: %+v", audit)
	}
	if v, _, err := metrics.Value(m.Gatherer(), metrics.NameSessionsEnded, "reason", "idp_logout"); err != nil || v != 1 {
		t.Errorf("%s{reason=idp_logout} = %v, want 1", metrics.NameSessionsEnded, v)
	}

	other, _ := NewDirectory("email")
	snap, err = st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other.Load(snap)
	if !other.SessionRevoked("a1") || other.SessionRevoked("b1") {
		t.Error("a replica loading the store afterwards does not refuse exactly a1")
	}
}

// TestSCIM_RemovalEndsTheUsersSessionsWithItsReason: deactivation,
// reactivation and deletion through SCIM end the user's ledger sessions
// through the one session ender, each with its reason.
func TestSCIM_RemovalEndsTheUsersSessionsWithItsReason(t *testing.T) {
	t.Parallel()
	h := newSCIM(t)
	id := h.createUser("alice@example.com")
	record := func(sid string) {
		now := h.clock.Now()
		if err := h.store.Ledger().RecordLogin(context.Background(), store.Login{MatchKey: "alice@example.com", User: "alice",
			SessionID: sid, Issued: now, Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	patch := func(active string) {
		h.mustStatus(h.req("PATCH", "/Users/"+id,
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":`+active+`}}]}`), 200)
	}
	reasons := func() map[string]string {
		out := map[string]string{}
		for _, e := range h.logs.FilterField(zap.String("event", "session_revoked")).All() {
			out[e.ContextMap()["session_id"].(string)] = e.ContextMap()["reason"].(string)
		}
		return out
	}
	record("s1")
	patch("false")
	record("s2") // signed in at the IdP while deactivated: the gate refused it
	patch("true")
	record("s3")
	h.mustStatus(h.req("DELETE", "/Users/"+id, ""), 204)
	want := map[string]string{"s1": "deactivated", "s2": "reactivated", "s3": "deleted"}
	if got := reasons(); len(got) != 3 || got["s1"] != want["s1"] || got["s2"] != want["s2"] || got["s3"] != want["s3"] {
		t.Errorf("session_revoked reasons %v, want %v", got, want)
	}
	// The view holds the session reactivation ended; deactivation and
	// deletion leave theirs to the user's state (store.EndedWithUser).
	if !h.dir.SessionRevoked("s2") {
		t.Error("the view does not hold the session reactivation ended")
	}
}
