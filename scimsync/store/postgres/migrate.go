package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// migrate applies the pending migrations in one transaction, holding an
// advisory lock so that replicas starting together apply each migration
// once (the others wait, then find nothing to do). DDL is transactional in
// PostgreSQL: a migration that fails leaves no trace.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return dbErr(ctx, "migrate", err)
	}
	defer rollback(tx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
		return dbErr(ctx, "migrate: lock", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		applied_at timestamptz NOT NULL
	)`); err != nil {
		return dbErr(ctx, "create schema_migrations", err)
	}
	var cur int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return dbErr(ctx, "read schema version", err)
	}
	if err := store.CheckSchemaVersion(cur, len(migrations)); err != nil {
		return err
	}
	for _, m := range migrations[cur:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil { // no arguments: simple protocol, many statements
			return dbErr(ctx, "migration "+m.Name, err)
		}
		if step := steps[m.Key]; step != nil {
			if err := step(ctx, tx); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
			m.Version, s.now()); err != nil {
			return dbErr(ctx, "migration "+m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return dbErr(ctx, "migrate", err)
	}
	return nil
}

// The Go steps of migrations: what a migration's SQL cannot do well, run in
// the same transaction after it. They are keyed by the file name without
// its number, so that renumbering a migration keeps its step.

var steps = map[string]func(ctx context.Context, tx pgx.Tx) error{
	"drop_passwords.sql": dropPasswords,
	"user_emails.sql":    backfillEmails,
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations are the embedded migrations/*.sql, which steps complete.
var migrations = store.Migrations(migrationFiles, steps)

// dropPasswords is migration 0004's step (store.DropPasswords): documents
// are bytea (any bytes; encode … 'escape' keeps their ASCII as text) and
// event data json.
func dropPasswords(ctx context.Context, tx pgx.Tx) error {
	return store.DropPasswords(ctx, conn{tx}, dialect,
		`SELECT pk, doc FROM users WHERE encode(doc, 'escape') ILIKE '%password%'`,
		`SELECT seq, data::text FROM events WHERE resource_type = 'User'
			AND (data::text ILIKE '%password%' OR data::text LIKE '%"docB64"%')`)
}

// backfillEmails is migration 0007's step (store.BackfillEmails).
func backfillEmails(ctx context.Context, tx pgx.Tx) error {
	return store.BackfillEmails(ctx, conn{tx}, dialect)
}
