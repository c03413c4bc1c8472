package scimsync

import (
	"context"
	"fmt"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// applyMigration applies m unless the database has it already: its SQL and
// Go step (sqliteSteps) in one transaction with its schema_migrations row.
// A step that vacuums commits first, then runs VACUUM (which cannot run
// inside a transaction) and only then records m, so a crash in between
// repeats the idempotent step and the VACUUM at the next start.
func (s *SQLiteStore) applyMigration(ctx context.Context, m store.Migration, latest int) error {
	step := sqliteSteps[m.Key]
	ran, err := s.runMigration(ctx, m, latest, step)
	if err != nil || !ran || !step.vacuum {
		return err
	}
	if err := s.vacuum(ctx); err != nil {
		return fmt.Errorf("store.Migration %s: %w", m.Name, err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT OR IGNORE INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.Version, s.now().UnixMilli()); err != nil {
		return sqliteErr("store.Migration "+m.Name, err)
	}
	return nil
}

// runMigration runs m's SQL and step in one transaction, recording m unless
// the step vacuums afterwards. It reports false when m was applied already
// (perhaps by another process).
func (s *SQLiteStore) runMigration(ctx context.Context, m store.Migration, latest int, step sqliteStep) (bool, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, sqliteErr("migrate", err)
	}
	defer tx.Rollback()
	cur, err := s.schemaVersion(ctx, tx, latest)
	if err != nil || cur >= m.Version {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, sqliteErr("store.Migration "+m.Name, err)
	}
	if step.run != nil {
		if err := step.run(ctx, tx); err != nil {
			return false, fmt.Errorf("store.Migration %s: %w", m.Name, err)
		}
	}
	if !step.vacuum {
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
			m.Version, s.now().UnixMilli()); err != nil {
			return false, sqliteErr("store.Migration "+m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, sqliteErr("store.Migration "+m.Name, err)
	}
	return true, nil
}

// vacuum rebuilds the database file, leaving no freed page behind, then
// checkpoints the WAL into it and truncates the WAL: afterwards no byte of a
// deleted value is left in either file. It needs the database to itself,
// as it has while migrations run at open.
func (s *SQLiteStore) vacuum(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		return sqliteErr("vacuum", err)
	}
	var busy, walFrames, checkpointed int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &walFrames, &checkpointed); err != nil {
		return sqliteErr("checkpoint after vacuum", err)
	}
	if busy != 0 {
		return fmt.Errorf("checkpoint after vacuum: the database is in use by another connection; %w", ErrUnavailable)
	}
	return nil
}
