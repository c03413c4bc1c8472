package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// PostgreSQL's transactions, and the write steps whose SQL is its own.

// readOnly is a read transaction that sees one committed state
// throughout, so a snapshot's Seq matches its users and groups exactly.
var readOnly = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// keyLockClass ("pmky") is the first key of the advisory lock that
// serialises claims of one match key across replicas; the second is the
// key's hashtext. (A collision of two keys' hashes only makes their writes
// wait for each other.)
const keyLockClass int32 = 0x706d6b79

// Write implements store.Backend: one READ COMMITTED transaction; the
// events fn added are appended, under the event lock, just before it
// commits. A write that added no events wrote nothing and is rolled back,
// unless fn called Keep.
func (s *Store) Write(ctx context.Context, op string, fn func(store.WriteTx) error) ([]store.Event, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, dbErr(ctx, op, err)
	}
	defer rollback(tx) // also when fn panics
	w := &writeTx{conn: conn{tx}, tx: tx, now: s.now().UTC().Truncate(time.Millisecond)}
	if err := fn(w); err != nil {
		return nil, err
	}
	if len(w.events) == 0 {
		if !w.keep {
			return nil, nil
		}
		return nil, dbErr(ctx, op, tx.Commit(ctx))
	}
	if err := s.appendEvents(ctx, w); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, dbErr(ctx, op, err)
	}
	return w.events, nil
}

// appendEvents takes the event lock, inserts w's events and queues the
// NOTIFY, all in one round trip.
func (s *Store) appendEvents(ctx context.Context, w *writeTx) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, eventLockClass, s.eventLockObj)
	for i := range w.events {
		e := &w.events[i]
		data, err := store.EncodeEventData(e)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", e.Kind, err)
		}
		b.Queue(`INSERT INTO events (time, kind, resource_type, resource_id, actor, data, org)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`, e.Time, e.Kind, e.ResourceType, e.ResourceID, e.Actor, data,
			store.OrgOrDefault(e.Org))
	}
	b.Queue(`SELECT pg_notify($1, currval(pg_get_serial_sequence('events', 'seq'))::text)`, notifyChannel)
	br := w.tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return dbErr(ctx, "lock event log", err)
	}
	for i := range w.events {
		if err := br.QueryRow().Scan(&w.events[i].Seq); err != nil {
			return dbErr(ctx, "append event", err)
		}
	}
	if _, err := br.Exec(); err != nil {
		return dbErr(ctx, "notify", err)
	}
	return dbErr(ctx, "append events", br.Close())
}

// Read implements store.Backend: a REPEATABLE READ, read-only transaction.
func (s *Store) Read(ctx context.Context, op string, fn func(store.DB) error) error {
	tx, err := s.pool.BeginTx(ctx, readOnly)
	if err != nil {
		return dbErr(ctx, op, err)
	}
	defer rollback(tx)
	return fn(conn{tx})
}

// Pool implements store.Backend.
func (s *Store) Pool() store.DB { return conn{s.pool} }

// runAll runs stmts in one batch, which PostgreSQL runs as one implicit
// transaction: one round trip (the ledger's writes).
func (s *Store) runAll(ctx context.Context, op string, stmts []store.Statement) error {
	b := &pgx.Batch{}
	for _, st := range stmts {
		b.Queue(st.SQL, st.Args...)
	}
	return dbErr(ctx, op, s.pool.SendBatch(ctx, b).Close())
}

// rollback ends tx if it is still open. It does not use the request's
// context: a cancelled one would make pgx drop the connection.
func rollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx) // after Commit: pgx.ErrTxClosed
}

// querier is what the pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// conn adapts the pool or a transaction to store.DB.
type conn struct{ q querier }

func (c conn) Exec(ctx context.Context, query string, args ...any) error {
	_, err := c.q.Exec(ctx, query, args...)
	return err
}

func (c conn) Query(ctx context.Context, query string, args ...any) (store.Rows, error) {
	return c.q.Query(ctx, query, args...)
}

// writeTx is one write transaction: the statements both backends share
// (conn) and PostgreSQL's own steps.
type writeTx struct {
	conn
	tx     pgx.Tx
	now    time.Time
	events []store.Event
	keep   bool // commit even without events
}

func (w *writeTx) Now() time.Time { return w.now }

// Keep implements store.WriteTx.
func (w *writeTx) Keep() { w.keep = true }

// Append implements store.WriteTx: the event is queued; Write appends it
// just before it commits, which fills its Seq.
func (w *writeTx) Append(_ context.Context, e store.Event) error {
	w.events = append(w.events, e)
	return nil
}

// LockKey implements store.WriteTx. Two replicas claiming one key at once
// serialise on the key's lock, held to commit, so the second one's check
// (READ COMMITTED: a new snapshot per statement) sees the first one's
// user. The lock is taken after the row lock of the user being written and
// before the event lock, and a write claims at most one key, so it cannot
// deadlock with either.
func (w *writeTx) LockKey(ctx context.Context, key string) error {
	_, err := w.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, keyLockClass, key)
	return dbErr(ctx, "lock match key", err)
}

// StoreCutoffs implements store.WriteTx, in one round trip.
func (w *writeTx) StoreCutoffs(ctx context.Context, cs []store.KeyCutoff) error {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM match_key_cutoffs WHERE expires <= $1`, w.now)
	for _, c := range cs {
		b.Queue(`INSERT INTO match_key_cutoffs (match_key, voids_before, expires, deleted, org) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (match_key) DO UPDATE SET
				voids_before = GREATEST(match_key_cutoffs.voids_before, EXCLUDED.voids_before),
				expires = GREATEST(match_key_cutoffs.expires, EXCLUDED.expires),
				deleted = match_key_cutoffs.deleted OR EXCLUDED.deleted`, c.Key, c.VoidsBefore, c.Expires, c.Deleted,
			store.OrgOrDefault(c.Org))
	}
	return dbErr(ctx, "store match key cut-offs", w.tx.SendBatch(ctx, b).Close())
}

// AddMembers implements store.WriteTx in one statement.
func (w *writeTx) AddMembers(ctx context.Context, gpk int64, ids []string) error {
	// Only a user of the group's own organization can be its member.
	tag, err := w.tx.Exec(ctx, `INSERT INTO group_members (group_pk, user_pk)
		SELECT $1, pk FROM users WHERE id = ANY($2) AND org = (SELECT org FROM groups WHERE pk = $1)`, gpk, ids)
	if sqlState(err) == foreignKeyViolation { // a member deleted by a concurrent transaction
		return fmt.Errorf("%w: %w", store.ErrUnknownMember, err)
	}
	if err != nil {
		return dbErr(ctx, "add members", err)
	}
	if int(tag.RowsAffected()) == len(ids) {
		return nil
	}
	var missing string
	err = w.tx.QueryRow(ctx, `SELECT m.id FROM unnest($1::text[]) WITH ORDINALITY AS m (id, n)
		WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.id AND u.org = (SELECT org FROM groups WHERE pk = $2))
		ORDER BY m.n LIMIT 1`, ids, gpk).Scan(&missing)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return dbErr(ctx, "add members", err)
	}
	return fmt.Errorf("%w: %s", store.ErrUnknownMember, missing)
}

// RemoveMembers implements store.WriteTx in one statement.
func (w *writeTx) RemoveMembers(ctx context.Context, gpk int64, upks []int64) error {
	_, err := w.tx.Exec(ctx, `DELETE FROM group_members WHERE group_pk = $1 AND user_pk = ANY($2)`, gpk, upks)
	return dbErr(ctx, "remove members", err)
}
