package scimsync

import (
	"slices"
	"time"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// keyIndex finds the view's users by match key. The store keeps match keys
// unique, but a directory written before that rule (or by an older binary
// during an upgrade) may hold a key twice: such a key is in shared, and
// the gate denies it rather than guess whose it is.
type keyIndex struct {
	one    map[string]*dirUser   // the holder of each key (one of them, if shared)
	shared map[string][]*dirUser // keys two or more users hold
}

func newKeyIndex(n int) keyIndex {
	return keyIndex{one: make(map[string]*dirUser, n), shared: map[string][]*dirUser{}}
}

// hold records that u holds key k ("" holds nothing).
func (x *keyIndex) hold(k string, u *dirUser) {
	if k == "" {
		return
	}
	if hs, ok := x.shared[k]; ok {
		x.shared[k] = append(slices.Clone(hs), u)
		return
	}
	if other, ok := x.one[k]; ok && other != u {
		x.shared[k] = []*dirUser{other, u}
		return
	}
	x.one[k] = u
}

// release records that u no longer holds key k.
func (x *keyIndex) release(k string, u *dirUser) {
	if k == "" {
		return
	}
	hs, ok := x.shared[k]
	if !ok {
		if x.one[k] == u {
			delete(x.one, k)
		}
		return
	}
	hs = slices.DeleteFunc(slices.Clone(hs), func(h *dirUser) bool { return h == u })
	switch len(hs) {
	case 0:
		delete(x.shared, k)
		delete(x.one, k)
	case 1:
		delete(x.shared, k)
		x.one[k] = hs[0]
	default:
		x.shared[k], x.one[k] = hs, hs[0]
	}
}

// cutoff is a KeyCutoff in the view.
type cutoff struct {
	voidsBefore, expires time.Time
	deleted              bool
}

// addCutoff merges c into the view's cut-offs (the later of each time
// wins, as in the store) and now and then drops the expired ones. d.mu is
// held.
func (d *Directory) addCutoff(c store.KeyCutoff) {
	cur := d.cutoffs[c.Key]
	if c.VoidsBefore.After(cur.voidsBefore) {
		cur.voidsBefore = c.VoidsBefore
	}
	if c.Expires.After(cur.expires) {
		cur.expires = c.Expires
	}
	cur.deleted = cur.deleted || c.Deleted
	d.cutoffs[c.Key] = cur
	if len(d.cutoffs) >= d.sweepAt {
		now := d.now()
		for k, c := range d.cutoffs {
			if !now.Before(c.expires) {
				delete(d.cutoffs, k)
			}
		}
		d.sweepAt = 2*len(d.cutoffs) + 64
	}
}

// legacyCutoff is the cut-off the view leaves itself for a user.deleted
// event that carries none: one written by a binary from before match key
// cut-offs, during an upgrade. It tombstones the key as the view always
// did, for the default session.lifetime.
func legacyCutoff(key string, deleted time.Time) store.KeyCutoff {
	return store.KeyCutoff{Key: key, VoidsBefore: deleted, Expires: deleted.Add(config.DefaultSessionLifetime), Deleted: true}
}

// find is the lookup behind Standing and drift detection: the user holding
// match key k (nil if none or ambiguous), the key's state, and the time
// before which its sessions are void (the later of the user's ValidAfter
// and the key's cut-off). A key no user holds is deleted while a
// tombstone lasts on it, else unknown, with the sessions from before a
// live cut-off void. d.mu is held.
func (d *Directory) find(k string) (*dirUser, identity.State, time.Time) {
	if _, ok := d.keys.shared[k]; ok {
		return nil, identity.StateAmbiguous, time.Time{}
	}
	c, cut := d.cutoffs[k]
	if u, ok := d.keys.one[k]; ok {
		va := u.validAfter
		if cut && c.voidsBefore.After(va) {
			va = c.voidsBefore
		}
		if u.active {
			return u, identity.StateActive, va
		}
		return u, identity.StateInactive, va
	}
	if !cut || !d.now().Before(c.expires) {
		return nil, identity.StateUnknown, time.Time{}
	}
	if c.deleted {
		return nil, identity.StateDeleted, c.voidsBefore
	}
	return nil, identity.StateUnknown, c.voidsBefore
}

// Ambiguous is how many match keys two or more users hold (data from
// before match keys were kept unique). The gate denies each of them.
func (d *Directory) Ambiguous() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.keys.shared)
}
