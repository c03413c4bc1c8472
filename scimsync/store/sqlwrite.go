package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The writes of SQLStore: the same logic and statements on every backend.

const (
	userColumns  = `pk, id, user_name, external_id, email, active, doc, version, created, last_modified, valid_after`
	groupColumns = `pk, id, display_name, external_id, doc, version, created, last_modified`
	// The snapshot's columns: the same, less the documents (NULL).
	snapshotUserColumns  = `pk, id, user_name, external_id, email, active, NULL, version, created, last_modified, valid_after`
	snapshotGroupColumns = `pk, id, display_name, external_id, NULL, version, created, last_modified`
)

// CreateUser implements Store.
func (s SQLStore) CreateUser(ctx context.Context, u *User, actor string) ([]Event, error) {
	if u == nil || u.ID == "" || u.UserName == "" {
		return nil, errors.New("create user: id and userName are required")
	}
	nu := StoredUser(u)
	return s.write(ctx, "create user", func(tx WriteTx) error {
		if err := s.keys(ctx, tx, nu.ID, s.match.Change(nil, nu, tx.Now())); err != nil {
			return err
		}
		var upk int64
		err := queryRow(ctx, tx, `INSERT INTO users
			(id, user_name, user_name_lower, external_id, email, email_lower, active, doc, version, created, last_modified, valid_after, org)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING pk`,
			nu.ID, nu.UserName, s.qual(strings.ToLower(nu.UserName)), nu.ExternalID, nu.Email, strings.ToLower(nu.Email), nu.Active, nu.Doc,
			nu.Version, s.d.Time(nu.Created), s.d.Time(nu.LastModified), s.d.Time(nu.ValidAfter), s.org).Scan(&upk)
		if s.d.Unique(err) {
			return fmt.Errorf("create user %q: %w", nu.UserName, ErrConflict)
		}
		if err != nil {
			return s.err(ctx, "create user", err)
		}
		if err := s.writeEmails(ctx, tx, upk, EmailKeys(nu.Doc), true); err != nil {
			return err
		}
		// A user just inserted is in no group yet: no query needed.
		return s.appendEvents(ctx, tx, Event{Kind: EventUserCreated, ResourceType: "User", ResourceID: nu.ID, Actor: actor,
			User: nu, Groups: []GroupRef{}})
	})
}

// UpdateUser implements Store. fn gets a copy of the current user. What it
// returns is stored with the ID and Created of the current user and Version
// set to the current Version+1 (the ETag always advances), unless it is the
// SameUser as the current one: then nothing is written, the version stays,
// and no events are returned — a replayed PATCH or PUT is a no-op.
//
// The event is user.deactivated when Active goes from true to false,
// user.reactivated from false to true, and user.updated otherwise.
func (s SQLStore) UpdateUser(ctx context.Context, id string, fn func(cur *User) (*User, error), actor string) ([]Event, error) {
	return s.write(ctx, "update user", func(tx WriteTx) error {
		pk, cur, err := s.lockUser(ctx, tx, id)
		if err != nil {
			return err
		}
		nu, err := callUpdate("user", id, cur, fn, StoredUser)
		if err != nil {
			return err
		}
		nu.ID, nu.Created = cur.ID, cur.Created
		if SameUser(cur, nu) {
			return nil
		}
		kc := s.match.Change(cur, nu, tx.Now())
		if err := s.keys(ctx, tx, id, kc); err != nil {
			return err
		}
		nu.Version = cur.Version + 1
		err = tx.Exec(ctx, `UPDATE users SET user_name = $1, user_name_lower = $2, external_id = $3, email = $4,
			email_lower = $5, active = $6, doc = $7, version = $8, last_modified = $9, valid_after = $10 WHERE pk = $11`,
			nu.UserName, s.qual(strings.ToLower(nu.UserName)), nu.ExternalID, nu.Email, strings.ToLower(nu.Email), nu.Active, nu.Doc,
			nu.Version, s.d.Time(nu.LastModified), s.d.Time(nu.ValidAfter), pk)
		if s.d.Unique(err) {
			return fmt.Errorf("update user %s: userName %q: %w", id, nu.UserName, ErrConflict)
		}
		if err != nil {
			return s.err(ctx, "update user", err)
		}
		// Always rewritten, which also repairs the rows of a user that a
		// replica of the version before the index wrote.
		if err := s.writeEmails(ctx, tx, pk, EmailKeys(nu.Doc), false); err != nil {
			return err
		}
		groups, err := s.userGroups(ctx, tx, pk)
		if err != nil {
			return err
		}
		return s.appendEvents(ctx, tx, Event{Kind: userEventKind(cur, nu), ResourceType: "User", ResourceID: id, Actor: actor,
			User: nu, Groups: groups, Cutoffs: kc.Cutoffs})
	})
}

// callUpdate calls fn, a write's update function, with a stored copy of
// cur and returns a stored copy of what it returns: neither side keeps a
// slice the other may change. fn's error comes back as it is.
func callUpdate[T interface{ *User | *Group }](what, id string, cur T, fn func(T) (T, error), stored func(T) T) (T, error) {
	next, err := fn(stored(cur))
	if err != nil {
		return nil, err
	}
	if next == nil {
		return nil, fmt.Errorf("update %s %s: update function returned no %s", what, id, what)
	}
	return stored(next), nil
}

// userEventKind is the kind of the event of an update from cur to next.
func userEventKind(cur, next *User) string {
	switch {
	case cur.Active && !next.Active:
		return EventUserDeactivated
	case !cur.Active && next.Active:
		return EventUserReactivated
	}
	return EventUserUpdated
}

// DeleteUser implements Store. The user's memberships go with it, and the
// only event is user.deleted: no group.member_removed events are appended
// for the groups the user was in. Whoever applies user.deleted removes the
// user from every group itself (as the directory view does), which keeps
// deleting a user in 500 groups one event instead of 501.
func (s SQLStore) DeleteUser(ctx context.Context, id string, fn func(cur *User) error, actor string) ([]Event, error) {
	return s.write(ctx, "delete user", func(tx WriteTx) error {
		pk, cur, err := s.lockUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		kc := s.match.Change(cur, nil, tx.Now())
		if err := s.keys(ctx, tx, id, kc); err != nil {
			return err
		}
		groups, err := s.userGroups(ctx, tx, pk) // before the memberships go with the user
		if err != nil {
			return err
		}
		if err := tx.Exec(ctx, `DELETE FROM users WHERE pk = $1`, pk); err != nil {
			return s.err(ctx, "delete user", err)
		}
		return s.appendEvents(ctx, tx, Event{Kind: EventUserDeleted, ResourceType: "User", ResourceID: id, Actor: actor,
			User: cur, Groups: groups, Cutoffs: kc.Cutoffs})
	})
}

// userGroups are the groups of the user with primary key pk, by id: what
// a user event tells the app. Never nil.
func (s SQLStore) userGroups(ctx context.Context, tx DB, pk int64) ([]GroupRef, error) {
	out := []GroupRef{}
	err := s.each(ctx, tx, "read user's groups", func(rows Rows) error {
		var g GroupRef
		if err := rows.Scan(&g.ID, &g.DisplayName); err != nil {
			return s.err(ctx, "read user's groups", err)
		}
		out = append(out, g)
		return nil
	}, `SELECT g.id, g.display_name FROM group_members m JOIN groups g ON g.pk = m.group_pk WHERE m.user_pk = $1 ORDER BY g.id`, pk)
	return out, err
}

// lockUser reads a user, locking its row for the rest of the transaction.
func (s SQLStore) lockUser(ctx context.Context, tx WriteTx, id string) (int64, *User, error) {
	u, pk, err := scanUser(queryRow(ctx, tx, `SELECT `+userColumns+` FROM users WHERE id = $1 AND `+s.d.orgRef()+` = $2`+s.d.ForUpdate, id, s.org), s.d.Times())
	if errors.Is(err, errNoRows) {
		return 0, nil, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	return pk, u, s.err(ctx, "read user", err)
}

// keys carries out kc for user id in tx: it refuses a claim of a key
// another user holds, and stores the cut-offs. A claim holds the key's
// lock until commit, so nobody can claim it between the check and then.
func (s SQLStore) keys(ctx context.Context, tx WriteTx, id string, kc KeyChange) error {
	if kc.Claim != "" {
		if err := tx.LockKey(ctx, s.qual(kc.Claim)); err != nil {
			return err
		}
		var other string
		err := queryRow(ctx, tx, `SELECT id FROM users WHERE `+s.d.keyExpr(s.match.Attribute)+` = $1 AND id <> $2 AND `+s.d.orgRef()+` = $3 LIMIT 1`,
			kc.Claim, id, s.org).Scan(&other)
		if err == nil {
			return s.match.TakenError(id, kc.Claim, other)
		}
		if !errors.Is(err, errNoRows) {
			return s.err(ctx, "check match key", err)
		}
	}
	if len(kc.Cutoffs) == 0 {
		return nil
	}
	cs := make([]KeyCutoff, len(kc.Cutoffs))
	for i, c := range kc.Cutoffs {
		c.Key, c.Org = s.qual(c.Key), s.org
		cs[i] = c
	}
	return tx.StoreCutoffs(ctx, cs)
}

// CreateGroup implements Store. Every member must be a stored user, else
// the error wraps ErrUnknownMember and nothing is written. Events:
// group.created with the attributes, then group.member_added with every
// member (sorted) if there are any.
func (s SQLStore) CreateGroup(ctx context.Context, g *Group, actor string) ([]Event, error) {
	if g == nil || g.ID == "" || g.DisplayName == "" {
		return nil, errors.New("create group: id and displayName are required")
	}
	ng := StoredGroup(g)
	members := SortedUnique(ng.Members)
	ng.Members = nil
	return s.write(ctx, "create group", func(tx WriteTx) error {
		var gpk int64
		err := queryRow(ctx, tx, `INSERT INTO groups
			(id, display_name, display_name_lower, external_id, doc, version, created, last_modified, org)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING pk`,
			ng.ID, ng.DisplayName, strings.ToLower(ng.DisplayName), ng.ExternalID, ng.Doc, ng.Version,
			s.d.Time(ng.Created), s.d.Time(ng.LastModified), s.org).Scan(&gpk)
		if s.d.Unique(err) {
			return fmt.Errorf("create group %s: %w", ng.ID, ErrConflict)
		}
		if err != nil {
			return s.err(ctx, "create group", err)
		}
		if len(members) > 0 {
			if err := tx.AddMembers(ctx, gpk, members); err != nil {
				return err
			}
		}
		return s.appendEvents(ctx, tx, groupEvents(EventGroupCreated, ng.ID, actor, ng, memberDiff{added: members})...)
	})
}

// UpdateGroup implements Store. fn gets a copy of the current group with
// its Members. Only the difference between the old and new member sets is
// written (a group of 10,000 gaining one member inserts one row). The ID and
// Created stay, and Version becomes the current Version+1 when anything
// changed. If neither the attributes (DisplayName, ExternalID, Doc) nor the
// member set changed, nothing is written and no events are returned.
//
// Events, in this order: group.updated (attributes, Members nil) if an
// attribute changed; group.member_added with the added IDs; then
// group.member_removed with the removed IDs.
func (s SQLStore) UpdateGroup(ctx context.Context, id string, fn func(cur *Group) (*Group, error), actor string) ([]Event, error) {
	return s.write(ctx, "update group", func(tx WriteTx) error {
		gpk, cur, memberPK, err := s.lockGroup(ctx, tx, id)
		if err != nil {
			return err
		}
		ng, err := callUpdate("group", id, cur, fn, StoredGroup)
		if err != nil {
			return err
		}
		ng.ID, ng.Created = cur.ID, cur.Created
		diff := diffMembers(cur.Members, memberPK, ng.Members)
		attrs := groupAttrsChanged(cur, ng)
		if !attrs && diff.none() { // SameGroup
			return nil
		}
		if err := s.writeMembers(ctx, tx, gpk, diff); err != nil {
			return err
		}
		ng.Version = cur.Version + 1
		if err := tx.Exec(ctx, `UPDATE groups SET display_name = $1, display_name_lower = $2, external_id = $3,
			doc = $4, version = $5, last_modified = $6 WHERE pk = $7`,
			ng.DisplayName, strings.ToLower(ng.DisplayName), ng.ExternalID, ng.Doc, ng.Version, s.d.Time(ng.LastModified), gpk); err != nil {
			return s.err(ctx, "update group", err)
		}
		ng.Members = nil
		if !attrs {
			ng = nil
		}
		return s.appendEvents(ctx, tx, groupEvents(EventGroupUpdated, id, actor, ng, diff)...)
	})
}

// DeleteGroup implements Store. fn gets the current group with its Members.
func (s SQLStore) DeleteGroup(ctx context.Context, id string, fn func(cur *Group) error, actor string) ([]Event, error) {
	return s.write(ctx, "delete group", func(tx WriteTx) error {
		gpk, cur, _, err := s.lockGroup(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		if err := tx.Exec(ctx, `DELETE FROM groups WHERE pk = $1`, gpk); err != nil {
			return s.err(ctx, "delete group", err)
		}
		return s.appendEvents(ctx, tx, Event{Kind: EventGroupDeleted, ResourceType: "Group", ResourceID: id, Actor: actor})
	})
}

// lockGroup reads a group, locking its row for the rest of the
// transaction, with its members and their user keys.
func (s SQLStore) lockGroup(ctx context.Context, tx WriteTx, id string) (int64, *Group, map[string]int64, error) {
	g, gpk, err := scanGroup(queryRow(ctx, tx, `SELECT `+groupColumns+` FROM groups WHERE id = $1 AND `+s.d.orgRef()+` = $2`+s.d.ForUpdate, id, s.org), s.d.Times())
	if errors.Is(err, errNoRows) {
		return 0, nil, nil, fmt.Errorf("group %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, nil, nil, s.err(ctx, "read group", err)
	}
	memberPK := map[string]int64{}
	err = s.each(ctx, tx, "read members", func(rows Rows) error {
		var upk int64
		var uid string
		if err := rows.Scan(&upk, &uid); err != nil {
			return s.err(ctx, "read members", err)
		}
		memberPK[uid] = upk
		g.Members = append(g.Members, uid)
		return nil
	}, `SELECT m.user_pk, u.id FROM group_members m JOIN users u ON u.pk = m.user_pk
		WHERE m.group_pk = $1 ORDER BY m.user_pk`, gpk)
	if err != nil {
		return 0, nil, nil, err
	}
	return gpk, g, memberPK, nil
}

// memberDiff is what a write does to a group's members: the IDs added and
// removed, each sorted, and the removed users' keys.
type memberDiff struct {
	added, removed []string
	removedPK      []int64
}

// none reports that the diff adds and removes nothing.
func (d memberDiff) none() bool { return len(d.added) == 0 && len(d.removed) == 0 }

// diffMembers is the one member diff: from the current members (with their
// user keys) to next, which may repeat IDs.
func diffMembers(cur []string, memberPK map[string]int64, next []string) memberDiff {
	var d memberDiff
	newSet := make(map[string]struct{}, len(next))
	for _, m := range next {
		if _, dup := newSet[m]; dup {
			continue
		}
		newSet[m] = struct{}{}
		if _, had := memberPK[m]; !had {
			d.added = append(d.added, m)
		}
	}
	for _, m := range cur {
		if _, keep := newSet[m]; !keep {
			d.removed = append(d.removed, m)
		}
	}
	slices.Sort(d.added)
	slices.Sort(d.removed)
	for _, m := range d.removed {
		d.removedPK = append(d.removedPK, memberPK[m])
	}
	return d
}

// writeMembers writes a member diff of group gpk.
func (s SQLStore) writeMembers(ctx context.Context, tx WriteTx, gpk int64, d memberDiff) error {
	if len(d.added) > 0 {
		if err := tx.AddMembers(ctx, gpk, d.added); err != nil {
			return err
		}
	}
	if len(d.removedPK) > 0 {
		return tx.RemoveMembers(ctx, gpk, d.removedPK)
	}
	return nil
}

// groupEvents are the events of a group write, in order: kind
// (group.created or group.updated) with attrs unless they are nil (Members
// nil), group.member_added, group.member_removed, each if needed.
func groupEvents(kind, id, actor string, attrs *Group, d memberDiff) []Event {
	var evs []Event
	if attrs != nil {
		evs = append(evs, Event{Kind: kind, ResourceType: "Group", ResourceID: id, Actor: actor, Group: attrs})
	}
	if len(d.added) > 0 {
		evs = append(evs, Event{Kind: EventGroupMemberAdded, ResourceType: "Group", ResourceID: id, Actor: actor, Members: d.added})
	}
	if len(d.removed) > 0 {
		evs = append(evs, Event{Kind: EventGroupMemberRemoved, ResourceType: "Group", ResourceID: id, Actor: actor, Members: d.removed})
	}
	return evs
}

// appendEvents appends evs at the transaction's time, in s's organization.
func (s SQLStore) appendEvents(ctx context.Context, tx WriteTx, evs ...Event) error {
	for _, e := range evs {
		e.Time, e.Org = tx.Now(), s.org
		if err := tx.Append(ctx, e); err != nil {
			return err
		}
	}
	return nil
}
