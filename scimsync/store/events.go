package store

import (
	"context"
	"time"
)

// LastEvent is the newest event of one kind, without its data.
type LastEvent struct {
	Kind  string
	Seq   int64
	Time  time.Time
	Actor string // the label of the SCIM token that wrote it
}

// EventStats summarises the event log for the status page.
type EventStats struct {
	// Last holds the newest event of each kind that has one, in EventKinds order.
	Last []LastEvent
	// Since counts the events whose time is at or after the since given to
	// EventStats.
	Since int
}

// EventSummary summarises the event log; both backends' stores implement
// it, each with its own SQL.
type EventSummary interface {
	// EventStats returns the newest event of each kind and how many events
	// happened at or after since, of organization org only (the events'
	// org column: DefaultOrg for the default organization's), or of every
	// organization when org is "".
	EventStats(ctx context.Context, org string, since time.Time) (EventStats, error)
}
