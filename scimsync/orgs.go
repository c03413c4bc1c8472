package scimsync

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Organizations: each has its own Directory (the gate's view of its
// directory), its own Service (its SCIM base path and tokens) and its own
// rows in the store (store.OrgStore). The event log is one: Directories
// reads it once and hands every event to every organization's view, each
// applying its own organization's events and passing over the others.

// Directories is the directory view of every organization: the gate asks
// it by (organization, match key), so that a user of one organization
// says nothing about any user of another.
type Directories struct {
	mu      sync.Mutex // serialises Set, Remove and catch-ups
	dirs    atomic.Pointer[map[string]*Directory]
	revoke  []func(key string)
	session []func(sessionID string)
}

// NewDirectories returns an empty set of views.
func NewDirectories() *Directories {
	ds := &Directories{}
	ds.dirs.Store(&map[string]*Directory{})
	return ds
}

// Set makes d the view of organization org (replacing any), and has it
// catch up through ds from now on.
func (ds *Directories) Set(org string, d *Directory) {
	org = store.OrgOrDefault(org)
	ds.mu.Lock()
	defer ds.mu.Unlock()
	d.org, d.group = org, ds
	for _, fn := range ds.revoke {
		d.OnRevoke(qualified(org, fn))
	}
	for _, fn := range ds.session {
		d.OnSessionRevoke(fn)
	}
	next := copyDirs(*ds.dirs.Load())
	next[org] = d
	ds.dirs.Store(&next)
}

// Remove drops organization org's view: its users are unknown from then
// on, so the gate refuses their sessions (with scim.requireProvisioned).
func (ds *Directories) Remove(org string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	next := copyDirs(*ds.dirs.Load())
	delete(next, org)
	ds.dirs.Store(&next)
}

func copyDirs(m map[string]*Directory) map[string]*Directory {
	out := make(map[string]*Directory, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Get is organization org's view, or nil.
func (ds *Directories) Get(org string) *Directory { return (*ds.dirs.Load())[store.OrgOrDefault(org)] }

// Orgs lists the organizations with a view, sorted.
func (ds *Directories) Orgs() []string {
	m := *ds.dirs.Load()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// OrgStanding implements the proxy's Gate: the standing of key in
// organization org's directory; an organization without a directory knows
// no one. It does not allocate.
func (ds *Directories) OrgStanding(org, key string) identity.Standing {
	d := (*ds.dirs.Load())[org]
	if d == nil {
		return identity.Standing{}
	}
	return d.Standing(key)
}

// OrgSessionRevoked implements the proxy's Revocations for the session id
// of organization org. It does not allocate.
func (ds *Directories) OrgSessionRevoked(org, id string) bool {
	d := (*ds.dirs.Load())[org]
	return d != nil && d.SessionRevoked(id)
}

// OnRevoke registers fn for the revoked match keys of every organization,
// each qualified by its organization (identity.OrgKey), as the proxy keys
// its streams.
func (ds *Directories) OnRevoke(fn func(key string)) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.revoke = append(ds.revoke, fn)
	for org, d := range *ds.dirs.Load() {
		d.OnRevoke(qualified(org, fn))
	}
}

func qualified(org string, fn func(string)) func(string) {
	return func(key string) { fn(identity.OrgKey(org, key)) }
}

// OnSessionRevoke registers fn for every organization's ended sessions.
func (ds *Directories) OnSessionRevoke(fn func(sessionID string)) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.session = append(ds.session, fn)
	for _, d := range *ds.dirs.Load() {
		d.OnSessionRevoke(fn)
	}
}

// Seq is the last event every view has applied.
func (ds *Directories) Seq() int64 {
	var seq int64 = -1
	for _, d := range *ds.dirs.Load() {
		if s := d.Seq(); seq < 0 || s < seq {
			seq = s
		}
	}
	return max(seq, 0)
}

// CatchUp applies the events in st the views have not seen, now rather
// than at the follower's next poll.
func (ds *Directories) CatchUp(ctx context.Context, st store.Store) error {
	return ds.catchUpFrom(ctx, st, false)
}

// catchUpFrom reads the events after the oldest view's position once, in
// pages, and hands each page to every view.
func (ds *Directories) catchUpFrom(ctx context.Context, st store.Store, followed bool) error {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	dirs := *ds.dirs.Load()
	if len(dirs) == 0 {
		return nil // nobody to hand events to, and no position to read from
	}
	for {
		evs, err := st.EventsAfter(ctx, ds.Seq(), 1000)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		for _, d := range dirs {
			d.catchUp.Lock()
			d.applyEvents(evs, followed)
			d.catchUp.Unlock()
		}
		if len(evs) < 1000 {
			return nil
		}
	}
}

// Router serves scim.basePath for every organization: {basePath}/{id}/… is
// organization id's Service, anything else under {basePath} the default
// organization's (404 when there is none). Organization ids can never be a
// SCIM endpoint name (config refuses them), so the two cannot be confused.
type Router struct {
	base     string
	services atomic.Pointer[map[string]http.Handler]
}

// NewRouter routes under base.
func NewRouter(base string) *Router {
	r := &Router{base: base}
	r.services.Store(&map[string]http.Handler{})
	return r
}

// Set serves organization org with h (nil removes it).
func (rt *Router) Set(org string, h http.Handler) {
	next := map[string]http.Handler{}
	for k, v := range *rt.services.Load() {
		next[k] = v
	}
	if h == nil {
		delete(next, org)
	} else {
		next[store.OrgOrDefault(org)] = h
	}
	rt.services.Store(&next)
}

// Service is the SCIM service serving organization org ("" is the default
// one), nil when none does.
func (rt *Router) Service(org string) *Service {
	svc, _ := (*rt.services.Load())[store.OrgOrDefault(org)].(*Service)
	return svc
}

// ServeHTTP implements http.Handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	services := *rt.services.Load()
	rest := strings.TrimPrefix(r.URL.Path, rt.base+"/")
	first, _, _ := strings.Cut(rest, "/")
	if first != store.DefaultOrg {
		if h := services[first]; h != nil && rest != r.URL.Path {
			h.ServeHTTP(w, r)
			return
		}
	}
	if h := services[store.DefaultOrg]; h != nil {
		h.ServeHTTP(w, r)
		return
	}
	writeNotFound(w)
}

// writeNotFound is the RFC 7644 error body of a base path that serves no
// organization.
func writeNotFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404","detail":"no SCIM directory at this address"}`))
}
