package store

import (
	"bytes"
	"slices"
	"strings"
	"time"
)

// StoredTime is t as the store gives it back: UTC, whole milliseconds.
func StoredTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// StoredUser copies u as the store keeps it: times UTC to the millisecond,
// an empty Doc nil, no slice shared with the caller.
func StoredUser(u *User) *User {
	c := *u
	c.Doc = storedDoc(u.Doc)
	c.Created, c.LastModified, c.ValidAfter = StoredTime(c.Created), StoredTime(c.LastModified), StoredTime(c.ValidAfter)
	return &c
}

// StoredGroup is StoredUser for groups; Members are copied too.
func StoredGroup(g *Group) *Group {
	c := *g
	c.Doc = storedDoc(g.Doc)
	c.Members = slices.Clone(g.Members)
	c.Created, c.LastModified = StoredTime(c.Created), StoredTime(c.LastModified)
	return &c
}

func storedDoc(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// SameUser reports whether storing b over a would change nothing a client
// or the gate can see (ID, Version, Created and LastModified aside). It is
// the one rule for "the same user": an update to the same user writes
// nothing, and the SCIM handlers answer it with the current version.
func SameUser(a, b *User) bool {
	return a.UserName == b.UserName && a.ExternalID == b.ExternalID && a.Email == b.Email &&
		a.Active == b.Active && a.ValidAfter.Equal(b.ValidAfter) && bytes.Equal(a.Doc, b.Doc)
}

// SameGroup is SameUser for groups: the attributes (DisplayName,
// ExternalID, Doc) and the set of members are the same, repeats aside.
// It is the one rule for "the same group": an update to the same group
// writes nothing.
func SameGroup(a, b *Group) bool {
	if groupAttrsChanged(a, b) {
		return false
	}
	keys := make(map[string]int64, len(a.Members))
	for _, m := range a.Members {
		keys[m] = 0
	}
	return diffMembers(a.Members, keys, b.Members).none()
}

func groupAttrsChanged(a, b *Group) bool {
	return a.DisplayName != b.DisplayName || a.ExternalID != b.ExternalID || !bytes.Equal(a.Doc, b.Doc)
}

// SortedUnique returns ids sorted without repeats, as a new slice.
func SortedUnique(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// LikePrefix is the LIKE pattern (escape character \) matching what starts
// with v, lowercased as the *_lower columns are.
func LikePrefix(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(strings.ToLower(v)) + "%"
}
