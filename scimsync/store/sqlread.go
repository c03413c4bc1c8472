package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// The reads of SQLStore: the same statements on every backend.

// Snapshot implements Store. Everything is read in one read transaction,
// so Seq matches the users and groups exactly (on PostgreSQL because
// appends commit in seq order: every event up to Seq is in it, none after).
// Users and groups come in creation order, without their Doc: the
// directory view does not read it, and at 100,000 users the documents were
// half of the memory the load held at once (bench/scim-memory.sh).
func (s SQLStore) Snapshot(ctx context.Context) (*Snapshot, error) {
	var snap *Snapshot
	err := s.b.Read(ctx, "snapshot", func(tx DB) (err error) {
		snap, err = s.snapshot(ctx, tx)
		return err
	})
	return snap, err
}

func (s SQLStore) snapshot(ctx context.Context, tx DB) (*Snapshot, error) {
	snap := &Snapshot{}
	var nUsers, nGroups int
	if err := queryRow(ctx, tx, `SELECT COALESCE((SELECT MAX(seq) FROM events), 0),
		(SELECT COUNT(*) FROM users WHERE org = $1), (SELECT COUNT(*) FROM groups WHERE org = $1)`, s.org).Scan(&snap.Seq, &nUsers, &nGroups); err != nil {
		return nil, s.err(ctx, "snapshot", err)
	}
	userIDs := make(map[int64]string, nUsers)
	snap.Users = make([]*User, 0, nUsers)
	ts := s.d.Times()
	err := s.each(ctx, tx, "snapshot users", func(rows Rows) error {
		u, pk, err := scanUser(rows, ts)
		if err != nil {
			return s.err(ctx, "snapshot users", err)
		}
		userIDs[pk] = u.ID
		snap.Users = append(snap.Users, u)
		return nil
	}, `SELECT `+snapshotUserColumns+` FROM users WHERE org = $1 ORDER BY pk`, s.org)
	if err != nil {
		return nil, err
	}
	groups := make(map[int64]*Group, nGroups)
	snap.Groups = make([]*Group, 0, nGroups)
	err = s.each(ctx, tx, "snapshot groups", func(rows Rows) error {
		g, pk, err := scanGroup(rows, ts)
		if err != nil {
			return s.err(ctx, "snapshot groups", err)
		}
		groups[pk] = g
		snap.Groups = append(snap.Groups, g)
		return nil
	}, `SELECT `+snapshotGroupColumns+` FROM groups WHERE org = $1 ORDER BY pk`, s.org)
	if err != nil {
		return nil, err
	}
	if err := s.snapshotMembers(ctx, tx, userIDs, groups); err != nil {
		return nil, err
	}
	if snap.Cutoffs, err = s.cutoffs(ctx, tx); err != nil {
		return nil, err
	}
	if snap.RevokedSessions, err = s.revokedSessions(ctx, tx); err != nil {
		return nil, err
	}
	return snap, nil
}

// snapshotMembers fills the groups' Members. The rows come unordered (a
// sort of every membership would cost more than the rest together), but a
// group's rows mostly come together; member IDs share the strings of the
// users read.
func (s SQLStore) snapshotMembers(ctx context.Context, tx DB, userIDs map[int64]string, groups map[int64]*Group) error {
	var g *Group
	lastGPK := int64(-1)
	return s.each(ctx, tx, "snapshot members", func(rows Rows) error {
		var gpk, upk int64
		if err := rows.Scan(&gpk, &upk); err != nil {
			return s.err(ctx, "snapshot members", err)
		}
		if gpk != lastGPK {
			g, lastGPK = groups[gpk], gpk
		}
		if uid, ok := userIDs[upk]; ok && g != nil {
			g.Members = append(g.Members, uid)
		}
		return nil
	}, `SELECT m.group_pk, m.user_pk FROM group_members m JOIN groups g ON g.pk = m.group_pk WHERE g.org = $1`, s.org)
}

// cutoffs reads the match key cut-offs that have not expired.
func (s SQLStore) cutoffs(ctx context.Context, tx DB) ([]KeyCutoff, error) {
	var out []KeyCutoff
	ts := s.d.Times()
	err := s.each(ctx, tx, "snapshot match key cut-offs", func(rows Rows) error {
		var c KeyCutoff
		if err := rows.Scan(&c.Key, ts.Dest(0), ts.Dest(1), &c.Deleted); err != nil {
			return s.err(ctx, "snapshot match key cut-offs", err)
		}
		c.Key, c.Org = s.unqual(c.Key), s.org
		c.VoidsBefore, c.Expires = ts.At(0), ts.At(1)
		out = append(out, c)
		return nil
	}, `SELECT match_key, voids_before, expires, deleted FROM match_key_cutoffs WHERE expires > $1 AND org = $2 ORDER BY match_key`,
		s.d.Time(s.now()), s.org)
	return out, err
}

// EventsAfter implements Store. The event log is one for every
// organization: the events come whatever s's organization, each with its
// Org, for the follower to hand to that organization's directory.
func (s SQLStore) EventsAfter(ctx context.Context, seq int64, limit int) ([]Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("events after %d: limit %d must be positive", seq, limit)
	}
	return s.readEvents(ctx, s.b.Pool(), `WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
}

// readEvents reads the events of a WHERE, ORDER and LIMIT clause with args.
func (s SQLStore) readEvents(ctx context.Context, db DB, clauses string, args ...any) ([]Event, error) {
	var evs []Event
	ts := s.d.Times()
	err := s.each(ctx, db, "read events", func(rows Rows) error {
		var e Event
		var data []byte
		if err := rows.Scan(&e.Seq, ts.Dest(0), &e.Kind, &e.ResourceType, &e.ResourceID, &e.Actor, &data, &e.Org); err != nil {
			return s.err(ctx, "read events", err)
		}
		e.Time = ts.At(0)
		if len(data) > 0 {
			if err := DecodeEventData(data, &e); err != nil {
				return fmt.Errorf("read events: event %d: %w", e.Seq, err)
			}
		}
		evs = append(evs, e)
		return nil
	}, `SELECT seq, time, kind, resource_type, resource_id, actor, data, org FROM events `+clauses, args...)
	return evs, err
}

// GetUser implements Reader.
func (s SQLStore) GetUser(ctx context.Context, id string) (*User, error) {
	u, _, err := scanUser(queryRow(ctx, s.b.Pool(), `SELECT `+userColumns+` FROM users WHERE id = $1 AND `+s.d.orgRef()+` = $2`, id, s.org), s.d.Times())
	if errors.Is(err, errNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, s.err(ctx, "get user", err)
	}
	return u, nil
}

// GetGroup implements Reader.
func (s SQLStore) GetGroup(ctx context.Context, id string) (*Group, error) {
	var g *Group
	err := s.b.Read(ctx, "get group", func(tx DB) error {
		var pk int64
		var err error
		g, pk, err = scanGroup(queryRow(ctx, tx, `SELECT `+groupColumns+` FROM groups WHERE id = $1 AND `+s.d.orgRef()+` = $2`, id, s.org), s.d.Times())
		if errors.Is(err, errNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return s.err(ctx, "get group", err)
		}
		return s.loadMembers(ctx, tx, map[int64]*Group{pk: g})
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// loadMembers fills Members of the groups keyed by primary key, in the
// users' creation order.
func (s SQLStore) loadMembers(ctx context.Context, tx DB, groups map[int64]*Group) error {
	if len(groups) == 0 {
		return nil
	}
	pks := make([]string, 0, len(groups))
	for pk := range groups {
		pks = append(pks, strconv.FormatInt(pk, 10)) // our own integers: safe to inline
	}
	return s.each(ctx, tx, "read group members", func(rows Rows) error {
		var gpk int64
		var uid string
		if err := rows.Scan(&gpk, &uid); err != nil {
			return s.err(ctx, "read group members", err)
		}
		if g := groups[gpk]; g != nil {
			g.Members = append(g.Members, uid)
		}
		return nil
	}, `SELECT m.group_pk, u.id FROM group_members m JOIN users u ON u.pk = m.user_pk
		WHERE m.group_pk IN (`+strings.Join(pks, ",")+`) ORDER BY m.group_pk, u.pk`)
}

// ListUsers implements Reader. The count and the page come from one
// consistent state.
func (s SQLStore) ListUsers(ctx context.Context, q Query) ([]*User, int, error) {
	where, args, err := s.userWhere(q)
	if err != nil {
		return nil, 0, err
	}
	var users []*User
	ts := s.d.Times()
	total, err := s.list(ctx, "list users", "users"+where, args, q, func(tx DB, query string, args []any) error {
		return s.each(ctx, tx, "list users", func(rows Rows) error {
			u, _, err := scanUser(rows, ts)
			if err != nil {
				return s.err(ctx, "list users", err)
			}
			users = append(users, u)
			return nil
		}, `SELECT `+userColumns+` FROM `+query, args...)
	})
	return users, total, err
}

// ListGroups implements Reader.
func (s SQLStore) ListGroups(ctx context.Context, q Query, withMembers bool) ([]*Group, int, error) {
	where, args, err := s.groupWhere(q)
	if err != nil {
		return nil, 0, err
	}
	var groups []*Group
	ts := s.d.Times()
	total, err := s.list(ctx, "list groups", "groups"+where, args, q, func(tx DB, query string, args []any) error {
		byPK := map[int64]*Group{}
		err := s.each(ctx, tx, "list groups", func(rows Rows) error {
			g, pk, err := scanGroup(rows, ts)
			if err != nil {
				return s.err(ctx, "list groups", err)
			}
			groups = append(groups, g)
			byPK[pk] = g
			return nil
		}, `SELECT `+groupColumns+` FROM `+query, args...)
		if err != nil || !withMembers {
			return err
		}
		return s.loadMembers(ctx, tx, byPK)
	})
	return groups, total, err
}

// list counts the rows of from (a table and its WHERE clause, with args)
// and runs page with the rest of the query of q's page (from, its order
// and its limit) and args, in one read transaction.
func (s SQLStore) list(ctx context.Context, op, from string, args []any, q Query,
	page func(tx DB, query string, args []any) error) (int, error) {
	var total int
	err := s.b.Read(ctx, op, func(tx DB) error {
		if err := queryRow(ctx, tx, `SELECT COUNT(*) FROM `+from, args...).Scan(&total); err != nil {
			return s.err(ctx, op+": count", err)
		}
		return page(tx, from+` ORDER BY pk`+s.limit(q), args)
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}

// EachUser implements Reader.
func (s SQLStore) EachUser(ctx context.Context, q Query, fn func(*User) error) error {
	where, args, err := s.userWhere(q)
	if err != nil {
		return err
	}
	ts := s.d.Times()
	return s.b.Read(ctx, "scan users", func(tx DB) error {
		return s.each(ctx, tx, "scan users", func(rows Rows) error {
			u, _, err := scanUser(rows, ts)
			if err != nil {
				return s.err(ctx, "scan users", err)
			}
			return fn(u)
		}, `SELECT `+userColumns+` FROM users`+where+` ORDER BY pk`, args...)
	})
}

// userWhere is the WHERE clause of q on users, with its arguments.
func (s SQLStore) userWhere(q Query) (string, []any, error) {
	return where(q, "list users", s.org, s.d.orgRef(), s.userCond)
}

// userCond is the SQL of one equality on users, its argument numbered n.
func (s SQLStore) userCond(c Cond, n string) (string, any, bool) {
	switch c.Attr {
	case "username", "email": // as match keys: ASCII case only (matchkey.go)
		return s.d.keyExpr(QueryMatchAttribute(c.Attr)) + " = " + n, identity.MatchKey(c.Value), true
	case "emails":
		// The email index; and, for a user that a replica of the version
		// before it wrote, the primary email column.
		return s.d.in("pk", "SELECT user_pk FROM user_emails WHERE value_key = "+n+
			" UNION SELECT pk FROM users WHERE "+s.d.keyExpr("email")+" = "+n), identity.MatchKey(c.Value), true
	case "nameprefix":
		// lower(user_name), not user_name_lower, which holds another
		// organization's names qualified (migration 0008).
		return `(lower(user_name) LIKE ` + n + ` ESCAPE '\' OR email_lower LIKE ` + n + ` ESCAPE '\')`, LikePrefix(c.Value), true
	case "externalid":
		return "external_id = " + n, c.Value, true
	case "id":
		return "id = " + n, c.Value, true
	}
	return "", nil, false
}

// groupWhere is userWhere for groups.
func (s SQLStore) groupWhere(q Query) (string, []any, error) {
	return where(q, "list groups", s.org, s.d.orgRef(), s.groupCond)
}

func (s SQLStore) groupCond(c Cond, n string) (string, any, bool) {
	switch c.Attr {
	case "displayname":
		return "display_name_lower = " + n, strings.ToLower(c.Value), true
	case "externalid":
		return "external_id = " + n, c.Value, true
	case "id":
		return "id = " + n, c.Value, true
	case "member":
		return s.d.in("pk", `SELECT m.group_pk FROM group_members m JOIN users u ON u.pk = m.user_pk WHERE u.id = `+n), c.Value, true
	}
	return "", nil, false
}

// where builds the WHERE clause of q in organization org (its rows only)
// from cond, which gives the SQL of one equality with its argument
// numbered n ("$2"), or false for an attribute it does not know.
func where(q Query, op, org, orgRef string, cond func(c Cond, n string) (string, any, bool)) (string, []any, error) {
	alts := q.Any
	if len(alts) == 0 {
		if q.Attr == "" {
			return " WHERE org = $1", []any{org}, nil
		}
		alts = [][]Cond{{{Attr: q.Attr, Value: q.Value}}}
	}
	args := []any{org}
	ors := make([]string, 0, len(alts))
	for _, all := range alts {
		if len(all) == 0 {
			return "", nil, fmt.Errorf("%s: a query alternative has no condition", op)
		}
		ands := make([]string, 0, len(all))
		for _, c := range all {
			sql, arg, ok := cond(c, "$"+strconv.Itoa(len(args)+1))
			if !ok {
				return "", nil, fmt.Errorf("%s: unknown query attribute %q", op, c.Attr)
			}
			ands = append(ands, sql)
			args = append(args, arg)
		}
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	// With conditions, orgRef keeps the planner on their indexes.
	return " WHERE " + orgRef + " = $1 AND (" + strings.Join(ors, " OR ") + ")", args, nil
}

// limit is q's LIMIT and OFFSET clause, "" for all rows.
func (s SQLStore) limit(q Query) string {
	if q.Limit <= 0 && q.Offset <= 0 {
		return ""
	}
	limit := s.d.NoLimit
	if q.Limit > 0 {
		limit = strconv.Itoa(q.Limit)
	}
	return " LIMIT " + limit + " OFFSET " + strconv.Itoa(max(q.Offset, 0))
}

// scanUser reads a row of userColumns, its times through ts.
func scanUser(r Row, ts Times) (*User, int64, error) {
	var u User
	var pk int64
	if err := r.Scan(&pk, &u.ID, &u.UserName, &u.ExternalID, &u.Email, &u.Active, &u.Doc, &u.Version,
		ts.Dest(0), ts.Dest(1), ts.Dest(2)); err != nil {
		return nil, 0, err
	}
	if len(u.Doc) == 0 {
		u.Doc = nil
	}
	u.Created, u.LastModified, u.ValidAfter = ts.At(0), ts.At(1), ts.At(2)
	return &u, pk, nil
}

// scanGroup reads a row of groupColumns, its times through ts.
func scanGroup(r Row, ts Times) (*Group, int64, error) {
	var g Group
	var pk int64
	if err := r.Scan(&pk, &g.ID, &g.DisplayName, &g.ExternalID, &g.Doc, &g.Version, ts.Dest(0), ts.Dest(1)); err != nil {
		return nil, 0, err
	}
	if len(g.Doc) == 0 {
		g.Doc = nil
	}
	g.Created, g.LastModified = ts.At(0), ts.At(1)
	return &g, pk, nil
}
