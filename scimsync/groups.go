package scimsync

import (
	"context"
	"errors"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// groups is the /Groups endpoint. A group's members are the costly part
// of its representation: they are built only when the answer includes
// them, also for PUT and PATCH.
var groups = &endpoint[*store.Group]{
	path:     "Groups",
	readOnly: map[string]bool{"id": true, "meta": true},
	decode:   groupFromJSON,
	rep: func(s *Service, g *store.Group, proj projection) map[string]any {
		return groupJSON(g, s.baseURL, proj.wants("members"))
	},
	patchBase:     func(s *Service, g *store.Group) map[string]any { return groupJSON(g, s.baseURL, true) },
	projectWrites: true,
	version:       func(g *store.Group) int64 { return g.Version },
	create: func(g *store.Group, id string, now time.Time) {
		g.ID, g.Version = id, 1
		g.Created, g.LastModified = now, now
	},
	advance: func(cur, next *store.Group, now time.Time) {
		next.ID, next.Created, next.Version, next.LastModified = cur.ID, cur.Created, cur.Version+1, now
	},
	same: store.SameGroup,
	index: map[string]string{"displayname": "displayname", "externalid": "externalid", "id": "id",
		"members.value": "member", "members": "member"},
	types: groupTypes,
	page: func(rd store.Reader, ctx context.Context, q store.Query, proj projection) ([]*store.Group, int, error) {
		return rd.ListGroups(ctx, q, proj.wants("members"))
	},
	scan:     scanGroups,
	insert:   store.Store.CreateGroup,
	get:      store.Reader.GetGroup,
	update:   store.Store.UpdateGroup,
	remove:   store.Store.DeleteGroup,
	storeErr: memberErr,
}

// memberErr turns an unknown member into a 400 the IdP can act on.
func memberErr(err error) error {
	if isUnknownMember(err) {
		return badRequest("invalidValue", "a member does not name an existing user")
	}
	return err
}

func isUnknownMember(err error) bool { return errors.Is(err, store.ErrUnknownMember) }
