package proxy

import (
	"slices"
	"sync"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// tokenCache keeps the last identity token minted per session and audience,
// so that a request costs a map lookup, not a signature. An entry is used
// only while the person it was minted for is the person the gate sees now
// (so a SCIM change of groups shows in the next token) and until shortly
// before it expires. Like sessionCache it is bounded, and about half of it
// is dropped when full.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[tokenKey]*tokenEntry
	max int
}

type tokenKey struct{ sid, aud string }

type tokenEntry struct {
	token     string
	refreshAt time.Time
	principal identity.Principal // as minted; Groups shared, read-only
	scimID    string
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{m: make(map[tokenKey]*tokenEntry), max: max}
}

func (c *tokenCache) get(k tokenKey) *tokenEntry {
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	return e
}

func (c *tokenCache) put(k tokenKey, e *tokenEntry) {
	c.mu.Lock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		n := 0
		for old := range c.m {
			delete(c.m, old)
			if n++; n >= c.max/2 {
				break
			}
		}
	}
	c.m[k] = e
	c.mu.Unlock()
}

// sameAs reports whether the entry was minted for exactly who and scimID.
func (e *tokenEntry) sameAs(who *identity.Principal, scimID string) bool {
	p := &e.principal
	return p.User == who.User && p.Email == who.Email && p.Name == who.Name && p.Org == who.Org &&
		e.scimID == scimID && slices.Equal(p.Groups, who.Groups)
}
