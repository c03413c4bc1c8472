package store

import (
	"context"
	"errors"
)

// EventSessionCreated is a sign-in. It shares the event log (and so the
// feed's ids and order) with the directory's events and session.revoked
// (sessions.go), but changes no directory state: the directory view
// ignores it.
const EventSessionCreated = "session.created"

// SessionKinds lists the session event kinds.
var SessionKinds = []string{EventSessionCreated, EventSessionRevoked}

// AppendSessionCreated appends a session.created event for s (ID and
// Expires required; Time, Seq and ResourceType are set here) to the event
// log in a transaction of its own and returns it as stored. It never holds
// the cookie or anything that would let a reader use the session.
func (s SQLStore) AppendSessionCreated(ctx context.Context, sess RevokedSession) (Event, error) {
	if sess.ID == "" || sess.Expires.IsZero() {
		return Event{}, errors.New("append session.created: a session ID and expiry are required")
	}
	sess.Org = OrgOrDefault(sess.Org)
	sess.Issued, sess.Expires = StoredTime(sess.Issued), StoredTime(sess.Expires)
	e := Event{Kind: EventSessionCreated, ResourceType: "Session", ResourceID: sess.ID, Session: &sess}
	scoped := s
	scoped.org = sess.Org
	evs, err := s.write(ctx, "append session.created event", func(tx WriteTx) error {
		return scoped.appendEvents(ctx, tx, e)
	})
	if err != nil {
		return Event{}, err
	}
	if len(evs) != 1 {
		return Event{}, errors.New("append session.created: the store returned no event")
	}
	return evs[0], nil
}

// Reasons a session ends with its user (SCIM), not by a revocation of its
// own: the gate refuses it by the user's state.
const (
	ReasonDeactivated = "deactivated"
	ReasonDeleted     = "deleted"
)

// EndedWithUser reports whether reason ends a session with its user.
func EndedWithUser(reason string) bool { return reason == ReasonDeactivated || reason == ReasonDeleted }

// AppendSessionsEnded appends a session.revoked event with reason (one of
// ReasonDeactivated, ReasonDeleted) for each live session the login ledger
// holds for matchKey, in one transaction, and returns them. The ledger rows
// are left as they are: the user's state refuses them (EndedWithUser).
func (s SQLStore) AppendSessionsEnded(ctx context.Context, org, matchKey, reason, actor string) ([]Event, error) {
	if matchKey == "" || !EndedWithUser(reason) {
		return nil, errors.New("append ended sessions: a match key and reason deactivated or deleted are required")
	}
	org = OrgOrDefault(org)
	scoped := s
	scoped.org = org
	return s.write(ctx, "append ended sessions", func(tx WriteTx) error {
		live, err := s.liveSessions(ctx, tx, SessionQuery{MatchKey: matchKey}, org, tx.Now())
		if err != nil {
			return err
		}
		for _, rs := range live {
			rs.Reason, rs.MatchKey, rs.User = reason, "", ""
			ev := Event{Kind: EventSessionRevoked, ResourceType: "Session", ResourceID: rs.ID, Actor: actor, Session: &rs}
			if err := scoped.appendEvents(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}
