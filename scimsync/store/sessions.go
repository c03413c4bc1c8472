package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// Session revocation: a session in the login ledger is ended by marking
// its row revoked and appending a session.revoked event in the same
// transaction, so that every replica's directory view (which follows the
// event log) refuses it on its next request, by the path deactivation
// takes. Revoked rows stay until the session would have expired, so that a
// replica starting up loads them with the snapshot.

// DefaultOrg is the organization of rows written before organizations
// exist, and of a row whose Org is "".
const DefaultOrg = "default"

// OrgOrDefault is org, or DefaultOrg for "" (identity.OrgOrDefault).
func OrgOrDefault(org string) string { return identity.OrgOrDefault(org) }

// RevokedSession is one session a revocation ended.
type RevokedSession struct {
	Org      string // "" or "default": the default organization
	ID       string
	MatchKey string // the ledger's subject; "" when the ledger did not know the session
	User     string
	Reason   string
	Issued   time.Time
	Expires  time.Time
	// UserID (the directory user's SCIM id) and Email are what a
	// session.created tells the app; a revocation leaves them empty.
	UserID string
	Email  string
}

// SessionQuery selects the sessions to end. The parts add up: every
// session any of them names ends.
type SessionQuery struct {
	Org string
	// Known are sessions the caller holds (a session cookie): they end
	// even if the ledger never recorded them. ID and Expires are required;
	// a zero Issued is taken as the time of the revocation.
	Known []RevokedSession
	// IdP and NameID select the ledger's live sessions of that principal at
	// that IdP, narrowed to SessionIndexes when there are any.
	IdP, NameID    string
	SessionIndexes []string
	// MatchKey selects every live session of the user with that match key.
	MatchKey string
	// All selects every live session of the organization (it is no
	// longer served: ReasonOrganizationRemoved).
	All bool
}

// ReasonOrganizationRemoved ends the sessions of an organization that is
// no longer served.
const ReasonOrganizationRemoved = "organization_removed"

// MaxSessionIndexes bounds SessionQuery.SessionIndexes.
const MaxSessionIndexes = 32

// SessionRevoker ends sessions. Both backends' stores implement it.
type SessionRevoker interface {
	// RevokeSessions ends the live sessions q selects with reason, in one
	// transaction, and returns one session.revoked event for each (none
	// for a session already ended).
	RevokeSessions(ctx context.Context, q SessionQuery, reason, actor string) ([]Event, error)
}

// RevokeSessions implements SessionRevoker.
func (s SQLStore) RevokeSessions(ctx context.Context, q SessionQuery, reason, actor string) ([]Event, error) {
	if len(q.SessionIndexes) > MaxSessionIndexes {
		return nil, errors.New("revoke sessions: too many session indexes")
	}
	if reason == "" {
		return nil, errors.New("revoke sessions: a reason is required")
	}
	org := OrgOrDefault(q.Org)
	// The event log keeps no personal data of an ended session (as
	// AppendSessionsEnded); the caller gets the user back for its audit.
	who := map[string]RevokedSession{}
	evs, err := s.write(ctx, "revoke sessions", func(tx WriteTx) error {
		now := tx.Now()
		found, err := s.liveSessions(ctx, tx, q, org, now)
		if err != nil {
			return err
		}
		for _, k := range q.Known {
			if k.ID != "" && k.Expires.After(now) {
				k.Org = org
				found = append(found, k)
			}
		}
		seen := make(map[string]bool, len(found))
		for _, rs := range found {
			if seen[rs.ID] {
				continue
			}
			seen[rs.ID] = true
			ended, err := s.markRevoked(ctx, tx, rs, reason, now)
			if err != nil {
				return err
			}
			if !ended {
				continue
			}
			rs.Reason = reason
			who[rs.ID] = rs
			stored := rs
			stored.MatchKey, stored.User, stored.Email = "", "", ""
			ev := Event{Kind: EventSessionRevoked, ResourceType: "Session", ResourceID: rs.ID, Actor: actor, Session: &stored}
			scoped := s
			scoped.org = org
			if err := scoped.appendEvents(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	for i := range evs {
		if rs, ok := who[evs[i].ResourceID]; ok && evs[i].Session != nil {
			evs[i].Session = &rs
		}
	}
	return evs, err
}

// liveSessions reads the ledger's live, unrevoked sessions that q's IdP
// and NameID or its match key select.
func (s SQLStore) liveSessions(ctx context.Context, tx DB, q SessionQuery, org string, now time.Time) ([]RevokedSession, error) {
	var out []RevokedSession
	scan := func(where string, args ...any) error {
		ts := s.d.Times()
		args = append([]any{org, s.d.Time(now)}, args...)
		return s.each(ctx, tx, "revoke sessions", func(rows Rows) error {
			rs := RevokedSession{Org: org}
			if err := rows.Scan(&rs.ID, &rs.MatchKey, &rs.User, ts.Dest(0), ts.Dest(1)); err != nil {
				return s.err(ctx, "revoke sessions", err)
			}
			rs.Issued, rs.Expires = ts.At(0), ts.At(1)
			out = append(out, rs)
			return nil
		}, `SELECT session_id, subject, user_name, issued, expires FROM login_sessions
			WHERE org = $1 AND expires > $2 AND revoked IS NULL AND `+where+` ORDER BY session_id`, args...)
	}
	if q.NameID != "" {
		where, args := `idp = $3 AND name_id = $4`, []any{q.IdP, q.NameID}
		if len(q.SessionIndexes) > 0 {
			ph := make([]string, len(q.SessionIndexes))
			for i, si := range q.SessionIndexes {
				ph[i] = "$" + strconv.Itoa(5+i)
				args = append(args, si)
			}
			where += ` AND session_index IN (` + strings.Join(ph, ", ") + `)`
		}
		if err := scan(where, args...); err != nil {
			return nil, err
		}
	}
	if q.MatchKey != "" {
		if err := scan(`subject = $3`, q.MatchKey); err != nil {
			return nil, err
		}
	}
	if q.All {
		if err := scan(`1 = 1`); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// markRevoked marks rs revoked, inserting its row if the ledger lacks it;
// it reports false if the session was already revoked.
func (s SQLStore) markRevoked(ctx context.Context, tx DB, rs RevokedSession, reason string, now time.Time) (bool, error) {
	var id string
	issued := rs.Issued
	if issued.IsZero() {
		issued = now // the column is NOT NULL; a revoked row's issue time decides nothing
	}
	err := queryRow(ctx, tx, `INSERT INTO login_sessions AS ls
			(session_id, subject, user_name, issued, expires, idp_initiated, org, revoked, revoke_reason)
		VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8)
		ON CONFLICT (session_id) DO UPDATE SET revoked = excluded.revoked, revoke_reason = excluded.revoke_reason
			WHERE ls.revoked IS NULL
		RETURNING session_id`,
		rs.ID, rs.MatchKey, rs.User, s.d.Time(issued), s.d.Time(rs.Expires), OrgOrDefault(rs.Org),
		s.d.Time(now), reason).Scan(&id)
	if errors.Is(err, errNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.err(ctx, "revoke sessions", err)
	}
	return true, nil
}

// revokedSessions reads the revoked sessions that have not expired, for
// the snapshot.
func (s SQLStore) revokedSessions(ctx context.Context, tx DB) ([]RevokedSession, error) {
	var out []RevokedSession
	ts := s.d.Times()
	err := s.each(ctx, tx, "snapshot revoked sessions", func(rows Rows) error {
		var rs RevokedSession
		if err := rows.Scan(&rs.ID, &rs.Org, &rs.Reason, ts.Dest(0)); err != nil {
			return s.err(ctx, "snapshot revoked sessions", err)
		}
		rs.Expires = ts.At(0)
		out = append(out, rs)
		return nil
	}, `SELECT session_id, org, revoke_reason, expires FROM login_sessions WHERE revoked IS NOT NULL AND expires > $1 AND org = $2`,
		s.d.Time(s.now()), s.org)
	return out, err
}
