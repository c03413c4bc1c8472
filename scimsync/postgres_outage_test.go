package scimsync_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/faultnet"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// viaForwarder returns dsn rewritten to reach PostgreSQL through a
// faultnet.Forwarder the test can cut, and the forwarder.
func viaForwarder(t testing.TB, dsn string) (string, *faultnet.Forwarder) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Skipf("outage tests need a URL-form PORTCULLIS_TEST_POSTGRES, not %T", dsn)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":5432"
	}
	f, err := faultnet.Start(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	u.Host = f.Addr()
	return u.String(), f
}

// revokeCounter counts OnRevoke calls per key.
type revokeCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func countRevokes(d *scimsync.Directory) *revokeCounter {
	c := &revokeCounter{n: map[string]int{}}
	d.OnRevoke(func(key string) { c.mu.Lock(); c.n[key]++; c.mu.Unlock() })
	return c
}

func (c *revokeCounter) get() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// A replica that loses PostgreSQL keeps enforcing the directory it last
// knew, refuses writes with ErrUnavailable (nothing half-written), and when
// the database comes back catches up from the last event it applied:
// every write acknowledged elsewhere during the outage arrives, each
// applied once.
func TestPostgres_ReplicaOutageKeepsLastViewThenCatchesUp(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		m    faultnet.Mode
	}{{"refused", faultnet.Refuse}, {"partitioned", faultnet.Blackhole}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn, _ := storetest.PostgresSchema(t)
			idp := storetest.Opened(postgres.Open(context.Background(), dsn))(t) // the replica the IdP's writes reach
			for i := range 3 {
				if _, err := idp.CreateUser(ctx, storetest.NewUser(fmt.Sprint("u", i), fmt.Sprint("user", i)), "test"); err != nil {
					t.Fatal(err)
				}
			}
			cutDSN, fwd := viaForwarder(t, dsn)
			// Poll is long: after the outage the listener's reconnect alone
			// must bring the replica back (the sequence is the truth, the
			// notification only the wake-up).
			cut := newReplica(t, cutDSN, scimsync.FollowerOptions{Poll: time.Hour, MaxLag: 2 * time.Second})
			revokes := countRevokes(cut.dir)
			eventually(t, 5*time.Second, "replica never synced", confirmed(cut.f))

			fwd.Set(mode.m)
			confirmed := cut.f.ConfirmedAt()

			// Writes through the cut replica fail as unavailable, in bounded time.
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := cut.st.CreateUser(wctx, storetest.NewUser("cut", "written-during-outage"), "test")
			cancel()
			if err == nil || (mode.m == faultnet.Refuse && !errors.Is(err, store.ErrUnavailable)) {
				t.Fatalf("create through the cut replica: %v, want ErrUnavailable", err)
			}

			// The IdP's writes land on the other replica and are acknowledged.
			setActive(t, idp, "u0", false)
			if _, err := idp.CreateUser(ctx, storetest.NewUser("u3", "user3"), "test"); err != nil {
				t.Fatal(err)
			}
			setActive(t, idp, "u1", false)
			setActive(t, idp, "u1", true) // back again: its ValidAfter voids old sessions, nothing to revoke

			// The cut replica still enforces what it knew.
			time.Sleep(300 * time.Millisecond)
			if st := cut.dir.Standing("user0").State; st != identity.StateActive {
				t.Errorf("during the outage user0 is %v on the cut replica, want the last known active", st)
			}
			if st := cut.dir.Standing("user3").State; st != identity.StateUnknown {
				t.Errorf("during the outage user3 is %v on the cut replica, want unknown", st)
			}
			if !cut.f.ConfirmedAt().Equal(confirmed) {
				t.Errorf("ConfirmedAt moved during the outage: %v -> %v", confirmed, cut.f.ConfirmedAt())
			}
			if mode.m == faultnet.Refuse {
				eventually(t, 5*time.Second, "the outage is not reported by Err", func() bool { return cut.f.Err() != nil })
			}

			fwd.Set(faultnet.Pass)
			eventually(t, 20*time.Second, "the replica did not catch up after the outage", func() bool {
				return cut.dir.Standing("user0").State == identity.StateInactive &&
					cut.dir.Standing("user3").State == identity.StateActive
			})
			wantViewMatches(t, cut.dir, idp)
			want := map[string]int{"user0": 1, "user1": 1}
			if got := revokes.get(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("revocations applied on the cut replica: %v, want each once: %v", got, want)
			}
			if _, n, err := idp.ListUsers(ctx, store.Query{Attr: "username", Value: "written-during-outage"}); err != nil || n != 0 {
				t.Errorf("the refused create is in the store (%d, %v)", n, err)
			}
			// And the replica writes again.
			if _, err := cut.st.CreateUser(ctx, storetest.NewUser("u4", "user4"), "test"); err != nil {
				t.Errorf("create after the outage: %v", err)
			}
			eventually(t, 5*time.Second, "Err not cleared after the outage", func() bool { return cut.f.Err() == nil })
		})
	}
}
