package scimsync

import (
	"context"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// users is the /Users endpoint.
var users = &endpoint[*store.User]{
	path: "Users",
	// id, meta and groups are ours (RFC 7643 §3.1, §4.1.2).
	readOnly:  map[string]bool{"id": true, "meta": true, "groups": true},
	decode:    userFromJSON,
	rep:       func(s *Service, u *store.User, _ projection) map[string]any { return s.userRepresentation(u) },
	patchBase: func(s *Service, u *store.User) map[string]any { return userJSON(u, s.baseURL, nil) },
	version:   func(u *store.User) int64 { return u.Version },
	create: func(u *store.User, id string, now time.Time) {
		u.ID, u.Version = id, 1
		u.Created, u.LastModified, u.ValidAfter = now, now, now
	},
	advance: func(cur, next *store.User, now time.Time) {
		next.ID, next.Created, next.Version, next.LastModified = cur.ID, cur.Created, cur.Version+1, now
		next.ValidAfter = cur.ValidAfter
		if next.Active != cur.Active {
			// Deactivation and reactivation both void every earlier session.
			next.ValidAfter = now
		}
	},
	same: store.SameUser,
	index: map[string]string{"username": "username", "externalid": "externalid", "id": "id",
		"emails.value": "emails", "emails": "emails"},
	types: userTypes,
	page: func(rd store.Reader, ctx context.Context, q store.Query, _ projection) ([]*store.User, int, error) {
		return rd.ListUsers(ctx, q)
	},
	scan:     scanUsers,
	insert:   store.Store.CreateUser,
	get:      store.Reader.GetUser,
	update:   store.Store.UpdateUser,
	remove:   store.Store.DeleteUser,
	storeErr: func(err error) error { return err },
}

func (s *Service) userRepresentation(u *store.User) map[string]any {
	return userJSON(u, s.baseURL, s.o.Directory.GroupsOf(u.ID))
}
