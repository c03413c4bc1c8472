package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// migrate applies the pending migrations in order, each in its own
// transaction together with its schema_migrations row.
func (s *Store) migrate(ctx context.Context) error {
	latest := len(migrations)
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return dbErr("create schema_migrations", err)
	}
	for _, m := range migrations {
		if err := s.applyMigration(ctx, m, latest); err != nil {
			return err
		}
	}
	// Also when nothing was pending: a newer schema must stop us.
	_, err := s.schemaVersion(ctx, s.w, latest)
	return err
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion returns the database's schema version, or an error if it is
// newer than latest.
func (s *Store) schemaVersion(ctx context.Context, q rowQuerier, latest int) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, dbErr("read schema version", err)
	}
	return v, store.CheckSchemaVersion(v, latest)
}

// applyMigration applies m unless the database has it already: its SQL and
// Go step (steps) in one transaction with its schema_migrations row.
// A step that vacuums commits first, then runs VACUUM (which cannot run
// inside a transaction) and only then records m, so a crash in between
// repeats the idempotent step and the VACUUM at the next start.
func (s *Store) applyMigration(ctx context.Context, m store.Migration, latest int) error {
	step := steps[m.Key]
	ran, err := s.runMigration(ctx, m, latest, step)
	if err != nil || !ran || !step.vacuum {
		return err
	}
	if err := s.vacuum(ctx); err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT OR IGNORE INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.Version, s.now().UnixMilli()); err != nil {
		return dbErr("migration "+m.Name, err)
	}
	return nil
}

// runMigration runs m's SQL and step in one transaction, recording m unless
// the step vacuums afterwards. It reports false when m was applied already
// (perhaps by another process).
func (s *Store) runMigration(ctx context.Context, m store.Migration, latest int, step migrationStep) (bool, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, dbErr("migrate", err)
	}
	defer tx.Rollback()
	cur, err := s.schemaVersion(ctx, tx, latest)
	if err != nil || cur >= m.Version {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, dbErr("migration "+m.Name, err)
	}
	if step.run != nil {
		if err := step.run(ctx, tx); err != nil {
			return false, fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	if !step.vacuum {
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
			m.Version, s.now().UnixMilli()); err != nil {
			return false, dbErr("migration "+m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, dbErr("migration "+m.Name, err)
	}
	return true, nil
}

// vacuum rebuilds the database file, leaving no freed page behind, then
// checkpoints the WAL into it and truncates the WAL: afterwards no byte of a
// deleted value is left in either file. It needs the database to itself,
// as it has while migrations run at open.
func (s *Store) vacuum(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		return dbErr("vacuum", err)
	}
	var busy, walFrames, checkpointed int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &walFrames, &checkpointed); err != nil {
		return dbErr("checkpoint after vacuum", err)
	}
	if busy != 0 {
		return fmt.Errorf("checkpoint after vacuum: the database is in use by another connection; %w", store.ErrUnavailable)
	}
	return nil
}

// The Go steps of migrations: what a migration's SQL cannot do well, run in
// the same transaction after it. They are keyed by the file name without
// its number, so that renumbering a migration keeps its step.

// migrationStep is the Go part of a SQLite migration.
type migrationStep struct {
	run func(ctx context.Context, tx *sql.Tx) error
	// vacuum: run VACUUM and a WAL checkpoint once the transaction has
	// committed, so that removed bytes leave the file. The step must then
	// be idempotent: its schema_migrations row is written after the VACUUM.
	vacuum bool
}

var steps = map[string]migrationStep{
	"drop_passwords.sql":     {run: dropPasswords, vacuum: true},
	"session_revocation.sql": {run: addSessionColumns},
	"user_emails.sql":        {run: backfillEmails},
	"organizations.sql":      {run: addOrgColumns},
}

// orgTables are the tables migration 0008 gives an org column.
var orgTables = []string{"users", "groups", "events", "match_key_cutoffs", "last_logins"}

// addOrgColumns is migration 0008: an org column on every directory
// table that lacks one, and the indexes.
func addOrgColumns(ctx context.Context, tx *sql.Tx) error {
	for _, t := range orgTables {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = 'org'`, t).Scan(&n); err != nil {
			return dbErr("read "+t+" columns", err)
		}
		if n > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+t+` ADD COLUMN org TEXT NOT NULL DEFAULT 'default'`); err != nil {
			return dbErr("add "+t+".org", err)
		}
	}
	_, err := tx.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS users_org ON users (org, pk);
		CREATE INDEX IF NOT EXISTS groups_org ON groups (org, pk);
		CREATE INDEX IF NOT EXISTS events_org ON events (org, seq);
		CREATE INDEX IF NOT EXISTS match_key_cutoffs_org ON match_key_cutoffs (org, expires)`)
	return dbErr("index org columns", err)
}

// sessionColumns are migration 0006's columns of login_sessions.
var sessionColumns = []struct{ name, decl string }{
	{"org", `TEXT NOT NULL DEFAULT 'default'`},
	{"idp", `TEXT NOT NULL DEFAULT ''`},
	{"name_id", `TEXT NOT NULL DEFAULT ''`},
	{"session_index", `TEXT NOT NULL DEFAULT ''`},
	{"revoked", `INTEGER`},
	{"revoke_reason", `TEXT NOT NULL DEFAULT ''`},
}

// addSessionColumns is migration 0006: it adds the columns login_sessions
// lacks, and the indexes.
func addSessionColumns(ctx context.Context, tx *sql.Tx) error {
	for _, c := range sessionColumns {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('login_sessions') WHERE name = ?`,
			c.name).Scan(&n); err != nil {
			return dbErr("read login_sessions columns", err)
		}
		if n > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE login_sessions ADD COLUMN `+c.name+` `+c.decl); err != nil {
			return dbErr("add login_sessions."+c.name, err)
		}
	}
	_, err := tx.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS login_sessions_name_id ON login_sessions (idp, name_id);
		CREATE INDEX IF NOT EXISTS login_sessions_revoked ON login_sessions (revoked) WHERE revoked IS NOT NULL`)
	return dbErr("index login_sessions", err)
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations are the embedded migrations/*.sql, which steps complete.
var migrations = store.Migrations(migrationFiles, steps)

// dropPasswords is migration 0004's step (store.DropPasswords). LIKE is
// ASCII case-insensitive.
func dropPasswords(ctx context.Context, tx *sql.Tx) error {
	return store.DropPasswords(ctx, conn{tx}, dialect,
		`SELECT pk, doc FROM users WHERE CAST(doc AS TEXT) LIKE '%password%'`,
		`SELECT seq, data FROM events WHERE resource_type = 'User' AND (data LIKE '%password%' OR data LIKE '%"docB64"%')`)
}

// backfillEmails is migration 0007's step (store.BackfillEmails).
func backfillEmails(ctx context.Context, tx *sql.Tx) error {
	return store.BackfillEmails(ctx, conn{tx}, dialect)
}
