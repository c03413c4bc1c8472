package scimsync

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The Go steps of migrations: what a migration's SQL cannot do well, run in
// the same transaction after it. They are keyed by the file name without
// its number, so that renumbering a migration keeps its step.

// sqliteStep is the Go part of a SQLite migration.
type sqliteStep struct {
	run func(ctx context.Context, tx *sql.Tx) error
	// vacuum: run VACUUM and a WAL checkpoint once the transaction has
	// committed, so that removed bytes leave the file. The step must then
	// be idempotent: its schema_migrations row is written after the VACUUM.
	vacuum bool
}

var sqliteSteps = map[string]sqliteStep{
	"drop_passwords.sql": {run: sqliteDropPasswords, vacuum: true},
}

var pgSteps = map[string]func(ctx context.Context, tx pgx.Tx) error{
	"drop_passwords.sql": pgDropPasswords,
}

// scrubbed is one stored value rewritten without write-only attributes.
type scrubbed struct {
	key  int64 // pk of a user, seq of an event
	data any   // the new doc ([]byte) or event data (string)
}

// sqliteDropPasswords removes write-only attributes from every user
// document and every user event, as versions before they were dropped at
// the edge had stored them. LIKE is ASCII case-insensitive: a cheap filter,
// the decision is dropWriteOnly's.
func sqliteDropPasswords(ctx context.Context, tx *sql.Tx) error {
	users, err := sqliteScrub(ctx, tx, `SELECT pk, doc FROM users WHERE CAST(doc AS TEXT) LIKE '%password%'`, scrubUserRow)
	if err != nil {
		return err
	}
	for _, u := range users {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET doc = ? WHERE pk = ?`, u.data, u.key); err != nil {
			return sqliteErr("drop passwords: update user", err)
		}
	}
	events, err := sqliteScrub(ctx, tx, `SELECT seq, data FROM events WHERE resource_type = 'User'
		AND (data LIKE '%password%' OR data LIKE '%"docB64"%')`, scrubEventRow(encodeEventData))
	if err != nil {
		return err
	}
	for _, e := range events {
		if _, err := tx.ExecContext(ctx, `UPDATE events SET data = ? WHERE seq = ?`, e.data, e.key); err != nil {
			return sqliteErr("drop passwords: update event", err)
		}
	}
	return nil
}

// sqliteScrub reads every row query selects (key, value) and returns those
// scrub changed. The rows are read in full before any is written.
func sqliteScrub(ctx context.Context, tx *sql.Tx, query string, scrub func([]byte) (any, bool, error)) ([]scrubbed, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, sqliteErr("drop passwords: read", err)
	}
	defer rows.Close()
	var out []scrubbed
	for rows.Next() {
		var key int64
		var v []byte
		if err := rows.Scan(&key, &v); err != nil {
			return nil, sqliteErr("drop passwords: read", err)
		}
		data, changed, err := scrub(v)
		if err != nil {
			return nil, fmt.Errorf("drop passwords: row %d: %w", key, err)
		}
		if changed {
			out = append(out, scrubbed{key: key, data: data})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, sqliteErr("drop passwords: read", err)
	}
	return out, nil
}

// pgDropPasswords is sqliteDropPasswords for PostgreSQL: documents are
// bytea (any bytes; encode … 'escape' keeps their ASCII as text) and event
// data json.
func pgDropPasswords(ctx context.Context, tx pgx.Tx) error {
	users, err := pgScrub(ctx, tx, `SELECT pk, doc FROM users WHERE encode(doc, 'escape') ILIKE '%password%'`, scrubUserRow)
	if err != nil {
		return err
	}
	for _, u := range users {
		if _, err := tx.Exec(ctx, `UPDATE users SET doc = $1 WHERE pk = $2`, u.data, u.key); err != nil {
			return pgErr(ctx, "drop passwords: update user", err)
		}
	}
	events, err := pgScrub(ctx, tx, `SELECT seq, data::text FROM events WHERE resource_type = 'User'
		AND (data::text ILIKE '%password%' OR data::text LIKE '%"docB64"%')`, scrubEventRow(pgEventData))
	if err != nil {
		return err
	}
	for _, e := range events {
		if _, err := tx.Exec(ctx, `UPDATE events SET data = $1 WHERE seq = $2`, e.data, e.key); err != nil {
			return pgErr(ctx, "drop passwords: update event", err)
		}
	}
	return nil
}

func pgScrub(ctx context.Context, tx pgx.Tx, query string, scrub func([]byte) (any, bool, error)) ([]scrubbed, error) {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return nil, pgErr(ctx, "drop passwords: read", err)
	}
	defer rows.Close()
	var out []scrubbed
	for rows.Next() {
		var key int64
		var v []byte
		if err := rows.Scan(&key, &v); err != nil {
			return nil, pgErr(ctx, "drop passwords: read", err)
		}
		data, changed, err := scrub(v)
		if err != nil {
			return nil, fmt.Errorf("drop passwords: row %d: %w", key, err)
		}
		if changed {
			out = append(out, scrubbed{key: key, data: data})
		}
	}
	return out, pgErr(ctx, "drop passwords: read", rows.Err())
}

// scrubUserRow returns doc without its write-only attributes, re-encoded as
// userFromJSON encodes documents (json.Marshal of the decoded object), so
// nothing else in it changes. A document that is not a JSON object is left
// alone: we never wrote one.
func scrubUserRow(doc []byte) (any, bool, error) {
	out, changed := scrubUserDoc(doc)
	return out, changed, nil
}

func scrubUserDoc(doc []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil || m == nil || !dropWriteOnly(m) {
		return doc, false
	}
	out, err := json.Marshal(m)
	if err != nil {
		return doc, false
	}
	return out, true
}

// scrubEventRow returns a function that rewrites one event's data with its
// user document scrubbed, re-encoded by the store's own event encoder.
func scrubEventRow(encode func(*Event) (any, error)) func([]byte) (any, bool, error) {
	return func(data []byte) (any, bool, error) {
		var e Event
		if err := decodeEventData(data, &e); err != nil {
			return nil, false, fmt.Errorf("decode event data: %w", err)
		}
		if e.User == nil {
			return nil, false, nil
		}
		doc, changed := scrubUserDoc(e.User.Doc)
		if !changed {
			return nil, false, nil
		}
		e.User.Doc = doc
		out, err := encode(&e)
		return out, err == nil, err
	}
}
