package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Store is the store.Store on PostgreSQL, shared by many replicas. The
// writes and reads themselves are store.SQLStore's, as on SQLite; this
// package holds what PostgreSQL does its own way: how the store stays
// correct when several processes write at once, LISTEN/NOTIFY, the shared
// replay cache, migrations under a lock.
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
	store.SQLStore
	pool         *pgxpool.Pool
	listenConfig *pgx.ConnConfig // for the dedicated LISTEN connection
	now          func() time.Time
	eventLockObj int32 // the events table's OID, as int4
	ledger       *store.SQLLedger
	deliveries   *store.SQLDeliveries // the webhook and feed side
	replay       *ReplayCache

	closing   context.Context // done once Close is called
	stop      context.CancelFunc
	closeOnce sync.Once

	listenMu    sync.Mutex // one Wait at a time owns the listen connection
	listenConn  *pgx.Conn
	listenFails int // connection attempts failed in a row, for the backoff
}

// dialect is how PostgreSQL's statements differ from SQLite's. Its
// translate() folds the ASCII letters only, whatever the collation.
var dialect = store.Dialect{
	Key: func(col string) string {
		return "translate(" + col + ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
	},
	NoLimit: "ALL", ForUpdate: " FOR UPDATE", Time: tsParam, Err: dbErr,
	In:     func(col, subquery string) string { return col + " = ANY(ARRAY(" + subquery + "))" },
	Times:  func() store.Times { return new(times) },
	Unique: func(err error) bool { return sqlState(err) == uniqueViolation },
}

const (
	// notifyChannel is the channel writes NOTIFY and followers LISTEN on.
	notifyChannel = "portcullis_events"
	// migrateLockKey ("portmigr") serialises migrations across replicas.
	migrateLockKey int64 = 0x706f72746d696772
	// eventLockClass ("port") is the first key of the event append lock;
	// the second is the events table's OID. The one- and two-key advisory
	// lock spaces are distinct, so the keys cannot collide.
	eventLockClass int32 = 0x706f7274
)

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
	s := &Store{pool: pool, listenConfig: cfg.ConnConfig.Copy(), now: conf.Now, closing: closing, stop: stop}
	s.SQLStore = store.NewSQLStore(s, dialect, conf)
	s.ledger = store.NewSQLLedger(dialect, conn{pool}, s.runAll, conf.Now)
	s.deliveries = store.NewSQLDeliveries(s.SQLStore, s.runAll)
	s.replay = &ReplayCache{pool: pool, now: conf.Now}
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

// times holds a row's time columns; NULL is the zero time.
type times [3]pgtype.Timestamptz

func (t *times) Dest(i int) any { return &t[i] }

func (t *times) At(i int) time.Time {
	if !t[i].Valid {
		return time.Time{}
	}
	return t[i].Time.UTC()
}

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
