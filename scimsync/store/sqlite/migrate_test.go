package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// TestSQLite_MigrationDropsStoredPasswordsFromTheFile plants passwords as
// an older version stored them, then opens the database with this one: the
// migration removes them from the rows and the event log, and VACUUM and a
// checkpoint take the bytes out of the database file and its WAL.
func TestSQLite_MigrationDropsStoredPasswordsFromTheFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "portcullis.db")
	st := openSQLite(t, path)
	p := storetest.PlantPasswords(t, st)
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
	if _, err := storetest.SQLiteFile(t, path).Exec(`DELETE FROM schema_migrations WHERE version >= ?`,
		storetest.MigrationNumber(t, "migrations", "drop_passwords.sql")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if found := p.FindIn(files()); len(found) != len(p.Secrets) {
		t.Fatalf("planted %d passwords, %d on disk before the migration", len(p.Secrets), len(found))
	}

	st = openSQLite(t, path)
	defer st.Close()
	if found := p.FindIn(files()); len(found) > 0 {
		t.Errorf("after the migration the database file or its WAL still holds %v", found)
	}
	p.CheckScrubbed(t, st)
	var n int
	if err := storetest.SQLiteFile(t, path).QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != storetest.MigrationCount(t) {
		t.Errorf("%d migrations recorded (%v), want %d", n, err, storetest.MigrationCount(t))
	}
}

// TestSQLite_OpensWhatRenumberedMigrationsLeft: a database main built
// while drop_passwords was migration 3 lacks the match key table and
// indexes; this binary must still open it and keep match keys.
func TestSQLite_OpensWhatRenumberedMigrationsLeft(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "portcullis.db")
	openSQLite(t, path).Close()
	db := storetest.SQLiteFile(t, path)
	for _, q := range storetest.RenumberedMain {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st := openSQLite(t, path)
	defer st.Close()
	storetest.CheckMatchKeys(t, st)
}

// TestSQLite_MigrationBackfillsEmailIndex: users stored before the email
// index are found by any of their emails once the migration has run.
func TestSQLite_MigrationBackfillsEmailIndex(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "portcullis.db")
	st := openSQLite(t, path)
	storetest.PlantEmailUsers(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db := storetest.SQLiteFile(t, path)
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version >= ?`,
		storetest.MigrationNumber(t, "migrations", "user_emails.sql")); err != nil {
		t.Fatal(err)
	}
	for _, q := range storetest.BeforeEmailIndex {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st = openSQLite(t, path)
	defer st.Close()
	storetest.CheckEmails(t, st)
}
