package store

import (
	"fmt"
	"time"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// Match keys. The gate finds a session's directory user by its match key:
// identity.MatchKey of the user's match attribute (scim.match.scimAttribute).
// Two rules keep that lookup from ever naming the wrong person:
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
	// Attribute is the match attribute, scim.match.scimAttribute: userName
	// (config.DefaultMatchSCIM), email or externalId.
	Attribute string
	// SessionLifetime is session.lifetime (default
	// config.DefaultSessionLifetime): how long a cut-off is kept. After it
	// no session the cut-off voids can still be alive, since no session is
	// accepted past session.lifetime after it was issued.
	SessionLifetime time.Duration
}

// Config is what a backend's Open is configured with.
type Config struct {
	Match MatchRule
	// Now is the store's clock (event times, cut-offs, pruning); default
	// time.Now.
	Now func() time.Time
}

// Option configures a backend's Open.
type Option func(*Config)

// WithMatchRule sets the store's match rule.
func WithMatchRule(r MatchRule) Option { return func(c *Config) { c.Match = r } }

// WithClock sets the store's clock, for tests.
func WithClock(now func() time.Time) Option { return func(c *Config) { c.Now = now } }

// Configure applies opts to the defaults (config's, for the match rule)
// and checks the result; a backend's Open calls it.
func Configure(opts []Option) (Config, error) {
	var c Config
	for _, o := range opts {
		o(&c)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Match.Attribute == "" {
		c.Match.Attribute = config.DefaultMatchSCIM
	}
	if c.Match.SessionLifetime <= 0 {
		c.Match.SessionLifetime = config.DefaultSessionLifetime
	}
	if !ValidMatchAttribute(c.Match.Attribute) {
		return c, fmt.Errorf("match rule: unknown attribute %q", c.Match.Attribute)
	}
	return c, nil
}

// ValidMatchAttribute reports whether attr can be a match attribute.
func ValidMatchAttribute(attr string) bool {
	switch attr {
	case "userName", "email", "externalId":
		return true
	}
	return false
}

// KeyCutoff voids every session under Key issued before VoidsBefore. It is
// kept until Expires (VoidsBefore plus session.lifetime).
type KeyCutoff struct {
	Key string
	// Org is the organization of the key; set by the store on the way to
	// the database (where Key is then qualified: SQLStore.qual).
	Org         string
	VoidsBefore time.Time
	Expires     time.Time
	// Deleted: the key's user was deleted (a tombstone). While the cut-off
	// lasts and no user holds the key, the key counts as deleted, as the
	// user did; a key a rename left counts as unknown, sessions from before
	// the rename void.
	Deleted bool
}

// MatchKeyOf is u's match key under the match attribute attr (userName,
// email or externalId): identity.MatchKey of that attribute, "" if u has
// none.
func MatchKeyOf(attr string, u *User) string {
	switch attr {
	case "email":
		return identity.MatchKey(u.Email)
	case "externalId":
		return identity.MatchKey(u.ExternalID)
	}
	return identity.MatchKey(u.UserName)
}

// QueryMatchAttribute is the match attribute a Query.Attr compared by
// match key reads ("username" → userName, "email" → email), or "" if
// Query.Attr is not compared by match key.
func QueryMatchAttribute(queryAttr string) string {
	switch queryAttr {
	case "username":
		return "userName"
	case "email":
		return "email"
	}
	return ""
}

// KeyChange is what one user write does to match keys.
type KeyChange struct {
	Claim   string      // the key the user takes, which must be no other user's; "" none
	Cutoffs []KeyCutoff // the cut-offs the write leaves
}

// Change is the KeyChange of a write from cur to next at now: a create
// (cur nil) claims next's key, a delete (next nil) leaves a cut-off on
// cur's key, and an update that changes the key does both, with a cut-off
// on the new key too. A created user needs no cut-off: its ValidAfter, its
// creation time, already voids every earlier session under its key.
func (m MatchRule) Change(cur, next *User, now time.Time) KeyChange {
	var from, to string
	if cur != nil {
		from = MatchKeyOf(m.Attribute, cur)
	}
	if next != nil {
		to = MatchKeyOf(m.Attribute, next)
	}
	if from == to {
		return KeyChange{}
	}
	kc := KeyChange{Claim: to}
	if cur == nil {
		return kc
	}
	for _, k := range []string{from, to} {
		if k != "" {
			kc.Cutoffs = append(kc.Cutoffs, KeyCutoff{Key: k, VoidsBefore: now,
				Expires: now.Add(m.SessionLifetime).Truncate(time.Millisecond), Deleted: next == nil})
		}
	}
	return kc
}

// TakenError is the error for user id's claim of key, which user other holds.
func (m MatchRule) TakenError(id, key, other string) error {
	return fmt.Errorf("user %s: %s %q is user %s's: %w", id, m.Attribute, key, other, ErrMatchKeyTaken)
}
