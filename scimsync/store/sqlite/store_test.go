package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

func openSQLite(t testing.TB, path string, opts ...store.Option) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return st
}

func TestOpenSQLite_SettingsInEffect(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new", "dir", "portcullis.db")
	st := openSQLite(t, path)
	defer st.Close()

	got, err := st.Settings(context.Background())
	if err != nil {
		t.Fatalf("Settings: %v", err)
	}
	want := sqlite.Settings{JournalMode: "wal", Synchronous: 2, ForeignKeys: true, BusyTimeout: 5 * time.Second, SchemaVersion: storetest.MigrationCount(t)}
	if got != want {
		t.Errorf("Settings = %+v, want %+v", got, want)
	}

	// The journal mode lives in the file: a fresh connection sees it too.
	raw := storetest.SQLiteFile(t, path)
	var mode string
	if err := raw.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode seen by another connection = %q, %v; want wal", mode, err)
	}

	for _, p := range []struct {
		path string
		mode os.FileMode
	}{
		{filepath.Dir(path), 0o700},
		{path, 0o600},
	} {
		fi, err := os.Stat(p.path)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m&^p.mode != 0 {
			t.Errorf("%s mode = %v, want at most %v", p.path, m, p.mode)
		}
	}
}

func TestOpenSQLite_RecordsMigrations(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "portcullis.db")
	openSQLite(t, path).Close()
	openSQLite(t, path).Close() // reopening applies nothing twice

	rows, err := storetest.SQLiteFile(t, path).Query(`SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(time.UnixMilli(at)); d < 0 || d > time.Minute {
			t.Errorf("migration %d applied_at %v is not now", v, time.UnixMilli(at))
		}
		versions = append(versions, v)
	}
	var want []int
	for v := range storetest.MigrationCount(t) {
		want = append(want, v+1)
	}
	if fmt.Sprint(versions) != fmt.Sprint(want) {
		t.Errorf("schema_migrations versions = %v, want %v", versions, want)
	}
}

func TestOpenSQLite_RefusesNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "portcullis.db")
	openSQLite(t, path).Close()
	if _, err := storetest.SQLiteFile(t, path).Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)`); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), path)
	if err == nil {
		st.Close()
		t.Fatal("Open opened a database with schema version 99")
	}
	want := fmt.Sprintf("database schema version 99 is newer than this portcullis knows (%d); upgrade portcullis", storetest.MigrationCount(t))
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
}

func TestOpenSQLite_RejectsNonFilePaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", ":memory:", "file:x.db?mode=memory", filepath.Join(t.TempDir(), "a?b.db")} {
		if st, err := sqlite.Open(context.Background(), p); err == nil {
			st.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

func TestSQLiteStore_DataSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "portcullis.db")
	st := openSQLite(t, path)
	now := time.UnixMilli(1_750_000_000_123).UTC()
	u := &store.User{ID: "u1", UserName: "alice", Active: true, Doc: []byte(`{"a":1}`), Version: 1,
		Created: now, LastModified: now, ValidAfter: now}
	if _, err := st.CreateUser(ctx, u, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateGroup(ctx, &store.Group{ID: "g1", DisplayName: "staff", Members: []string{"u1"}, Version: 1}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := st.Snapshot(ctx); err == nil {
		t.Error("Snapshot after Close succeeded")
	}

	st = openSQLite(t, path)
	defer st.Close()
	s, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Users) != 1 || s.Users[0].UserName != "alice" || !s.Users[0].Created.Equal(now) {
		t.Errorf("users after reopen = %+v", s.Users)
	}
	if len(s.Groups) != 1 || fmt.Sprint(s.Groups[0].Members) != "[u1]" {
		t.Errorf("groups after reopen = %+v", s.Groups)
	}
	if s.Seq != 3 {
		t.Errorf("Seq after reopen = %d, want 3", s.Seq)
	}
	// The log goes on from where it was.
	evs, err := st.CreateUser(ctx, &store.User{ID: "u2", UserName: "bob", Version: 1}, "test")
	if err != nil || len(evs) != 1 || evs[0].Seq != 4 {
		t.Errorf("CreateUser after reopen = %+v, %v; want one event with Seq 4", evs, err)
	}
}

func TestSQLiteStore_ReadsDoNotWaitForWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openSQLite(t, filepath.Join(t.TempDir(), "portcullis.db"))
	defer st.Close()
	if _, err := st.CreateUser(ctx, &store.User{ID: "u1", UserName: "alice", Version: 1}, "test"); err != nil {
		t.Fatal(err)
	}
	// Hold the write transaction open inside fn while reading.
	_, err := st.UpdateUser(ctx, "u1", func(cur *store.User) (*store.User, error) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := st.Snapshot(rctx)
		if err != nil {
			return nil, fmt.Errorf("snapshot during a write: %w", err)
		}
		if len(s.Users) != 1 {
			return nil, fmt.Errorf("snapshot during a write has %d users", len(s.Users))
		}
		if _, err := st.EventsAfter(rctx, 0, 10); err != nil {
			return nil, fmt.Errorf("events during a write: %w", err)
		}
		return nil, errDone
	}, "test")
	if !errors.Is(err, errDone) {
		t.Error(err)
	}
}

var errDone = errors.New("done")

func BenchmarkSQLiteCreateUser(b *testing.B) {
	st := openSQLite(b, filepath.Join(b.TempDir(), "portcullis.db"))
	defer st.Close()
	storetest.BenchCreateUser(b, st)
}

// BenchmarkSQLiteSnapshot100k loads a directory of 100,000 users and 10,000
// groups (10 members each on average, one group of 10,000). The setup takes
// a while; it only runs with -bench.
func BenchmarkSQLiteSnapshot100k(b *testing.B) {
	const nUsers, nGroups = 100_000, 10_000
	ctx := context.Background()
	st := openSQLite(b, filepath.Join(b.TempDir(), "portcullis.db"))
	defer st.Close()

	start := time.Now()
	now := time.Now()
	userID := func(i int) string { return fmt.Sprintf("2819c223-7f76-453a-919d-%012d", i) }
	for i := range nUsers {
		u := &store.User{ID: userID(i), UserName: fmt.Sprintf("user%d@example.com", i), Email: fmt.Sprintf("user%d@example.com", i),
			ExternalID: fmt.Sprint(i), Active: true, Version: 1, Created: now, LastModified: now, ValidAfter: now,
			Doc: fmt.Appendf(nil, `{"name":{"givenName":"User","familyName":"%d"},"emails":[{"value":"user%d@example.com","primary":true}]}`, i, i)}
		if _, err := st.CreateUser(ctx, u, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	for g := range nGroups {
		var members []string
		if g == 0 {
			for i := range 10_000 {
				members = append(members, userID(i))
			}
		} else {
			for i := range 10 {
				members = append(members, userID((g*10+i)%nUsers))
			}
		}
		grp := &store.Group{ID: fmt.Sprintf("group-%d", g), DisplayName: fmt.Sprintf("Group %d", g), Version: 1,
			Created: now, LastModified: now, Members: members, Doc: []byte(`{"displayName":"x"}`)}
		if _, err := st.CreateGroup(ctx, grp, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("setup: %d users and %d groups in %v", nUsers, nGroups, time.Since(start).Round(time.Millisecond))

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := st.Snapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(s.Users) != nUsers || len(s.Groups) != nGroups {
			b.Fatalf("snapshot has %d users, %d groups", len(s.Users), len(s.Groups))
		}
	}
}

// BenchmarkSQLiteAddMemberToLargeGroup adds one member to a group of 10,000
// and removes it again: the cost must not grow with a full rewrite.
func BenchmarkSQLiteAddMemberToLargeGroup(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	st := openSQLite(b, filepath.Join(b.TempDir(), "portcullis.db"))
	defer st.Close()
	ids := make([]string, n+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%05d", i)
		if _, err := st.CreateUser(ctx, &store.User{ID: ids[i], UserName: ids[i], Version: 1}, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.CreateGroup(ctx, &store.Group{ID: "g", DisplayName: "g", Members: ids[:n], Version: 1}, "bench"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, err := st.UpdateGroup(ctx, "g", func(cur *store.Group) (*store.Group, error) {
			ng := *cur
			ng.Version++
			if i%2 == 0 {
				ng.Members = append(ng.Members, ids[n])
			} else {
				ng.Members = ng.Members[:0:0]
				for _, m := range cur.Members {
					if m != ids[n] {
						ng.Members = append(ng.Members, m)
					}
				}
			}
			return &ng, nil
		}, "bench")
		if err != nil {
			b.Fatal(err)
		}
	}
}
