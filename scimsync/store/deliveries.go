package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Webhook delivery bookkeeping and the event feed's reads: each endpoint's
// place in the event log, the lease that lets one replica deliver, and
// retention. It is not SCIM: it shares the event log, read only, and the
// database. Organizations: every row carries org; until they exist it is
// DefaultOrg.

// Endpoint is one webhook endpoint's delivery state.
type Endpoint struct {
	Org        string
	URL        string
	ConfigHash string // of the endpoint's config entry; a change re-enables it
	// Cursor is the last seq the endpoint is done with: delivered, not of
	// its types, or given up on.
	Cursor int64
	// Attempts failed on the event after Cursor, the first at FirstFailure;
	// the next is not before NextAttempt.
	Attempts     int
	FirstFailure time.Time
	NextAttempt  time.Time
	// Disabled is when a 410 Gone disabled the endpoint (zero: enabled).
	Disabled       time.Time
	DisabledStatus int
	LastSuccess    time.Time
	LastFailure    time.Time
	LastStatus     int    // HTTP status of the last failure, 0 for a network error
	LastError      string // operator-facing, without secrets
	Delivered      int64  // events delivered, ever
	Failed         int64  // events given up on, ever
}

// ErrGone is returned by FeedEvents when after is older than the oldest
// event kept: those events were pruned.
var ErrGone = errors.New("events pruned")

// Deliveries is the delivery and feed side of the store.
type Deliveries interface {
	// LastSeq is the seq of the newest event, 0 if there is none.
	LastSeq(ctx context.Context) (int64, error)
	// FeedEvents returns up to limit events with after < Seq <= upto (upto
	// 0: no bound) whose kind is in kinds (nil: every kind), in order.
	// ErrGone if events after after were pruned; a negative after starts
	// at the oldest event kept.
	FeedEvents(ctx context.Context, after, upto int64, kinds []string, limit int) ([]Event, error)
	// Backlog counts the events after after of kinds (nil: all) and returns
	// the time of the oldest of them (zero if none).
	Backlog(ctx context.Context, after int64, kinds []string) (int, time.Time, error)
	// OpenEndpoint returns url's state, creating it with Cursor start. If
	// its stored config hash differs from hash, it is re-enabled with its
	// retry state cleared and the new hash stored.
	OpenEndpoint(ctx context.Context, url, hash string, start int64) (Endpoint, error)
	// Endpoints returns every endpoint's state, by URL.
	Endpoints(ctx context.Context) ([]Endpoint, error)
	// SaveEndpoint stores e's state if holder holds the lease name;
	// otherwise it writes nothing. Cursor never moves back.
	SaveEndpoint(ctx context.Context, e Endpoint, lease, holder string) error
	// Lease takes or renews the lease name for holder until now+ttl, if it
	// is free, expired or holder's already, and reports whether holder holds it.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
	// AppendSessionCreated appends a session.created event (see SQLStore's).
	AppendSessionCreated(ctx context.Context, s RevokedSession) (Event, error)
	// AppendSessionsEnded appends session.revoked for the live sessions of
	// a deactivated or deleted user (see SQLStore's).
	AppendSessionsEnded(ctx context.Context, org, matchKey, reason, actor string) ([]Event, error)
	// EventTimes returns when the events since since were written.
	EventTimes(ctx context.Context, since time.Time) ([]EventTime, error)
	// OnEvents registers fn, called (and must return at once) after every
	// committed write that appended events, and on PostgreSQL when another
	// replica's write is heard.
	OnEvents(fn func())
	// Prune deletes up to PruneBatch events older than before with Seq <=
	// upto, and the login ledger's rows of the users deleted by them, and
	// returns how many events went.
	Prune(ctx context.Context, before time.Time, upto int64) (int, error)
}

// PruneBatch bounds the events one Prune deletes.
const PruneBatch = 10000

// SQLDeliveries implements Deliveries for every backend: the reads and the
// event appends are SQLStore's, the other writes run as the backend runs
// several statements at once.
type SQLDeliveries struct {
	s   SQLStore
	run func(ctx context.Context, op string, stmts []Statement) error
}

var _ Deliveries = (*SQLDeliveries)(nil)

// NewSQLDeliveries is the delivery side of s; run executes statements atomically.
func NewSQLDeliveries(s SQLStore, run func(ctx context.Context, op string, stmts []Statement) error) *SQLDeliveries {
	return &SQLDeliveries{s: s, run: run}
}

// LastSeq implements Deliveries.
func (d *SQLDeliveries) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := queryRow(ctx, d.s.b.Pool(), `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq)
	return seq, d.s.err(ctx, "read last event", err)
}

// AppendSessionsEnded implements Deliveries.
func (d *SQLDeliveries) AppendSessionsEnded(ctx context.Context, org, matchKey, reason, actor string) ([]Event, error) {
	return d.s.AppendSessionsEnded(ctx, org, matchKey, reason, actor)
}

// OnEvents implements Deliveries.
func (d *SQLDeliveries) OnEvents(fn func()) { d.s.OnEvents(fn) }

// AppendSessionCreated implements Deliveries.
func (d *SQLDeliveries) AppendSessionCreated(ctx context.Context, s RevokedSession) (Event, error) {
	return d.s.AppendSessionCreated(ctx, s)
}

// kindFilter is the SQL condition and arguments selecting kinds, numbered
// from $n; "" for every kind. Kinds are our own names, but go as parameters.
func kindFilter(kinds []string, n int) (string, []any) {
	if kinds == nil {
		return "", nil
	}
	if len(kinds) == 0 {
		return " AND 1 = 0", nil
	}
	ps := make([]string, len(kinds))
	args := make([]any, len(kinds))
	for i, k := range kinds {
		ps[i], args[i] = fmt.Sprintf("$%d", n+i), k
	}
	return " AND kind IN (" + strings.Join(ps, ", ") + ")", args
}

// FeedEvents implements Deliveries.
func (d *SQLDeliveries) FeedEvents(ctx context.Context, after, upto int64, kinds []string, limit int) ([]Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("feed events: limit %d must be positive", limit)
	}
	var evs []Event
	err := d.s.b.Read(ctx, "read feed", func(tx DB) error {
		var pruned int64
		err := queryRow(ctx, tx, `SELECT pruned_through FROM event_retention WHERE org = $1`, DefaultOrg).Scan(&pruned)
		if err != nil && !errors.Is(err, errNoRows) {
			return d.s.err(ctx, "read feed", err)
		}
		if after >= 0 && after < pruned {
			return ErrGone
		}
		if upto <= 0 {
			upto = 1<<63 - 1
		}
		cond, args := kindFilter(kinds, 4)
		evs, err = d.s.readEvents(ctx, tx, `WHERE seq > $1 AND seq <= $2`+cond+` ORDER BY seq LIMIT $3`,
			append([]any{after, upto, limit}, args...)...)
		return err
	})
	return evs, err
}

// Backlog implements Deliveries.
func (d *SQLDeliveries) Backlog(ctx context.Context, after int64, kinds []string) (int, time.Time, error) {
	cond, args := kindFilter(kinds, 2)
	var n int
	ts := d.s.d.Times()
	err := queryRow(ctx, d.s.b.Pool(), `SELECT COUNT(*), MIN(time) FROM events WHERE seq > $1`+cond,
		append([]any{after}, args...)...).Scan(&n, ts.Dest(0))
	if err != nil {
		return 0, time.Time{}, d.s.err(ctx, "read backlog", err)
	}
	return n, ts.At(0), nil
}

// EventTime is when one event was written.
type EventTime struct {
	Seq  int64
	Time time.Time
}

// MaxEventTimes bounds EventTimes.
const MaxEventTimes = 200_000

// EventTimes returns the seq and time of up to MaxEventTimes events
// written at or after since, in order (the status page's chart).
func (d *SQLDeliveries) EventTimes(ctx context.Context, since time.Time) ([]EventTime, error) {
	var out []EventTime
	ts := d.s.d.Times()
	err := d.s.each(ctx, d.s.b.Pool(), "read event times", func(rows Rows) error {
		var e EventTime
		if err := rows.Scan(&e.Seq, ts.Dest(0)); err != nil {
			return d.s.err(ctx, "read event times", err)
		}
		e.Time = ts.At(0)
		out = append(out, e)
		return nil
	}, `SELECT seq, time FROM events WHERE time >= $1 ORDER BY seq LIMIT $2`, d.s.d.Time(since), MaxEventTimes)
	return out, err
}
