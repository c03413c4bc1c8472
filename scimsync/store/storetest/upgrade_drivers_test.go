package storetest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// The drivers the upgrade test adds to the previous commit's tree: a test
// file in the package that holds its conformance suite, which runs the
// suite on stores it opens and then has this code migrate. They use only
// what that commit exports, in the layout it had.

// layout is where a commit keeps its store and conformance suite.
type layout struct {
	Dir     string // the package the drivers join, from the tree's root
	Package string // its test package's name
	Imports []string
	Store   string // the store interface
	Option  string // the Open option type, "" if Run's open takes none
	SQLite  string // the SQLite Open function
	PG      string // the PostgreSQL Open function
	Schema  string // a func(testing.TB) (dsn, schema string) for a fresh PostgreSQL schema
}

const module = "github.com/portcullis-sso/portcullis/"

// layouts, newest first: the first whose suite exists in the tree is used.
// A new layout must be added here before the one it replaces is the
// previous commit's.
var layouts = []struct {
	suite string
	l     layout
}{
	{"scimsync/store/storetest/storetest.go", layout{Dir: "scimsync/store/storetest", Package: "storetest_test",
		Imports: []string{"scimsync/store", "scimsync/store/sqlite", "scimsync/store/postgres", "scimsync/store/storetest"},
		Store:   "store.Store", Option: "store.Option", SQLite: "sqlite.Open", PG: "postgres.Open", Schema: "storetest.PostgresSchema"}},
	{"scimsync/storetest/storetest.go", layout{Dir: "scimsync", Package: "scimsync_test",
		Imports: []string{"scimsync", "scimsync/storetest"},
		Store:   "scimsync.Store", Option: "scimsync.StoreOption", SQLite: "scimsync.OpenSQLite", PG: "scimsync.OpenPostgres", Schema: "pgSchema"}},
}

var driverTemplate = template.Must(template.New("driver").Parse(`package {{.Package}}

// Added by the upgrade test of a later commit; not part of this tree.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
{{range .Imports}}
	"` + module + `{{.}}"{{end}}
)

func TestUpgradeDriver_SQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T{{if .Option}}, opts ...{{.Option}}{{end}}) {{.Store}} {
		path := filepath.Join(t.TempDir(), "portcullis.db")
		st, err := {{.SQLite}}(context.Background(), path{{if .Option}}, opts...{{end}})
		if err != nil {
			t.Fatal(err)
		}
		upgradeMigrate(t, "sqlite "+path)
		return st
	})
}

func TestUpgradeDriver_Postgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T{{if .Option}}, opts ...{{.Option}}{{end}}) {{.Store}} {
		dsn, _ := {{.Schema}}(t)
		st, err := {{.PG}}(context.Background(), dsn{{if .Option}}, opts...{{end}})
		if err != nil {
			t.Fatal(err)
		}
		upgradeMigrate(t, "postgres "+dsn)
		return st
	})
}

// upgradeMigrate has the later commit migrate the database while st is open.
func upgradeMigrate(t *testing.T, target string) {
	cmd := exec.Command(os.Getenv("` + envMigrator + `"), "-test.run=^TestUpgradeMigrator$", "-test.count=1")
	cmd.Env = append(os.Environ(), "` + envMigrate + `="+target)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate with the later commit: %v\n%s", err, out)
	}
}
`))

// writeDrivers adds the drivers to the tree at src and returns its layout.
func writeDrivers(src string) (layout, error) {
	for _, c := range layouts {
		suite, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(c.suite)))
		if err != nil {
			continue
		}
		if !strings.Contains(string(suite), "opts ..."+c.l.Option+")") {
			c.l.Option = "" // before match rules, Run's open took no options
		}
		var b strings.Builder
		if err := driverTemplate.Execute(&b, c.l); err != nil {
			return layout{}, err
		}
		name := filepath.Join(src, filepath.FromSlash(c.l.Dir), "zz_upgrade_driver_test.go")
		return c.l, os.WriteFile(name, []byte(b.String()), 0o644)
	}
	return layout{}, fmt.Errorf("no conformance suite in a known place; add its layout to layouts")
}
