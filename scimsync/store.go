package scimsync

import "github.com/portcullis-sso/portcullis/scimsync/store"

// Aliases of the store's types while the backends move to their packages.
type (
	User        = store.User
	Group       = store.Group
	Event       = store.Event
	Snapshot    = store.Snapshot
	Store       = store.Store
	Query       = store.Query
	Reader      = store.Reader
	KeyCutoff   = store.KeyCutoff
	MatchRule   = store.MatchRule
	StoreOption = store.Option
	Logins      = store.Logins
	LastEvent   = store.LastEvent
	EventStats  = store.EventStats
	Ledger      = store.Ledger
)

const (
	EventUserCreated        = store.EventUserCreated
	EventUserUpdated        = store.EventUserUpdated
	EventUserDeactivated    = store.EventUserDeactivated
	EventUserReactivated    = store.EventUserReactivated
	EventUserDeleted        = store.EventUserDeleted
	EventGroupCreated       = store.EventGroupCreated
	EventGroupUpdated       = store.EventGroupUpdated
	EventGroupDeleted       = store.EventGroupDeleted
	EventGroupMemberAdded   = store.EventGroupMemberAdded
	EventGroupMemberRemoved = store.EventGroupMemberRemoved
	LedgerMaxLive           = store.LedgerMaxLive
)

var (
	EventKinds       = store.EventKinds
	ErrNotFound      = store.ErrNotFound
	ErrConflict      = store.ErrConflict
	ErrPrecondition  = store.ErrPrecondition
	ErrUnavailable   = store.ErrUnavailable
	ErrUnknownMember = store.ErrUnknownMember
	ErrMatchKeyTaken = store.ErrMatchKeyTaken
	WithMatchRule    = store.WithMatchRule
)
