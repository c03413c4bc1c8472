package scimsync

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"strings"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

var _ Reader = (*SQLiteStore)(nil)

// GetUser implements Reader.
func (s *SQLiteStore) GetUser(ctx context.Context, id string) (*User, error) {
	u, _, err := sqliteScanUser(s.r.QueryRowContext(ctx, `SELECT `+sqliteUserColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, sqliteErr("get user", err)
	}
	return u, nil
}

// GetGroup implements Reader.
func (s *SQLiteStore) GetGroup(ctx context.Context, id string) (*Group, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, sqliteErr("get group", err)
	}
	defer tx.Rollback()
	g, pk, err := sqliteScanGroup(tx.QueryRowContext(ctx, `SELECT `+sqliteGroupColumns+` FROM groups WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, sqliteErr("get group", err)
	}
	if err := sqliteLoadMembers(ctx, tx, map[int64]*Group{pk: g}); err != nil {
		return nil, sqliteErr("get group members", err)
	}
	return g, nil
}

// sqliteLoadMembers fills Members of the groups keyed by primary key.
func sqliteLoadMembers(ctx context.Context, q sqliteQuerier, groups map[int64]*Group) error {
	if len(groups) == 0 {
		return nil
	}
	pks := make([]string, 0, len(groups))
	for pk := range groups {
		pks = append(pks, fmt.Sprint(pk))
	}
	return sqliteEach(ctx, q, func(rows *sql.Rows) error {
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

func userWhere(q Query) (string, []any, error) {
	switch q.Attr {
	case "":
		return "", nil, nil
	case "username", "email": // as match keys: ASCII case only (matchkey.go)
		return " WHERE " + sqliteKeyExpr[store.QueryMatchAttribute(q.Attr)] + " = ?", []any{identity.MatchKey(q.Value)}, nil
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

func groupWhere(q Query) (string, []any, error) {
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

func limitClause(q Query) string {
	if q.Limit <= 0 && q.Offset <= 0 {
		return ""
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	return fmt.Sprintf(" LIMIT %d OFFSET %d", limit, max(q.Offset, 0))
}

// ListUsers implements Reader.
func (s *SQLiteStore) ListUsers(ctx context.Context, q Query) ([]*User, int, error) {
	where, args, err := userWhere(q)
	if err != nil {
		return nil, 0, err
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, sqliteErr("list users", err)
	}
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`+where, args...).Scan(&total); err != nil {
		return nil, 0, sqliteErr("count users", err)
	}
	var users []*User
	err = sqliteEach(ctx, tx, func(rows *sql.Rows) error {
		u, _, err := sqliteScanUser(rows)
		if err == nil {
			users = append(users, u)
		}
		return err
	}, `SELECT `+sqliteUserColumns+` FROM users`+where+` ORDER BY pk`+limitClause(q), args...)
	if err != nil {
		return nil, 0, sqliteErr("list users", err)
	}
	return users, total, nil
}

// scanStopped carries fn's error out of sqliteEach unchanged.
type scanStopped struct{ err error }

func (e scanStopped) Error() string { return e.err.Error() }

// EachUser implements Reader.
func (s *SQLiteStore) EachUser(ctx context.Context, q Query, fn func(*User) error) error {
	where, args, err := userWhere(q)
	if err != nil {
		return err
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return sqliteErr("scan users", err)
	}
	defer tx.Rollback()
	err = sqliteEach(ctx, tx, func(rows *sql.Rows) error {
		u, _, err := sqliteScanUser(rows)
		if err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return scanStopped{err}
		}
		return nil
	}, `SELECT `+sqliteUserColumns+` FROM users`+where+` ORDER BY pk`, args...)
	var stopped scanStopped
	switch {
	case err == nil:
		return nil
	case errors.As(err, &stopped):
		return stopped.err
	}
	return sqliteErr("scan users", err)
}

// ListGroups implements Reader.
func (s *SQLiteStore) ListGroups(ctx context.Context, q Query, withMembers bool) ([]*Group, int, error) {
	where, args, err := groupWhere(q)
	if err != nil {
		return nil, 0, err
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, sqliteErr("list groups", err)
	}
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM groups`+where, args...).Scan(&total); err != nil {
		return nil, 0, sqliteErr("count groups", err)
	}
	var groups []*Group
	byPK := map[int64]*Group{}
	err = sqliteEach(ctx, tx, func(rows *sql.Rows) error {
		g, pk, err := sqliteScanGroup(rows)
		if err == nil {
			groups = append(groups, g)
			byPK[pk] = g
		}
		return err
	}, `SELECT `+sqliteGroupColumns+` FROM groups`+where+` ORDER BY pk`+limitClause(q), args...)
	if err != nil {
		return nil, 0, sqliteErr("list groups", err)
	}
	if withMembers {
		if err := sqliteLoadMembers(ctx, tx, byPK); err != nil {
			return nil, 0, sqliteErr("list group members", err)
		}
	}
	return groups, total, nil
}
