package scimsync_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/portcullis-sso/portcullis/scimsync"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// The PostgreSQL tests need a server. They skip when none answers at
// PORTCULLIS_TEST_POSTGRES (default below), and fail instead when
// PORTCULLIS_REQUIRE_PEERS is set, as in CI. Each test works in a schema of
// its own, dropped at the end, so parallel tests and CI runs never meet.
const pgDefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var pgReachable = sync.OnceValues(func() (string, error) {
	dsn := os.Getenv("PORTCULLIS_TEST_POSTGRES")
	if dsn == "" {
		dsn = pgDefaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return dsn, err
	}
	defer conn.Close(ctx)
	return dsn, conn.Ping(ctx)
})

// pgAdmin returns a connection to the test database, skipping the test if
// there is none.
func pgAdmin(t testing.TB) *pgx.Conn {
	t.Helper()
	dsn, err := pgReachable()
	if err != nil {
		shown := "(a key=value DSN)"
		if u, perr := url.Parse(dsn); perr == nil && u.Scheme != "" {
			shown = u.Redacted()
		}
		msg := fmt.Sprintf("PostgreSQL not reachable at PORTCULLIS_TEST_POSTGRES=%s: %v", shown, err)
		if os.Getenv("PORTCULLIS_REQUIRE_PEERS") != "" {
			t.Fatal(msg + " (required: PORTCULLIS_REQUIRE_PEERS is set)")
		}
		t.Skip(msg + " (set PORTCULLIS_REQUIRE_PEERS to fail instead)")
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// pgSchema creates a fresh schema, dropped when the test ends, and returns
// a DSN whose connections use it (search_path) and carry its name as
// application_name, so pg_stat_activity can tell them apart.
func pgSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	admin := pgAdmin(t)
	var b [6]byte
	rand.Read(b[:])
	schema = "portcullis_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	base, _ := pgReachable()
	params := [][2]string{{"search_path", schema}, {"application_name", schema}, {"pool_max_conns", "4"}}
	if u, err := url.Parse(base); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		for _, p := range params {
			q.Set(p[0], p[1])
		}
		u.RawQuery = q.Encode()
		return u.String(), schema
	}
	for _, p := range params { // key=value form
		base += " " + p[0] + "=" + p[1]
	}
	return base, schema
}

// pgConn returns a connection of its own to schema, closed when the test ends.
func pgConn(t testing.TB, schema string) *pgx.Conn {
	t.Helper()
	base, _ := pgReachable()
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func openPostgres(t testing.TB, dsn string) *scimsync.PostgresStore {
	t.Helper()
	st, err := scimsync.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestPostgresStore_Conformance(t *testing.T) {
	pgAdmin(t) // skip the whole suite at once when there is no server
	storetest.Run(t, func(t *testing.T, opts ...store.Option) store.Store {
		dsn, _ := pgSchema(t)
		st, err := scimsync.OpenPostgres(context.Background(), dsn, opts...)
		if err != nil {
			t.Fatalf("OpenPostgres: %v", err)
		}
		return st
	})
}

func pgMigrationCount(t testing.TB) int {
	t.Helper()
	files, err := filepath.Glob("migrations_postgres/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	return len(files)
}

func TestOpenPostgres_ConcurrentStartsMigrateOnce(t *testing.T) {
	t.Parallel()
	dsn, schema := pgSchema(t)
	const replicas = 5
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	start := make(chan struct{})
	for i := range replicas {
		wg.Go(func() {
			<-start
			st, err := scimsync.OpenPostgres(context.Background(), dsn)
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
	rows, _ := pgConn(t, schema).Query(context.Background(), `SELECT version FROM schema_migrations ORDER BY version`)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for v := range pgMigrationCount(t) {
		want = append(want, v+1)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema_migrations versions (-want +got):\n%s", diff)
	}
}

func TestOpenPostgres_RefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dsn, schema := pgSchema(t)
	openPostgres(t, dsn).Close()
	latest := pgMigrationCount(t)
	if _, err := pgAdmin(t).Exec(context.Background(),
		`INSERT INTO `+schema+`.schema_migrations (version, applied_at) VALUES ($1, now())`, latest+1); err != nil {
		t.Fatal(err)
	}
	st, err := scimsync.OpenPostgres(context.Background(), dsn)
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
	_, err := scimsync.OpenPostgres(context.Background(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
	if !errors.Is(err, scimsync.ErrUnavailable) {
		t.Errorf("OpenPostgres on a closed port: error = %v, want ErrUnavailable", err)
	}
}

// TestPostgresStore_InvalidUTF8DocumentRoundTrips: the event log's json
// column holds UTF-8 only, so such a document goes base64 in the event.
func TestPostgresStore_InvalidUTF8DocumentRoundTrips(t *testing.T) {
	t.Parallel()
	dsn, _ := pgSchema(t)
	st := openPostgres(t, dsn)
	u := pgUser("u1", "alice")
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
	dsn, _ := pgSchema(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	for round := range 20 {
		var wg sync.WaitGroup
		var errA, errB error
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, errA = a.CreateUser(context.Background(), pgUser(fmt.Sprintf("a%d", round), fmt.Sprintf("Carol%d", round)), "a")
		})
		wg.Go(func() {
			<-start
			_, errB = b.CreateUser(context.Background(), pgUser(fmt.Sprintf("b%d", round), fmt.Sprintf("cAROL%d", round)), "b")
		})
		close(start)
		wg.Wait()
		won := 0
		for _, err := range []error{errA, errB} {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, scimsync.ErrConflict):
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
	dsn, _ := pgSchema(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	u := pgUser("u1", "alice")
	u.Doc = []byte(`{"n":0}`)
	if _, err := a.CreateUser(context.Background(), u, "a"); err != nil {
		t.Fatal(err)
	}
	const each = 10
	var wg sync.WaitGroup
	for _, st := range []*scimsync.PostgresStore{a, b, a, b} {
		wg.Go(func() {
			for range each {
				_, err := st.UpdateUser(context.Background(), "u1", func(cur *scimsync.User) (*scimsync.User, error) {
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

func TestPostgresStore_SeenAssertion(t *testing.T) {
	t.Parallel()
	dsn, _ := pgSchema(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	for i, tc := range []struct {
		st      *scimsync.PostgresStore
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
		got, err := tc.st.SeenAssertion(ctx, tc.id, tc.expires)
		if err != nil || got != tc.want {
			t.Errorf("step %d: SeenAssertion(%s) = %v, %v; want %v", i, tc.id, got, err, tc.want)
		}
	}

	// Two replicas recording one ID at once: exactly one sees it fresh.
	for round := range 20 {
		id := fmt.Sprint("race-", round)
		var wg sync.WaitGroup
		seen := make([]bool, 2)
		for i, st := range []*scimsync.PostgresStore{a, b} {
			wg.Go(func() {
				var err error
				if seen[i], err = st.SeenAssertion(ctx, id, later); err != nil {
					t.Errorf("SeenAssertion: %v", err)
				}
			})
		}
		wg.Wait()
		if seen[0] == seen[1] {
			t.Errorf("round %d: both replicas saw %v, want one fresh and one seen", round, seen[0])
		}
	}
}

// TestPostgresStore_ReaderMatchesSQLite writes the same directory to both
// stores and compares every Reader answer.
func TestPostgresStore_ReaderMatchesSQLite(t *testing.T) {
	t.Parallel()
	dsn, _ := pgSchema(t)
	pg := openPostgres(t, dsn)
	lite, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "portcullis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	ctx := context.Background()
	for _, st := range []scimsync.Store{pg, lite} {
		for i := range 7 {
			u := pgUser(fmt.Sprintf("u%d", i), fmt.Sprintf("User%d", i))
			u.Email = fmt.Sprintf("Shared%d@Example.com", i%2)
			if _, err := st.CreateUser(ctx, u, "t"); err != nil {
				t.Fatal(err)
			}
		}
		for i, members := range [][]string{{"u3", "u1"}, {"u1"}, nil} {
			g := &scimsync.Group{ID: fmt.Sprintf("g%d", i), DisplayName: fmt.Sprintf("Staff %d", i%2), ExternalID: "x",
				Members: members, Version: 1, Created: time.UnixMilli(1e12).UTC()}
			if _, err := st.CreateGroup(ctx, g, "t"); err != nil {
				t.Fatal(err)
			}
		}
	}
	type answer struct {
		Users  []*scimsync.User
		Groups []*scimsync.Group
		Total  int
		Err    bool
	}
	same := func(what string, lite, pg answer) {
		t.Helper()
		if diff := cmp.Diff(lite, pg); diff != "" {
			t.Errorf("%s: PostgreSQL differs from SQLite (-sqlite +postgres):\n%s", what, diff)
		}
	}
	for _, q := range []scimsync.Query{
		{}, {Limit: 3}, {Offset: 5}, {Offset: 2, Limit: 2}, {Offset: 10},
		{Attr: "username", Value: "USER3"}, {Attr: "email", Value: "shared1@example.COM", Limit: 2},
		{Attr: "externalid", Value: "ext-u4"}, {Attr: "id", Value: "u5"}, {Attr: "id", Value: "nobody"}, {Attr: "bogus"},
	} {
		var a [2]answer
		for i, r := range []scimsync.Reader{lite, pg} {
			users, n, err := r.ListUsers(ctx, q)
			a[i] = answer{Users: users, Total: n, Err: err != nil}
		}
		same(fmt.Sprintf("ListUsers(%+v)", q), a[0], a[1])
	}
	for _, q := range []scimsync.Query{
		{}, {Limit: 2}, {Offset: 1}, {Attr: "displayname", Value: "staff 1"}, {Attr: "externalid", Value: "x", Offset: 1},
		{Attr: "id", Value: "g0"}, {Attr: "member", Value: "u1"}, {Attr: "member", Value: "u3", Limit: 1}, {Attr: "username"},
	} {
		for _, withMembers := range []bool{false, true} {
			var a [2]answer
			for i, r := range []scimsync.Reader{lite, pg} {
				groups, n, err := r.ListGroups(ctx, q, withMembers)
				a[i] = answer{Groups: groups, Total: n, Err: err != nil}
			}
			same(fmt.Sprintf("ListGroups(%+v, %v)", q, withMembers), a[0], a[1])
		}
	}
	for _, id := range []string{"u2", "g0", "nobody"} {
		var a [2]answer
		for i, r := range []scimsync.Reader{lite, pg} {
			u, uerr := r.GetUser(ctx, id)
			g, gerr := r.GetGroup(ctx, id)
			if u != nil {
				a[i].Users = []*scimsync.User{u}
			}
			if g != nil {
				a[i].Groups = []*scimsync.Group{g}
			}
			a[i].Err = (uerr != nil && !errors.Is(uerr, scimsync.ErrNotFound)) || (gerr != nil && !errors.Is(gerr, scimsync.ErrNotFound))
		}
		same("Get "+id, a[0], a[1])
	}
}

func pgUser(id, userName string) *scimsync.User {
	t0 := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	return &scimsync.User{ID: id, UserName: userName, ExternalID: "ext-" + id, Email: userName + "@example.com",
		Active: true, Doc: fmt.Appendf(nil, `{"userName":%q}`, userName), Version: 1, Created: t0, LastModified: t0, ValidAfter: t0}
}

func BenchmarkPostgresCreateUser(b *testing.B) {
	dsn, _ := pgSchema(b)
	st := openPostgres(b, dsn)
	ctx := context.Background()
	now := time.Now()
	doc := []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"name":{"givenName":"Bench","familyName":"User"},"emails":[{"value":"x@example.com","primary":true}],"active":true}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		u := &scimsync.User{ID: fmt.Sprintf("id-%d", i), UserName: fmt.Sprintf("user%d@example.com", i), Email: "x@example.com",
			Active: true, Doc: doc, Version: 1, Created: now, LastModified: now, ValidAfter: now}
		if _, err := st.CreateUser(ctx, u, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkPostgresCreateUserParallel creates from 4 connections at once:
// event appends serialise on the append lock, commit included.
func BenchmarkPostgresCreateUserParallel(b *testing.B) {
	dsn, _ := pgSchema(b)
	st := openPostgres(b, dsn)
	now := time.Now()
	var n atomic.Int64
	b.SetParallelism(2) // 2×GOMAXPROCS writers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			u := &scimsync.User{ID: fmt.Sprintf("id-%d", i), UserName: fmt.Sprintf("user%d@example.com", i),
				Active: true, Version: 1, Created: now, LastModified: now, ValidAfter: now}
			if _, err := st.CreateUser(context.Background(), u, "bench"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkPostgresSnapshot100k loads the directory of
// BenchmarkSQLiteSnapshot100k (100,000 users; 10,000 groups of 10 members,
// one of 10,000) and builds the in-memory view from it: how long a replica
// takes to be ready. The rows are seeded with COPY, not through the store.
func BenchmarkPostgresSnapshot100k(b *testing.B) {
	const nUsers, nGroups = 100_000, 10_000
	ctx := context.Background()
	dsn, schema := pgSchema(b)
	st := openPostgres(b, dsn)
	conn := pgConn(b, schema)

	start := time.Now()
	now := time.Now().UTC().Truncate(time.Millisecond)
	userRows := make([][]any, nUsers)
	for i := range userRows {
		name := fmt.Sprintf("user%d@example.com", i)
		userRows[i] = []any{fmt.Sprintf("2819c223-7f76-453a-919d-%012d", i), name, name, fmt.Sprint(i), name, name, true,
			fmt.Appendf(nil, `{"name":{"givenName":"User","familyName":"%d"},"emails":[{"value":"%s","primary":true}]}`, i, name),
			1, now, now, now}
	}
	groupRows := make([][]any, nGroups)
	var memberRows [][]any
	for g := range groupRows {
		name := fmt.Sprintf("Group %d", g)
		groupRows[g] = []any{fmt.Sprintf("group-%d", g), name, strings.ToLower(name), "", []byte(`{"displayName":"x"}`), 1, now, now}
		n := 10
		if g == 0 {
			n = 10_000
		}
		for i := range n {
			memberRows = append(memberRows, []any{int64(g + 1), int64((g*10+i)%nUsers + 1)}) // fresh identities start at 1
		}
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"users", []string{"id", "user_name", "user_name_lower", "external_id", "email", "email_lower", "active", "doc", "version", "created", "last_modified", "valid_after"}, userRows},
		{"groups", []string{"id", "display_name", "display_name_lower", "external_id", "doc", "version", "created", "last_modified"}, groupRows},
		{"group_members", []string{"group_pk", "user_pk"}, memberRows},
	} {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			b.Fatalf("copy %s: %v", c.table, err)
		}
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.Logf("setup: %d users, %d groups, %d memberships in %v", nUsers, nGroups, len(memberRows), time.Since(start).Round(time.Millisecond))

	b.ReportAllocs()
	b.ResetTimer()
	var snapTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		s, err := st.Snapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		snapTime += time.Since(t0)
		if len(s.Users) != nUsers || len(s.Groups) != nGroups {
			b.Fatalf("snapshot has %d users, %d groups", len(s.Users), len(s.Groups))
		}
		dir, _ := scimsync.NewDirectory("userName")
		dir.Load(s)
	}
	b.ReportMetric(float64(snapTime.Milliseconds())/float64(b.N), "snapshot-ms/op")
}
