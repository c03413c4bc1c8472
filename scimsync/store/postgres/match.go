package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// keyExpr is the SQL for a user's match key under each attribute, exactly
// as migration 0003 indexes it: translate() folds the ASCII letters only,
// as identity.MatchKey does, whatever the collation.
var keyExpr = map[string]string{
	"userName":   `translate(user_name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`,
	"email":      `translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`,
	"externalId": `translate(external_id, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`,
}

// keyLockClass ("pmky") is the first key of the advisory lock that
// serialises claims of one match key across replicas; the second is the
// key's hashtext. (A collision of two keys' hashes only makes their writes
// wait for each other.)
const keyLockClass int32 = 0x706d6b79

// keyWrite carries out kc for user id in w: it refuses a claim of a key
// another user holds, and stores the cut-offs (pruning expired ones).
// Two replicas claiming one key at once serialise on the key's lock, held
// to commit, so the second one's check (READ COMMITTED: a new snapshot per
// statement) sees the first one's user. The lock is taken after the row
// lock of the user being written and before the event lock, and a write
// claims at most one key, so it cannot deadlock with either.
func (s *Store) keyWrite(ctx context.Context, w *txn, id string, kc store.KeyChange) error {
	if kc.Claim != "" {
		if _, err := w.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, keyLockClass, kc.Claim); err != nil {
			return dbErr(ctx, "lock match key", err)
		}
		var other string
		err := w.tx.QueryRow(ctx, `SELECT id FROM users WHERE `+keyExpr[s.match.Attribute]+` = $1 AND id <> $2 LIMIT 1`,
			kc.Claim, id).Scan(&other)
		if err == nil {
			return s.match.TakenError(id, kc.Claim, other)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return dbErr(ctx, "check match key", err)
		}
	}
	if len(kc.Cutoffs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM match_key_cutoffs WHERE expires <= $1`, w.now)
	for _, c := range kc.Cutoffs {
		b.Queue(`INSERT INTO match_key_cutoffs (match_key, voids_before, expires, deleted) VALUES ($1, $2, $3, $4)
			ON CONFLICT (match_key) DO UPDATE SET
				voids_before = GREATEST(match_key_cutoffs.voids_before, EXCLUDED.voids_before),
				expires = GREATEST(match_key_cutoffs.expires, EXCLUDED.expires),
				deleted = match_key_cutoffs.deleted OR EXCLUDED.deleted`, c.Key, c.VoidsBefore, c.Expires, c.Deleted)
	}
	return dbErr(ctx, "store match key cut-offs", w.tx.SendBatch(ctx, b).Close())
}

// readCutoffs reads the cut-offs that have not expired at now.
func readCutoffs(ctx context.Context, tx pgx.Tx, now time.Time) ([]store.KeyCutoff, error) {
	var out []store.KeyCutoff
	var c store.KeyCutoff
	rows, _ := tx.Query(ctx, `SELECT match_key, voids_before, expires, deleted FROM match_key_cutoffs
		WHERE expires > $1 ORDER BY match_key`, now)
	_, err := pgx.ForEachRow(rows, []any{&c.Key, &c.VoidsBefore, &c.Expires, &c.Deleted}, func() error {
		out = append(out, store.KeyCutoff{Key: c.Key, VoidsBefore: c.VoidsBefore.UTC(), Expires: c.Expires.UTC(), Deleted: c.Deleted})
		return nil
	})
	if err != nil {
		return nil, dbErr(ctx, "snapshot match key cut-offs", err)
	}
	return out, nil
}
