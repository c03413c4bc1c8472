package store

import (
	"context"
	"errors"
)

// Session expiry: a session that nobody ended ends when it expires. Its
// ledger row is deleted then, by one DELETE … RETURNING, so that of all
// the replicas sweeping the same database exactly one sees each expired
// session, and only that one reports it (reason ReasonExpired), with a
// session.revoked event in the same transaction for the event feed. (No
// replica needs the event to refuse the session: its cookie has expired.)

// ReasonExpired is the reason of a session that ended by expiring.
const ReasonExpired = "expired"

// ExpireBatch is how many expired sessions one EndExpired call takes at
// most.
const ExpireBatch = 500

// SessionExpirer ends expired sessions. Both backends' stores implement it.
type SessionExpirer interface {
	// EndExpired deletes up to limit ledger sessions, of every
	// organization, that expired at or before the store's clock, and
	// returns those of them that had not been revoked (a revoked session
	// ended then, with its own reason), each with a session.revoked event
	// (reason ReasonExpired, actor actor) appended in the same
	// transaction. Each deleted session is returned by one call only,
	// whichever replica makes it.
	EndExpired(ctx context.Context, limit int, actor string) ([]RevokedSession, error)
}

var _ SessionExpirer = SQLStore{}

// EndExpired implements SessionExpirer.
func (s SQLStore) EndExpired(ctx context.Context, limit int, actor string) ([]RevokedSession, error) {
	if limit <= 0 {
		return nil, errors.New("end expired sessions: a positive limit is required")
	}
	var out []RevokedSession
	_, err := s.b.Write(ctx, "end expired sessions", func(tx WriteTx) error {
		tx.Keep() // it deletes without appending events
		out = out[:0]
		ts := s.d.Times()
		err := s.each(ctx, tx, "end expired sessions", func(rows Rows) error {
			var rs RevokedSession
			var live bool
			if err := rows.Scan(&rs.ID, &rs.Org, &rs.MatchKey, &rs.User, ts.Dest(0), ts.Dest(1), &live); err != nil {
				return s.err(ctx, "end expired sessions", err)
			}
			if live {
				rs.Issued, rs.Expires, rs.Reason = ts.At(0), ts.At(1), ReasonExpired
				out = append(out, rs)
			}
			return nil
		}, `DELETE FROM login_sessions WHERE session_id IN
				(SELECT session_id FROM login_sessions WHERE expires <= $1 ORDER BY expires LIMIT $2)
			RETURNING session_id, org, subject, user_name, issued, expires, revoked IS NULL`,
			s.d.Time(tx.Now()), limit)
		if err != nil {
			return err
		}
		for _, rs := range out {
			// As RevokeSessions: no personal data in the log.
			stored := rs
			stored.MatchKey, stored.User = "", ""
			scoped := s
			scoped.org = rs.Org
			if err := scoped.appendEvents(ctx, tx, Event{Kind: EventSessionRevoked, ResourceType: "Session",
				ResourceID: rs.ID, Actor: actor, Session: &stored}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
