package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// SQLStore implements Store (all but Close) and Reader once for every
// database: the write logic — user and group writes, the one member diff,
// the "same user" rule, the match key bookkeeping, the events — and the
// statements both backends run alike (sqlwrite.go, sqlread.go). A backend
// embeds it and supplies what differs: its transactions (Backend), the
// steps whose SQL differs (WriteTx) and its dialect (Dialect).
//
// Statements number their parameters $1, $2, …: PostgreSQL's form, which
// SQLite (modernc.org/sqlite) binds by position too.
type SQLStore struct {
	b     Backend
	d     Dialect
	match MatchRule
	now   func() time.Time
	// org is the organization every read and write is scoped to
	// (DefaultOrg unless ForOrg chose another): a row of another
	// organization is never read, changed or counted.
	org string
	// hooks are told of every committed write with events (OnEvents);
	// shared by every organization's copy of s.
	hooks *eventHooks
}

// NewSQLStore is the shared part of a backend opened with c, scoped to the
// default organization.
func NewSQLStore(b Backend, d Dialect, c Config) SQLStore {
	return SQLStore{b: b, d: d, match: c.Match, now: c.Now, org: DefaultOrg, hooks: &eventHooks{}}
}

// OrgStore is a store scoped to one organization (SQLStore.ForOrg): the
// Store and Reader of that organization's directory, over the same
// database. Close is a no-op: the database is the backend's to close.
type OrgStore struct{ SQLStore }

// Close implements Store.
func (OrgStore) Close() error { return nil }

// ForOrg is the store of organization org ("" is the default one).
func (s SQLStore) ForOrg(org string) *OrgStore {
	s.org = OrgOrDefault(org)
	return &OrgStore{s}
}

// Org is the organization s is scoped to.
func (s SQLStore) Org() string { return s.org }

// OrgKeySep separates an organization id from a key in the keys that must
// be unique across the whole table (migration 0008): the unit separator,
// which SCIM values may not hold.
const OrgKeySep = "\x1f"

// qual is key as stored in a table-wide unique column: the default
// organization's unqualified, as before organizations; another's prefixed
// with its id and OrgKeySep.
func (s SQLStore) qual(key string) string { return QualifyKey(s.org, key) }

// QualifyKey is key as stored in a table-wide unique column for
// organization org (see SQLStore.qual).
func QualifyKey(org, key string) string { return identity.OrgKey(org, key) }

// unqual is qual undone for a key of s's organization.
func (s SQLStore) unqual(key string) string {
	if s.org == DefaultOrg || s.org == "" {
		return key
	}
	return strings.TrimPrefix(key, s.org+OrgKeySep)
}

// Backend is what a database supplies to SQLStore: its transactions.
type Backend interface {
	// Write runs fn in one write transaction in which writes to one
	// resource serialise, and commits it with the events fn appended,
	// which it returns with their Seq. fn's errors reach the caller as they
	// are; any error rolls back.
	Write(ctx context.Context, op string, fn func(tx WriteTx) error) ([]Event, error)
	// Read runs fn in one read-only transaction that sees one committed
	// state throughout.
	Read(ctx context.Context, op string, fn func(tx DB) error) error
	// Pool runs statements that need no transaction.
	Pool() DB
}

// DB is a backend's pool or transaction, as the shared statements use it.
// Its errors are the driver's, unwrapped.
type DB interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Row is one row to scan: a Rows at a row, or queryRow's.
type Row interface {
	Scan(dest ...any) error
}

// Rows are the rows of Query: pgx.Rows is; a backend adapts *sql.Rows.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// WriteTx is one write transaction: the shared statements (DB), and the
// steps whose SQL differs between backends. Its own methods return errors
// ready for the caller (wrapped, retryable ones marked ErrUnavailable).
type WriteTx interface {
	DB
	// Now is the transaction's time: UTC, whole milliseconds.
	Now() time.Time
	// Keep makes Write commit the transaction even if it appends no event
	// (a backend may roll such a write back as having written nothing).
	Keep()
	// Append appends e (its Time set) to the event log; Seq is filled in
	// by the time Write returns.
	Append(ctx context.Context, e Event) error
	// LockKey serialises claims of the match key key until the transaction
	// ends (nothing to do where writes run one at a time).
	LockKey(ctx context.Context, key string) error
	// StoreCutoffs merges cs into the stored cut-offs (the later times win,
	// deleted sticks) and prunes the expired ones.
	StoreCutoffs(ctx context.Context, cs []KeyCutoff) error
	// AddMembers inserts memberships of group gpk, failing with
	// ErrUnknownMember (naming the first such ID) if an ID is not a user.
	// The IDs are distinct, sorted and new to the group.
	AddMembers(ctx context.Context, gpk int64, ids []string) error
	// RemoveMembers deletes the memberships of the users upks in group gpk.
	RemoveMembers(ctx context.Context, gpk int64, upks []int64) error
}

// Dialect is how a backend's SQL differs in the statements both share.
type Dialect struct {
	// Key is the SQL of the match key of a column, exactly as the
	// backend's migration 0003 indexes it: the column with the ASCII letters
	// folded to lower case, as identity.MatchKey folds them, and no other.
	Key func(column string) string
	// NoLimit is LIMIT's "no limit": -1 (SQLite) or ALL.
	NoLimit string
	// ForUpdate follows a SELECT that locks its row for the write
	// transaction: "" where writes run one at a time, or " FOR UPDATE".
	ForUpdate string
	// Time is t as a statement parameter; the zero time is NULL.
	Time func(t time.Time) any
	// Times makes the holder of a row's time columns (at most 3).
	Times func() Times
	// Unique reports a unique violation.
	Unique func(err error) bool
	// Err wraps a database error with op, marking the ones worth a retry
	// ErrUnavailable; it keeps nil nil.
	Err func(ctx context.Context, op string, err error) error
	// OrgRef is how a lookup names the org column beside a condition with
	// an index of its own: "+org" on SQLite, whose planner (without ANALYZE
	// statistics) would otherwise walk the org index, every row of the
	// organization, instead of the lookup's index; "" means "org".
	OrgRef string
	// In is the SQL of "col is one of the rows of subquery" that the
	// database can still answer from indexes inside an OR; nil: col IN
	// (subquery), which SQLite does. (PostgreSQL cannot, and scans, but
	// can with = ANY(ARRAY(subquery)).)
	In func(col, subquery string) string
}

// in is Dialect.In or its default.
func (d Dialect) in(col, subquery string) string {
	if d.In != nil {
		return d.In(col, subquery)
	}
	return col + " IN (" + subquery + ")"
}

// keyColumns are the users columns a match key comes from, by match attribute.
var keyColumns = map[string]string{"userName": "user_name", "email": "email", "externalId": "external_id"}

// keyExpr is the SQL of a user's match key under the match attribute attr.
func (d Dialect) keyExpr(attr string) string { return d.Key(keyColumns[attr]) }

// Times holds the time columns of one row while it is scanned, in the
// backend's own type (unix milliseconds on SQLite, timestamptz on
// PostgreSQL), so that scanning stays on the driver's fast path: Dest(i)
// is the i-th time column's destination, At(i) its time afterwards (UTC;
// the zero time for NULL). A query makes one and reuses it for every row.
type Times interface {
	Dest(i int) any
	At(i int) time.Time
}

// errNoRows is the error of queryRow's Row when the query returned none.
var errNoRows = errors.New("no rows")

// queryRow runs query on db; its Row scans the first row and fails with
// errNoRows if there is none.
func queryRow(ctx context.Context, db DB, query string, args ...any) Row {
	rows, err := db.Query(ctx, query, args...)
	return &firstRow{rows: rows, err: err}
}

type firstRow struct {
	rows Rows
	err  error
}

func (r *firstRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		r.rows.Close()
		if err := r.rows.Err(); err != nil {
			return err
		}
		return errNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// err wraps a database error with op (nil stays nil).
func (s SQLStore) err(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	return s.d.Err(ctx, op, err)
}

// each runs query on db and calls fn for each row, stopping at fn's first
// error, which it returns as is; database errors come back wrapped with op.
func (s SQLStore) each(ctx context.Context, db DB, op string, fn func(Rows) error, query string, args ...any) error {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return s.err(ctx, op, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return s.err(ctx, op, rows.Err())
}

// orgRef is d.OrgRef or "org".
func (d Dialect) orgRef() string {
	if d.OrgRef == "" {
		return "org"
	}
	return d.OrgRef
}
