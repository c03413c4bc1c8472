package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

var _ store.Reader = (*Store)(nil)

// GetUser implements store.Reader.
func (s *Store) GetUser(ctx context.Context, id string) (*store.User, error) {
	u, _, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, dbErr("get user", err)
	}
	return u, nil
}

// GetGroup implements store.Reader.
func (s *Store) GetGroup(ctx context.Context, id string) (*store.Group, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, dbErr("get group", err)
	}
	defer tx.Rollback()
	g, pk, err := scanGroup(tx.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM groups WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, dbErr("get group", err)
	}
	if err := loadMembers(ctx, tx, map[int64]*store.Group{pk: g}); err != nil {
		return nil, dbErr("get group members", err)
	}
	return g, nil
}

// loadMembers fills Members of the groups keyed by primary key.
func loadMembers(ctx context.Context, q querier, groups map[int64]*store.Group) error {
	if len(groups) == 0 {
		return nil
	}
	pks := make([]string, 0, len(groups))
	for pk := range groups {
		pks = append(pks, fmt.Sprint(pk))
	}
	return each(ctx, q, func(rows *sql.Rows) error {
		var gpk int64
		var uid string
		if err := rows.Scan(&gpk, &uid); err != nil {
			return err
		}
		if g := groups[gpk]; g != nil {
			g.Members = append(g.Members, uid)
		}
		return nil
	}, `SELECT m.group_pk, u.id FROM group_members m JOIN users u ON u.pk = m.user_pk
		WHERE m.group_pk IN (`+strings.Join(pks, ",")+`) ORDER BY m.group_pk, u.pk`)
}

func userWhere(q store.Query) (string, []any, error) {
	switch q.Attr {
	case "":
		return "", nil, nil
	case "username", "email": // as match keys: ASCII case only (matchkey.go)
		return " WHERE " + keyExpr[store.QueryMatchAttribute(q.Attr)] + " = ?", []any{identity.MatchKey(q.Value)}, nil
	case "nameprefix":
		like := store.LikePrefix(q.Value)
		return ` WHERE (user_name_lower LIKE ? ESCAPE '\' OR email_lower LIKE ? ESCAPE '\')`, []any{like, like}, nil
	case "externalid":
		return " WHERE external_id = ?", []any{q.Value}, nil
	case "id":
		return " WHERE id = ?", []any{q.Value}, nil
	}
	return "", nil, fmt.Errorf("list users: unknown query attribute %q", q.Attr)
}

func groupWhere(q store.Query) (string, []any, error) {
	switch q.Attr {
	case "":
		return "", nil, nil
	case "displayname":
		return " WHERE display_name_lower = ?", []any{strings.ToLower(q.Value)}, nil
	case "externalid":
		return " WHERE external_id = ?", []any{q.Value}, nil
	case "id":
		return " WHERE id = ?", []any{q.Value}, nil
	case "member":
		return ` WHERE pk IN (SELECT m.group_pk FROM group_members m JOIN users u ON u.pk = m.user_pk WHERE u.id = ?)`,
			[]any{q.Value}, nil
	}
	return "", nil, fmt.Errorf("list groups: unknown query attribute %q", q.Attr)
}

func limitClause(q store.Query) string {
	if q.Limit <= 0 && q.Offset <= 0 {
		return ""
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	return fmt.Sprintf(" LIMIT %d OFFSET %d", limit, max(q.Offset, 0))
}

// ListUsers implements store.Reader.
func (s *Store) ListUsers(ctx context.Context, q store.Query) ([]*store.User, int, error) {
	where, args, err := userWhere(q)
	if err != nil {
		return nil, 0, err
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, dbErr("list users", err)
	}
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`+where, args...).Scan(&total); err != nil {
		return nil, 0, dbErr("count users", err)
	}
	var users []*store.User
	err = each(ctx, tx, func(rows *sql.Rows) error {
		u, _, err := scanUser(rows)
		if err == nil {
			users = append(users, u)
		}
		return err
	}, `SELECT `+userColumns+` FROM users`+where+` ORDER BY pk`+limitClause(q), args...)
	if err != nil {
		return nil, 0, dbErr("list users", err)
	}
	return users, total, nil
}

// scanStopped carries fn's error out of each unchanged.
type scanStopped struct{ err error }

func (e scanStopped) Error() string { return e.err.Error() }

// EachUser implements store.Reader.
func (s *Store) EachUser(ctx context.Context, q store.Query, fn func(*store.User) error) error {
	where, args, err := userWhere(q)
	if err != nil {
		return err
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return dbErr("scan users", err)
	}
	defer tx.Rollback()
	err = each(ctx, tx, func(rows *sql.Rows) error {
		u, _, err := scanUser(rows)
		if err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return scanStopped{err}
		}
		return nil
	}, `SELECT `+userColumns+` FROM users`+where+` ORDER BY pk`, args...)
	var stopped scanStopped
	switch {
	case err == nil:
		return nil
	case errors.As(err, &stopped):
		return stopped.err
	}
	return dbErr("scan users", err)
}

// ListGroups implements store.Reader.
func (s *Store) ListGroups(ctx context.Context, q store.Query, withMembers bool) ([]*store.Group, int, error) {
	where, args, err := groupWhere(q)
	if err != nil {
		return nil, 0, err
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, dbErr("list groups", err)
	}
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM groups`+where, args...).Scan(&total); err != nil {
		return nil, 0, dbErr("count groups", err)
	}
	var groups []*store.Group
	byPK := map[int64]*store.Group{}
	err = each(ctx, tx, func(rows *sql.Rows) error {
		g, pk, err := scanGroup(rows)
		if err == nil {
			groups = append(groups, g)
			byPK[pk] = g
		}
		return err
	}, `SELECT `+groupColumns+` FROM groups`+where+` ORDER BY pk`+limitClause(q), args...)
	if err != nil {
		return nil, 0, dbErr("list groups", err)
	}
	if withMembers {
		if err := loadMembers(ctx, tx, byPK); err != nil {
			return nil, 0, dbErr("list group members", err)
		}
	}
	return groups, total, nil
}
