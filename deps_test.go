package portcullis_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/portcullis-sso/portcullis/"

// allowedImports is the layering of ../shared/STYLE.md: imports flow one
// way, and proxy never learns about samlsp or scimsync. A package missing
// here fails the test, so a new package must choose its place.
var allowedImports = map[string][]string{
	"cmd/portcullis":     {"config", "proxy", "samlsp", "scimsync", "internal/*"},
	"proxy":              {"config", "internal/identity", "internal/session", "internal/web", "internal/metrics"},
	"samlsp":             {"config", "internal/identity", "internal/session", "internal/web", "internal/redirect", "internal/metrics"},
	"scimsync":           {"config", "internal/identity", "internal/web", "internal/metrics"},
	"scimsync/storetest": {"scimsync"},
	"config":             {"internal/identity"},
	"internal/identity":  {},
	"internal/session":   {"internal/identity"},
	"internal/web":       {},
	"internal/redirect":  {},
	"internal/demoidp":   {},
	"internal/metrics":   {},
	"internal/faultnet":  {},
	"internal/filewatch": {},
	"internal/status":    {"proxy", "scimsync", "internal/identity", "internal/metrics"},
}

func TestImportLayering(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "charts" || name == "bench") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			return nil
		}
		allowed, ok := allowedImports[pkg]
		if !ok {
			t.Errorf("%s: package %s has no entry in allowedImports", path, pkg)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			rel, ours := strings.CutPrefix(p, module)
			if !ours {
				continue
			}
			if !slices.Contains(allowed, rel) && !(slices.Contains(allowed, "internal/*") && strings.HasPrefix(rel, "internal/")) {
				t.Errorf("%s imports %s: %s may import only %v", path, rel, pkg, allowed)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
