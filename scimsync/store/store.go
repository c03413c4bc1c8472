package store

import (
	"context"
	"errors"
	"time"
)

// User is a SCIM user as stored. Doc is the resource's JSON as the client
// last wrote it, less the attributes we own (id, meta, groups); the other
// fields are indexed copies of what the gate and uniqueness need.
type User struct {
	ID           string
	UserName     string // unique, compared case-insensitively
	ExternalID   string
	Email        string // primary email (or the first one), for the match rule
	Active       bool
	Doc          []byte // JSON object
	Version      int64  // +1 on every write; the ETag is W/"<Version>"
	Created      time.Time
	LastModified time.Time
	// ValidAfter voids every session issued before it: set at creation, and
	// on each deactivation and reactivation.
	ValidAfter time.Time
}

// Group is a SCIM group as stored. Members are user IDs; Doc holds the
// other attributes (never members, which can be many).
type Group struct {
	ID           string
	DisplayName  string
	ExternalID   string
	Doc          []byte
	Members      []string
	Version      int64
	Created      time.Time
	LastModified time.Time
}

// Event kinds. Every write appends one or more events, in the same
// transaction, to the event log: the audit trail and the feed other replicas
// follow.
const (
	EventUserCreated        = "user.created"
	EventUserUpdated        = "user.updated"
	EventUserDeactivated    = "user.deactivated"
	EventUserReactivated    = "user.reactivated"
	EventUserDeleted        = "user.deleted"
	EventGroupCreated       = "group.created"
	EventGroupUpdated       = "group.updated"
	EventGroupDeleted       = "group.deleted"
	EventGroupMemberAdded   = "group.member_added"
	EventGroupMemberRemoved = "group.member_removed"
	// EventSessionRevoked ends one session (sessions.go): Single Logout,
	// an admin's revocation.
	EventSessionRevoked = "session.revoked"
)

// EventKinds lists every event kind, in the order the status page shows them.
var EventKinds = []string{
	EventUserCreated, EventUserUpdated, EventUserDeactivated, EventUserReactivated, EventUserDeleted,
	EventGroupCreated, EventGroupUpdated, EventGroupDeleted, EventGroupMemberAdded, EventGroupMemberRemoved,
	EventSessionRevoked,
}

// Event is one entry of the event log. It carries enough to apply the
// change to a directory view without reading the store again: the user's
// new state, or the group's new attributes and the member IDs added or
// removed.
type Event struct {
	Seq          int64
	Time         time.Time
	Kind         string
	ResourceType string // "User" or "Group"
	ResourceID   string
	Actor        string // label of the SCIM token that made the change
	// Org is the organization whose directory changed (DefaultOrg for
	// the top-level directory).
	Org string
	// User is the user of a user event; for user.deleted, the user as it
	// was just before the deletion (nil in events written before it was kept).
	User *User
	// Groups are the groups of a user event's user at the time of the
	// event, by id (none: empty, not nil); nil in events written before
	// they were kept.
	Groups  []GroupRef
	Group   *Group // group.created/updated: attributes, Members nil
	Members []string
	// Cutoffs are the match key cut-offs a user write left (matchkey.go):
	// on a delete, and on an update that changed the user's match key.
	Cutoffs []KeyCutoff
	// Session is the session of a session event: the one a
	// session.revoked ended, or the one a session.created began.
	Session *RevokedSession
}

// GroupRef names a group in a user event.
type GroupRef struct {
	ID          string
	DisplayName string
}

// Snapshot is the whole directory at one point of the event log, as the
// directory view needs it: users and groups without their Doc (read one
// with GetUser or GetGroup).
type Snapshot struct {
	Users  []*User
	Groups []*Group // with Members
	Seq    int64    // the last event included
	// Cutoffs are the match key cut-offs that have not expired.
	Cutoffs []KeyCutoff
	// RevokedSessions are the revoked sessions that have not expired.
	RevokedSessions []RevokedSession
}

// Store errors. Implementations wrap or return these so handlers can map
// them to SCIM errors.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("uniqueness conflict") // 409 uniqueness
	ErrPrecondition = errors.New("version mismatch")    // 412
	ErrUnavailable  = errors.New("store unavailable")   // 503, retry later
	// ErrUnknownMember is returned (wrapped, with the ID) when a group
	// names a member that is not a stored user; handlers answer 400
	// invalidValue.
	ErrUnknownMember = errors.New("unknown member")
)

// Store is the durable directory. Every method is safe for concurrent use;
// writes to one resource serialise (the update functions run inside the
// write transaction, on the current state, so no update is lost). A write
// that returns nil error is durable.
type Store interface {
	// Snapshot loads every user and group (without Doc) and the sequence
	// of the last event.
	Snapshot(ctx context.Context) (*Snapshot, error)

	// CreateUser inserts u (ID, Version, Created, LastModified and
	// ValidAfter are set by the caller). ErrConflict if the userName exists
	// in any case, ErrMatchKeyTaken if another user has u's match key.
	CreateUser(ctx context.Context, u *User, actor string) ([]Event, error)
	// UpdateUser calls fn with the current user and stores what it returns
	// (fn must return a copy with Version+1). ErrNotFound if absent; fn's
	// error is returned as is and nothing is written. A change of the match
	// key fails with ErrMatchKeyTaken if another user has the new key, and
	// otherwise leaves cut-offs on the old and the new key.
	UpdateUser(ctx context.Context, id string, fn func(cur *User) (*User, error), actor string) ([]Event, error)
	// DeleteUser calls fn with the current user (for If-Match checks), then
	// deletes the user and its group memberships, leaving a cut-off on its
	// match key.
	DeleteUser(ctx context.Context, id string, fn func(cur *User) error, actor string) ([]Event, error)

	CreateGroup(ctx context.Context, g *Group, actor string) ([]Event, error)
	UpdateGroup(ctx context.Context, id string, fn func(cur *Group) (*Group, error), actor string) ([]Event, error)
	DeleteGroup(ctx context.Context, id string, fn func(cur *Group) error, actor string) ([]Event, error)

	// EventsAfter returns up to limit events with Seq > seq, in order.
	EventsAfter(ctx context.Context, seq int64, limit int) ([]Event, error)

	Close() error
}

// Query selects resources for a list. Attr and Value narrow it with an
// indexed equality; Offset and Limit page it in the store's order (created,
// then id).
type Query struct {
	// Attr is "" (all) or, for users, "username", "email" (compared as
	// match keys: identity.MatchKey, ASCII case only), "nameprefix"
	// (userName or email starts with Value, case-insensitively; a scan,
	// for people searching, not for SCIM), "externalid" or "id" (exact);
	// for groups, "displayname" (case-insensitive), "externalid", "id" or
	// "member" (a member user ID), all exact but displayname.
	//
	// For users, "emails" is any email value of the document (every one,
	// not only the primary: the email index, emails.go), compared as match
	// keys.
	Attr  string
	Value string
	// Any, when not empty, is used instead of Attr and Value: a resource
	// matches when it meets every equality of one of its lists (an OR of
	// ANDs, each Cond as Attr and Value above).
	Any    [][]Cond
	Offset int
	Limit  int // 0: no limit
}

// Cond is one indexed equality of a Query.
type Cond struct {
	Attr, Value string
}

// Reader is the read side of the store, used by the SCIM handlers. Reads go
// to the store, not the in-memory view, so that every replica answers SCIM
// reads with the same, latest state.
type Reader interface {
	GetUser(ctx context.Context, id string) (*User, error)
	GetGroup(ctx context.Context, id string) (*Group, error) // with Members
	// ListUsers returns the users matching q and how many match in all.
	ListUsers(ctx context.Context, q Query) ([]*User, int, error)
	// EachUser calls fn with each user matching q (Offset and Limit
	// ignored), in the store's order, from one consistent read, without
	// holding them all: a scan's memory stays that of one user. An error
	// from fn stops the scan and is returned as is.
	EachUser(ctx context.Context, q Query, fn func(*User) error) error
	// ListGroups is ListUsers for groups; Members are filled only when asked.
	ListGroups(ctx context.Context, q Query, withMembers bool) ([]*Group, int, error)
}
