package scimsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync"
)

// plantedPasswords is what a version that kept passwords wrote: users whose
// documents hold a password in the spellings it stored them under, their
// user.created and user.updated events, and a deleted user whose events
// outlive it. Documents are json.Marshal of the object, as userFromJSON
// wrote them, but for one written with spaces, which the event log keeps in
// base64.
type plantedPasswords struct {
	secrets []string
	clean   []byte // a document without a password, which must not change
	ids     []string
}

func plantPasswords(t *testing.T, st scimsync.Store) plantedPasswords {
	t.Helper()
	ctx := context.Background()
	var p plantedPasswords
	secret := func() string {
		s := "Pl4nted-" + strconv.Itoa(len(p.secrets)+1) + "-hunter2"
		p.secrets = append(p.secrets, s)
		return s
	}
	doc := func(m map[string]any) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	create := func(id, userName string, d []byte) {
		u := &scimsync.User{ID: id, UserName: userName, Active: true, Doc: d, Version: 1, Created: now, LastModified: now, ValidAfter: now}
		if _, err := st.CreateUser(ctx, u, "okta"); err != nil {
			t.Fatal(err)
		}
		p.ids = append(p.ids, id)
	}
	schemas := []any{"urn:ietf:params:scim:schemas:core:2.0:User"}
	create("u1", "okta@example.com", doc(map[string]any{"schemas": schemas, "userName": "okta@example.com", "password": secret(), "displayName": "O <&>"}))
	if _, err := st.UpdateUser(ctx, "u1", func(cur *scimsync.User) (*scimsync.User, error) {
		next := *cur
		next.Version++
		next.Doc = doc(map[string]any{"schemas": schemas, "userName": "okta@example.com", "Password": secret(), "displayName": "O2"})
		return &next, nil
	}, "okta"); err != nil {
		t.Fatal(err)
	}
	create("u2", "urn@example.com", doc(map[string]any{"userName": "urn@example.com",
		"urn:ietf:params:scim:schemas:core:2.0:User:password": secret(),
		"urn:ietf:params:scim:schemas:core:2.0:User":          map[string]any{"password": secret(), "nickName": "n"}}))
	create("u3", "spaced@example.com", []byte(`{"userName": "spaced@example.com", "PASSWORD": "`+secret()+`"}`))
	create("u4", "gone@example.com", doc(map[string]any{"userName": "gone@example.com", "password": secret()}))
	if _, err := st.DeleteUser(ctx, "u4", func(*scimsync.User) error { return nil }, "okta"); err != nil {
		t.Fatal(err)
	}
	p.clean = doc(map[string]any{"userName": "clean@example.com", "title": "password policy owner", "n": json.Number("1.50")})
	create("u5", "clean@example.com", p.clean)
	return p
}

// dropPasswordsVersion is the number of the migration that drops passwords.
func dropPasswordsVersion(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_drop_passwords.sql"))
	if err != nil || len(files) != 1 {
		t.Fatalf("want one %s/*_drop_passwords.sql, got %v (%v)", dir, files, err)
	}
	num, _, _ := strings.Cut(filepath.Base(files[0]), "_")
	v, err := strconv.Atoi(num)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkScrubbed reads every user and event back through the store: no
// secret, no password attribute, the clean document byte for byte.
func (p plantedPasswords) checkScrubbed(t *testing.T, st scimsync.Store) {
	t.Helper()
	ctx := context.Background()
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.EventsAfter(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, u := range snap.Users {
		docs = append(docs, u.Doc)
		if u.UserName == "clean@example.com" && !bytes.Equal(u.Doc, p.clean) {
			t.Errorf("a document without a password changed: %s, want %s", u.Doc, p.clean)
		}
	}
	for _, e := range evs {
		if e.User != nil {
			docs = append(docs, e.User.Doc)
		}
	}
	if len(snap.Users) != 4 || len(evs) != 7 {
		t.Errorf("%d users and %d events after the migration, want 4 and 7", len(snap.Users), len(evs))
	}
	for _, d := range docs {
		if strings.Contains(strings.ToLower(string(d)), `password"`) {
			t.Errorf("a document still holds a password: %s", d)
		}
		if !json.Valid(d) {
			t.Errorf("a document is no longer JSON: %s", d)
		}
	}
}

func (p plantedPasswords) findIn(b []byte) []string {
	var found []string
	for _, s := range p.secrets {
		if bytes.Contains(b, []byte(s)) {
			found = append(found, s)
		}
	}
	return found
}

// TestSQLite_MigrationDropsStoredPasswordsFromTheFile plants passwords as
// an older version stored them, then opens the database with this one: the
// migration removes them from the rows and the event log, and VACUUM and a
// checkpoint take the bytes out of the database file and its WAL.
func TestSQLite_MigrationDropsStoredPasswordsFromTheFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "portcullis.db")
	st := openSQLite(t, path)
	p := plantPasswords(t, st)
	files := func() []byte {
		var all []byte
		for _, f := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(f)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	// The database as the older version left it: schema without the
	// migration. (This rolls back every migration from drop_passwords on,
	// so while it is not the last one, the later ones must be idempotent.)
	if _, err := rawDB(t, path).Exec(`DELETE FROM schema_migrations WHERE version >= ?`,
		dropPasswordsVersion(t, "migrations_sqlite")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if found := p.findIn(files()); len(found) != len(p.secrets) {
		t.Fatalf("planted %d passwords, %d on disk before the migration", len(p.secrets), len(found))
	}

	st = openSQLite(t, path)
	defer st.Close()
	if found := p.findIn(files()); len(found) > 0 {
		t.Errorf("after the migration the database file or its WAL still holds %v", found)
	}
	p.checkScrubbed(t, st)
	var n int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != sqliteMigrationCount(t) {
		t.Errorf("%d migrations recorded (%v), want %d", n, err, sqliteMigrationCount(t))
	}
}

// TestPostgres_MigrationDropsStoredPasswords is the same on PostgreSQL,
// checking the rows (the server's files are out of reach; README: VACUUM FULL).
func TestPostgres_MigrationDropsStoredPasswords(t *testing.T) {
	t.Parallel()
	dsn, schema := pgSchema(t)
	st, err := scimsync.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := plantPasswords(t, st)
	st.Close()
	conn := pgConn(t, schema)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `DELETE FROM schema_migrations WHERE version >= $1`,
		dropPasswordsVersion(t, "migrations_postgres")); err != nil {
		t.Fatal(err)
	}
	rowsText := func() []byte {
		var b []byte
		for _, q := range []string{`SELECT coalesce(string_agg(encode(doc, 'escape'), ' '), '') FROM users`,
			`SELECT coalesce(string_agg(data::text, ' '), '') FROM events`} {
			var s string
			if err := conn.QueryRow(ctx, q).Scan(&s); err != nil {
				t.Fatal(err)
			}
			b = append(b, s...)
		}
		return b
	}
	if found := p.findIn(rowsText()); len(found) != len(p.secrets) {
		t.Fatalf("planted %d passwords, %d in the rows before the migration", len(p.secrets), len(found))
	}

	st = openPostgres(t, dsn)
	if found := p.findIn(rowsText()); len(found) > 0 {
		t.Errorf("after the migration the rows still hold %v", found)
	}
	p.checkScrubbed(t, st)
}
