package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// keyExpr is the SQL for a user's match key under each attribute;
// migration 0003 indexes each one. lower() folds ASCII only, as
// identity.MatchKey does.
var keyExpr = map[string]string{
	"userName":   "lower(user_name)",
	"email":      "lower(email)",
	"externalId": "lower(external_id)",
}

// keyWrite carries out kc for user id in tx: it refuses a claim of a key
// another user holds, and stores the cut-offs (pruning expired ones).
// Writes are serialised, so nobody can claim the key between the check and
// the commit.
func (s *Store) keyWrite(ctx context.Context, tx *sql.Tx, id string, kc store.KeyChange, now time.Time) error {
	if kc.Claim != "" {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE `+keyExpr[s.match.Attribute]+` = ? AND id <> ? LIMIT 1`,
			kc.Claim, id).Scan(&other)
		if err == nil {
			return s.match.TakenError(id, kc.Claim, other)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return dbErr("check match key", err)
		}
	}
	if len(kc.Cutoffs) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM match_key_cutoffs WHERE expires <= ?`, now.UnixMilli()); err != nil {
		return dbErr("prune match key cut-offs", err)
	}
	for _, c := range kc.Cutoffs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO match_key_cutoffs (match_key, voids_before, expires, deleted)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (match_key) DO UPDATE SET voids_before = max(voids_before, excluded.voids_before),
				expires = max(expires, excluded.expires), deleted = max(deleted, excluded.deleted)`,
			c.Key, c.VoidsBefore.UnixMilli(), c.Expires.UnixMilli(), c.Deleted); err != nil {
			return dbErr("store match key cut-off", err)
		}
	}
	return nil
}

// readCutoffs reads the cut-offs that have not expired at now.
func readCutoffs(ctx context.Context, q querier, now time.Time) ([]store.KeyCutoff, error) {
	var out []store.KeyCutoff
	err := each(ctx, q, func(rows *sql.Rows) error {
		var c store.KeyCutoff
		var before, expires int64
		if err := rows.Scan(&c.Key, &before, &expires, &c.Deleted); err != nil {
			return err
		}
		c.VoidsBefore, c.Expires = time.UnixMilli(before).UTC(), time.UnixMilli(expires).UTC()
		out = append(out, c)
		return nil
	}, `SELECT match_key, voids_before, expires, deleted FROM match_key_cutoffs WHERE expires > ? ORDER BY match_key`,
		now.UnixMilli())
	if err != nil {
		return nil, dbErr("snapshot match key cut-offs", err)
	}
	return out, nil
}
