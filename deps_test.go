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
// way; proxy never learns about samlsp, scimsync or the store; the SCIM
// protocol code knows the store's interfaces, never a backend; a backend
// knows only the store. A package missing here fails the test, so a new
// package must choose its place.
var allowedImports = map[string][]string{
	"cmd/portcullis": {"config", "proxy", "samlsp", "scimsync", "scimsync/store", "scimsync/store/sqlite",
		"scimsync/store/postgres", "internal/*"},
	"proxy":                    {"config", "internal/identity", "internal/session", "internal/web", "internal/metrics"},
	"samlsp":                   {"config", "internal/identity", "internal/session", "internal/web", "internal/redirect", "internal/metrics"},
	"scimsync":                 {"config", "scimsync/store", "internal/identity", "internal/web", "internal/metrics"},
	"scimsync/store":           {"config", "internal/identity"},
	"scimsync/store/sqlite":    {"scimsync/store"},
	"scimsync/store/postgres":  {"scimsync/store"},
	"scimsync/store/storetest": {"scimsync/store"},
	"config":                   {"internal/identity"},
	"internal/identity":        {},
	"internal/session":         {"internal/identity"},
	"internal/web":             {},
	"internal/redirect":        {},
	"internal/demoidp":         {},
	"internal/metrics":         {},
	"internal/faultnet":        {},
	"internal/fastpath":        {"internal/web"},
	"internal/filewatch":       {},
	"internal/status":          {"scimsync/store", "internal/identity", "internal/metrics"},
	"internal/webhook":         {"config", "scimsync/store", "internal/metrics"},
}

// neverImports are the arrows the layering must never grow, whatever
// allowedImports says: a package (or every package under a prefix ending
// in "/") and what it must not import, itself or anything under it.
var neverImports = []struct{ from, to, why string }{
	{"proxy", "samlsp", "proxy declares the interfaces it needs"},
	{"proxy", "scimsync", "proxy declares the interfaces it needs"},
	{"scimsync/store/sqlite", "scimsync/store/postgres", "a backend never imports another"},
	{"scimsync/store/postgres", "scimsync/store/sqlite", "a backend never imports another"},
	{"scimsync/store/", "scimsync", "the store never imports the protocol code"},
	{"scimsync/store", "scimsync", "the store never imports the protocol code"},
	{"scimsync", "scimsync/store/sqlite", "the protocol code imports only the store's interfaces"},
	{"scimsync", "scimsync/store/postgres", "the protocol code imports only the store's interfaces"},
	{"scimsync/store/storetest", "scimsync/store/sqlite", "the conformance suite imports no backend"},
	{"scimsync/store/storetest", "scimsync/store/postgres", "the conformance suite imports no backend"},
	{"internal/status", "proxy", "the status page declares its own small types"},
	{"internal/status", "scimsync", "the status page uses the store's types, not the protocol's"},
}

// under reports whether pkg is p, or under p when p ends in "/".
func under(pkg, p string) bool {
	if rest, ok := strings.CutSuffix(p, "/"); ok {
		return strings.HasPrefix(pkg, p) && pkg != rest
	}
	return pkg == p
}

// importsUnder reports whether imp is to or a package under it; "scimsync"
// means the protocol package itself, not the store below it.
func importsUnder(imp, to string) bool {
	return imp == to || (to != "scimsync" && strings.HasPrefix(imp, to+"/"))
}

func TestNeverImports(t *testing.T) {
	for from, allowed := range allowedImports {
		for _, rule := range neverImports {
			if !under(from, rule.from) {
				continue
			}
			for _, a := range allowed {
				if importsUnder(a, rule.to) {
					t.Errorf("allowedImports lets %s import %s, but %s", from, a, rule.why)
				}
			}
		}
	}
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
