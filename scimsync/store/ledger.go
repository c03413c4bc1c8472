package store

import (
	"context"
	"time"
)

// LedgerLogin is one accepted login in the login ledger. Subject is the
// key the directory matches on (the assertion's email or user, per
// scim.match.identityField), lowercased; User is the principal's user as the
// IdP sent it, for display.
type LedgerLogin struct {
	Subject      string
	User         string
	SessionID    string
	Issued       time.Time
	Expires      time.Time
	IdPInitiated bool
}

// Logins is what the ledger knows of one subject.
type Logins struct {
	Last time.Time // the newest login ever recorded; zero if none
	// Live are the sessions that have not expired and were issued at or
	// after the validAfter given to LoginsOf, newest first, at most
	// LedgerMaxLive of them; LiveTotal counts them all.
	Live      []LedgerLogin
	LiveTotal int
}

// LedgerMaxLive bounds Logins.Live.
const LedgerMaxLive = 50

// LedgerPruneBatch is how many expired sessions one RecordLogin deletes at
// most: each login adds one row and takes away up to this many dead ones,
// so the table stays near the number of live sessions without a janitor.
const LedgerPruneBatch = 100

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

// Ledger records accepted logins, so that the status page can show a
// user's last login and live sessions on every replica that shares the
// store, and summarises the event log. Both stores implement it.
type Ledger interface {
	// RecordLogin records l; recording the same session again is not an
	// error. Expired sessions are pruned from time to time.
	RecordLogin(ctx context.Context, l LedgerLogin) error
	// LoginsOf returns subject's last login and the sessions live at now
	// that validAfter (the user's ValidAfter) has not voided.
	LoginsOf(ctx context.Context, subject string, validAfter, now time.Time) (Logins, error)
	// EventStats returns the newest event of each kind and how many events
	// happened at or after since.
	EventStats(ctx context.Context, since time.Time) (EventStats, error)
}
