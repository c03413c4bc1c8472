package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Store is the Store on one local SQLite file, for a single replica.
//
// Writes run one at a time on a single connection, each in a BEGIN
// IMMEDIATE transaction that is synced to disk (WAL, synchronous=FULL)
// before the method returns: concurrent updates queue instead of failing
// with SQLITE_BUSY, and an acknowledged write survives a crash. Reads
// (Snapshot, EventsAfter) use a separate pool and, thanks to WAL, never wait
// for a writer.
//
// Update and delete functions run inside the write transaction and must not
// call the store's write methods (they would wait for themselves).
type Store struct {
	w     *sql.DB // exactly one connection: the write path
	r     *sql.DB // read-only pool
	now   func() time.Time
	match store.MatchRule

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// busyTimeout bounds how long a statement waits for a lock held by
// another process (within this one, writes queue on the write connection).
const busyTimeout = 5 * time.Second

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations, which must be numbered
// 1..N without gaps (0001_init.sql, 0002_….sql).
var migrations = sync.OnceValues(func() ([]store.Migration, error) {
	return store.LoadMigrations(migrationFiles, "migrations")
})

// Open opens (creating it if needed, owner-only) the database at path
// and brings its schema up to date. It refuses a database whose schema is
// newer than this binary knows. Without WithMatchRule, the match key is
// the userName.
func Open(ctx context.Context, path string, opts ...store.Option) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("open sqlite store: %q is not a plain file path", path)
	}
	conf, err := store.Configure(opts)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	// SQLite would create the file 0644; create it 0600 first. The -wal and
	// -shm files take the database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	f.Close()

	// The pragmas are per connection, so they go in the DSN: database/sql
	// applies them to every connection it opens, including after a reconnect.
	common := "?_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"
	w, err := sql.Open("sqlite", abs+common+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, now: conf.Now, match: conf.Match}

	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, dbErr("open sqlite store "+path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: journal mode is %q, want wal (is the file on a network file system?)", path, mode)
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", abs+common+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(2)
	s.r = r
	return s, nil
}

// migrate applies the pending migrations in order, each in its own
// transaction together with its schema_migrations row.
func (s *Store) migrate(ctx context.Context) error {
	migs, err := migrations()
	if err != nil {
		return err
	}
	latest := len(migs)
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return dbErr("create schema_migrations", err)
	}
	for _, m := range migs {
		if err := s.applyMigration(ctx, m, latest); err != nil {
			return err
		}
	}
	// Also when nothing was pending: a newer schema must stop us.
	_, err = s.schemaVersion(ctx, s.w, latest)
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
	if v > latest {
		return v, fmt.Errorf("database schema version %d is newer than this portcullis knows (%d); upgrade portcullis", v, latest)
	}
	return v, nil
}

// Settings are the settings in effect on the write connection, for
// the start-up log and for tests.
type Settings struct {
	JournalMode   string // "wal"
	Synchronous   int    // 2 = FULL
	ForeignKeys   bool
	BusyTimeout   time.Duration
	SchemaVersion int
}

// Settings reads the settings in effect on the write connection.
func (s *Store) Settings(ctx context.Context) (Settings, error) {
	var st Settings
	var fk int
	var busyMS int64
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return st, dbErr("read settings", err)
	}
	defer conn.Close()
	for _, p := range []struct {
		pragma string
		dst    any
	}{
		{"journal_mode", &st.JournalMode},
		{"synchronous", &st.Synchronous},
		{"foreign_keys", &fk},
		{"busy_timeout", &busyMS},
	} {
		if err := conn.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(p.dst); err != nil {
			return st, dbErr("read pragma "+p.pragma, err)
		}
	}
	st.ForeignKeys = fk == 1
	st.BusyTimeout = time.Duration(busyMS) * time.Millisecond
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&st.SchemaVersion); err != nil {
		return st, dbErr("read schema version", err)
	}
	return st, nil
}

// Close closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
	})
	return s.closeErr
}

// --- writes ---

// txEvents collects the events a write transaction appends.
type txEvents struct {
	tx     *sql.Tx
	now    time.Time
	events []store.Event
}

// write runs fn in one write transaction and commits it. fn returns its
// errors as they should reach the caller (an update function's error
// unchanged, database errors through dbErr); any error rolls back.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx, ev *txEvents) error) ([]store.Event, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbErr(op, err)
	}
	defer tx.Rollback() // also when fn panics: the write connection must come back clean
	ev := &txEvents{tx: tx, now: s.now().UTC().Truncate(time.Millisecond)}
	if err := fn(tx, ev); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, dbErr(op, err)
	}
	return ev.events, nil
}

// add appends e to the event log, filling Seq and Time.
func (t *txEvents) add(ctx context.Context, e store.Event) error {
	e.Time = t.now
	data, err := store.EncodeEventData(&e)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", e.Kind, err)
	}
	res, err := t.tx.ExecContext(ctx, `INSERT INTO events (time, kind, resource_type, resource_id, actor, data)
		VALUES (?, ?, ?, ?, ?, ?)`, e.Time.UnixMilli(), e.Kind, e.ResourceType, e.ResourceID, e.Actor, data)
	if err != nil {
		return dbErr("append event", err)
	}
	if e.Seq, err = res.LastInsertId(); err != nil {
		return dbErr("append event", err)
	}
	t.events = append(t.events, e)
	return nil
}

const userColumns = `pk, id, user_name, external_id, email, active, doc, version, created, last_modified, valid_after`

// CreateUser implements store.Store.
func (s *Store) CreateUser(ctx context.Context, u *store.User, actor string) ([]store.Event, error) {
	if u == nil || u.ID == "" || u.UserName == "" {
		return nil, errors.New("create user: id and userName are required")
	}
	nu := store.StoredUser(u)
	return s.write(ctx, "create user", func(tx *sql.Tx, ev *txEvents) error {
		if err := s.keyWrite(ctx, tx, nu.ID, s.match.Change(nil, nu, ev.now), ev.now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO users
			(id, user_name, user_name_lower, external_id, email, email_lower, active, doc, version, created, last_modified, valid_after)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			nu.ID, nu.UserName, strings.ToLower(nu.UserName), nu.ExternalID, nu.Email, strings.ToLower(nu.Email), nu.Active, nu.Doc,
			nu.Version, unixMS(nu.Created), unixMS(nu.LastModified), unixMS(nu.ValidAfter))
		if isUnique(err) {
			return fmt.Errorf("create user %q: %w", nu.UserName, store.ErrConflict)
		}
		if err != nil {
			return dbErr("create user", err)
		}
		return ev.add(ctx, store.Event{Kind: store.EventUserCreated, ResourceType: "User", ResourceID: nu.ID, Actor: actor, User: nu})
	})
}

// UpdateUser implements store.Store. fn gets a copy of the current user. What it
// returns is stored with the ID and Created of the current user and Version
// set to the current Version+1 (the ETag always advances), unless it equals
// the current user in UserName, ExternalID, Email, Active, ValidAfter and
// Doc: then nothing is written, the version stays, and no events are
// returned — a replayed PATCH or PUT is a no-op.
//
// The event is user.deactivated when Active goes from true to false,
// user.reactivated from false to true, and user.updated otherwise.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(cur *store.User) (*store.User, error), actor string) ([]store.Event, error) {
	return s.write(ctx, "update user", func(tx *sql.Tx, ev *txEvents) error {
		pk, cur, err := getUser(ctx, tx, id)
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
		kc := s.match.Change(cur, nu, ev.now)
		if err := s.keyWrite(ctx, tx, id, kc, ev.now); err != nil {
			return err
		}
		nu.Version = cur.Version + 1
		_, err = tx.ExecContext(ctx, `UPDATE users SET user_name = ?, user_name_lower = ?, external_id = ?, email = ?,
			email_lower = ?, active = ?, doc = ?, version = ?, last_modified = ?, valid_after = ? WHERE pk = ?`,
			nu.UserName, strings.ToLower(nu.UserName), nu.ExternalID, nu.Email, strings.ToLower(nu.Email), nu.Active, nu.Doc,
			nu.Version, unixMS(nu.LastModified), unixMS(nu.ValidAfter), pk)
		if isUnique(err) {
			return fmt.Errorf("update user %s: userName %q: %w", id, nu.UserName, store.ErrConflict)
		}
		if err != nil {
			return dbErr("update user", err)
		}
		kind := store.EventUserUpdated
		switch {
		case cur.Active && !nu.Active:
			kind = store.EventUserDeactivated
		case !cur.Active && nu.Active:
			kind = store.EventUserReactivated
		}
		return ev.add(ctx, store.Event{Kind: kind, ResourceType: "User", ResourceID: id, Actor: actor, User: nu, Cutoffs: kc.Cutoffs})
	})
}

// DeleteUser implements store.Store. The user's memberships go with it, and the
// only event is user.deleted: no group.member_removed events are appended
// for the groups the user was in. Whoever applies user.deleted removes the
// user from every group itself (as Directory does), which keeps deleting a
// user in 500 groups one event instead of 501.
func (s *Store) DeleteUser(ctx context.Context, id string, fn func(cur *store.User) error, actor string) ([]store.Event, error) {
	return s.write(ctx, "delete user", func(tx *sql.Tx, ev *txEvents) error {
		pk, cur, err := getUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		kc := s.match.Change(cur, nil, ev.now)
		if err := s.keyWrite(ctx, tx, id, kc, ev.now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE pk = ?`, pk); err != nil {
			return dbErr("delete user", err)
		}
		return ev.add(ctx, store.Event{Kind: store.EventUserDeleted, ResourceType: "User", ResourceID: id, Actor: actor, Cutoffs: kc.Cutoffs})
	})
}

func getUser(ctx context.Context, tx *sql.Tx, id string) (int64, *store.User, error) {
	u, pk, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, fmt.Errorf("user %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, nil, dbErr("read user", err)
	}
	return pk, u, nil
}

// CreateGroup implements store.Store. Every member must be a stored user, else
// the error wraps store.ErrUnknownMember and nothing is written. Events:
// group.created with the attributes, then group.member_added with every
// member (sorted) if there are any.
func (s *Store) CreateGroup(ctx context.Context, g *store.Group, actor string) ([]store.Event, error) {
	if g == nil || g.ID == "" || g.DisplayName == "" {
		return nil, errors.New("create group: id and displayName are required")
	}
	ng := store.StoredGroup(g)
	members := store.SortedUnique(ng.Members)
	ng.Members = nil
	return s.write(ctx, "create group", func(tx *sql.Tx, ev *txEvents) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO groups
			(id, display_name, display_name_lower, external_id, doc, version, created, last_modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			ng.ID, ng.DisplayName, strings.ToLower(ng.DisplayName), ng.ExternalID, ng.Doc, ng.Version, unixMS(ng.Created), unixMS(ng.LastModified))
		if isUnique(err) {
			return fmt.Errorf("create group %s: %w", ng.ID, store.ErrConflict)
		}
		if err != nil {
			return dbErr("create group", err)
		}
		gpk, err := res.LastInsertId()
		if err != nil {
			return dbErr("create group", err)
		}
		if err := addMembers(ctx, tx, gpk, members); err != nil {
			return err
		}
		if err := ev.add(ctx, store.Event{Kind: store.EventGroupCreated, ResourceType: "Group", ResourceID: ng.ID, Actor: actor, Group: ng}); err != nil {
			return err
		}
		if len(members) == 0 {
			return nil
		}
		return ev.add(ctx, store.Event{Kind: store.EventGroupMemberAdded, ResourceType: "Group", ResourceID: ng.ID, Actor: actor, Members: members})
	})
}

// UpdateGroup implements store.Store. fn gets a copy of the current group with
// its Members. Only the difference between the old and new member sets is
// written (a group of 10,000 gaining one member inserts one row). The ID and
// Created stay, and Version becomes the current Version+1 when anything
// changed. If neither the attributes (DisplayName, ExternalID, Doc) nor the
// member set changed, nothing is written and no events are returned.
//
// Events, in this order: group.updated (attributes, Members nil) if an
// attribute changed; group.member_added with the added IDs; then
// group.member_removed with the removed IDs.
func (s *Store) UpdateGroup(ctx context.Context, id string, fn func(cur *store.Group) (*store.Group, error), actor string) ([]store.Event, error) {
	return s.write(ctx, "update group", func(tx *sql.Tx, ev *txEvents) error {
		gpk, cur, memberPK, err := getGroup(ctx, tx, id)
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
		for _, m := range cur.Members {
			if _, keep := newSet[m]; !keep {
				removed = append(removed, m)
			}
		}
		attrs := ng.DisplayName != cur.DisplayName || ng.ExternalID != cur.ExternalID || !bytes.Equal(ng.Doc, cur.Doc)
		if !attrs && len(added) == 0 && len(removed) == 0 {
			return nil
		}
		slices.Sort(added)
		slices.Sort(removed)

		if err := addMembers(ctx, tx, gpk, added); err != nil {
			return err
		}
		if len(removed) > 0 {
			del, err := tx.PrepareContext(ctx, `DELETE FROM group_members WHERE group_pk = ? AND user_pk = ?`)
			if err != nil {
				return dbErr("remove members", err)
			}
			defer del.Close()
			for _, m := range removed {
				if _, err := del.ExecContext(ctx, gpk, memberPK[m]); err != nil {
					return dbErr("remove member", err)
				}
			}
		}
		ng.Version = cur.Version + 1
		if _, err := tx.ExecContext(ctx, `UPDATE groups SET display_name = ?, display_name_lower = ?, external_id = ?,
			doc = ?, version = ?, last_modified = ? WHERE pk = ?`,
			ng.DisplayName, strings.ToLower(ng.DisplayName), ng.ExternalID, ng.Doc, ng.Version, unixMS(ng.LastModified), gpk); err != nil {
			return dbErr("update group", err)
		}

		ng.Members = nil
		if attrs {
			if err := ev.add(ctx, store.Event{Kind: store.EventGroupUpdated, ResourceType: "Group", ResourceID: id, Actor: actor, Group: ng}); err != nil {
				return err
			}
		}
		if len(added) > 0 {
			if err := ev.add(ctx, store.Event{Kind: store.EventGroupMemberAdded, ResourceType: "Group", ResourceID: id, Actor: actor, Members: added}); err != nil {
				return err
			}
		}
		if len(removed) > 0 {
			return ev.add(ctx, store.Event{Kind: store.EventGroupMemberRemoved, ResourceType: "Group", ResourceID: id, Actor: actor, Members: removed})
		}
		return nil
	})
}

// DeleteGroup implements store.Store. fn gets the current group with its Members.
func (s *Store) DeleteGroup(ctx context.Context, id string, fn func(cur *store.Group) error, actor string) ([]store.Event, error) {
	return s.write(ctx, "delete group", func(tx *sql.Tx, ev *txEvents) error {
		gpk, cur, _, err := getGroup(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM groups WHERE pk = ?`, gpk); err != nil {
			return dbErr("delete group", err)
		}
		return ev.add(ctx, store.Event{Kind: store.EventGroupDeleted, ResourceType: "Group", ResourceID: id, Actor: actor})
	})
}

const groupColumns = `pk, id, display_name, external_id, doc, version, created, last_modified`

// getGroup reads a group with its members, and the members' user keys.
func getGroup(ctx context.Context, tx *sql.Tx, id string) (int64, *store.Group, map[string]int64, error) {
	g, gpk, err := scanGroup(tx.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM groups WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil, fmt.Errorf("group %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, nil, nil, dbErr("read group", err)
	}
	memberPK := map[string]int64{}
	err = each(ctx, tx, func(rows *sql.Rows) error {
		var upk int64
		var uid string
		if err := rows.Scan(&upk, &uid); err != nil {
			return err
		}
		memberPK[uid] = upk
		g.Members = append(g.Members, uid)
		return nil
	}, `SELECT m.user_pk, u.id FROM group_members m JOIN users u ON u.pk = m.user_pk WHERE m.group_pk = ?`, gpk)
	if err != nil {
		return 0, nil, nil, dbErr("read members", err)
	}
	return gpk, g, memberPK, nil
}

// addMembers inserts memberships of group gpk, failing with
// store.ErrUnknownMember on the first ID that is not a user (groups cannot be
// members). The IDs must be new to the group.
func addMembers(ctx context.Context, tx *sql.Tx, gpk int64, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO group_members (group_pk, user_pk) SELECT ?, pk FROM users WHERE id = ?`)
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

// --- reads ---

// Snapshot implements store.Store. Everything is read in one read transaction,
// so Seq matches the users and groups exactly. Users and groups come in
// creation order, members in the order they were added.
func (s *Store) Snapshot(ctx context.Context) (*store.Snapshot, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, dbErr("snapshot", err)
	}
	defer tx.Rollback()

	snap := &store.Snapshot{}
	var nUsers, nGroups int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT MAX(seq) FROM events), 0),
		(SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM groups)`).Scan(&snap.Seq, &nUsers, &nGroups); err != nil {
		return nil, dbErr("snapshot", err)
	}
	userIDs := make(map[int64]string, nUsers)
	snap.Users = make([]*store.User, 0, nUsers)
	err = each(ctx, tx, func(rows *sql.Rows) error {
		u, pk, err := scanUser(rows)
		if err != nil {
			return err
		}
		userIDs[pk] = u.ID
		snap.Users = append(snap.Users, u)
		return nil
	}, `SELECT `+userColumns+` FROM users ORDER BY pk`)
	if err != nil {
		return nil, dbErr("snapshot users", err)
	}
	groups := make(map[int64]*store.Group, nGroups)
	snap.Groups = make([]*store.Group, 0, nGroups)
	err = each(ctx, tx, func(rows *sql.Rows) error {
		g, pk, err := scanGroup(rows)
		if err != nil {
			return err
		}
		groups[pk] = g
		snap.Groups = append(snap.Groups, g)
		return nil
	}, `SELECT `+groupColumns+` FROM groups ORDER BY pk`)
	if err != nil {
		return nil, dbErr("snapshot groups", err)
	}
	// In primary-key order each group's rows come together; member IDs share
	// the strings of the users read above.
	var g *store.Group
	lastGPK := int64(-1)
	err = each(ctx, tx, func(rows *sql.Rows) error {
		var gpk, upk int64
		if err := rows.Scan(&gpk, &upk); err != nil {
			return err
		}
		if gpk != lastGPK {
			g, lastGPK = groups[gpk], gpk
		}
		if uid, ok := userIDs[upk]; ok && g != nil {
			g.Members = append(g.Members, uid)
		}
		return nil
	}, `SELECT group_pk, user_pk FROM group_members`)
	if err != nil {
		return nil, dbErr("snapshot members", err)
	}
	if snap.Cutoffs, err = readCutoffs(ctx, tx, s.now()); err != nil {
		return nil, err
	}
	return snap, nil
}

// EventsAfter implements store.Store.
func (s *Store) EventsAfter(ctx context.Context, seq int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("events after %d: limit %d must be positive", seq, limit)
	}
	var evs []store.Event
	err := each(ctx, s.r, func(rows *sql.Rows) error {
		var e store.Event
		var t int64
		var data sql.NullString
		if err := rows.Scan(&e.Seq, &t, &e.Kind, &e.ResourceType, &e.ResourceID, &e.Actor, &data); err != nil {
			return err
		}
		e.Time = time.UnixMilli(t).UTC()
		if data.Valid {
			if err := store.DecodeEventData([]byte(data.String), &e); err != nil {
				return fmt.Errorf("event %d: %w", e.Seq, err)
			}
		}
		evs = append(evs, e)
		return nil
	}, `SELECT seq, time, kind, resource_type, resource_id, actor, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, dbErr("read events", err)
	}
	return evs, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// each runs query and calls fn for each row, stopping at its first error.
func each(ctx context.Context, q querier, fn func(*sql.Rows) error, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

type rowScanner interface{ Scan(dest ...any) error }

func scanUser(r rowScanner) (*store.User, int64, error) {
	var u store.User
	var pk int64
	var created, modified, validAfter sql.NullInt64
	if err := r.Scan(&pk, &u.ID, &u.UserName, &u.ExternalID, &u.Email, &u.Active, &u.Doc, &u.Version,
		&created, &modified, &validAfter); err != nil {
		return nil, 0, err
	}
	if len(u.Doc) == 0 {
		u.Doc = nil
	}
	u.Created, u.LastModified, u.ValidAfter = timeOf(created), timeOf(modified), timeOf(validAfter)
	return &u, pk, nil
}

func scanGroup(r rowScanner) (*store.Group, int64, error) {
	var g store.Group
	var pk int64
	var created, modified sql.NullInt64
	if err := r.Scan(&pk, &g.ID, &g.DisplayName, &g.ExternalID, &g.Doc, &g.Version, &created, &modified); err != nil {
		return nil, 0, err
	}
	if len(g.Doc) == 0 {
		g.Doc = nil
	}
	g.Created, g.LastModified = timeOf(created), timeOf(modified)
	return &g, pk, nil
}

// --- values ---

// unixMS is t in unix milliseconds, or NULL for the zero time.
func unixMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func timeOf(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// --- errors ---

// dbErr wraps a database error with op, marking the ones worth a retry
// (locked, busy, out of disk, I/O) as store.ErrUnavailable.
func dbErr(op string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isUnique(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
