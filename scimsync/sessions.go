package scimsync

import (
	"sync"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// revokedSessions is the view's set of ended session IDs, kept apart from
// the directory's lock: the gate asks it on every request, without
// allocating, and it changes only on session.revoked events and loads.
type revokedSessions struct {
	mu      sync.RWMutex
	ids     map[string]time.Time // session ID → when it would have expired
	sweepAt int
	onEnd   []func(sessionID string)
}

func newRevokedSessions() *revokedSessions {
	return &revokedSessions{ids: map[string]time.Time{}, sweepAt: 1024}
}

// has reports whether id was revoked.
func (r *revokedSessions) has(id string) bool {
	r.mu.RLock()
	_, ok := r.ids[id]
	r.mu.RUnlock()
	return ok
}

// load replaces the set with a snapshot's.
func (r *revokedSessions) load(rs []store.RevokedSession, now time.Time) {
	ids := make(map[string]time.Time, len(rs))
	for _, s := range rs {
		if s.Expires.After(now) {
			ids[s.ID] = s.Expires
		}
	}
	r.mu.Lock()
	r.ids, r.sweepAt = ids, max(1024, 2*len(ids))
	r.mu.Unlock()
}

// add records a revoked session, dropping the expired ones once the set
// has doubled since the last sweep.
func (r *revokedSessions) add(s *store.RevokedSession, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.Expires.After(now) {
		return
	}
	r.ids[s.ID] = s.Expires
	if len(r.ids) < r.sweepAt {
		return
	}
	for id, exp := range r.ids {
		if !exp.After(now) {
			delete(r.ids, id)
		}
	}
	r.sweepAt = max(1024, 2*len(r.ids))
}

// SessionRevoked reports whether the session with this ID was ended
// (Single Logout, an admin's revocation) on any replica whose writes the
// view has followed. It does not allocate.
func (d *Directory) SessionRevoked(id string) bool { return d.sessions.has(id) }

// OnSessionRevoke registers fn to be called with the ID of every session
// ended, after the view has recorded it (the proxy closes its streams).
func (d *Directory) OnSessionRevoke(fn func(sessionID string)) {
	d.sessions.mu.Lock()
	d.sessions.onEnd = append(d.sessions.onEnd, fn)
	d.sessions.mu.Unlock()
}

// sessionHooks returns the registered OnSessionRevoke functions.
func (d *Directory) sessionHooks() []func(string) {
	d.sessions.mu.RLock()
	defer d.sessions.mu.RUnlock()
	return d.sessions.onEnd
}
