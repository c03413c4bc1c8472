package scimsync

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/metrics"
)

// Directory is the in-memory view of the directory that the gate consults
// on every request. It holds only what the gate needs (state, session
// cut-off, group names), indexed by the match key, and is kept in step with
// the store by following the event log in sequence order.
type Directory struct {
	matchAttr string // userName | email | externalId

	mu     sync.RWMutex
	users  map[string]*dirUser  // by user ID
	byKey  map[string]*dirUser  // by lowercased match attribute
	gone   map[string]time.Time // tombstones: lowercased match key → deleted at
	groups map[string]*dirGroup // by group ID
	seq    int64
	// lastEvent is the time of the newest event in the view (metrics.go).
	lastEvent time.Time
	metrics   *metrics.Metrics // nil: not counted; see SetMetrics

	catchUp  sync.Mutex // one catch-up at a time, so events apply in order
	onRevoke []func(key string)
}

type dirUser struct {
	id         string
	key        string // lowercased match attribute ("" if the user has none)
	email      string // primary email as provisioned, for drift detection
	active     bool
	validAfter time.Time
	groupIDs   []string
	groupNames []string // derived from groupIDs; replaced, never mutated in place
}

type dirGroup struct {
	name    string
	members map[string]struct{}
}

// NewDirectory returns an empty view that matches sessions on matchAttr
// (userName, email or externalId).
func NewDirectory(matchAttr string) (*Directory, error) {
	switch matchAttr {
	case "userName", "email", "externalId":
	default:
		return nil, fmt.Errorf("directory: unknown match attribute %q", matchAttr)
	}
	return &Directory{
		matchAttr: matchAttr,
		users:     map[string]*dirUser{},
		byKey:     map[string]*dirUser{},
		gone:      map[string]time.Time{},
		groups:    map[string]*dirGroup{},
	}, nil
}

// OnRevoke registers fn to be called with the match key of every user who
// is deactivated or deleted, after the view has changed (the proxy closes
// the user's open streams).
func (d *Directory) OnRevoke(fn func(key string)) {
	d.mu.Lock()
	d.onRevoke = append(d.onRevoke, fn)
	d.mu.Unlock()
}

// Standing is the gate's lookup: the directory's word on the user whose
// match key is identity.MatchKey(key). It does not allocate (beyond
// folding a key that has upper-case letters).
func (d *Directory) Standing(key string) identity.Standing {
	k := identity.MatchKey(key)
	d.mu.RLock()
	defer d.mu.RUnlock()
	if u, ok := d.byKey[k]; ok {
		st := identity.Standing{State: identity.StateInactive, ValidAfter: u.validAfter, Groups: u.groupNames}
		if u.active {
			st.State = identity.StateActive
		}
		return st
	}
	if at, ok := d.gone[k]; ok {
		return identity.Standing{State: identity.StateDeleted, ValidAfter: at}
	}
	return identity.Standing{State: identity.StateUnknown}
}

// GroupRef names a group a user belongs to.
type GroupRef struct{ ID, Name string }

// GroupsOf returns the groups of a user (for the read-only "groups" attribute).
func (d *Directory) GroupsOf(userID string) []GroupRef {
	d.mu.RLock()
	defer d.mu.RUnlock()
	u, ok := d.users[userID]
	if !ok {
		return nil
	}
	refs := make([]GroupRef, 0, len(u.groupIDs))
	for _, gid := range u.groupIDs {
		if g, ok := d.groups[gid]; ok {
			refs = append(refs, GroupRef{ID: gid, Name: g.name})
		}
	}
	return refs
}

// Seq is the last event applied.
func (d *Directory) Seq() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.seq
}

// Counts reports users by state and the number of groups.
func (d *Directory) Counts() (active, inactive, groups int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, u := range d.users {
		if u.active {
			active++
		} else {
			inactive++
		}
	}
	return active, inactive, len(d.groups)
}

// Load replaces the view with a snapshot.
func (d *Directory) Load(s *Snapshot) {
	users := make(map[string]*dirUser, len(s.Users))
	byKey := make(map[string]*dirUser, len(s.Users))
	for _, u := range s.Users {
		du := &dirUser{id: u.ID, key: d.keyOf(u), email: u.Email, active: u.Active, validAfter: u.ValidAfter}
		users[u.ID] = du
		if du.key != "" {
			byKey[du.key] = du
		}
	}
	groups := make(map[string]*dirGroup, len(s.Groups))
	for _, g := range s.Groups {
		dg := &dirGroup{name: g.DisplayName, members: make(map[string]struct{}, len(g.Members))}
		for _, m := range g.Members {
			dg.members[m] = struct{}{}
			if u, ok := users[m]; ok {
				u.groupIDs = append(u.groupIDs, g.ID)
			}
		}
		groups[g.ID] = dg
	}
	for _, u := range users {
		u.groupNames = namesOf(u.groupIDs, groups)
	}
	d.mu.Lock()
	d.users, d.byKey, d.groups, d.seq = users, byKey, groups, s.Seq
	d.gone = map[string]time.Time{}
	d.mu.Unlock()
}

// CatchUp applies every event after the last one applied, in order. Call it
// after a local write (so the next request sees it) and whenever another
// replica may have written.
func (d *Directory) CatchUp(ctx context.Context, st Store) error {
	return d.catchUpFrom(ctx, st, false)
}

// catchUpFrom is CatchUp; followed says the Follower is applying events
// another replica may have written, so their propagation lag is measured.
func (d *Directory) catchUpFrom(ctx context.Context, st Store, followed bool) error {
	d.catchUp.Lock()
	defer d.catchUp.Unlock()
	for {
		evs, err := st.EventsAfter(ctx, d.Seq(), 1000)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		d.applyEvents(evs, followed)
		if len(evs) < 1000 {
			return nil
		}
	}
}

// Apply applies events in order, skipping any already applied. Events must
// come in sequence order without gaps (CatchUp guarantees it).
func (d *Directory) Apply(evs []Event) { d.applyEvents(evs, false) }

func (d *Directory) applyEvents(evs []Event, followed bool) {
	var revoked []string
	d.mu.Lock()
	for i := range evs {
		e := &evs[i]
		if e.Seq <= d.seq {
			continue
		}
		if k := d.apply(e); k != "" {
			revoked = append(revoked, k)
		}
		d.seq = e.Seq
		d.observe(e, followed)
	}
	hooks := d.onRevoke
	d.mu.Unlock()
	for _, k := range revoked {
		for _, fn := range hooks {
			fn(k)
		}
	}
}

// apply changes the view for one event and returns the match key of a user
// whose access it removed. d.mu is held.
func (d *Directory) apply(e *Event) (revokedKey string) {
	switch e.Kind {
	case EventUserCreated, EventUserUpdated, EventUserDeactivated, EventUserReactivated:
		if e.User == nil {
			return ""
		}
		u := e.User
		du, ok := d.users[u.ID]
		if !ok {
			du = &dirUser{id: u.ID}
			d.users[u.ID] = du
		}
		wasActive := ok && du.active
		if du.key != "" && d.byKey[du.key] == du {
			delete(d.byKey, du.key)
		}
		du.key = d.keyOf(u)
		du.email = u.Email
		du.active = u.Active
		du.validAfter = u.ValidAfter
		if du.key != "" {
			d.byKey[du.key] = du
			delete(d.gone, du.key)
		}
		if wasActive && !u.Active {
			return du.key
		}
	case EventUserDeleted:
		du, ok := d.users[e.ResourceID]
		if !ok {
			return ""
		}
		delete(d.users, e.ResourceID)
		for _, gid := range du.groupIDs {
			if g, ok := d.groups[gid]; ok {
				delete(g.members, du.id)
			}
		}
		if du.key != "" {
			if d.byKey[du.key] == du {
				delete(d.byKey, du.key)
			}
			d.gone[du.key] = e.Time
			return du.key
		}
	case EventGroupCreated, EventGroupUpdated:
		if e.Group == nil {
			return ""
		}
		g, ok := d.groups[e.Group.ID]
		if !ok {
			g = &dirGroup{members: map[string]struct{}{}}
			d.groups[e.Group.ID] = g
		}
		if g.name != e.Group.DisplayName {
			g.name = e.Group.DisplayName
			for m := range g.members {
				if u, ok := d.users[m]; ok {
					u.groupNames = namesOf(u.groupIDs, d.groups)
				}
			}
		}
	case EventGroupDeleted:
		g, ok := d.groups[e.ResourceID]
		if !ok {
			return ""
		}
		delete(d.groups, e.ResourceID)
		for m := range g.members {
			if u, ok := d.users[m]; ok {
				u.groupIDs = slices.DeleteFunc(slices.Clone(u.groupIDs), func(id string) bool { return id == e.ResourceID })
				u.groupNames = namesOf(u.groupIDs, d.groups)
			}
		}
	case EventGroupMemberAdded, EventGroupMemberRemoved:
		g, ok := d.groups[e.ResourceID]
		if !ok {
			return ""
		}
		add := e.Kind == EventGroupMemberAdded
		for _, m := range e.Members {
			_, had := g.members[m]
			if had == add {
				continue
			}
			if add {
				g.members[m] = struct{}{}
			} else {
				delete(g.members, m)
			}
			u, ok := d.users[m]
			if !ok {
				continue
			}
			if add {
				u.groupIDs = append(slices.Clone(u.groupIDs), e.ResourceID)
			} else {
				u.groupIDs = slices.DeleteFunc(slices.Clone(u.groupIDs), func(id string) bool { return id == e.ResourceID })
			}
			u.groupNames = namesOf(u.groupIDs, d.groups)
		}
	}
	return ""
}

func (d *Directory) keyOf(u *User) string { return matchKeyOf(d.matchAttr, u) }

// namesOf returns the sorted names of groups, as a new slice.
func namesOf(ids []string, groups map[string]*dirGroup) []string {
	if len(ids) == 0 {
		return nil
	}
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		if g, ok := groups[id]; ok {
			names = append(names, g.name)
		}
	}
	slices.Sort(names)
	return names
}
