package store

import (
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Migration is one numbered schema change, embedded in a backend's binary.
// Every migration is online and expand-then-contract: it adds what the new
// code needs without breaking the binary before it, which may still be
// running against the migrated database during a rolling update; what that
// binary used is dropped only a release after nothing uses it.
type Migration struct {
	Version int
	Name    string // the file name, 0001_init.sql
	Key     string // the name without its number, init.sql: what a Go step is keyed by
	SQL     string
}

// LoadMigrations reads dir/*.sql from fsys; the files must be numbered
// 1..N without gaps (0001_init.sql, 0002_….sql). stepKeys are the Keys the
// backend has a Go step for: each must name a migration, so that a renamed
// file cannot silently lose its step.
func LoadMigrations(fsys fs.FS, dir string, stepKeys ...string) ([]Migration, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	var migs []Migration
	for _, name := range names { // fs.Glob sorts
		base := filepath.Base(name)
		num, key, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != len(migs)+1 {
			return nil, fmt.Errorf("migration %s: want number %04d", base, len(migs)+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		migs = append(migs, Migration{Version: v, Name: base, Key: key, SQL: string(b)})
	}
	for _, k := range stepKeys {
		if !slices.ContainsFunc(migs, func(m Migration) bool { return m.Key == k }) {
			return nil, fmt.Errorf("migration step %q names no file in %s", k, dir)
		}
	}
	return migs, nil
}

// Migrations are the migrations in fsys's migrations/*.sql, for a backend
// whose Go steps are steps (keyed as Migration.Key). The files are embedded
// in the binary: one that LoadMigrations refuses is a build error, so it
// panics, at package initialisation, and every test catches it.
func Migrations[S any](fsys fs.FS, steps map[string]S) []Migration {
	migs, err := LoadMigrations(fsys, "migrations", slices.Collect(maps.Keys(steps))...)
	if err != nil {
		panic(err)
	}
	return migs
}

// CheckSchemaVersion refuses a database whose schema version v is newer
// than latest, the newest this binary knows: a replica never runs on a
// schema it does not know.
func CheckSchemaVersion(v, latest int) error {
	if v > latest {
		return fmt.Errorf("database schema version %d is newer than this portcullis knows (%d); upgrade portcullis", v, latest)
	}
	return nil
}
