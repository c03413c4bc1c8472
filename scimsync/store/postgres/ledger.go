package postgres

import (
	"context"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Ledger is the login ledger in the store's database, shared by every
// replica: its own tables and types, each login written in one batch.
func (s *Store) Ledger() store.Ledger { return s.ledger }

// Deliveries is the webhook delivery and event feed side of the store,
// shared by every replica.
func (s *Store) Deliveries() store.Deliveries { return s.deliveries }

// EventStats implements store.EventSummary, in one round trip: a lateral
// join walks the events_kind_time index once per kind (passing over other
// organizations' events when org is set).
func (s *Store) EventStats(ctx context.Context, org string, since time.Time) (store.EventStats, error) {
	rows, err := s.pool.Query(ctx, `SELECT k.kind, e.seq, e.time, e.actor,
			(SELECT count(*) FROM events c WHERE c.kind = k.kind AND c.time >= $2 AND ($3 = '' OR c.org = $3))
		FROM unnest($1::text[]) WITH ORDINALITY AS k(kind, ord)
		JOIN LATERAL (SELECT seq, time, actor FROM events WHERE kind = k.kind AND ($3 = '' OR org = $3)
			ORDER BY time DESC, seq DESC LIMIT 1) e ON true
		ORDER BY k.ord`, store.EventKinds, since, org)
	if err != nil {
		return store.EventStats{}, dbErr(ctx, "event stats", err)
	}
	defer rows.Close()
	var st store.EventStats
	for rows.Next() {
		var e store.LastEvent
		var n int
		if err := rows.Scan(&e.Kind, &e.Seq, &e.Time, &e.Actor, &n); err != nil {
			return store.EventStats{}, dbErr(ctx, "event stats", err)
		}
		e.Time = e.Time.UTC()
		st.Last = append(st.Last, e)
		st.Since += n
	}
	if err := rows.Err(); err != nil {
		return store.EventStats{}, dbErr(ctx, "event stats", err)
	}
	return st, nil
}
