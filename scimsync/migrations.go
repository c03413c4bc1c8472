package scimsync

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

// migration is one numbered schema change, embedded in the binary.
type migration struct {
	version int
	name    string // the file name, 0001_init.sql
	key     string // the name without its number, init.sql: what a Go step is keyed by
	sql     string
}

// loadMigrations reads dir/*.sql from fsys; the files must be numbered
// 1..N without gaps (0001_init.sql, 0002_….sql).
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	var migs []migration
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
		migs = append(migs, migration{version: v, name: base, key: key, sql: string(b)})
	}
	return migs, nil
}
