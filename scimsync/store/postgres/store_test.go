package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

func openPostgres(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	return storetest.Opened(postgres.Open(context.Background(), dsn))(t)
}

func TestOpenPostgres_ConcurrentStartsMigrateOnce(t *testing.T) {
	t.Parallel()
	dsn, schema := storetest.PostgresSchema(t)
	const replicas = 5
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	start := make(chan struct{})
	for i := range replicas {
		wg.Go(func() {
			<-start
			st, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				st.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: OpenPostgres: %v", i, err)
		}
	}
	rows, _ := storetest.PostgresConn(t, schema).Query(context.Background(), `SELECT version FROM schema_migrations ORDER BY version`)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for v := range storetest.MigrationCount(t) {
		want = append(want, v+1)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema_migrations versions (-want +got):\n%s", diff)
	}
}

func TestOpenPostgres_RefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dsn, schema := storetest.PostgresSchema(t)
	openPostgres(t, dsn).Close()
	latest := storetest.MigrationCount(t)
	if _, err := storetest.PostgresAdmin(t).Exec(context.Background(),
		`INSERT INTO `+schema+`.schema_migrations (version, applied_at) VALUES ($1, now())`, latest+1); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(context.Background(), dsn)
	if err == nil {
		st.Close()
		t.Fatal("OpenPostgres accepted a database with a newer schema")
	}
	want := fmt.Sprintf("database schema version %d is newer than this portcullis knows (%d); upgrade portcullis", latest+1, latest)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
}

func TestOpenPostgres_UnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(context.Background(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("OpenPostgres on a closed port: error = %v, want ErrUnavailable", err)
	}
}

// TestPostgresStore_InvalidUTF8DocumentRoundTrips: the event log's json
// column holds UTF-8 only, so such a document goes base64 in the event.
func TestPostgresStore_InvalidUTF8DocumentRoundTrips(t *testing.T) {
	t.Parallel()
	dsn, _ := storetest.PostgresSchema(t)
	st := openPostgres(t, dsn)
	u := storetest.NewUser("u1", "alice")
	u.Doc = []byte("{\"x\":\"\xff\xfe\"}")
	if _, err := st.CreateUser(context.Background(), u, "test"); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	evs, err := st.EventsAfter(context.Background(), 0, 10)
	if err != nil || len(evs) != 1 || evs[0].User == nil {
		t.Fatalf("EventsAfter = %v, %v; want one user.created", evs, err)
	}
	got, err := st.GetUser(context.Background(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	for what, doc := range map[string][]byte{"event": evs[0].User.Doc, "stored": got.Doc} {
		if string(doc) != string(u.Doc) {
			t.Errorf("%s doc = %q, want %q byte for byte", what, doc, u.Doc)
		}
	}
}

func TestPostgresStore_TwoReplicasCreateSameUserNameOneWins(t *testing.T) {
	t.Parallel()
	dsn, _ := storetest.PostgresSchema(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	for round := range 20 {
		var wg sync.WaitGroup
		var errA, errB error
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, errA = a.CreateUser(context.Background(), storetest.NewUser(fmt.Sprintf("a%d", round), fmt.Sprintf("Carol%d", round)), "a")
		})
		wg.Go(func() {
			<-start
			_, errB = b.CreateUser(context.Background(), storetest.NewUser(fmt.Sprintf("b%d", round), fmt.Sprintf("cAROL%d", round)), "b")
		})
		close(start)
		wg.Wait()
		won := 0
		for _, err := range []error{errA, errB} {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("round %d: error = %v, want nil or ErrConflict", round, err)
			}
		}
		if won != 1 {
			t.Errorf("round %d: %d creates succeeded (A: %v, B: %v), want exactly 1", round, won, errA, errB)
		}
	}
	s, err := a.Snapshot(context.Background())
	if err != nil || len(s.Users) != 20 {
		t.Errorf("snapshot: %d users, %v; want 20", len(s.Users), err)
	}
}

func TestPostgresStore_TwoReplicasConcurrentUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	dsn, _ := storetest.PostgresSchema(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	u := storetest.NewUser("u1", "alice")
	u.Doc = []byte(`{"n":0}`)
	if _, err := a.CreateUser(context.Background(), u, "a"); err != nil {
		t.Fatal(err)
	}
	const each = 10
	var wg sync.WaitGroup
	for _, st := range []*postgres.Store{a, b, a, b} {
		wg.Go(func() {
			for range each {
				_, err := st.UpdateUser(context.Background(), "u1", func(cur *store.User) (*store.User, error) {
					var n int
					fmt.Sscanf(string(cur.Doc), `{"n":%d}`, &n)
					cur.Doc = fmt.Appendf(nil, `{"n":%d}`, n+1)
					cur.Version++
					return cur, nil
				}, "test")
				if err != nil {
					t.Errorf("UpdateUser: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got, err := b.GetUser(context.Background(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"n":%d}`, 4*each); string(got.Doc) != want || got.Version != 1+4*each {
		t.Errorf("after %d updates from two replicas: doc %s version %d, want %s version %d", 4*each, got.Doc, got.Version, want, 1+4*each)
	}
}

func TestReplayCache_SharedByReplicas(t *testing.T) {
	t.Parallel()
	dsn, _ := storetest.PostgresSchema(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	for i, tc := range []struct {
		st      *postgres.Store
		id      string
		expires time.Time
		want    bool
	}{
		{a, "id-1", later, false},
		{a, "id-1", later, true},
		{b, "id-1", later, true}, // another replica refuses it too
		{b, "id-2", later, false},
		{a, "old", time.Now().Add(-time.Second), false},
		{b, "old", later, false}, // expired: taken over
		{a, "old", later, true},
	} {
		got, err := tc.st.ReplayCache().Seen(ctx, tc.id, tc.expires)
		if err != nil || got != tc.want {
			t.Errorf("step %d: Seen(%s) = %v, %v; want %v", i, tc.id, got, err, tc.want)
		}
	}

	// Two replicas recording one ID at once: exactly one sees it fresh.
	for round := range 20 {
		id := fmt.Sprint("race-", round)
		var wg sync.WaitGroup
		seen := make([]bool, 2)
		for i, st := range []*postgres.Store{a, b} {
			wg.Go(func() {
				var err error
				if seen[i], err = st.ReplayCache().Seen(ctx, id, later); err != nil {
					t.Errorf("Seen: %v", err)
				}
			})
		}
		wg.Wait()
		if seen[0] == seen[1] {
			t.Errorf("round %d: both replicas saw %v, want one fresh and one seen", round, seen[0])
		}
	}
}

func BenchmarkPostgresCreateUser(b *testing.B) {
	dsn, _ := storetest.PostgresSchema(b)
	storetest.BenchCreateUser(b, openPostgres(b, dsn))
}

// BenchmarkPostgresCreateUserParallel creates from 4 connections at once:
// event appends serialise on the append lock, commit included.
func BenchmarkPostgresCreateUserParallel(b *testing.B) {
	dsn, _ := storetest.PostgresSchema(b)
	st := openPostgres(b, dsn)
	now := time.Now()
	var n atomic.Int64
	b.SetParallelism(2) // 2×GOMAXPROCS writers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			u := &store.User{ID: fmt.Sprintf("id-%d", i), UserName: fmt.Sprintf("user%d@example.com", i),
				Active: true, Version: 1, Created: now, LastModified: now, ValidAfter: now}
			if _, err := st.CreateUser(context.Background(), u, "bench"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "creates/s")
}

// A write on one replica reaches the other's OnEvents functions through
// LISTEN: the webhook deliverer of the replica holding the lease wakes at
// once for a write another replica took.
func TestPostgresStore_OnEventsHearsAnotherReplicasWrite(t *testing.T) {
	t.Parallel()
	dsn, _ := storetest.PostgresSchema(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	told := make(chan struct{}, 16)
	b.Deliveries().OnEvents(func() {
		select {
		case told <- struct{}{}:
		default:
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Wait(ctx); err != nil { // connects the listener
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- b.Wait(ctx) }()
	if _, err := a.CreateUser(ctx, storetest.NewUser("u1", "alice"), "a"); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("Wait: %v", err)
	}
	select {
	case <-told:
	default:
		t.Fatal("b's OnEvents function was not told of a's write")
	}
}
