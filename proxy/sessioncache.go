package proxy

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-sso/portcullis/internal/session"
)

// sessionCache remembers sessions already verified and decrypted, keyed by
// the exact cookie value, so the AES and HMAC work happens once per session
// rather than once per request. A cookie value is immutable, so a hit needs
// only the expiry check; revocation is still decided by the directory gate
// on every request. The cache is bounded: when full, about half of it is
// dropped.
type sessionCache struct {
	mu  sync.RWMutex
	m   map[string]*session.Session
	max int
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{m: make(map[string]*session.Session, max), max: max}
}

func (c *sessionCache) get(v string) *session.Session {
	c.mu.RLock()
	s := c.m[v]
	c.mu.RUnlock()
	return s
}

func (c *sessionCache) put(v string, s *session.Session) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		n := 0
		for k := range c.m { // map order is random: a cheap random eviction
			delete(c.m, k)
			if n++; n >= c.max/2 {
				break
			}
		}
	}
	c.m[strings.Clone(v)] = s
	c.mu.Unlock()
}

// readSession returns the request's session if it is valid at now, or nil;
// dup when the request carries two different session cookies.
func (p *Proxy) readSession(r *http.Request, now time.Time) (s *session.Session, dup bool) {
	v, err := p.sessions.Value(r)
	if err != nil {
		return nil, err == session.ErrDuplicate
	}
	if s := p.cache.get(v); s != nil {
		if now.Before(s.Expires) {
			return s, false
		}
		return nil, false
	}
	s, err = p.sessions.Decode(v)
	if err != nil {
		return nil, false
	}
	if now.Before(s.Expires) {
		p.cache.put(v, s)
	}
	return s, false
}
