package postgres_test

import (
	"context"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// TestPostgres_MigrationDropsStoredPasswords is the same on PostgreSQL,
// checking the rows (the server's files are out of reach; README: VACUUM FULL).
func TestPostgres_MigrationDropsStoredPasswords(t *testing.T) {
	t.Parallel()
	dsn, schema := storetest.PostgresSchema(t)
	st := openPostgres(t, dsn)
	p := storetest.PlantPasswords(t, st)
	st.Close()
	conn := storetest.PostgresConn(t, schema)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `DELETE FROM schema_migrations WHERE version >= $1`,
		storetest.MigrationNumber(t, "migrations", "drop_passwords.sql")); err != nil {
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
	if found := p.FindIn(rowsText()); len(found) != len(p.Secrets) {
		t.Fatalf("planted %d passwords, %d in the rows before the migration", len(p.Secrets), len(found))
	}

	st = openPostgres(t, dsn)
	if found := p.FindIn(rowsText()); len(found) > 0 {
		t.Errorf("after the migration the rows still hold %v", found)
	}
	p.CheckScrubbed(t, st)
}

// TestPostgres_OpensWhatRenumberedMigrationsLeft is the SQLite test on
// PostgreSQL.
func TestPostgres_OpensWhatRenumberedMigrationsLeft(t *testing.T) {
	t.Parallel()
	dsn, schema := storetest.PostgresSchema(t)
	openPostgres(t, dsn).Close()
	conn := storetest.PostgresConn(t, schema)
	for _, q := range storetest.RenumberedMain {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	storetest.CheckMatchKeys(t, openPostgres(t, dsn))
}

// TestPostgres_MigrationBackfillsEmailIndex is the SQLite test on
// PostgreSQL.
func TestPostgres_MigrationBackfillsEmailIndex(t *testing.T) {
	t.Parallel()
	dsn, schema := storetest.PostgresSchema(t)
	st := openPostgres(t, dsn)
	storetest.PlantEmailUsers(t, st)
	st.Close()
	conn := storetest.PostgresConn(t, schema)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `DELETE FROM schema_migrations WHERE version >= $1`,
		storetest.MigrationNumber(t, "migrations", "user_emails.sql")); err != nil {
		t.Fatal(err)
	}
	for _, q := range storetest.BeforeEmailIndex {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	storetest.CheckEmails(t, openPostgres(t, dsn))
}
