package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

var _ store.Reader = (*Store)(nil)

// readOnly is a read transaction that sees one committed state
// throughout, so a snapshot's Seq matches its users and groups exactly.
var readOnly = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// --- snapshot and event feed ---

// Snapshot implements Store. Users and groups come in creation order.
// Because appends commit in seq order, every event up to the snapshot's Seq
// is in it and none after.
func (s *Store) Snapshot(ctx context.Context) (*store.Snapshot, error) {
	tx, err := s.pool.BeginTx(ctx, readOnly)
	if err != nil {
		return nil, dbErr(ctx, "snapshot", err)
	}
	defer rollback(tx)

	snap := &store.Snapshot{}
	var nUsers, nGroups int
	if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT MAX(seq) FROM events), 0),
		(SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM groups)`).Scan(&snap.Seq, &nUsers, &nGroups); err != nil {
		return nil, dbErr(ctx, "snapshot", err)
	}
	userIDs := make(map[int64]string, nUsers)
	snap.Users = make([]*store.User, 0, nUsers)
	rows, _ := tx.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY pk`)
	for rows.Next() {
		u, pk, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, dbErr(ctx, "snapshot users", err)
		}
		userIDs[pk] = u.ID
		snap.Users = append(snap.Users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, "snapshot users", err)
	}
	groups := make(map[int64]*store.Group, nGroups)
	snap.Groups = make([]*store.Group, 0, nGroups)
	rows, _ = tx.Query(ctx, `SELECT `+groupColumns+` FROM groups ORDER BY pk`)
	for rows.Next() {
		g, pk, err := scanGroup(rows)
		if err != nil {
			rows.Close()
			return nil, dbErr(ctx, "snapshot groups", err)
		}
		groups[pk] = g
		snap.Groups = append(snap.Groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, "snapshot groups", err)
	}
	// Unordered (a sort of every membership would cost more than the rest
	// together); member IDs share the strings of the users read above.
	var gpk, upk, lastGPK int64 = 0, 0, -1
	var g *store.Group
	rows, _ = tx.Query(ctx, `SELECT group_pk, user_pk FROM group_members`)
	_, err = pgx.ForEachRow(rows, []any{&gpk, &upk}, func() error {
		if gpk != lastGPK {
			g, lastGPK = groups[gpk], gpk
		}
		if uid, ok := userIDs[upk]; ok && g != nil {
			g.Members = append(g.Members, uid)
		}
		return nil
	})
	if err != nil {
		return nil, dbErr(ctx, "snapshot members", err)
	}
	if snap.Cutoffs, err = readCutoffs(ctx, tx, s.now()); err != nil {
		return nil, err
	}
	return snap, nil
}

// EventsAfter implements Store.
func (s *Store) EventsAfter(ctx context.Context, seq int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("events after %d: limit %d must be positive", seq, limit)
	}
	var evs []store.Event
	var e store.Event
	var t time.Time
	var data []byte
	rows, _ := s.pool.Query(ctx, `SELECT seq, time, kind, resource_type, resource_id, actor, data
		FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
	_, err := pgx.ForEachRow(rows, []any{&e.Seq, &t, &e.Kind, &e.ResourceType, &e.ResourceID, &e.Actor, &data}, func() error {
		ev := store.Event{Seq: e.Seq, Time: t.UTC(), Kind: e.Kind, ResourceType: e.ResourceType, ResourceID: e.ResourceID, Actor: e.Actor}
		if len(data) > 0 {
			if err := store.DecodeEventData(data, &ev); err != nil {
				return fmt.Errorf("event %d: %w", ev.Seq, err)
			}
		}
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		return nil, dbErr(ctx, "read events", err)
	}
	return evs, nil
}

// Backoff between attempts to (re)connect the listen connection.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
	listenConnectMax = 10 * time.Second // one connection attempt
)

// Wait implements Listener on a dedicated connection (outside the pool)
// that LISTENs on portcullis_events. It returns nil when a notification
// arrives, having drained any others already received (one catch-up covers
// them all), and also right after the connection is (re)established:
// notifications sent while it was down are lost, so the caller must catch
// up. It returns an error when connecting fails or the connection breaks;
// the next call reconnects, first waiting a backoff that doubles from
// 100 ms to 5 s (with jitter, so replicas do not reconnect in step) while
// attempts keep failing. Calls queue: one Wait at a time owns the
// connection. Close wakes a Wait in progress.
func (s *Store) Wait(ctx context.Context) error {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	if s.closing.Err() != nil {
		return errors.New("listen: store closed")
	}

	if s.listenConn == nil {
		if s.listenFails > 0 {
			t := time.NewTimer(listenBackoff(s.listenFails))
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("listen: %w", ctx.Err())
			case <-t.C:
			}
		}
		conn, err := s.connectListener(ctx)
		if err != nil {
			s.listenFails++
			return dbErr(ctx, "listen", err)
		}
		s.listenFails, s.listenConn = 0, conn
		return nil
	}

	if _, err := s.listenConn.WaitForNotification(ctx); err != nil {
		// A cancelled wait leaves the connection usable (pgx interrupts
		// it with a deadline); anything else is a broken connection.
		if ctx.Err() == nil || s.listenConn.IsClosed() {
			s.dropListener()
		}
		return dbErr(ctx, "listen", err)
	}
	drained, stop := context.WithCancel(context.Background())
	stop() // with a done context pgx returns buffered notifications and reads nothing
	for {
		if _, err := s.listenConn.WaitForNotification(drained); err != nil {
			return nil
		}
	}
}

func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, listenConnectMax)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.listenConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// dropListener closes the listen connection; s.listenMu is held.
func (s *Store) dropListener() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.listenConn.Close(ctx)
	s.listenConn = nil
}

// listenBackoff is the wait before attempt n+1 after n failures: doubling
// from the minimum to the maximum, each between half and the whole of it.
func listenBackoff(failures int) time.Duration {
	d := listenBackoffMax
	if failures < 16 {
		d = min(listenBackoffMin<<(failures-1), listenBackoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// --- SCIM reads ---

// GetUser implements Reader.
func (s *Store) GetUser(ctx context.Context, id string) (*store.User, error) {
	u, _, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, dbErr(ctx, "get user", err)
	}
	return u, nil
}

// GetGroup implements Reader.
func (s *Store) GetGroup(ctx context.Context, id string) (*store.Group, error) {
	tx, err := s.pool.BeginTx(ctx, readOnly)
	if err != nil {
		return nil, dbErr(ctx, "get group", err)
	}
	defer rollback(tx)
	g, pk, err := scanGroup(tx.QueryRow(ctx, `SELECT `+groupColumns+` FROM groups WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, dbErr(ctx, "get group", err)
	}
	if err := loadMembers(ctx, tx, map[int64]*store.Group{pk: g}); err != nil {
		return nil, dbErr(ctx, "get group members", err)
	}
	return g, nil
}

// loadMembers fills Members of the groups keyed by primary key, in the
// users' creation order.
func loadMembers(ctx context.Context, tx pgx.Tx, groups map[int64]*store.Group) error {
	if len(groups) == 0 {
		return nil
	}
	pks := make([]int64, 0, len(groups))
	for pk := range groups {
		pks = append(pks, pk)
	}
	var gpk int64
	var uid string
	rows, _ := tx.Query(ctx, `SELECT m.group_pk, u.id FROM group_members m JOIN users u ON u.pk = m.user_pk
		WHERE m.group_pk = ANY($1) ORDER BY m.group_pk, u.pk`, pks)
	_, err := pgx.ForEachRow(rows, []any{&gpk, &uid}, func() error {
		if g := groups[gpk]; g != nil {
			g.Members = append(g.Members, uid)
		}
		return nil
	})
	return err
}

func userWhere(q store.Query) (string, []any, error) {
	switch q.Attr {
	case "":
		return "", nil, nil
	case "username", "email": // as match keys: ASCII case only (matchkey.go)
		return " WHERE " + keyExpr[store.QueryMatchAttribute(q.Attr)] + " = $1", []any{identity.MatchKey(q.Value)}, nil
	case "nameprefix":
		return ` WHERE (user_name_lower LIKE $1 ESCAPE '\' OR email_lower LIKE $1 ESCAPE '\')`, []any{store.LikePrefix(q.Value)}, nil
	case "externalid":
		return " WHERE external_id = $1", []any{q.Value}, nil
	case "id":
		return " WHERE id = $1", []any{q.Value}, nil
	}
	return "", nil, fmt.Errorf("list users: unknown query attribute %q", q.Attr)
}

func groupWhere(q store.Query) (string, []any, error) {
	switch q.Attr {
	case "":
		return "", nil, nil
	case "displayname":
		return " WHERE display_name_lower = $1", []any{strings.ToLower(q.Value)}, nil
	case "externalid":
		return " WHERE external_id = $1", []any{q.Value}, nil
	case "id":
		return " WHERE id = $1", []any{q.Value}, nil
	case "member":
		return ` WHERE pk IN (SELECT m.group_pk FROM group_members m JOIN users u ON u.pk = m.user_pk WHERE u.id = $1)`,
			[]any{q.Value}, nil
	}
	return "", nil, fmt.Errorf("list groups: unknown query attribute %q", q.Attr)
}

func limitClause(q store.Query) string {
	if q.Limit <= 0 && q.Offset <= 0 {
		return ""
	}
	limit := "ALL"
	if q.Limit > 0 {
		limit = fmt.Sprint(q.Limit)
	}
	return fmt.Sprintf(" LIMIT %s OFFSET %d", limit, max(q.Offset, 0))
}

// ListUsers implements Reader. The count and the page come from one
// consistent state.
func (s *Store) ListUsers(ctx context.Context, q store.Query) ([]*store.User, int, error) {
	where, args, err := userWhere(q)
	if err != nil {
		return nil, 0, err
	}
	tx, err := s.pool.BeginTx(ctx, readOnly)
	if err != nil {
		return nil, 0, dbErr(ctx, "list users", err)
	}
	defer rollback(tx)
	var total int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM users`+where, args...).Scan(&total); err != nil {
		return nil, 0, dbErr(ctx, "count users", err)
	}
	var users []*store.User
	rows, _ := tx.Query(ctx, `SELECT `+userColumns+` FROM users`+where+` ORDER BY pk`+limitClause(q), args...)
	for rows.Next() {
		u, _, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, 0, dbErr(ctx, "list users", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, dbErr(ctx, "list users", err)
	}
	return users, total, nil
}

// EachUser implements Reader.
func (s *Store) EachUser(ctx context.Context, q store.Query, fn func(*store.User) error) error {
	where, args, err := userWhere(q)
	if err != nil {
		return err
	}
	tx, err := s.pool.BeginTx(ctx, readOnly)
	if err != nil {
		return dbErr(ctx, "scan users", err)
	}
	defer rollback(tx)
	rows, _ := tx.Query(ctx, `SELECT `+userColumns+` FROM users`+where+` ORDER BY pk`, args...)
	defer rows.Close()
	for rows.Next() {
		u, _, err := scanUser(rows)
		if err != nil {
			return dbErr(ctx, "scan users", err)
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return dbErr(ctx, "scan users", rows.Err())
}

// ListGroups implements Reader.
func (s *Store) ListGroups(ctx context.Context, q store.Query, withMembers bool) ([]*store.Group, int, error) {
	where, args, err := groupWhere(q)
	if err != nil {
		return nil, 0, err
	}
	tx, err := s.pool.BeginTx(ctx, readOnly)
	if err != nil {
		return nil, 0, dbErr(ctx, "list groups", err)
	}
	defer rollback(tx)
	var total int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM groups`+where, args...).Scan(&total); err != nil {
		return nil, 0, dbErr(ctx, "count groups", err)
	}
	var groups []*store.Group
	byPK := map[int64]*store.Group{}
	rows, _ := tx.Query(ctx, `SELECT `+groupColumns+` FROM groups`+where+` ORDER BY pk`+limitClause(q), args...)
	for rows.Next() {
		g, pk, err := scanGroup(rows)
		if err != nil {
			rows.Close()
			return nil, 0, dbErr(ctx, "list groups", err)
		}
		groups = append(groups, g)
		byPK[pk] = g
	}
	if err := rows.Err(); err != nil {
		return nil, 0, dbErr(ctx, "list groups", err)
	}
	if withMembers {
		if err := loadMembers(ctx, tx, byPK); err != nil {
			return nil, 0, dbErr(ctx, "list group members", err)
		}
	}
	return groups, total, nil
}

// --- scanning ---

func scanUser(r pgx.Row) (*store.User, int64, error) {
	var u store.User
	var pk int64
	var created, modified, validAfter pgtype.Timestamptz
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

func scanGroup(r pgx.Row) (*store.Group, int64, error) {
	var g store.Group
	var pk int64
	var created, modified pgtype.Timestamptz
	if err := r.Scan(&pk, &g.ID, &g.DisplayName, &g.ExternalID, &g.Doc, &g.Version, &created, &modified); err != nil {
		return nil, 0, err
	}
	if len(g.Doc) == 0 {
		g.Doc = nil
	}
	g.Created, g.LastModified = timeOf(created), timeOf(modified)
	return &g, pk, nil
}

// timeOf is a timestamptz as the store gives times back: UTC, or the zero
// time for NULL.
func timeOf(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

// --- replay cache ---

// replayPruneEvery is how often a store deletes expired replay cache rows.
const replayPruneEvery = time.Minute

// SeenAssertion records id until expires and reports whether it was
// already recorded and not yet expired; it has the signature of
// samlsp.ReplayCache's Seen, and the table is shared by every replica, so
// an assertion accepted by one is refused by all. Of two replicas recording
// the same ID at once, exactly one sees false. An expired row counts as
// absent (it is taken over), and expired rows are pruned about once a
// minute per replica.
func (s *Store) SeenAssertion(ctx context.Context, id string, expires time.Time) (bool, error) {
	now := s.now()
	var fresh bool
	err := s.pool.QueryRow(ctx, `INSERT INTO replay_cache AS r (id, expires) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET expires = excluded.expires WHERE r.expires <= $3
		RETURNING true`, id, expires, now).Scan(&fresh)
	seen := errors.Is(err, pgx.ErrNoRows) // a live row: neither inserted nor taken over
	if err != nil && !seen {
		return false, dbErr(ctx, "replay cache", err)
	}
	if last := s.lastPrune.Load(); now.UnixMilli()-last >= replayPruneEvery.Milliseconds() &&
		s.lastPrune.CompareAndSwap(last, now.UnixMilli()) {
		// Best effort: the answer is already known, and a failed prune is
		// retried a minute later; failing the login for it would be wrong.
		_, _ = s.pool.Exec(ctx, `DELETE FROM replay_cache WHERE expires <= $1`, now)
	}
	return seen, nil
}

// --- values and errors ---

// tsParam is t for a timestamptz parameter, or NULL for the zero time.
func tsParam(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// PostgreSQL error codes the store tells apart.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// sqlState is the SQLSTATE of err, or "" if it is not a server error.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// dbErr wraps a database error with op, marking the ones worth a retry
// (connection lost or refused, server shutting down or out of resources,
// serialisation failures) as ErrUnavailable. A cancelled or expired ctx is
// kept visible to errors.Is. nil stays nil.
func dbErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%s: %w: %w", op, cerr, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code[:2] {
	case "08", "53", "58": // connection exception, insufficient resources, system (I/O) error
		return true
	}
	// Shutting down, cannot connect now; serialisation failure, deadlock;
	// lock not available; read-only (a failover left us on a standby).
	switch pe.Code {
	case "57P01", "57P02", "57P03", "40001", "40P01", "55P03", "25006":
		return true
	}
	return false
}
