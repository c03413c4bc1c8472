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

// EventStats implements store.EventSummary. Each kind is one walk of the
// events_kind_time index (passing over other organizations' events when
// org is set).
func (s *Store) EventStats(ctx context.Context, org string, since time.Time) (store.EventStats, error) {
	var st store.EventStats
	for _, kind := range store.EventKinds {
		e := store.LastEvent{Kind: kind}
		var t int64
		err := s.r.QueryRowContext(ctx, `SELECT seq, time, actor FROM events WHERE kind = $1 AND ($2 = '' OR org = $2)
			ORDER BY time DESC, seq DESC LIMIT 1`, kind, org).Scan(&e.Seq, &t, &e.Actor)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return store.EventStats{}, dbErr("event stats", err)
		}
		e.Time = time.UnixMilli(t).UTC()
		st.Last = append(st.Last, e)
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE kind = $1 AND time >= $2 AND ($3 = '' OR org = $3)`,
			kind, since.UnixMilli(), org).Scan(&n); err != nil {
			return store.EventStats{}, dbErr("event stats", err)
		}
		st.Since += n
	}
	return st, nil
}
