package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Ledger is the login ledger in the store's database, shared by every
// replica: its own tables and types, each login written in one batch.
func (s *Store) Ledger() store.Ledger { return s.ledger }

// Deliveries is the webhook delivery and event feed side of the store,
// shared by every replica.
func (s *Store) Deliveries() store.Deliveries { return s.deliveries }

// eventStatsSQL is EventStats' query: a lateral join walks an index once
// per kind. %[1]s is "" for every organization's events (the
// events_kind_time index) or orgClause for one organization's (the
// events_org_kind_time index, migration 0010).
const eventStatsSQL = `SELECT k.kind, e.seq, e.time, e.actor,
		(SELECT count(*) FROM events c WHERE c.kind = k.kind AND c.time >= $2%[1]s)
	FROM unnest($1::text[]) WITH ORDINALITY AS k(kind, ord)
	JOIN LATERAL (SELECT seq, time, actor FROM events WHERE kind = k.kind%[1]s
		ORDER BY time DESC, seq DESC LIMIT 1) e ON true
	ORDER BY k.ord`

// orgClause narrows eventStatsSQL to organization $3.
const orgClause = ` AND org = $3`

var (
	eventStatsAll = fmt.Sprintf(eventStatsSQL, "")
	eventStatsOrg = fmt.Sprintf(eventStatsSQL, orgClause)
)

// EventStats implements store.EventSummary, in one round trip.
func (s *Store) EventStats(ctx context.Context, org string, since time.Time) (store.EventStats, error) {
	q, args := eventStatsAll, []any{store.EventKinds, since}
	if org != "" {
		q, args = eventStatsOrg, append(args, org)
	}
	rows, err := s.pool.Query(ctx, q, args...)
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
