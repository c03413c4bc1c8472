package store

import (
	"context"
	"errors"
	"time"
)

// The writes of SQLDeliveries: endpoints, the lease, pruning.

const endpointColumns = `url, config_hash, cursor, attempts, first_failure, next_attempt, disabled, disabled_status,
	last_success, last_failure, last_status, last_error, delivered, failed`

// scanEndpoint reads a row of endpointColumns.
func scanEndpoint(r Row, ts Times, ts2 Times) (Endpoint, error) {
	e := Endpoint{Org: DefaultOrg}
	err := r.Scan(&e.URL, &e.ConfigHash, &e.Cursor, &e.Attempts, ts.Dest(0), ts.Dest(1), ts.Dest(2), &e.DisabledStatus,
		ts2.Dest(0), ts2.Dest(1), &e.LastStatus, &e.LastError, &e.Delivered, &e.Failed)
	e.FirstFailure, e.NextAttempt, e.Disabled = ts.At(0), ts.At(1), ts.At(2)
	e.LastSuccess, e.LastFailure = ts2.At(0), ts2.At(1)
	return e, err
}

// Endpoints implements Deliveries.
func (d *SQLDeliveries) Endpoints(ctx context.Context) ([]Endpoint, error) {
	var out []Endpoint
	ts, ts2 := d.s.d.Times(), d.s.d.Times()
	err := d.s.each(ctx, d.s.b.Pool(), "read endpoints", func(rows Rows) error {
		e, err := scanEndpoint(rows, ts, ts2)
		if err != nil {
			return d.s.err(ctx, "read endpoints", err)
		}
		out = append(out, e)
		return nil
	}, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE org = $1 ORDER BY url`, DefaultOrg)
	return out, err
}

// OpenEndpoint implements Deliveries.
func (d *SQLDeliveries) OpenEndpoint(ctx context.Context, url, hash string, start int64) (Endpoint, error) {
	err := d.run(ctx, "open endpoint", []Statement{
		{`INSERT INTO webhook_endpoints (org, url, config_hash, cursor) VALUES ($1, $2, $3, $4)
			ON CONFLICT (org, url) DO NOTHING`, []any{DefaultOrg, url, hash, start}},
		{`UPDATE webhook_endpoints SET config_hash = $1, attempts = 0, first_failure = NULL, next_attempt = NULL,
			disabled = NULL, disabled_status = 0 WHERE org = $2 AND url = $3 AND config_hash <> $1`,
			[]any{hash, DefaultOrg, url}},
	})
	if err != nil {
		return Endpoint{}, err
	}
	e, err := scanEndpoint(queryRow(ctx, d.s.b.Pool(), `SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE org = $1 AND url = $2`, DefaultOrg, url), d.s.d.Times(), d.s.d.Times())
	return e, d.s.err(ctx, "open endpoint", err)
}

// SaveEndpoint implements Deliveries. The lease check and the update are
// one statement, so a holder whose lease expired cannot overwrite its
// successor's progress.
func (d *SQLDeliveries) SaveEndpoint(ctx context.Context, e Endpoint, lease, holder string) error {
	t := d.s.d.Time
	return d.run(ctx, "save endpoint", []Statement{{`UPDATE webhook_endpoints SET
			cursor = CASE WHEN cursor > $1 THEN cursor ELSE $1 END, attempts = $2, first_failure = $3, next_attempt = $4,
			disabled = $5, disabled_status = $6, last_success = $7, last_failure = $8, last_status = $9, last_error = $10,
			delivered = $11, failed = $12
		WHERE org = $13 AND url = $14 AND EXISTS (SELECT 1 FROM webhook_leases l
			WHERE l.org = $13 AND l.name = $15 AND l.holder = $16 AND l.expires > $17)`,
		[]any{e.Cursor, e.Attempts, t(e.FirstFailure), t(e.NextAttempt), t(e.Disabled), e.DisabledStatus,
			t(e.LastSuccess), t(e.LastFailure), e.LastStatus, e.LastError, e.Delivered, e.Failed,
			DefaultOrg, e.URL, lease, holder, t(d.s.now())}}})
}

// Lease implements Deliveries.
func (d *SQLDeliveries) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return false, errors.New("lease: name, holder and a positive ttl are required")
	}
	now := d.s.now()
	err := d.run(ctx, "take lease", []Statement{{`INSERT INTO webhook_leases (org, name, holder, expires)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (org, name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
		WHERE webhook_leases.holder = excluded.holder OR webhook_leases.expires <= $5`,
		[]any{DefaultOrg, name, holder, d.s.d.Time(now.Add(ttl)), d.s.d.Time(now)}}})
	if err != nil {
		return false, err
	}
	var got string
	err = queryRow(ctx, d.s.b.Pool(), `SELECT holder FROM webhook_leases WHERE org = $1 AND name = $2`,
		DefaultOrg, name).Scan(&got)
	if err != nil {
		return false, d.s.err(ctx, "read lease", err)
	}
	return got == holder, nil
}

// ReleaseLease implements Deliveries.
func (d *SQLDeliveries) ReleaseLease(ctx context.Context, name, holder string) error {
	return d.run(ctx, "release lease", []Statement{{`DELETE FROM webhook_leases WHERE org = $1 AND name = $2 AND holder = $3`,
		[]any{DefaultOrg, name, holder}}})
}

// Prune implements Deliveries. In one transaction: the ledger rows of the
// users deleted in the pruned range (their match keys are in the deletion
// events' cut-offs) that are not newer than the deletion, the events, and
// the new pruned_through.
func (d *SQLDeliveries) Prune(ctx context.Context, before time.Time, upto int64) (int, error) {
	var last int64
	var n int
	err := queryRow(ctx, d.s.b.Pool(), `SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM
		(SELECT seq FROM events WHERE seq <= $1 AND time < $2 ORDER BY seq LIMIT $3) p`,
		upto, d.s.d.Time(before), PruneBatch).Scan(&last, &n)
	if err != nil || n == 0 {
		return 0, d.s.err(ctx, "prune events", err)
	}
	deleted, err := d.s.readEvents(ctx, d.s.b.Pool(), `WHERE seq <= $1 AND kind = $2 ORDER BY seq`, last, EventUserDeleted)
	if err != nil {
		return 0, err
	}
	var stmts []Statement
	for _, e := range deleted {
		for _, c := range e.Cutoffs {
			org := OrgOrDefault(e.Org)
			stmts = append(stmts,
				Statement{`DELETE FROM last_logins WHERE subject = $1 AND time <= $2`,
					[]any{QualifyKey(org, c.Key), d.s.d.Time(e.Time)}},
				Statement{`DELETE FROM login_sessions WHERE org = $1 AND subject = $2 AND issued <= $3`,
					[]any{org, c.Key, d.s.d.Time(e.Time)}})
		}
	}
	stmts = append(stmts,
		Statement{`DELETE FROM events WHERE seq <= $1`, []any{last}},
		Statement{`INSERT INTO event_retention (org, pruned_through) VALUES ($1, $2)
			ON CONFLICT (org) DO UPDATE SET pruned_through = excluded.pruned_through
			WHERE event_retention.pruned_through < excluded.pruned_through`, []any{DefaultOrg, last}})
	return n, d.run(ctx, "prune events", stmts)
}
