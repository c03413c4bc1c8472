package scimsync

import (
	"fmt"
	"time"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// Match keys. The gate finds a session's directory user by its match key:
// identity.MatchKey of the user's scim.match.scimAttribute. Two rules keep
// that lookup from ever naming the wrong person:
//
//   - A match key is unique: a write that would give a second user the key
//     another user holds fails with ErrMatchKeyTaken (409 uniqueness).
//   - A key that changes hands voids the sessions issued before: every user
//     write that changes a user's key, and every delete, leaves a KeyCutoff
//     on the old key and (for a change) the new one, in the same
//     transaction and in its event, so every replica applies it and a
//     snapshot carries it. A user's own ValidAfter stays what it was. The
//     cut-off a delete leaves is a tombstone: while it lasts and no user
//     holds the key, the key counts as deleted.

// ErrMatchKeyTaken is returned (wrapped) when a write would give a user the
// match key another user holds. It is an ErrConflict.
var ErrMatchKeyTaken = fmt.Errorf("match key is another user's: %w", ErrConflict)

// MatchRule is what a store must know to keep match keys unique and leave
// cut-offs.
type MatchRule struct {
	// Attribute is scim.match.scimAttribute: userName (the default), email
	// or externalId.
	Attribute string
	// SessionLifetime is session.lifetime (default
	// config.DefaultSessionLifetime): how long a cut-off is kept. After it
	// no session the cut-off voids can still be alive, since no session is
	// accepted past session.lifetime after it was issued.
	SessionLifetime time.Duration
}

// StoreOption configures OpenSQLite and OpenPostgres.
type StoreOption func(*MatchRule)

// WithMatchRule sets the store's match rule.
func WithMatchRule(r MatchRule) StoreOption { return func(m *MatchRule) { *m = r } }

// matchRuleOf applies opts to the default rule and checks the result.
func matchRuleOf(opts []StoreOption) (MatchRule, error) {
	var m MatchRule
	for _, o := range opts {
		o(&m)
	}
	if m.Attribute == "" {
		m.Attribute = "userName"
	}
	if m.SessionLifetime <= 0 {
		m.SessionLifetime = config.DefaultSessionLifetime
	}
	switch m.Attribute {
	case "userName", "email", "externalId":
		return m, nil
	}
	return m, fmt.Errorf("match rule: unknown attribute %q", m.Attribute)
}

// KeyCutoff voids every session under Key issued before VoidsBefore. It is
// kept until Expires (VoidsBefore plus session.lifetime).
type KeyCutoff struct {
	Key         string
	VoidsBefore time.Time
	Expires     time.Time
	// Deleted: the key's user was deleted (a tombstone). While the cut-off
	// lasts and no user holds the key, the key counts as deleted, as the
	// user did; a key a rename left counts as unknown, sessions from before
	// the rename void.
	Deleted bool
}

// matchKeyOf is u's match key under scim.match.scimAttribute attr
// (userName, email or externalId): identity.MatchKey of that attribute, ""
// if u has none.
func matchKeyOf(attr string, u *User) string {
	switch attr {
	case "email":
		return identity.MatchKey(u.Email)
	case "externalId":
		return identity.MatchKey(u.ExternalID)
	}
	return identity.MatchKey(u.UserName)
}

// queryKeyAttr is the attribute a Query.Attr compared as a match key reads.
var queryKeyAttr = map[string]string{"username": "userName", "email": "email"}

// keyChange is what one user write does to match keys.
type keyChange struct {
	claim   string      // the key the user takes, which must be no other user's; "" none
	cutoffs []KeyCutoff // the cut-offs the write leaves
}

// change is the keyChange of a write from cur to next at now: a create
// (cur nil) claims next's key, a delete (next nil) leaves a cut-off on
// cur's key, and an update that changes the key does both, with a cut-off
// on the new key too. A created user needs no cut-off: its ValidAfter, its
// creation time, already voids every earlier session under its key.
func (m MatchRule) change(cur, next *User, now time.Time) keyChange {
	var from, to string
	if cur != nil {
		from = matchKeyOf(m.Attribute, cur)
	}
	if next != nil {
		to = matchKeyOf(m.Attribute, next)
	}
	if from == to {
		return keyChange{}
	}
	kc := keyChange{claim: to}
	if cur == nil {
		return kc
	}
	for _, k := range []string{from, to} {
		if k != "" {
			deleted := next == nil
			kc.cutoffs = append(kc.cutoffs, KeyCutoff{Key: k, VoidsBefore: now,
				Expires: now.Add(m.SessionLifetime).Truncate(time.Millisecond), Deleted: deleted})
		}
	}
	return kc
}

// takenError is the error for a claim of key, which user other holds.
func (m MatchRule) takenError(id, key, other string) error {
	return fmt.Errorf("user %s: %s %q is user %s's: %w", id, m.Attribute, key, other, ErrMatchKeyTaken)
}
