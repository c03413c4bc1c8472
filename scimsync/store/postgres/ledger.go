package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

var _ store.Ledger = (*Store)(nil)

// RecordLogin implements Ledger. The ledger is shared by every replica.
func (s *Store) RecordLogin(ctx context.Context, l store.LedgerLogin) error {
	if l.Subject == "" || l.SessionID == "" {
		return fmt.Errorf("record login: subject and session ID are required")
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO last_logins AS ll (subject, user_name, time) VALUES ($1, $2, $3)
		ON CONFLICT (subject) DO UPDATE SET user_name = excluded.user_name, time = excluded.time
		WHERE excluded.time >= ll.time`, l.Subject, l.User, l.Issued)
	b.Queue(`INSERT INTO login_sessions (session_id, subject, user_name, issued, expires, idp_initiated)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id) DO NOTHING`,
		l.SessionID, l.Subject, l.User, l.Issued, l.Expires, l.IdPInitiated)
	b.Queue(`DELETE FROM login_sessions WHERE session_id IN
		(SELECT session_id FROM login_sessions WHERE expires <= $1 LIMIT $2)`, s.now(), store.LedgerPruneBatch)
	// A batch outside a transaction runs as one implicit transaction.
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return dbErr(ctx, "record login", err)
	}
	return nil
}

// LoginsOf implements Ledger.
func (s *Store) LoginsOf(ctx context.Context, subject string, validAfter, now time.Time) (store.Logins, error) {
	var out store.Logins
	err := s.pool.QueryRow(ctx, `SELECT time FROM last_logins WHERE subject = $1`, subject).Scan(&out.Last)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return store.Logins{}, dbErr(ctx, "read logins", err)
	}
	out.Last = utcOrZero(out.Last)
	rows, err := s.pool.Query(ctx, `SELECT session_id, user_name, issued, expires, idp_initiated FROM login_sessions
		WHERE subject = $1 AND expires > $2 AND issued >= $3 ORDER BY issued DESC, session_id`,
		subject, now, validAfter)
	if err != nil {
		return store.Logins{}, dbErr(ctx, "read logins", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l store.LedgerLogin
		if err := rows.Scan(&l.SessionID, &l.User, &l.Issued, &l.Expires, &l.IdPInitiated); err != nil {
			return store.Logins{}, dbErr(ctx, "read logins", err)
		}
		out.LiveTotal++
		if len(out.Live) < store.LedgerMaxLive {
			l.Subject = subject
			l.Issued, l.Expires = l.Issued.UTC(), l.Expires.UTC()
			out.Live = append(out.Live, l)
		}
	}
	if err := rows.Err(); err != nil {
		return store.Logins{}, dbErr(ctx, "read logins", err)
	}
	return out, nil
}

// EventStats implements Ledger, in one round trip: a lateral join walks
// the events_kind_time index once per kind.
func (s *Store) EventStats(ctx context.Context, since time.Time) (store.EventStats, error) {
	rows, err := s.pool.Query(ctx, `SELECT k.kind, e.seq, e.time, e.actor,
			(SELECT count(*) FROM events c WHERE c.kind = k.kind AND c.time >= $2)
		FROM unnest($1::text[]) WITH ORDINALITY AS k(kind, ord)
		JOIN LATERAL (SELECT seq, time, actor FROM events WHERE kind = k.kind
			ORDER BY time DESC, seq DESC LIMIT 1) e ON true
		ORDER BY k.ord`, store.EventKinds, since)
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

// utcOrZero is t in UTC, keeping the zero time zero.
func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
