package postgres

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Store is the Store on PostgreSQL, shared by many replicas. Its
// semantics are the SQLite store's, method for method; what differs is how
// it stays correct when several processes write at once.
//
// Writes run in READ COMMITTED transactions. An update or delete first locks
// its row (SELECT … FOR UPDATE), so writes to one resource serialise across
// replicas and the update function always runs on the latest committed
// state. userName uniqueness, ignoring case, is a unique index on
// user_name_lower: of two replicas creating the same userName at once, the
// second waits for the first and then fails with ErrConflict.
//
// Event order. A sequence hands out numbers in the order transactions ask
// for them, but transactions commit in any order: if A takes seq 5 and B
// takes 6 and commits first, a follower reading "seq > 4" in between sees 6,
// moves its position past 5 and never applies it. So every append takes a
// transaction-level advisory lock just before inserting its events and
// holds it until commit: the next append can take a number only once the
// previous one is committed and visible (PostgreSQL makes a commit visible
// before it releases the transaction's locks), so seq order is commit order
// and "seq > n" never skips. The lock is taken after every row lock the
// write needs, so it cannot deadlock with them, and held for one round trip
// (lock, inserts and NOTIFY go in one batch) plus the commit's WAL flush.
// Appends from all replicas therefore commit one at a time — hundreds to
// thousands a second, far above what SCIM clients send. Follower reads and
// writes to resources without events (none) take no such lock. The lock key
// is fixed per event log: the pair ('port', OID of the events table), so
// deployments in two schemas of one database do not wait for each other.
//
// After its events a write sends NOTIFY portcullis_events '<last seq>' in
// the same transaction, delivered on commit. It only wakes followers (see
// Wait); the sequence number they then read is the truth.
type Store struct {
	pool         *pgxpool.Pool
	listenConfig *pgx.ConnConfig // for the dedicated LISTEN connection
	now          func() time.Time
	eventLockObj int32 // the events table's OID, as int4
	match        store.MatchRule

	closing   context.Context // done once Close is called
	stop      context.CancelFunc
	closeOnce sync.Once

	listenMu    sync.Mutex // one Wait at a time owns the listen connection
	listenConn  *pgx.Conn
	listenFails int // connection attempts failed in a row, for the backoff

	lastPrune atomic.Int64 // unix ms of the last replay cache prune
}

var _ store.Store = (*Store)(nil)

const (
	// pgNotifyChannel is the channel writes NOTIFY and followers LISTEN on.
	notifyChannel = "portcullis_events"
	// pgMigrateLockKey ("portmigr") serialises migrations across replicas.
	migrateLockKey int64 = 0x706f72746d696772
	// pgEventLockClass ("port") is the first key of the event append lock;
	// the second is the events table's OID. The one- and two-key advisory
	// lock spaces are distinct, so the keys cannot collide.
	eventLockClass int32 = 0x706f7274
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations, which must be numbered 1..N
// without gaps (0001_init.sql, 0002_….sql).
var migrations = sync.OnceValues(func() ([]store.Migration, error) {
	return store.LoadMigrations(migrationFiles, "migrations")
})

// Open connects to the database named by dsn (a postgres:// URL or
// key=value string, as pgx reads it, including pool_* settings and runtime
// parameters such as search_path) and brings its schema up to date. Many
// replicas may open the same database at once: migrations run under an
// advisory lock, one replica at a time. It refuses a database whose schema
// is newer than this binary knows. Without WithMatchRule, the match key is
// the userName.
func Open(ctx context.Context, dsn string, opts ...store.Option) (*Store, error) {
	conf, err := store.Configure(opts)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err) // pgx redacts the password
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, dbErr(ctx, "open postgres store "+where, err)
	}
	closing, stop := context.WithCancel(context.Background())
	s := &Store{pool: pool, listenConfig: cfg.ConnConfig.Copy(), now: conf.Now, closing: closing, stop: stop, match: conf.Match}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", where, err)
	}
	var oid uint32
	if err := pool.QueryRow(ctx, `SELECT 'events'::regclass::oid`).Scan(&oid); err != nil {
		s.Close()
		return nil, dbErr(ctx, "open postgres store "+where, err)
	}
	s.eventLockObj = int32(oid) // OIDs are uint32; the lock takes int4
	return s, nil
}

// migrate applies the pending migrations in one transaction, holding an
// advisory lock so that replicas starting together apply each migration
// once (the others wait, then find nothing to do). DDL is transactional in
// PostgreSQL: a migration that fails leaves no trace.
func (s *Store) migrate(ctx context.Context) error {
	migs, err := migrations()
	if err != nil {
		return err
	}
	latest := len(migs)
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
	if cur > latest {
		return fmt.Errorf("database schema version %d is newer than this portcullis knows (%d); upgrade portcullis", cur, latest)
	}
	for _, m := range migs[cur:] {
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

// Close closes the pool and the listen connection, waking a Wait in
// progress. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		s.listenMu.Lock()
		if s.listenConn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.listenConn.Close(ctx)
			cancel()
			s.listenConn = nil
		}
		s.listenMu.Unlock()
		s.pool.Close()
	})
	return nil
}

// --- writes ---

// txn is one write transaction and the events it will append.
type txn struct {
	tx     pgx.Tx
	now    time.Time
	events []store.Event
}

// add queues e for the event log; write appends the events, which fills
// their Seq, just before it commits.
func (w *txn) add(e store.Event) {
	e.Time = w.now
	w.events = append(w.events, e)
}

// write runs fn in one transaction, appends the events it added and
// commits. fn returns its errors as they should reach the caller (an update
// function's error unchanged, database errors through pgErr); any error
// rolls back. A write that added no events wrote nothing.
func (s *Store) write(ctx context.Context, op string, fn func(w *txn) error) ([]store.Event, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, dbErr(ctx, op, err)
	}
	defer rollback(tx) // also when fn panics
	w := &txn{tx: tx, now: s.now().UTC().Truncate(time.Millisecond)}
	if err := fn(w); err != nil {
		return nil, err
	}
	if len(w.events) == 0 {
		return nil, nil
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
func (s *Store) appendEvents(ctx context.Context, w *txn) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, eventLockClass, s.eventLockObj)
	for i := range w.events {
		e := &w.events[i]
		data, err := store.EncodeEventData(e)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", e.Kind, err)
		}
		b.Queue(`INSERT INTO events (time, kind, resource_type, resource_id, actor, data)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`, e.Time, e.Kind, e.ResourceType, e.ResourceID, e.Actor, data)
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

// rollback ends tx if it is still open. It does not use the request's
// context: a cancelled one would make pgx drop the connection.
func rollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx) // after Commit: pgx.ErrTxClosed
}

const userColumns = `pk, id, user_name, external_id, email, active, doc, version, created, last_modified, valid_after`

// CreateUser implements Store.
func (s *Store) CreateUser(ctx context.Context, u *store.User, actor string) ([]store.Event, error) {
	if u == nil || u.ID == "" || u.UserName == "" {
		return nil, errors.New("create user: id and userName are required")
	}
	nu := store.StoredUser(u)
	return s.write(ctx, "create user", func(w *txn) error {
		if err := s.keyWrite(ctx, w, nu.ID, s.match.Change(nil, nu, w.now)); err != nil {
			return err
		}
		_, err := w.tx.Exec(ctx, `INSERT INTO users
			(id, user_name, user_name_lower, external_id, email, email_lower, active, doc, version, created, last_modified, valid_after)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			nu.ID, nu.UserName, strings.ToLower(nu.UserName), nu.ExternalID, nu.Email, strings.ToLower(nu.Email), nu.Active, nu.Doc,
			nu.Version, tsParam(nu.Created), tsParam(nu.LastModified), tsParam(nu.ValidAfter))
		if sqlState(err) == uniqueViolation {
			return fmt.Errorf("create user %q: %w", nu.UserName, store.ErrConflict)
		}
		if err != nil {
			return dbErr(ctx, "create user", err)
		}
		w.add(store.Event{Kind: store.EventUserCreated, ResourceType: "User", ResourceID: nu.ID, Actor: actor, User: nu})
		return nil
	})
}

// UpdateUser implements Store, as SQLiteStore.UpdateUser does: an update
// that changes nothing visible writes nothing and returns no events.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(cur *store.User) (*store.User, error), actor string) ([]store.Event, error) {
	return s.write(ctx, "update user", func(w *txn) error {
		pk, cur, err := lockUser(ctx, w.tx, id)
		if err != nil {
			return err
		}
		next, err := fn(store.StoredUser(cur))
		if err != nil {
			return err
		}
		if next == nil {
			return fmt.Errorf("update user %s: update function returned no user", id)
		}
		nu := store.StoredUser(next)
		nu.ID, nu.Created = cur.ID, cur.Created
		if store.SameUser(cur, nu) {
			return nil
		}
		kc := s.match.Change(cur, nu, w.now)
		if err := s.keyWrite(ctx, w, id, kc); err != nil {
			return err
		}
		nu.Version = cur.Version + 1
		_, err = w.tx.Exec(ctx, `UPDATE users SET user_name = $1, user_name_lower = $2, external_id = $3, email = $4,
			email_lower = $5, active = $6, doc = $7, version = $8, last_modified = $9, valid_after = $10 WHERE pk = $11`,
			nu.UserName, strings.ToLower(nu.UserName), nu.ExternalID, nu.Email, strings.ToLower(nu.Email), nu.Active, nu.Doc,
			nu.Version, tsParam(nu.LastModified), tsParam(nu.ValidAfter), pk)
		if sqlState(err) == uniqueViolation {
			return fmt.Errorf("update user %s: userName %q: %w", id, nu.UserName, store.ErrConflict)
		}
		if err != nil {
			return dbErr(ctx, "update user", err)
		}
		kind := store.EventUserUpdated
		switch {
		case cur.Active && !nu.Active:
			kind = store.EventUserDeactivated
		case !cur.Active && nu.Active:
			kind = store.EventUserReactivated
		}
		w.add(store.Event{Kind: kind, ResourceType: "User", ResourceID: id, Actor: actor, User: nu, Cutoffs: kc.Cutoffs})
		return nil
	})
}

// DeleteUser implements Store. As with SQLite, the memberships go with the
// user and the only event is user.deleted.
func (s *Store) DeleteUser(ctx context.Context, id string, fn func(cur *store.User) error, actor string) ([]store.Event, error) {
	return s.write(ctx, "delete user", func(w *txn) error {
		pk, cur, err := lockUser(ctx, w.tx, id)
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		kc := s.match.Change(cur, nil, w.now)
		if err := s.keyWrite(ctx, w, id, kc); err != nil {
			return err
		}
		if _, err := w.tx.Exec(ctx, `DELETE FROM users WHERE pk = $1`, pk); err != nil {
			return dbErr(ctx, "delete user", err)
		}
		w.add(store.Event{Kind: store.EventUserDeleted, ResourceType: "User", ResourceID: id, Actor: actor, Cutoffs: kc.Cutoffs})
		return nil
	})
}

// lockUser reads and locks a user for the rest of the transaction.
func lockUser(ctx context.Context, tx pgx.Tx, id string) (int64, *store.User, error) {
	u, pk, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, fmt.Errorf("user %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, nil, dbErr(ctx, "read user", err)
	}
	return pk, u, nil
}

// CreateGroup implements Store, as SQLiteStore.CreateGroup does.
func (s *Store) CreateGroup(ctx context.Context, g *store.Group, actor string) ([]store.Event, error) {
	if g == nil || g.ID == "" || g.DisplayName == "" {
		return nil, errors.New("create group: id and displayName are required")
	}
	ng := store.StoredGroup(g)
	members := store.SortedUnique(ng.Members)
	ng.Members = nil
	return s.write(ctx, "create group", func(w *txn) error {
		var gpk int64
		err := w.tx.QueryRow(ctx, `INSERT INTO groups
			(id, display_name, display_name_lower, external_id, doc, version, created, last_modified)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING pk`,
			ng.ID, ng.DisplayName, strings.ToLower(ng.DisplayName), ng.ExternalID, ng.Doc, ng.Version,
			tsParam(ng.Created), tsParam(ng.LastModified)).Scan(&gpk)
		if sqlState(err) == uniqueViolation {
			return fmt.Errorf("create group %s: %w", ng.ID, store.ErrConflict)
		}
		if err != nil {
			return dbErr(ctx, "create group", err)
		}
		if err := addMembers(ctx, w.tx, gpk, members); err != nil {
			return err
		}
		w.add(store.Event{Kind: store.EventGroupCreated, ResourceType: "Group", ResourceID: ng.ID, Actor: actor, Group: ng})
		if len(members) > 0 {
			w.add(store.Event{Kind: store.EventGroupMemberAdded, ResourceType: "Group", ResourceID: ng.ID, Actor: actor, Members: members})
		}
		return nil
	})
}

// UpdateGroup implements Store, as SQLiteStore.UpdateGroup does: only the
// difference between the member sets is written, and the events are
// group.updated, group.member_added, group.member_removed, each if needed.
func (s *Store) UpdateGroup(ctx context.Context, id string, fn func(cur *store.Group) (*store.Group, error), actor string) ([]store.Event, error) {
	return s.write(ctx, "update group", func(w *txn) error {
		gpk, cur, memberPK, err := lockGroup(ctx, w.tx, id)
		if err != nil {
			return err
		}
		next, err := fn(store.StoredGroup(cur))
		if err != nil {
			return err
		}
		if next == nil {
			return fmt.Errorf("update group %s: update function returned no group", id)
		}
		ng := store.StoredGroup(next)
		ng.ID, ng.Created = cur.ID, cur.Created

		newSet := make(map[string]struct{}, len(ng.Members))
		var added []string
		for _, m := range ng.Members {
			if _, dup := newSet[m]; dup {
				continue
			}
			newSet[m] = struct{}{}
			if _, had := memberPK[m]; !had {
				added = append(added, m)
			}
		}
		var removed []string
		var removedPK []int64
		for _, m := range cur.Members {
			if _, keep := newSet[m]; !keep {
				removed = append(removed, m)
				removedPK = append(removedPK, memberPK[m])
			}
		}
		attrs := ng.DisplayName != cur.DisplayName || ng.ExternalID != cur.ExternalID || !bytes.Equal(ng.Doc, cur.Doc)
		if !attrs && len(added) == 0 && len(removed) == 0 {
			return nil
		}
		slices.Sort(added)
		slices.Sort(removed)

		if err := addMembers(ctx, w.tx, gpk, added); err != nil {
			return err
		}
		if len(removedPK) > 0 {
			if _, err := w.tx.Exec(ctx, `DELETE FROM group_members WHERE group_pk = $1 AND user_pk = ANY($2)`,
				gpk, removedPK); err != nil {
				return dbErr(ctx, "remove members", err)
			}
		}
		ng.Version = cur.Version + 1
		if _, err := w.tx.Exec(ctx, `UPDATE groups SET display_name = $1, display_name_lower = $2, external_id = $3,
			doc = $4, version = $5, last_modified = $6 WHERE pk = $7`,
			ng.DisplayName, strings.ToLower(ng.DisplayName), ng.ExternalID, ng.Doc, ng.Version, tsParam(ng.LastModified), gpk); err != nil {
			return dbErr(ctx, "update group", err)
		}

		ng.Members = nil
		if attrs {
			w.add(store.Event{Kind: store.EventGroupUpdated, ResourceType: "Group", ResourceID: id, Actor: actor, Group: ng})
		}
		if len(added) > 0 {
			w.add(store.Event{Kind: store.EventGroupMemberAdded, ResourceType: "Group", ResourceID: id, Actor: actor, Members: added})
		}
		if len(removed) > 0 {
			w.add(store.Event{Kind: store.EventGroupMemberRemoved, ResourceType: "Group", ResourceID: id, Actor: actor, Members: removed})
		}
		return nil
	})
}

// DeleteGroup implements Store. fn gets the current group with its Members.
func (s *Store) DeleteGroup(ctx context.Context, id string, fn func(cur *store.Group) error, actor string) ([]store.Event, error) {
	return s.write(ctx, "delete group", func(w *txn) error {
		gpk, cur, _, err := lockGroup(ctx, w.tx, id)
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		if _, err := w.tx.Exec(ctx, `DELETE FROM groups WHERE pk = $1`, gpk); err != nil {
			return dbErr(ctx, "delete group", err)
		}
		w.add(store.Event{Kind: store.EventGroupDeleted, ResourceType: "Group", ResourceID: id, Actor: actor})
		return nil
	})
}

const groupColumns = `pk, id, display_name, external_id, doc, version, created, last_modified`

// lockGroup reads and locks a group, with its members and their user keys.
func lockGroup(ctx context.Context, tx pgx.Tx, id string) (int64, *store.Group, map[string]int64, error) {
	g, gpk, err := scanGroup(tx.QueryRow(ctx, `SELECT `+groupColumns+` FROM groups WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil, fmt.Errorf("group %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, nil, nil, dbErr(ctx, "read group", err)
	}
	memberPK := map[string]int64{}
	rows, _ := tx.Query(ctx, `SELECT m.user_pk, u.id FROM group_members m JOIN users u ON u.pk = m.user_pk
		WHERE m.group_pk = $1 ORDER BY m.user_pk`, gpk)
	var upk int64
	var uid string
	_, err = pgx.ForEachRow(rows, []any{&upk, &uid}, func() error {
		memberPK[uid] = upk
		g.Members = append(g.Members, uid)
		return nil
	})
	if err != nil {
		return 0, nil, nil, dbErr(ctx, "read members", err)
	}
	return gpk, g, memberPK, nil
}

// addMembers inserts memberships of group gpk in one statement, failing
// with ErrUnknownMember (naming the first such ID, as SQLite does) if an ID
// is not a user. The IDs must be distinct and new to the group.
func addMembers(ctx context.Context, tx pgx.Tx, gpk int64, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	tag, err := tx.Exec(ctx, `INSERT INTO group_members (group_pk, user_pk)
		SELECT $1, pk FROM users WHERE id = ANY($2)`, gpk, ids)
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
	err = tx.QueryRow(ctx, `SELECT m.id FROM unnest($1::text[]) WITH ORDINALITY AS m (id, n)
		WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.id) ORDER BY m.n LIMIT 1`, ids).Scan(&missing)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return dbErr(ctx, "add members", err)
	}
	return fmt.Errorf("%w: %s", store.ErrUnknownMember, missing)
}
