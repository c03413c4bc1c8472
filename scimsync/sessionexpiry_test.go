package scimsync

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// TestSessionEnder_EndExpiredReportsEachExpiryOnce: a session that expires
// with nothing else having ended it is one session_revoked reason=expired
// audit line, one count and one OnEnded, once; a session ended earlier —
// revoked, or with its deactivated user — is not reported again; a live
// session stays.
func TestSessionEnder_EndExpiredReportsEachExpiryOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	var offset atomic.Int64
	now := func() time.Time { return t0.Add(time.Duration(offset.Load())) }
	st := openSQLite(t, store.WithClock(now))
	alice, bob := storetest.NewUser("u1", "alice"), storetest.NewUser("u2", "bob")
	bob.Active = false
	for _, u := range []*store.User{alice, bob} {
		u.ValidAfter = t0.Add(-time.Hour)
		if _, err := st.CreateUser(ctx, u, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []store.Login{
		{MatchKey: "alice@example.com", User: "alice", SessionID: "alice-1", Expires: t0.Add(time.Minute)},
		{MatchKey: "alice@example.com", User: "alice", SessionID: "alice-revoked", Expires: t0.Add(time.Minute)},
		{MatchKey: "alice@example.com", User: "alice", SessionID: "alice-live", Expires: t0.Add(time.Hour)},
		{MatchKey: "bob@example.com", User: "bob", SessionID: "bob-1", Expires: t0.Add(time.Minute)},
	} {
		l.Issued = t0
		if err := st.Ledger().RecordLogin(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	dir, _ := NewDirectory("email")
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir.Load(snap)
	core, logs := observer.New(zap.InfoLevel)
	m := metrics.New()
	e, err := NewSessionEnder(st, viewsOf(dir), zap.New(core), m)
	if err != nil {
		t.Fatal(err)
	}
	var onEnded []string
	e.OnEnded(func(_ context.Context, rs store.RevokedSession) { onEnded = append(onEnded, rs.ID+":"+rs.Reason) })
	if _, err := e.End(ctx, store.SessionQuery{Known: []store.RevokedSession{{ID: "alice-revoked", User: "alice",
		Issued: t0, Expires: t0.Add(time.Minute)}}}, "logout", "saml"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.EndExpired(ctx); err != nil || n != 0 {
		t.Fatalf("EndExpired before any expiry = %d, %v; want 0", n, err)
	}

	offset.Store(int64(2 * time.Minute))
	if n, err := e.EndExpired(ctx); err != nil || n != 1 {
		t.Fatalf("EndExpired = %d, %v; want 1 (alice-1; alice-revoked ended by logout, bob-1 with bob)", n, err)
	}
	if n, err := e.EndExpired(ctx); err != nil || n != 0 {
		t.Fatalf("EndExpired again = %d, %v; want 0", n, err)
	}
	if want := []string{"alice-revoked:logout", "alice-1:expired"}; !slices.Equal(onEnded, want) {
		t.Errorf("OnEnded got %v, want %v", onEnded, want)
	}
	audit := logs.FilterField(zap.String("reason", "expired")).All()
	if len(audit) != 1 {
		t.Fatalf("audit lines with reason expired: %+v, want one", audit)
	}
	if f := audit[0].ContextMap(); f["event"] != "session_revoked" || f["session_id"] != "alice-1" || f["user"] != "alice" ||
		f["actor"] != "expiry" || f["org"] != "default" {
		t.Errorf("audit line %v", f)
	}
	if v, _, err := metrics.Value(m.Gatherer(), metrics.NameSessionsEnded, "reason", "expired"); err != nil || v != 1 {
		t.Errorf("%s{reason=expired} = %v, %v; want 1", metrics.NameSessionsEnded, v, err)
	}
	logins, err := st.Ledger().LoginsOf(ctx, "", "alice@example.com", time.Time{}, now())
	if err != nil || logins.LiveTotal != 1 || logins.Live[0].SessionID != "alice-live" {
		t.Errorf("alice's live sessions after the sweep: %+v, %v; want alice-live", logins, err)
	}
}
