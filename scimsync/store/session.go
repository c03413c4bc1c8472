package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// Session event kinds. They share the event log (and so the feed's ids and
// order) with the directory's events, but change no directory state: the
// directory view ignores them.
const (
	EventSessionCreated = "session.created"
	EventSessionRevoked = "session.revoked"
)

// SessionKinds lists the session event kinds.
var SessionKinds = []string{EventSessionCreated, EventSessionRevoked}

// Reasons a session ends (session.revoked's Reason).
const (
	ReasonLogout              = "logout"
	ReasonIdPLogout           = "idp_logout"
	ReasonAdmin               = "admin"
	ReasonDeactivated         = "deactivated"
	ReasonDeleted             = "deleted"
	ReasonReactivated         = "reactivated"
	ReasonOrganizationRemoved = "organization_removed"
	ReasonExpired             = "expired"
)

// SessionReasons lists every session.revoked reason.
var SessionReasons = []string{ReasonLogout, ReasonIdPLogout, ReasonAdmin, ReasonDeactivated, ReasonDeleted,
	ReasonReactivated, ReasonOrganizationRemoved, ReasonExpired}

// Session is the payload of a session event. It never holds the cookie or
// anything that would let the reader use the session.
type Session struct {
	// ID is the session's ID (the login ledger's); "" on a session.revoked
	// that ends every session of the user at once.
	ID       string
	UserID   string // the directory user's SCIM id, "" if not known
	UserName string // the principal's user, or the directory userName
	Email    string
	Reason   string // session.revoked: one of SessionReasons
	Issued   time.Time
	Expires  time.Time
}

// AppendSessionEvent appends one session event (kind one of SessionKinds,
// Session set; Time, Seq and ResourceType are set here) to the event log
// in a transaction of its own and returns it as stored.
func (s SQLStore) AppendSessionEvent(ctx context.Context, e Event) (Event, error) {
	if !slices.Contains(SessionKinds, e.Kind) || e.Session == nil {
		return Event{}, errors.New("append session event: a session kind and a session are required")
	}
	if e.Kind == EventSessionRevoked && !slices.Contains(SessionReasons, e.Session.Reason) {
		return Event{}, errors.New("append session event: unknown reason " + e.Session.Reason)
	}
	ss := *e.Session
	ss.Issued, ss.Expires = StoredTime(ss.Issued), StoredTime(ss.Expires)
	e.Session, e.ResourceType = &ss, "Session"
	if e.ResourceID == "" {
		e.ResourceID = ss.UserID
	}
	evs, err := s.b.Write(ctx, "append "+e.Kind+" event", func(tx WriteTx) error {
		return appendEvents(ctx, tx, e)
	})
	if err != nil {
		return Event{}, err
	}
	if len(evs) != 1 {
		return Event{}, errors.New("append session event: the store returned no event")
	}
	return evs[0], nil
}

// IsSessionKind reports whether kind is a session event's.
func IsSessionKind(kind string) bool { return strings.HasPrefix(kind, "session.") }
