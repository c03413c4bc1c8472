package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

var _ store.Ledger = (*Store)(nil)

// RecordLogin implements store.Ledger.
func (s *Store) RecordLogin(ctx context.Context, l store.LedgerLogin) error {
	if l.Subject == "" || l.SessionID == "" {
		return fmt.Errorf("record login: subject and session ID are required")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbErr("record login", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO last_logins (subject, user_name, time) VALUES (?, ?, ?)
		ON CONFLICT (subject) DO UPDATE SET user_name = excluded.user_name, time = excluded.time
		WHERE excluded.time >= last_logins.time`, l.Subject, l.User, l.Issued.UnixMilli()); err != nil {
		return dbErr("record login", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO login_sessions (session_id, subject, user_name, issued, expires, idp_initiated)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING`,
		l.SessionID, l.Subject, l.User, l.Issued.UnixMilli(), l.Expires.UnixMilli(), l.IdPInitiated); err != nil {
		return dbErr("record login", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM login_sessions WHERE session_id IN
		(SELECT session_id FROM login_sessions WHERE expires <= ? LIMIT ?)`, s.now().UnixMilli(), store.LedgerPruneBatch); err != nil {
		return dbErr("prune logins", err)
	}
	if err := tx.Commit(); err != nil {
		return dbErr("record login", err)
	}
	return nil
}

// LoginsOf implements store.Ledger.
func (s *Store) LoginsOf(ctx context.Context, subject string, validAfter, now time.Time) (store.Logins, error) {
	var out store.Logins
	var last int64
	err := s.r.QueryRowContext(ctx, `SELECT time FROM last_logins WHERE subject = ?`, subject).Scan(&last)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return store.Logins{}, dbErr("read logins", err)
	default:
		out.Last = time.UnixMilli(last).UTC()
	}
	err = each(ctx, s.r, func(rows *sql.Rows) error {
		var l store.LedgerLogin
		var issued, expires int64
		if err := rows.Scan(&l.SessionID, &l.User, &issued, &expires, &l.IdPInitiated); err != nil {
			return err
		}
		out.LiveTotal++
		if len(out.Live) < store.LedgerMaxLive {
			l.Subject = subject
			l.Issued, l.Expires = time.UnixMilli(issued).UTC(), time.UnixMilli(expires).UTC()
			out.Live = append(out.Live, l)
		}
		return nil
	}, `SELECT session_id, user_name, issued, expires, idp_initiated FROM login_sessions
		WHERE subject = ? AND expires > ? AND issued >= ? ORDER BY issued DESC, session_id`,
		subject, now.UnixMilli(), validAfter.UnixMilli())
	if err != nil {
		return store.Logins{}, dbErr("read logins", err)
	}
	return out, nil
}

// EventStats implements store.Ledger. Each kind is one walk of the
// events_kind_time index.
func (s *Store) EventStats(ctx context.Context, since time.Time) (store.EventStats, error) {
	var st store.EventStats
	for _, kind := range store.EventKinds {
		e := store.LastEvent{Kind: kind}
		var t int64
		err := s.r.QueryRowContext(ctx, `SELECT seq, time, actor FROM events WHERE kind = ?
			ORDER BY time DESC, seq DESC LIMIT 1`, kind).Scan(&e.Seq, &t, &e.Actor)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return store.EventStats{}, dbErr("event stats", err)
		}
		e.Time = time.UnixMilli(t).UTC()
		st.Last = append(st.Last, e)
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE kind = ? AND time >= ?`,
			kind, since.UnixMilli()).Scan(&n); err != nil {
			return store.EventStats{}, dbErr("event stats", err)
		}
		st.Since += n
	}
	return st, nil
}
