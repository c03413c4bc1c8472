package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Ledger is the login ledger in the store's file: its own tables and
// types, written one transaction at a time on the write connection.
func (s *Store) Ledger() store.Ledger { return s.ledger }

// Deliveries is the webhook delivery and event feed side of the store.
func (s *Store) Deliveries() store.Deliveries { return s.deliveries }

// EventStats' queries, per kind: the newest event and the count since.
// Every organization's walk the events_kind_time index, one
// organization's the events_org_kind_time index (0010).
const (
	lastOfKind     = `SELECT seq, time, actor FROM events WHERE kind = $1 ORDER BY time DESC, seq DESC LIMIT 1`
	lastOfKindOrg  = `SELECT seq, time, actor FROM events WHERE kind = $1 AND org = $2 ORDER BY time DESC, seq DESC LIMIT 1`
	countOfKind    = `SELECT count(*) FROM events WHERE kind = $1 AND time >= $2`
	countOfKindOrg = `SELECT count(*) FROM events WHERE kind = $1 AND time >= $2 AND org = $3`
)

// EventStats implements store.EventSummary: per kind, one walk of an
// index to the newest event and one over the events since.
func (s *Store) EventStats(ctx context.Context, org string, since time.Time) (store.EventStats, error) {
	lastQ, countQ, byOrg := lastOfKind, countOfKind, []any{}
	if org != "" {
		lastQ, countQ, byOrg = lastOfKindOrg, countOfKindOrg, []any{org}
	}
	var st store.EventStats
	for _, kind := range store.EventKinds {
		e := store.LastEvent{Kind: kind}
		var t int64
		err := s.r.QueryRowContext(ctx, lastQ, append([]any{kind}, byOrg...)...).Scan(&e.Seq, &t, &e.Actor)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return store.EventStats{}, dbErr("event stats", err)
		}
		e.Time = time.UnixMilli(t).UTC()
		st.Last = append(st.Last, e)
		var n int
		if err := s.r.QueryRowContext(ctx, countQ, append([]any{kind, since.UnixMilli()}, byOrg...)...).Scan(&n); err != nil {
			return store.EventStats{}, dbErr("event stats", err)
		}
		st.Since += n
	}
	return st, nil
}
