package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// SQLite's transactions, and the write steps whose SQL is its own.

// Write implements store.Backend: one BEGIN IMMEDIATE transaction on the
// write connection, committed (and synced) before it returns.
func (s *Store) Write(ctx context.Context, op string, fn func(store.WriteTx) error) ([]store.Event, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbErr(op, err)
	}
	defer tx.Rollback() // also when fn panics: the write connection must come back clean
	wt := &writeTx{conn: conn{tx}, tx: tx, now: s.now().UTC().Truncate(time.Millisecond)}
	if err := fn(wt); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, dbErr(op, err)
	}
	return wt.events, nil
}

// Read implements store.Backend: a read-only transaction on the read pool,
// which sees one state thanks to WAL.
func (s *Store) Read(ctx context.Context, op string, fn func(store.DB) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return dbErr(op, err)
	}
	defer tx.Rollback()
	return fn(conn{tx})
}

// Pool implements store.Backend: the read pool.
func (s *Store) Pool() store.DB { return conn{s.r} }

// runAll runs stmts in one write transaction (the ledger's writes).
func (s *Store) runAll(ctx context.Context, op string, stmts []store.Statement) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbErr(op, err)
	}
	defer tx.Rollback()
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.SQL, st.Args...); err != nil {
			return dbErr(op, err)
		}
	}
	return dbErr(op, tx.Commit())
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// conn adapts a pool or a transaction to store.DB.
type conn struct{ q querier }

func (c conn) Exec(ctx context.Context, query string, args ...any) error {
	_, err := c.q.ExecContext(ctx, query, args...)
	return err
}

func (c conn) Query(ctx context.Context, query string, args ...any) (store.Rows, error) {
	r, err := c.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

// rows adapts *sql.Rows to store.Rows.
type rows struct{ *sql.Rows }

func (r rows) Close() { r.Rows.Close() }

// writeTx is one write transaction: the statements both backends share
// (conn) and SQLite's own steps.
type writeTx struct {
	conn
	tx     *sql.Tx
	now    time.Time
	events []store.Event
}

func (t *writeTx) Now() time.Time { return t.now }

// Keep implements store.WriteTx: Write always commits here.
func (t *writeTx) Keep() {}

// Append implements store.WriteTx: the event is inserted at once.
func (t *writeTx) Append(ctx context.Context, e store.Event) error {
	data, err := store.EncodeEventData(&e)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", e.Kind, err)
	}
	if err := t.tx.QueryRowContext(ctx, `INSERT INTO events (time, kind, resource_type, resource_id, actor, data, org)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
		e.Time.UnixMilli(), e.Kind, e.ResourceType, e.ResourceID, e.Actor, data, store.OrgOrDefault(e.Org)).Scan(&e.Seq); err != nil {
		return dbErr("append event", err)
	}
	t.events = append(t.events, e)
	return nil
}

// LockKey implements store.WriteTx: writes run one at a time, so a claim
// needs no lock.
func (t *writeTx) LockKey(context.Context, string) error { return nil }

// StoreCutoffs implements store.WriteTx.
func (t *writeTx) StoreCutoffs(ctx context.Context, cs []store.KeyCutoff) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM match_key_cutoffs WHERE expires <= $1`, t.now.UnixMilli()); err != nil {
		return dbErr("prune match key cut-offs", err)
	}
	for _, c := range cs {
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO match_key_cutoffs (match_key, voids_before, expires, deleted, org)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (match_key) DO UPDATE SET voids_before = max(voids_before, excluded.voids_before),
				expires = max(expires, excluded.expires), deleted = max(deleted, excluded.deleted)`,
			c.Key, c.VoidsBefore.UnixMilli(), c.Expires.UnixMilli(), c.Deleted, store.OrgOrDefault(c.Org)); err != nil {
			return dbErr("store match key cut-off", err)
		}
	}
	return nil
}

// AddMembers implements store.WriteTx, one statement per member.
func (t *writeTx) AddMembers(ctx context.Context, gpk int64, ids []string) error {
	// Only a user of the group's own organization can be its member.
	ins, err := t.tx.PrepareContext(ctx, `INSERT INTO group_members (group_pk, user_pk)
		SELECT $1, pk FROM users WHERE id = $2 AND org = (SELECT org FROM groups WHERE pk = $1)`)
	if err != nil {
		return dbErr("add members", err)
	}
	defer ins.Close()
	for _, id := range ids {
		res, err := ins.ExecContext(ctx, gpk, id)
		if err != nil {
			return dbErr("add member", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("%w: %s", store.ErrUnknownMember, id)
		}
	}
	return nil
}

// RemoveMembers implements store.WriteTx, one statement per member.
func (t *writeTx) RemoveMembers(ctx context.Context, gpk int64, upks []int64) error {
	del, err := t.tx.PrepareContext(ctx, `DELETE FROM group_members WHERE group_pk = $1 AND user_pk = $2`)
	if err != nil {
		return dbErr("remove members", err)
	}
	defer del.Close()
	for _, upk := range upks {
		if _, err := del.ExecContext(ctx, gpk, upk); err != nil {
			return dbErr("remove member", err)
		}
	}
	return nil
}
