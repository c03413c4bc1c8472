package scimsync_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// --- without PostgreSQL: a fake log and a fake listener ---

// fakeLog is a Store that only has an event log.
type fakeLog struct {
	store.Store // nil: the follower calls only EventsAfter

	mu   sync.Mutex
	evs  []store.Event
	fail error
}

func (l *fakeLog) EventsAfter(_ context.Context, seq int64, limit int) ([]store.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return nil, l.fail
	}
	var out []store.Event
	for _, e := range l.evs {
		if e.Seq > seq && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// create appends a user.created event and returns its seq.
func (l *fakeLog) create(userName string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := int64(len(l.evs) + 1)
	l.evs = append(l.evs, store.Event{Seq: seq, Kind: store.EventUserCreated, ResourceType: "User", ResourceID: userName,
		User: &store.User{ID: userName, UserName: userName, Active: true, Version: 1}})
	return seq
}

func (l *fakeLog) setFail(err error) {
	l.mu.Lock()
	l.fail = err
	l.mu.Unlock()
}

// fakeListener's Wait returns what is sent on its channel.
type fakeListener chan error

func (f fakeListener) Wait(ctx context.Context) error {
	select {
	case err := <-f:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newDir(t testing.TB) *scimsync.Directory {
	t.Helper()
	d, err := scimsync.NewDirectory("userName")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// runFollower runs f until the test ends.
func runFollower(t testing.TB, f *scimsync.Follower) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		f.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// eventually fails the test unless cond becomes true within d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFollower_CatchesUpAtStartAndWhenWoken(t *testing.T) {
	t.Parallel()
	log := &fakeLog{}
	log.create("alice")
	dir := newDir(t)
	wake := make(fakeListener)
	runFollower(t, scimsync.NewFollower(dir, log, wake, scimsync.FollowerOptions{Poll: time.Hour}))
	eventually(t, 5*time.Second, "initial catch-up did not happen", func() bool { return dir.Seq() == 1 })

	seq := log.create("bob")
	wake <- nil
	eventually(t, 5*time.Second, "a wake-up did not catch up", func() bool { return dir.Seq() == seq })
}

func TestFollower_PollsWithoutListener(t *testing.T) {
	t.Parallel()
	log := &fakeLog{}
	dir := newDir(t)
	runFollower(t, scimsync.NewFollower(dir, log, nil, scimsync.FollowerOptions{Poll: 5 * time.Millisecond}))
	seq := log.create("alice")
	eventually(t, 5*time.Second, "polling did not catch up", func() bool { return dir.Seq() == seq })
}

func TestFollower_ConfirmedAtFollowsCatchUpsAndErrorsShow(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	log := &fakeLog{}
	dir := newDir(t)
	wake := make(fakeListener)
	f := scimsync.NewFollower(dir, log, wake, scimsync.FollowerOptions{Poll: time.Hour, MaxLag: time.Minute, Now: clock.Now})
	if !f.ConfirmedAt().IsZero() {
		t.Errorf("before Run: ConfirmedAt = %v, want zero", f.ConfirmedAt())
	}
	runFollower(t, f)
	eventually(t, 5*time.Second, "first catch-up not recorded", func() bool { return !f.ConfirmedAt().IsZero() })
	first := f.ConfirmedAt()
	if f.Err() != nil || !first.Equal(clock.Now()) {
		t.Errorf("after a catch-up: Err = %v, ConfirmedAt = %v; want nil, %v", f.Err(), first, clock.Now())
	}

	// The store fails: the error shows and ConfirmedAt stays at the last
	// good catch-up (the gate's staleness check counts from it).
	down := errors.New("connection refused")
	log.setFail(down)
	clock.Advance(30 * time.Second)
	wake <- nil
	eventually(t, 5*time.Second, "catch-up error not reported", func() bool { return errors.Is(f.Err(), down) })
	if !f.ConfirmedAt().Equal(first) {
		t.Errorf("30 s after the last good catch-up: ConfirmedAt = %v, want %v", f.ConfirmedAt(), first)
	}

	// A listener error alone is reported, but catch-ups still confirm.
	log.setFail(nil)
	wake <- nil
	eventually(t, 5*time.Second, "recovery not recorded", func() bool { return f.Err() == nil })
	recovered := f.ConfirmedAt()
	if !recovered.Equal(clock.Now()) {
		t.Errorf("after recovery: ConfirmedAt = %v, want %v", recovered, clock.Now())
	}
	lost := errors.New("listen connection lost")
	wake <- lost
	eventually(t, 5*time.Second, "listener error not reported", func() bool { return errors.Is(f.Err(), lost) })
	if !f.ConfirmedAt().Equal(recovered) {
		t.Errorf("with only the listener failing: ConfirmedAt = %v, want %v", f.ConfirmedAt(), recovered)
	}
}

func TestFollower_ConfirmedAtStartsAtTheSnapshotAndFollowsCatchUps(t *testing.T) {
	t.Parallel()
	clock := &testClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	loaded := clock.Now().Add(-2 * time.Second)
	log := &fakeLog{}
	wake := make(fakeListener)
	f := scimsync.NewFollower(newDir(t), log, wake, scimsync.FollowerOptions{Poll: time.Hour, Now: clock.Now, Loaded: loaded})
	if !f.ConfirmedAt().Equal(loaded) {
		t.Fatalf("before Run: ConfirmedAt %v, want the snapshot time %v", f.ConfirmedAt(), loaded)
	}
	log.setFail(errors.New("connection refused"))
	runFollower(t, f)
	eventually(t, 5*time.Second, "catch-up error not reported", func() bool { return f.Err() != nil })
	if !f.ConfirmedAt().Equal(loaded) {
		t.Errorf("after a failed catch-up: ConfirmedAt %v, want it unchanged at %v", f.ConfirmedAt(), loaded)
	}
	log.setFail(nil)
	clock.Advance(time.Minute)
	wake <- nil
	eventually(t, 5*time.Second, "recovery not recorded", func() bool { return f.Err() == nil })
	if !f.ConfirmedAt().Equal(clock.Now()) {
		t.Errorf("after a good catch-up: ConfirmedAt %v, want %v", f.ConfirmedAt(), clock.Now())
	}
}

// --- with PostgreSQL: replicas as two store handles, views and followers ---

// replica is one process's view of a shared PostgreSQL directory.
type replica struct {
	st  *postgres.Store
	dir *scimsync.Directory
	f   *scimsync.Follower
}

// confirmed reports whether f has confirmed its view current at all.
func confirmed(f *scimsync.Follower) func() bool {
	return func() bool { return !f.ConfirmedAt().IsZero() }
}

func newReplica(t testing.TB, dsn string, opts scimsync.FollowerOptions) *replica {
	t.Helper()
	r := &replica{st: storetest.Opened(postgres.Open(context.Background(), dsn))(t), dir: newDir(t)}
	snap, err := r.st.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.dir.Load(snap)
	r.f = scimsync.NewFollower(r.dir, r.st, r.st, opts)
	runFollower(t, r.f)
	return r
}

func setActive(t testing.TB, st store.Store, id string, active bool) {
	t.Helper()
	_, err := st.UpdateUser(context.Background(), id, func(cur *store.User) (*store.User, error) {
		cur.Active = active
		cur.Version++
		return cur, nil
	}, "test")
	if err != nil {
		t.Fatalf("UpdateUser(%s): %v", id, err)
	}
}

// wantViewMatches checks that dir is what a fresh load of st gives.
func wantViewMatches(t testing.TB, dir *scimsync.Directory, st store.Store) {
	t.Helper()
	snap, err := st.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fresh := newDir(t)
	fresh.Load(snap)
	if dir.Seq() != snap.Seq {
		t.Errorf("view Seq = %d, want %d", dir.Seq(), snap.Seq)
	}
	got, want := map[string]identity.Standing{}, map[string]identity.Standing{}
	for _, u := range snap.Users {
		got[u.UserName], want[u.UserName] = dir.Standing(u.UserName), fresh.Standing(u.UserName)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("view differs from a fresh snapshot (-want +got):\n%s", diff)
	}
}

func TestFollower_PostgresPropagatesDeactivations(t *testing.T) {
	t.Parallel()
	dsn, _ := storetest.PostgresSchema(t)
	const n = 50
	a := storetest.Opened(postgres.Open(context.Background(), dsn))(t)
	for i := range n {
		if _, err := a.CreateUser(context.Background(), storetest.NewUser(fmt.Sprint("u", i), fmt.Sprint("user", i)), "test"); err != nil {
			t.Fatal(err)
		}
	}
	ra := newReplica(t, dsn, scimsync.FollowerOptions{})
	rb := newReplica(t, dsn, scimsync.FollowerOptions{})
	revoked := make(chan string, n)
	rb.dir.OnRevoke(func(key string) { revoked <- key })
	eventually(t, 5*time.Second, "replica B never synced", confirmed(rb.f))

	var lat, write []time.Duration
	for i := range n {
		start := time.Now()
		setActive(t, ra.st, fmt.Sprint("u", i), false)
		write = append(write, time.Since(start))
		select {
		case key := <-revoked:
			lat = append(lat, time.Since(start))
			if key != fmt.Sprint("user", i) {
				t.Fatalf("replica B revoked %q, want user%d", key, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("deactivation %d not seen by replica B after 10 s", i)
		}
		if rb.dir.Standing(fmt.Sprint("user", i)).State != identity.StateInactive {
			t.Errorf("replica B: user%d not inactive after the revoke hook ran", i)
		}
	}
	slices.Sort(lat)
	slices.Sort(write)
	t.Logf("%d deactivations, write on A to view B: p50 %v, p99 %v, max %v (the write itself: p50 %v)",
		n, lat[n/2], lat[(n*99+99)/100-1], lat[n-1], write[n/2])
	wantViewMatches(t, rb.dir, rb.st)
	wantViewMatches(t, ra.dir, ra.st)
}

// listenerPID is the backend of the (one) LISTEN connection in schema's
// test, or 0.
func listenerPID(t testing.TB, schema string) int32 {
	t.Helper()
	var pid int32
	err := storetest.PostgresAdmin(t).QueryRow(context.Background(), `SELECT COALESCE(MAX(pid), 0) FROM pg_stat_activity
		WHERE application_name = $1 AND query = 'LISTEN portcullis_events'`, schema).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestFollower_PostgresSurvivesListenerDisconnect(t *testing.T) {
	t.Parallel()
	dsn, schema := storetest.PostgresSchema(t)
	a := storetest.Opened(postgres.Open(context.Background(), dsn))(t)
	// An hour between polls: only the listener can bring changes in time.
	b := newReplica(t, dsn, scimsync.FollowerOptions{Poll: time.Hour})
	create := func(i int) {
		if _, err := a.CreateUser(context.Background(), storetest.NewUser(fmt.Sprint("u", i), fmt.Sprint("user", i)), "test"); err != nil {
			t.Fatal(err)
		}
	}
	known := func(i int) func() bool {
		return func() bool { return b.dir.Standing(fmt.Sprint("user", i)).State == identity.StateActive }
	}
	create(0)
	eventually(t, 10*time.Second, "first write not seen through the listener", known(0))
	// The first write may have arrived through the start-up catch-up before
	// the LISTEN connection was up; wait for the connection itself.
	var pid int32
	eventually(t, 10*time.Second, "no LISTEN connection found", func() bool {
		pid = listenerPID(t, schema)
		return pid != 0
	})

	var ok bool
	if err := storetest.PostgresAdmin(t).QueryRow(context.Background(), `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	for i := 1; i <= 20; i++ { // at least the first of these while it reconnects
		create(i)
	}
	eventually(t, 10*time.Second, "writes made during the disconnect not caught up", known(20))
	eventually(t, 10*time.Second, "listener did not reconnect", func() bool {
		p := listenerPID(t, schema)
		return p != 0 && p != pid
	})
	recoveredBy := time.Now()
	create(21)
	eventually(t, 10*time.Second, "write after the reconnect not seen", known(21))
	wantViewMatches(t, b.dir, b.st)
	if b.f.ConfirmedAt().Before(recoveredBy) || b.f.Err() != nil {
		t.Errorf("after recovery: ConfirmedAt = %v, Err = %v; want at or after %v, nil", b.f.ConfirmedAt(), b.f.Err(), recoveredBy)
	}
}

// TestFollower_PostgresOutOfOrderCommitsNeverSkip builds the race that
// breaks followers of a plain sequence, deterministically: write A takes
// seq N and stalls before commit (its event insert waits for a test
// transaction holding row N); write B starts after. Without the append
// lock B takes N+1 and commits first, a catch-up then moves past N, and A's
// event is never applied. With it, B waits for A.
func TestFollower_PostgresOutOfOrderCommitsNeverSkip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, schema := storetest.PostgresSchema(t)
	a, b := storetest.Opened(postgres.Open(context.Background(), dsn))(t), storetest.Opened(postgres.Open(context.Background(), dsn))(t)
	for _, u := range []*store.User{storetest.NewUser("u1", "alice"), storetest.NewUser("u2", "bob")} {
		if _, err := a.CreateUser(ctx, u, "test"); err != nil {
			t.Fatal(err)
		}
	}
	dir := newDir(t)
	if err := dir.CatchUp(ctx, a); err != nil {
		t.Fatal(err)
	}

	blocker, err := storetest.PostgresConn(t, schema).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(ctx)
	var next int64
	if err := blocker.QueryRow(ctx, `SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END
		FROM `+schema+`.events_seq_seq`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(ctx, `INSERT INTO events (seq, time, kind, resource_type, resource_id, actor)
		OVERRIDING SYSTEM VALUE VALUES ($1, now(), 'test.blocker', 'User', '-', 'test')`, next); err != nil {
		t.Fatal(err)
	}

	waiting := func(event string) func() bool {
		return func() bool {
			var n int
			err := storetest.PostgresAdmin(t).QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE application_name = $1 AND wait_event_type = 'Lock' AND wait_event = $2`, schema, event).Scan(&n)
			return err == nil && n > 0
		}
	}
	var wg sync.WaitGroup
	var evA, evB []store.Event
	var errA, errB error
	wg.Go(func() {
		evA, errA = a.UpdateUser(ctx, "u1", func(cur *store.User) (*store.User, error) { cur.Active = false; return cur, nil }, "a")
	})
	eventually(t, 10*time.Second, "write A never waited for the blocker", waiting("transactionid"))
	doneB := make(chan struct{})
	wg.Go(func() {
		defer close(doneB)
		evB, errB = b.UpdateUser(ctx, "u2", func(cur *store.User) (*store.User, error) { cur.Active = false; return cur, nil }, "b")
	})
	eventually(t, 10*time.Second, "write B neither waited nor finished", func() bool {
		select {
		case <-doneB:
			return true
		default:
			return waiting("advisory")()
		}
	})

	if err := dir.CatchUp(ctx, a); err != nil { // between the two commits
		t.Fatal(err)
	}
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("writes: A %v, B %v", errA, errB)
	}
	if len(evA) != 1 || len(evB) != 1 || evA[0].Seq != next || evB[0].Seq <= next {
		t.Errorf("seqs: A %v, B %v; want A = %d < B", evA, evB, next)
	}
	if err := dir.CatchUp(ctx, a); err != nil {
		t.Fatal(err)
	}
	wantViewMatches(t, dir, a)
}

// seqRecorder is a Store that remembers every seq EventsAfter returns.
type seqRecorder struct {
	store.Store
	mu   sync.Mutex
	seqs []int64
}

func (r *seqRecorder) EventsAfter(ctx context.Context, seq int64, limit int) ([]store.Event, error) {
	evs, err := r.Store.EventsAfter(ctx, seq, limit)
	r.mu.Lock()
	for _, e := range evs {
		r.seqs = append(r.seqs, e.Seq)
	}
	r.mu.Unlock()
	return evs, err
}

func TestFollower_PostgresConcurrentWritersNoSeqSkipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, _ := storetest.PostgresSchema(t)
	stores := []*postgres.Store{storetest.Opened(postgres.Open(context.Background(), dsn))(t), storetest.Opened(postgres.Open(context.Background(), dsn))(t)}
	const writers, each = 4, 25
	for w := range writers {
		if _, err := stores[0].CreateUser(ctx, storetest.NewUser(fmt.Sprint("u", w), fmt.Sprint("user", w)), "test"); err != nil {
			t.Fatal(err)
		}
	}
	dir := newDir(t)
	rec := &seqRecorder{Store: stores[1]}
	stop := make(chan struct{})
	var follow sync.WaitGroup
	follow.Go(func() { // catches up as fast as it can, in between every commit
		for {
			if err := dir.CatchUp(ctx, rec); err != nil {
				t.Error(err)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				setActive(t, stores[w%2], fmt.Sprint("u", w), i%2 == 1)
			}
		})
	}
	wg.Wait()
	close(stop)
	follow.Wait()
	if err := dir.CatchUp(ctx, rec); err != nil {
		t.Fatal(err)
	}
	all, err := stores[0].EventsAfter(ctx, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, e := range all {
		want = append(want, e.Seq)
	}
	if diff := cmp.Diff(want, rec.seqs); diff != "" {
		t.Errorf("seqs the follower read (-log +read):\n%s", diff)
	}
	wantViewMatches(t, dir, stores[0])
}
