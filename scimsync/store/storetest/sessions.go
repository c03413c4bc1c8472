package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// sessionTests are the session revocation tests; Run runs them with the others.
var sessionTests = []struct {
	name string
	fn   func(t *testing.T, st store.Store)
}{
	{"RevokeSessions_ByNameIDOnlyThatIdPsSessions", testRevokeByNameID},
	{"RevokeSessions_SessionIndexNarrows", testRevokeBySessionIndex},
	{"RevokeSessions_ByMatchKeyAndKnownUnrecorded", testRevokeByMatchKeyAndKnown},
	{"RevokeSessions_SnapshotHoldsRevokedUntilExpiry", testRevokeSnapshot},
	{"RevokeSessions_AllEndsEveryLiveSessionOfOneOrganization", testRevokeAllOfOrganization},
	{"RevokeSessions_KnownWithoutIssueTime", testRevokeKnownWithoutIssued},
}

// recordSessions records logins for the session revocation tests: alice
// has s1 (idp A, index i1), s2 (idp A, index i2) and s3 (idp B, same
// NameID); bob has s4 (idp A).
func recordSessions(t *testing.T, st store.Store) {
	t.Helper()
	lg := ledger(t, st)
	b := future(0)
	for _, l := range []store.Login{
		{MatchKey: "alice@example.com", User: "alice", SessionID: "s1", IdP: "https://idp-a", NameID: "alice@example.com", SessionIndex: "i1"},
		{MatchKey: "alice@example.com", User: "alice", SessionID: "s2", IdP: "https://idp-a", NameID: "alice@example.com", SessionIndex: "i2"},
		{MatchKey: "alice@example.com", User: "alice", SessionID: "s3", IdP: "https://idp-b", NameID: "alice@example.com", SessionIndex: "i1"},
		{MatchKey: "bob@example.com", User: "bob", SessionID: "s4", IdP: "https://idp-a", NameID: "bob@example.com", SessionIndex: "i9"},
	} {
		l.Issued, l.Expires = b, b.Add(time.Hour)
		if err := lg.RecordLogin(context.Background(), l); err != nil {
			t.Fatalf("RecordLogin: %v", err)
		}
	}
}

func revokedIDs(t *testing.T, evs []store.Event, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatalf("RevokeSessions: %v", err)
	}
	var ids []string
	for _, e := range evs {
		if e.Kind != store.EventSessionRevoked || e.Session == nil || e.Session.ID != e.ResourceID || e.Seq == 0 {
			t.Fatalf("event %+v: want a session.revoked event with its session and seq", e)
		}
		ids = append(ids, e.Session.ID)
	}
	slices.Sort(ids)
	return ids
}

func testRevokeByNameID(t *testing.T, st store.Store) {
	ctx := context.Background()
	recordSessions(t, st)
	r := as[store.SessionRevoker](t, st)
	evs, err := r.RevokeSessions(ctx, store.SessionQuery{IdP: "https://idp-a", NameID: "alice@example.com"}, "idp_logout", "slo")
	if got := revokedIDs(t, evs, err); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Fatalf("revoked %v, want s1 s2 (not idp-b's s3, not bob's s4)", got)
	}
	if evs[0].Session.Reason != "idp_logout" {
		t.Errorf("reason %q", evs[0].Session.Reason)
	}
	// Again: nothing left to end, no event.
	evs, err = r.RevokeSessions(ctx, store.SessionQuery{IdP: "https://idp-a", NameID: "alice@example.com"}, "idp_logout", "slo")
	if got := revokedIDs(t, evs, err); len(got) != 0 {
		t.Fatalf("second revocation ended %v, want nothing", got)
	}
	// Decoded from the log as written.
	all := allEvents(t, st)
	last := all[len(all)-1]
	if last.Session == nil || last.Session.Reason != "idp_logout" || last.Session.Expires.IsZero() {
		t.Fatalf("event from the log: %+v", last.Session)
	}
	// The ledger's live sessions leave the revoked ones out.
	logins, err := ledger(t, st).LoginsOf(ctx, "", "alice@example.com", time.Time{}, future(1))
	if err != nil || logins.LiveTotal != 1 || logins.Live[0].SessionID != "s3" {
		t.Fatalf("LoginsOf after revocation: %+v, %v; want only s3", logins, err)
	}
}

func testRevokeBySessionIndex(t *testing.T, st store.Store) {
	recordSessions(t, st)
	evs, err := as[store.SessionRevoker](t, st).RevokeSessions(context.Background(),
		store.SessionQuery{IdP: "https://idp-a", NameID: "alice@example.com", SessionIndexes: []string{"i2"}}, "idp_logout", "slo")
	if got := revokedIDs(t, evs, err); !slices.Equal(got, []string{"s2"}) {
		t.Fatalf("revoked %v, want s2", got)
	}
}

func testRevokeByMatchKeyAndKnown(t *testing.T, st store.Store) {
	recordSessions(t, st)
	b := future(0)
	evs, err := as[store.SessionRevoker](t, st).RevokeSessions(context.Background(), store.SessionQuery{
		MatchKey: "alice@example.com",
		Known:    []store.RevokedSession{{ID: "cookie-only", User: "carol", Issued: b, Expires: b.Add(time.Hour)}},
	}, "admin", "admin")
	if got := revokedIDs(t, evs, err); !slices.Equal(got, []string{"cookie-only", "s1", "s2", "s3"}) {
		t.Fatalf("revoked %v, want alice's three and the unrecorded one", got)
	}
}

func testRevokeSnapshot(t *testing.T, st store.Store) {
	ctx := context.Background()
	recordSessions(t, st)
	now := time.Now()
	_, err := as[store.SessionRevoker](t, st).RevokeSessions(ctx, store.SessionQuery{
		MatchKey: "bob@example.com",
		Known:    []store.RevokedSession{{ID: "gone", Issued: now.Add(-time.Hour), Expires: now.Add(-time.Minute)}},
	}, "admin", "admin")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, rs := range snap.RevokedSessions {
		ids = append(ids, rs.ID)
		if rs.Reason != "admin" || rs.Org != store.DefaultOrg {
			t.Errorf("snapshot session %+v: want reason admin, org default", rs)
		}
	}
	if !slices.Equal(ids, []string{"s4"}) {
		t.Fatalf("snapshot revoked sessions %v, want s4 (an expired one is not ended again)", ids)
	}
}

// testRevokeAllOfOrganization: an organization that is no longer served
// ends every live session it has, and none of another organization's.
func testRevokeAllOfOrganization(t *testing.T, st store.Store) {
	ctx := context.Background()
	recordSessions(t, st) // the default organization's s1-s4
	b := future(0)
	for _, id := range []string{"acme-1", "acme-2"} {
		if err := ledger(t, st).RecordLogin(ctx, store.Login{Org: "acme", MatchKey: "alice@example.com", User: "alice",
			SessionID: id, Issued: b, Expires: b.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	r := as[store.SessionRevoker](t, st)
	evs, err := r.RevokeSessions(ctx, store.SessionQuery{Org: "acme", All: true}, store.ReasonOrganizationRemoved, "config")
	if got := revokedIDs(t, evs, err); !slices.Equal(got, []string{"acme-1", "acme-2"}) {
		t.Fatalf("revoked %v, want acme's two sessions only", got)
	}
	for _, e := range evs {
		if e.Org != "acme" || e.Session.Reason != store.ReasonOrganizationRemoved {
			t.Errorf("event %+v: want organization acme, reason %s", e, store.ReasonOrganizationRemoved)
		}
	}
	logins, err := ledger(t, st).LoginsOf(ctx, "", "alice@example.com", time.Time{}, future(1))
	if err != nil || logins.LiveTotal != 3 {
		t.Fatalf("default organization's alice after acme's removal: %+v, %v; want her 3 sessions live", logins, err)
	}
	if logins, err := ledger(t, st).LoginsOf(ctx, "acme", "alice@example.com", time.Time{}, future(1)); err != nil || logins.LiveTotal != 0 {
		t.Errorf("acme's alice after acme's removal: %+v, %v; want no live session", logins, err)
	}
}

// testRevokeKnownWithoutIssued: a session known only by its cookie's id
// and expiry ends (SessionQuery.Known says ID and Expires are enough).
func testRevokeKnownWithoutIssued(t *testing.T, st store.Store) {
	b := future(0)
	evs, err := as[store.SessionRevoker](t, st).RevokeSessions(context.Background(), store.SessionQuery{
		Known: []store.RevokedSession{{ID: "cookie-only", Expires: b.Add(time.Hour)}},
	}, "logout", "saml")
	if got := revokedIDs(t, evs, err); !slices.Equal(got, []string{"cookie-only"}) {
		t.Fatalf("revoked %v, want the cookie's session", got)
	}
}
