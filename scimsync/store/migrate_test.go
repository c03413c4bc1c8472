package store

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"m/0001_init.sql":           {Data: []byte("CREATE TABLE a (x int);")},
		"m/0002_drop_passwords.sql": {Data: []byte("SELECT 1;")},
	}
	migs, err := LoadMigrations(fsys, "m", "drop_passwords.sql")
	if err != nil || len(migs) != 2 || migs[1] != (Migration{Version: 2, Name: "0002_drop_passwords.sql", Key: "drop_passwords.sql", SQL: "SELECT 1;"}) {
		t.Fatalf("LoadMigrations = %+v, %v", migs, err)
	}
	for name, tc := range map[string]struct {
		fsys     fstest.MapFS
		stepKeys []string
		want     string
	}{
		"a gap in the numbers": {fstest.MapFS{"m/0001_a.sql": {}, "m/0003_c.sql": {}}, nil, "want number 0002"},
		"a step naming no file (a renamed migration would lose its step)": {fsys, []string{"passwords.sql"},
			`step "passwords.sql" names no file`},
	} {
		if _, err := LoadMigrations(tc.fsys, "m", tc.stepKeys...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}
