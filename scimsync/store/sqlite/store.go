package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Store is the store.Store on one local SQLite file, for a single replica.
// The writes and reads themselves are store.SQLStore's; this package holds
// only what SQLite does its own way.
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
	store.SQLStore
	w      *sql.DB // exactly one connection: the write path
	r      *sql.DB // read-only pool
	now    func() time.Time
	ledger *store.SQLLedger
	// deliveries is the webhook and feed side (store.Deliveries).
	deliveries *store.SQLDeliveries

	closeOnce sync.Once
	closeErr  error
}

// dialect is how SQLite's statements differ from PostgreSQL's. Its
// lower() folds ASCII letters only.
var dialect = store.Dialect{Key: func(col string) string { return "lower(" + col + ")" },
	NoLimit: "-1", Time: unixMS, Times: func() store.Times { return new(times) }, Unique: isUnique,
	Err: func(_ context.Context, op string, err error) error { return dbErr(op, err) }, OrgRef: "+org"}

// busyTimeout bounds how long a statement waits for a lock held by
// another process (within this one, writes queue on the write connection).
const busyTimeout = 5 * time.Second

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
	abs, err := createFile(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	// The pragmas are per connection, so they go in the DSN: database/sql
	// applies them to every connection it opens, including after a reconnect.
	common := "?_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"
	w, err := openWriter(ctx, abs+common+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	s := &Store{w: w, now: conf.Now}
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
	s.SQLStore = store.NewSQLStore(s, dialect, conf)
	s.ledger = store.NewSQLLedger(dialect, conn{r}, s.runAll, conf.Now)
	s.deliveries = store.NewSQLDeliveries(s.SQLStore, s.runAll)
	return s, nil
}

// createFile makes path absolute and creates it, owner-only, if it does
// not exist: SQLite would create it 0644. The -wal and -shm files take the
// database file's mode.
func createFile(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	return abs, f.Close()
}

// openWriter opens the write path, one connection, and checks that it is
// in WAL mode.
func openWriter(ctx context.Context, dsn string) (*sql.DB, error) {
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, dbErr("read journal mode", err)
	}
	if !strings.EqualFold(mode, "wal") {
		w.Close()
		return nil, fmt.Errorf("journal mode is %q, want wal (is the file on a network file system?)", mode)
	}
	return w, nil
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

// times holds a row's time columns: unix milliseconds, NULL the zero time.
type times [3]sql.NullInt64

func (t *times) Dest(i int) any { return &t[i] }

func (t *times) At(i int) time.Time {
	if !t[i].Valid {
		return time.Time{}
	}
	return time.UnixMilli(t[i].Int64).UTC()
}

// unixMS is t in unix milliseconds, or NULL for the zero time.
func unixMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// --- errors ---

// dbErr wraps a database error with op, marking the ones worth a retry
// (locked, busy, out of disk, I/O) as store.ErrUnavailable.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
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
