package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// The Go steps of migrations: what a migration's SQL cannot do well, run in
// the same transaction after it. They are keyed by the file name without
// its number, so that renumbering a migration keeps its step.

var steps = map[string]func(ctx context.Context, tx pgx.Tx) error{
	"drop_passwords.sql": dropPasswords,
}

// dropPasswords is the SQLite step for PostgreSQL: documents are
// bytea (any bytes; encode … 'escape' keeps their ASCII as text) and event
// data json.
func dropPasswords(ctx context.Context, tx pgx.Tx) error {
	users, err := scrub(ctx, tx, `SELECT pk, doc FROM users WHERE encode(doc, 'escape') ILIKE '%password%'`, store.ScrubUserRow)
	if err != nil {
		return err
	}
	for _, u := range users {
		if _, err := tx.Exec(ctx, `UPDATE users SET doc = $1 WHERE pk = $2`, u.Data, u.Key); err != nil {
			return dbErr(ctx, "drop passwords: update user", err)
		}
	}
	events, err := scrub(ctx, tx, `SELECT seq, data::text FROM events WHERE resource_type = 'User'
		AND (data::text ILIKE '%password%' OR data::text LIKE '%"docB64"%')`, store.ScrubEventRow)
	if err != nil {
		return err
	}
	for _, e := range events {
		if _, err := tx.Exec(ctx, `UPDATE events SET data = $1 WHERE seq = $2`, e.Data, e.Key); err != nil {
			return dbErr(ctx, "drop passwords: update event", err)
		}
	}
	return nil
}

func scrub(ctx context.Context, tx pgx.Tx, query string, scrub func([]byte) (any, bool, error)) ([]store.Scrubbed, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, dbErr(ctx, "drop passwords: read", err)
	}
	defer rows.Close()
	out, err := store.Scrub(rows, scrub)
	return out, dbErr(ctx, "drop passwords: read", err)
}
