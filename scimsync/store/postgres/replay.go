package postgres

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// replayPruneEvery is how often a replica deletes expired replay cache rows.
const replayPruneEvery = time.Minute

// ReplayCache is the SAML replay cache in the store's database (the
// replay_cache table), shared by every replica: an assertion accepted by
// one is refused by all. It satisfies samlsp.ReplayCache; it is not SCIM,
// and shares only the database with the directory.
type ReplayCache struct {
	pool      *pgxpool.Pool
	now       func() time.Time
	lastPrune atomic.Int64 // unix ms of the last prune
}

// ReplayCache is the shared replay cache in s's database.
func (s *Store) ReplayCache() *ReplayCache { return s.replay }

// Seen records id until expires and reports whether it was already
// recorded and not yet expired. Of two replicas recording the same ID at
// once, exactly one sees false. An expired row counts as absent (it is
// taken over), and expired rows are pruned about once a minute per replica.
func (c *ReplayCache) Seen(ctx context.Context, id string, expires time.Time) (bool, error) {
	now := c.now()
	var fresh bool
	err := c.pool.QueryRow(ctx, `INSERT INTO replay_cache AS r (id, expires) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET expires = excluded.expires WHERE r.expires <= $3
		RETURNING true`, id, expires, now).Scan(&fresh)
	seen := errors.Is(err, pgx.ErrNoRows) // a live row: neither inserted nor taken over
	if err != nil && !seen {
		return false, dbErr(ctx, "replay cache", err)
	}
	if last := c.lastPrune.Load(); now.UnixMilli()-last >= replayPruneEvery.Milliseconds() &&
		c.lastPrune.CompareAndSwap(last, now.UnixMilli()) {
		// Best effort: the answer is already known, and a failed prune is
		// retried a minute later; failing the login for it would be wrong.
		_, _ = c.pool.Exec(ctx, `DELETE FROM replay_cache WHERE expires <= $1`, now)
	}
	return seen, nil
}
