package store

import (
	"context"
	"errors"
	"strings"
)

// EventSessionCreated is a sign-in. It shares the event log (and so the
// feed's ids and order) with the directory's events and session.revoked
// (sessions.go), but changes no directory state: the directory view
// ignores it.
const EventSessionCreated = "session.created"

// SessionKinds lists the session event kinds.
var SessionKinds = []string{EventSessionCreated, EventSessionRevoked}

// IsSessionKind reports whether kind is a session event's.
func IsSessionKind(kind string) bool { return strings.HasPrefix(kind, "session.") }

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
	evs, err := s.b.Write(ctx, "append session.created event", func(tx WriteTx) error {
		return appendEvents(ctx, tx, e)
	})
	if err != nil {
		return Event{}, err
	}
	if len(evs) != 1 {
		return Event{}, errors.New("append session.created: the store returned no event")
	}
	return evs[0], nil
}
