package scimsync

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

var _ Ledger = (*SQLiteStore)(nil)

// ledgerPruneBatch is how many expired sessions one RecordLogin deletes at
// most: each login adds one row and takes away up to this many dead ones,
// so the table stays near the number of live sessions without a janitor.
const ledgerPruneBatch = 100

// RecordLogin implements Ledger.
func (s *SQLiteStore) RecordLogin(ctx context.Context, l LedgerLogin) error {
	if l.Subject == "" || l.SessionID == "" {
		return fmt.Errorf("record login: subject and session ID are required")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return sqliteErr("record login", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO last_logins (subject, user_name, time) VALUES (?, ?, ?)
		ON CONFLICT (subject) DO UPDATE SET user_name = excluded.user_name, time = excluded.time
		WHERE excluded.time >= last_logins.time`, l.Subject, l.User, l.Issued.UnixMilli()); err != nil {
		return sqliteErr("record login", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO login_sessions (session_id, subject, user_name, issued, expires, idp_initiated)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING`,
		l.SessionID, l.Subject, l.User, l.Issued.UnixMilli(), l.Expires.UnixMilli(), l.IdPInitiated); err != nil {
		return sqliteErr("record login", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM login_sessions WHERE session_id IN
		(SELECT session_id FROM login_sessions WHERE expires <= ? LIMIT ?)`, s.now().UnixMilli(), ledgerPruneBatch); err != nil {
		return sqliteErr("prune logins", err)
	}
	if err := tx.Commit(); err != nil {
		return sqliteErr("record login", err)
	}
	return nil
}

// LoginsOf implements Ledger.
func (s *SQLiteStore) LoginsOf(ctx context.Context, subject string, validAfter, now time.Time) (Logins, error) {
	var out Logins
	var last int64
	err := s.r.QueryRowContext(ctx, `SELECT time FROM last_logins WHERE subject = ?`, subject).Scan(&last)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return Logins{}, sqliteErr("read logins", err)
	default:
		out.Last = time.UnixMilli(last).UTC()
	}
	err = sqliteEach(ctx, s.r, func(rows *sql.Rows) error {
		var l LedgerLogin
		var issued, expires int64
		if err := rows.Scan(&l.SessionID, &l.User, &issued, &expires, &l.IdPInitiated); err != nil {
			return err
		}
		out.LiveTotal++
		if len(out.Live) < LedgerMaxLive {
			l.Subject = subject
			l.Issued, l.Expires = time.UnixMilli(issued).UTC(), time.UnixMilli(expires).UTC()
			out.Live = append(out.Live, l)
		}
		return nil
	}, `SELECT session_id, user_name, issued, expires, idp_initiated FROM login_sessions
		WHERE subject = ? AND expires > ? AND issued >= ? ORDER BY issued DESC, session_id`,
		subject, now.UnixMilli(), validAfter.UnixMilli())
	if err != nil {
		return Logins{}, sqliteErr("read logins", err)
	}
	return out, nil
}

// EventStats implements Ledger. Each kind is one walk of the
// events_kind_time index.
func (s *SQLiteStore) EventStats(ctx context.Context, since time.Time) (EventStats, error) {
	var st EventStats
	for _, kind := range EventKinds {
		e := LastEvent{Kind: kind}
		var t int64
		err := s.r.QueryRowContext(ctx, `SELECT seq, time, actor FROM events WHERE kind = ?
			ORDER BY time DESC, seq DESC LIMIT 1`, kind).Scan(&e.Seq, &t, &e.Actor)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return EventStats{}, sqliteErr("event stats", err)
		}
		e.Time = time.UnixMilli(t).UTC()
		st.Last = append(st.Last, e)
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE kind = ? AND time >= ?`,
			kind, since.UnixMilli()).Scan(&n); err != nil {
			return EventStats{}, sqliteErr("event stats", err)
		}
		st.Since += n
	}
	return st, nil
}
