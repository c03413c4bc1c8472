package scimsync

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// Directory is the in-memory view of the directory that the gate consults
// on every request. It holds only what the gate needs (state, session
// cut-off, group names), indexed by the match key, and is kept in step with
// the store by following the event log in sequence order.
type Directory struct {
	matchAttribute string // userName | email | externalId
	// org is the organization whose events the view applies (others'
	// only advance its position); group, when set, is the Directories it
	// belongs to, through which it catches up (orgs.go).
	org   string
	group *Directories
	now   func() time.Time // for the expiry of cut-offs

	mu      sync.RWMutex
	users   map[string]*dirUser  // by user ID
	keys    keyIndex             // by match key
	cutoffs map[string]cutoff    // by match key (directory_keys.go)
	sweepAt int                  // drop expired cut-offs when there are this many
	groups  map[string]*dirGroup // by group ID
	seq     int64
	// lastEvent is the time of the newest event in the view (metrics.go).
	lastEvent time.Time
	metrics   *metrics.Metrics // nil: not counted; see SetMetrics

	catchUp  sync.Mutex // one catch-up at a time, so events apply in order
	onRevoke []func(key string)
	// sessions are the revoked session IDs (sessions.go), under their own lock.
	sessions *revokedSessions
}

// The view's memory is mostly users and memberships (at 100,000 users in
// 10,000 groups, about 280 bytes a user and 24 a membership:
// BenchmarkGateLookupScale, bench/scim-memory.sh), so a membership is a
// pointer in the user's groups and a name in its groupNames, and nothing
// in the group: the rare rename or deletion of a group finds its members by
// walking the users (BenchmarkDirectoryGroupRename100k), while member adds
// and removes, the common group writes, touch only their users.
type dirUser struct {
	id         string
	key        string // match key ("" if the user has none)
	email      string // primary email as provisioned, for drift detection
	active     bool
	validAfter time.Time
	groups     []*dirGroup // replaced, never mutated in place
	groupNames []string    // derived from groups; replaced, never mutated in place
}

type dirGroup struct {
	id   string
	name string
}

// withGroup returns groups with g added (a new slice); without returns
// groups less g (a new slice).
func withGroup(groups []*dirGroup, g *dirGroup) []*dirGroup {
	return append(slices.Clip(groups), g)
}

func withoutGroup(groups []*dirGroup, g *dirGroup) []*dirGroup {
	return slices.DeleteFunc(slices.Clone(groups), func(x *dirGroup) bool { return x == g })
}

// eachMember calls fn for every user in g. d.mu is held.
func (d *Directory) eachMember(g *dirGroup, fn func(u *dirUser)) {
	for _, u := range d.users {
		if slices.Contains(u.groups, g) {
			fn(u)
		}
	}
}

// NewDirectory returns an empty view that matches sessions on matchAttribute
// (userName, email or externalId).
func NewDirectory(matchAttribute string) (*Directory, error) {
	if !store.ValidMatchAttribute(matchAttribute) {
		return nil, fmt.Errorf("directory: unknown match attribute %q", matchAttribute)
	}
	return &Directory{
		org:            store.DefaultOrg,
		matchAttribute: matchAttribute,
		now:            time.Now,
		users:          map[string]*dirUser{},
		keys:           newKeyIndex(0),
		cutoffs:        map[string]cutoff{},
		sweepAt:        64,
		groups:         map[string]*dirGroup{},
		sessions:       newRevokedSessions(),
	}, nil
}

// OnRevoke registers fn to be called with the match key of every user who
// is deactivated or deleted, and with both keys of a user whose match key
// changed, after the view has changed (the proxy closes the streams of
// those keys).
func (d *Directory) OnRevoke(fn func(key string)) {
	d.mu.Lock()
	d.onRevoke = append(d.onRevoke, fn)
	d.mu.Unlock()
}

// Standing is the gate's lookup: the directory's word on the user whose
// match key is identity.MatchKey(key). ValidAfter is the later of the
// user's own and the key's cut-off: a key that changed hands voids the
// sessions from before. A key no user holds any more counts as deleted
// until its cut-off expires; a key two users hold is ambiguous. It does not
// allocate (beyond folding a key that has upper-case letters).
// OrgStanding is Standing for a principal of organization org: a user of
// another organization than the view's is unknown here. (The proxy's Gate;
// Directories answers for several organizations.)
func (d *Directory) OrgStanding(org, key string) identity.Standing {
	if org != d.org {
		return identity.Standing{}
	}
	return d.Standing(key)
}

// OrgSessionRevoked is SessionRevoked for a session of organization org.
func (d *Directory) OrgSessionRevoked(org, id string) bool {
	return org == d.org && d.SessionRevoked(id)
}

func (d *Directory) Standing(key string) identity.Standing {
	k := identity.MatchKey(key)
	d.mu.RLock()
	defer d.mu.RUnlock()
	u, state, validAfter := d.find(k)
	st := identity.Standing{State: state, ValidAfter: validAfter}
	if u != nil {
		st.Groups, st.ID = u.groupNames, u.id
	}
	return st
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
	refs := make([]GroupRef, 0, len(u.groups))
	for _, g := range u.groups {
		refs = append(refs, GroupRef{ID: g.id, Name: g.name})
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
func (d *Directory) Load(s *store.Snapshot) {
	users := make(map[string]*dirUser, len(s.Users))
	keys := newKeyIndex(len(s.Users))
	for _, u := range s.Users {
		du := &dirUser{id: u.ID, key: d.keyOf(u), active: u.Active, validAfter: u.ValidAfter}
		du.email = shareString(u.Email, du.key)
		users[u.ID] = du
		keys.hold(du.key, du)
	}
	// Each user's groups are allocated at their exact size: count first.
	count := make(map[*dirUser]int32, len(users))
	for _, g := range s.Groups {
		for _, m := range g.Members {
			if u, ok := users[m]; ok {
				count[u]++
			}
		}
	}
	groups := make(map[string]*dirGroup, len(s.Groups))
	for _, g := range s.Groups {
		dg := &dirGroup{id: g.ID, name: g.DisplayName}
		for _, m := range g.Members {
			if u, ok := users[m]; ok {
				if u.groups == nil {
					u.groups = make([]*dirGroup, 0, count[u])
				}
				u.groups = append(u.groups, dg)
			}
		}
		groups[g.ID] = dg
	}
	for _, u := range users {
		u.groupNames = namesOf(u.groups)
	}
	d.mu.Lock()
	d.users, d.keys, d.groups, d.seq = users, keys, groups, s.Seq
	d.cutoffs, d.sweepAt = make(map[string]cutoff, len(s.Cutoffs)), 2*len(s.Cutoffs)+64
	for _, c := range s.Cutoffs {
		d.addCutoff(c)
	}
	d.sessions.load(s.RevokedSessions, d.now())
	d.mu.Unlock()
}

// CatchUp applies every event after the last one applied, in order. Call it
// after a local write (so the next request sees it) and whenever another
// replica may have written.
func (d *Directory) CatchUp(ctx context.Context, st store.Store) error {
	if d.group != nil {
		return d.group.catchUpFrom(ctx, st, false)
	}
	return d.catchUpFrom(ctx, st, false)
}

// catchUpFrom is CatchUp; followed says the Follower is applying events
// another replica may have written, so their propagation lag is measured.
func (d *Directory) catchUpFrom(ctx context.Context, st store.Store, followed bool) error {
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
func (d *Directory) Apply(evs []store.Event) { d.applyEvents(evs, false) }

func (d *Directory) applyEvents(evs []store.Event, followed bool) {
	var revoked, ended []string
	now := d.now()
	d.mu.Lock()
	for i := range evs {
		e := &evs[i]
		if e.Seq <= d.seq {
			continue
		}
		if store.OrgOrDefault(e.Org) != d.org {
			d.seq = e.Seq // another organization's: passed over
			continue
		}
		// A session ended by its user's deactivation or deletion stays
		// refused by the user's state (and voided by ValidAfter on a
		// reactivation), so the person sees "access removed", not a new
		// sign-in: it is no revocation of its own.
		if e.Kind == store.EventSessionRevoked && e.Session != nil && !store.EndedWithUser(e.Session.Reason) {
			d.sessions.add(e.Session, now)
			ended = append(ended, e.Session.ID)
		}
		revoked = d.apply(e, revoked)
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
	if len(ended) > 0 {
		sh := d.sessionHooks()
		for _, id := range ended {
			for _, fn := range sh {
				fn(id)
			}
		}
	}
}

// apply changes the view for one event and appends to revoked the match
// keys whose sessions it removed or voided. d.mu is held.
func (d *Directory) apply(e *store.Event, revoked []string) []string {
	for _, c := range e.Cutoffs {
		d.addCutoff(c)
	}
	switch e.Kind {
	case store.EventUserCreated, store.EventUserUpdated, store.EventUserDeactivated, store.EventUserReactivated:
		if e.User == nil {
			return revoked
		}
		return d.applyUser(e.User, revoked)
	case store.EventUserDeleted:
		du, ok := d.users[e.ResourceID]
		if !ok {
			return revoked
		}
		delete(d.users, e.ResourceID)
		d.keys.release(du.key, du)
		if du.key != "" {
			if len(e.Cutoffs) == 0 {
				d.addCutoff(legacyCutoff(du.key, e.Time))
			}
			return append(revoked, du.key)
		}
	case store.EventGroupCreated, store.EventGroupUpdated:
		if e.Group == nil {
			return revoked
		}
		g, ok := d.groups[e.Group.ID]
		if !ok {
			g = &dirGroup{id: e.Group.ID}
			d.groups[e.Group.ID] = g
		}
		if g.name != e.Group.DisplayName {
			g.name = e.Group.DisplayName
			d.eachMember(g, func(u *dirUser) { u.groupNames = namesOf(u.groups) })
		}
	case store.EventGroupDeleted:
		g, ok := d.groups[e.ResourceID]
		if !ok {
			return revoked
		}
		delete(d.groups, e.ResourceID)
		d.eachMember(g, func(u *dirUser) {
			u.groups = withoutGroup(u.groups, g)
			u.groupNames = namesOf(u.groups)
		})
	case store.EventGroupMemberAdded, store.EventGroupMemberRemoved:
		g, ok := d.groups[e.ResourceID]
		if !ok {
			return revoked
		}
		add := e.Kind == store.EventGroupMemberAdded
		for _, m := range e.Members {
			u, ok := d.users[m]
			if !ok || slices.Contains(u.groups, g) == add {
				continue // members are users; a user not in the view is in no group of it
			}
			if add {
				u.groups = withGroup(u.groups, g)
			} else {
				u.groups = withoutGroup(u.groups, g)
			}
			u.groupNames = namesOf(u.groups)
		}
	}
	return revoked
}

// applyUser applies a user's new state. A change of its match key voids
// the sessions of the old and the new key (through the event's cut-offs),
// so both are revoked, as is the key of a user deactivated. d.mu is held.
func (d *Directory) applyUser(u *store.User, revoked []string) []string {
	du, ok := d.users[u.ID]
	if !ok {
		du = &dirUser{id: u.ID}
		d.users[u.ID] = du
	}
	wasActive, moved := ok && du.active, false
	if key := d.keyOf(u); key != du.key {
		d.keys.release(du.key, du)
		d.keys.hold(key, du)
		if moved = ok; moved {
			revoked = appendKeys(revoked, du.key, key)
		}
		du.key = key
	}
	du.email = shareString(u.Email, du.key)
	du.active = u.Active
	du.validAfter = u.ValidAfter
	if wasActive && !u.Active && !moved {
		revoked = appendKeys(revoked, du.key)
	}
	return revoked
}

// appendKeys appends the keys that are not "".
func appendKeys(to []string, keys ...string) []string {
	for _, k := range keys {
		if k != "" {
			to = append(to, k)
		}
	}
	return to
}

func (d *Directory) keyOf(u *store.User) string { return store.MatchKeyOf(d.matchAttribute, u) }

// shareString returns s, as the same memory as other when they are equal
// (a user's email is often their match key).
func shareString(s, other string) string {
	if s == other {
		return other
	}
	return s
}

// namesOf returns the sorted names of groups, as a new slice.
func namesOf(groups []*dirGroup) []string {
	if len(groups) == 0 {
		return nil
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.name
	}
	slices.Sort(names)
	return names
}
