package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// expiryTests are the session expiry tests; they set the store's clock.
var expiryTests = []struct {
	name string
	fn   func(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store)
}{
	{"EndExpired_ReturnsTheUnrevokedOnceAndLeavesTheLive", testEndExpired},
	{"EndExpired_ConcurrentSweepsSeeEachSessionOnce", testEndExpiredConcurrent},
}

// clockAt is a store clock the test moves.
type clockAt struct{ ms atomic.Int64 }

func (c *clockAt) now() time.Time { return at(int(c.ms.Load())) }

func testEndExpired(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	var clock clockAt
	st := openClosed(t, open, store.WithClock(clock.now))
	lg := ledger(t, st)
	for _, l := range []store.Login{
		{MatchKey: "alice@example.com", User: "alice", SessionID: "a-short", Expires: at(60_000)},
		{MatchKey: "bob@example.com", User: "bob", SessionID: "b-revoked", Expires: at(60_000), Org: "acme"},
		{MatchKey: "carol@example.com", User: "carol", SessionID: "c-long", Expires: at(3_600_000)},
	} {
		l.Issued = at(0)
		if err := lg.RecordLogin(ctx, l); err != nil {
			t.Fatalf("RecordLogin(%s): %v", l.SessionID, err)
		}
	}
	if _, err := as[store.SessionRevoker](t, st).RevokeSessions(ctx, store.SessionQuery{Org: "acme", MatchKey: "bob@example.com"}, "admin", "test"); err != nil {
		t.Fatal(err)
	}
	if got, err := as[store.SessionExpirer](t, st).EndExpired(ctx, 10, "expiry"); err != nil || len(got) != 0 {
		t.Fatalf("EndExpired before any expiry = %+v, %v; want nothing", got, err)
	}

	clock.ms.Store(60_000) // a-short and b-revoked expire now
	got, err := as[store.SessionExpirer](t, st).EndExpired(ctx, 10, "expiry")
	if err != nil {
		t.Fatal(err)
	}
	want := store.RevokedSession{Org: store.DefaultOrg, ID: "a-short", MatchKey: "alice@example.com", User: "alice",
		Reason: store.ReasonExpired, Issued: at(0), Expires: at(60_000)}
	if len(got) != 1 || !sameSession(got[0], want) {
		t.Fatalf("EndExpired = %+v, want only %+v (the revoked one ended before)", got, want)
	}
	all := allEvents(t, st)
	last := all[len(all)-1]
	if last.Kind != store.EventSessionRevoked || last.ResourceID != "a-short" || last.Actor != "expiry" || last.Session == nil ||
		last.Session.Reason != store.ReasonExpired || last.Session.User != "" || last.Session.MatchKey != "" {
		t.Fatalf("last event %+v (session %+v), want session.revoked of a-short, reason expired, actor expiry, no user",
			last, last.Session)
	}
	if all[len(all)-2].ResourceID == "b-revoked" && all[len(all)-2].Session.Reason == store.ReasonExpired {
		t.Errorf("the revoked session's expiry was logged too")
	}
	if again, err := as[store.SessionExpirer](t, st).EndExpired(ctx, 10, "expiry"); err != nil || len(again) != 0 {
		t.Fatalf("EndExpired again = %+v, %v; want nothing", again, err)
	}
	logins, err := lg.LoginsOf(ctx, "", "carol@example.com", time.Time{}, at(60_000))
	if err != nil || logins.LiveTotal != 1 {
		t.Fatalf("carol's live session after the sweep: %+v, %v", logins, err)
	}
	if _, err := as[store.SessionExpirer](t, st).EndExpired(ctx, 0, "expiry"); err == nil {
		t.Error("EndExpired(limit 0) = nil error")
	}
}

func sameSession(a, b store.RevokedSession) bool {
	return a.Org == b.Org && a.ID == b.ID && a.MatchKey == b.MatchKey && a.User == b.User && a.Reason == b.Reason &&
		a.Issued.Equal(b.Issued) && a.Expires.Equal(b.Expires)
}

// Four sweeps at once, each taking a few at a time: every expired session
// comes back exactly once.
func testEndExpiredConcurrent(t *testing.T, open func(t *testing.T, opts ...store.Option) store.Store) {
	ctx := context.Background()
	var clock clockAt
	st := openClosed(t, open, store.WithClock(clock.now))
	lg := ledger(t, st)
	const n = 60
	for i := range n {
		l := store.Login{MatchKey: fmt.Sprintf("u%02d@example.com", i), User: "u", SessionID: fmt.Sprintf("s%02d", i),
			Issued: at(0), Expires: at(1000 + i)}
		if err := lg.RecordLogin(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	clock.ms.Store(10_000)
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				got, err := as[store.SessionExpirer](t, st).EndExpired(ctx, 7, "expiry")
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, rs := range got {
					ids = append(ids, rs.ID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(ids)
	if len(ids) != n || len(slices.Compact(slices.Clone(ids))) != n {
		t.Fatalf("concurrent sweeps returned %d sessions (%d distinct), want each of %d once: %v",
			len(ids), len(slices.Compact(slices.Clone(ids))), n, ids)
	}
}
