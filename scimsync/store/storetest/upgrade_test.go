package storetest_test

// The upgrade test: the store conformance tests of the commit before the
// latest migration, built from git history, pass against a database this
// code migrated. That is the promise of expand-then-contract migrations:
// during a rolling update the replicas still on the previous binary keep
// working while the new one migrates under them.
//
// The previous binary opens each test's fresh database itself (its own
// migrations), then this package's test binary, run again as a helper
// process, migrates it to this code's schema, and the previous binary's
// test goes on with the store it opened: a replica already running when
// the new one migrates. (A previous binary that starts on the migrated
// schema refuses it as newer than it knows, as it must.)

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// migrationDirs are where migrations live now and lived before
// scimsync/store.
var migrationDirs = []string{
	"scimsync/store/sqlite/migrations", "scimsync/store/postgres/migrations",
	"scimsync/migrations_sqlite", "scimsync/migrations_postgres",
}

// Environment of the two processes the test starts.
const (
	envFrom     = "PORTCULLIS_UPGRADE_FROM"     // a commit to upgrade from instead
	envMigrator = "PORTCULLIS_UPGRADE_MIGRATOR" // this test binary, for the old one to call
	envMigrate  = "PORTCULLIS_UPGRADE_MIGRATE"  // "sqlite <path>" or "postgres <dsn>": the helper's work
)

func TestUpgrade_PreviousStoreTestsPassOnMigratedSchema(t *testing.T) {
	if os.Getenv(envMigrate) != "" {
		t.Skip("running as the migration helper")
	}
	old := buildPrevious(t)
	for _, backend := range []string{"SQLite", "Postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			if backend == "Postgres" {
				storetest.PostgresAdmin(t) // skip, or fail under PORTCULLIS_REQUIRE_PEERS, without a server
			}
			cmd := exec.Command(old.binary, "-test.run=^TestUpgradeDriver_"+backend+"$", "-test.count=1", "-test.v")
			cmd.Dir = old.pkgDir
			cmd.Env = append(os.Environ(), envMigrator+"="+os.Args[0])
			out, err := cmd.CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("--- PASS: TestUpgradeDriver_"+backend+" ")) {
				t.Fatalf("the store tests of %s on a schema migrated by this code: %v\n%s", old.commit, err, tail(out, 60))
			}
		})
	}
}

// TestUpgradeMigrator is the helper the previous binary runs: it opens the
// database it names with this code, which migrates it, and reads a
// snapshot, which needs every table this code reads.
func TestUpgradeMigrator(t *testing.T) {
	driver, target, ok := strings.Cut(os.Getenv(envMigrate), " ")
	if !ok {
		t.Skip("only run by the upgrade test")
	}
	ctx := context.Background()
	var st store.Store
	var err error
	switch driver {
	case "sqlite":
		st, err = sqlite.Open(ctx, target)
	case "postgres":
		st, err = postgres.Open(ctx, target)
	default:
		t.Fatalf("unknown driver %q", driver)
	}
	if err != nil {
		t.Fatalf("open and migrate: %v", err)
	}
	defer st.Close()
	if _, err := st.Snapshot(ctx); err != nil {
		t.Fatalf("snapshot after migrating: %v", err)
	}
}

// previous is the previous commit's store tests, built.
type previous struct {
	commit string
	binary string // its test binary, with the upgrade drivers
	pkgDir string // the package directory the binary runs in
}

var (
	previousOnce sync.Once
	previousDir  string // the temp dir of the build, removed by TestMain
	previousBin  previous
	previousErr  error
	previousSkip string
)

// buildPrevious builds, once per test binary, the store tests of the
// commit before the latest migration (or of PORTCULLIS_UPGRADE_FROM). It
// skips when git history is unavailable, and fails instead under
// PORTCULLIS_REQUIRE_PEERS, as CI sets.
func buildPrevious(t *testing.T) previous {
	t.Helper()
	previousOnce.Do(func() {
		if previousDir, previousErr = os.MkdirTemp("", "portcullis-upgrade-"); previousErr == nil {
			previousBin, previousSkip, previousErr = build(previousDir)
		}
	})
	switch {
	case previousErr != nil:
		t.Fatal(previousErr)
	case previousSkip != "" && os.Getenv("PORTCULLIS_REQUIRE_PEERS") != "":
		t.Fatal(previousSkip + " (required: PORTCULLIS_REQUIRE_PEERS is set)")
	case previousSkip != "":
		t.Skip(previousSkip + " (set PORTCULLIS_REQUIRE_PEERS to fail instead)")
	}
	return previousBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if previousDir != "" {
		os.RemoveAll(previousDir)
	}
	os.Exit(code)
}

// build finds the commit, extracts it into dir, adds the drivers and builds
// the test binary; skip says why history is unavailable.
func build(dir string) (p previous, skip string, err error) {
	root, err := gitOut("", "rev-parse", "--show-toplevel")
	if err != nil {
		return p, "git history unavailable (git rev-parse: " + err.Error() + ")", nil
	}
	if shallow, _ := gitOut(root, "rev-parse", "--is-shallow-repository"); shallow == "true" {
		return p, "git history unavailable: a shallow clone (git fetch --unshallow)", nil
	}
	if p.commit, err = previousCommit(root); err != nil {
		return p, "", err
	}
	src := filepath.Join(dir, "src")
	if err := extract(root, p.commit, src); err != nil {
		return p, "", err
	}
	layout, err := writeDrivers(src)
	if err != nil {
		return p, "", fmt.Errorf("commit %s: %w", p.commit, err)
	}
	p.pkgDir, p.binary = filepath.Join(src, layout.Dir), filepath.Join(dir, "previous.test")
	cmd := exec.Command(goTool(), "test", "-c", "-trimpath", "-o", p.binary, "./"+layout.Dir)
	cmd.Dir, cmd.Env = src, append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return p, "", fmt.Errorf("build the store tests of %s: %v\n%s", p.commit, err, out)
	}
	return p, "", nil
}

// previousCommit is PORTCULLIS_UPGRADE_FROM, else HEAD when the working
// tree adds a migration, else the newest commit on HEAD's first-parent line
// whose migration files are a strict subset of HEAD's: the last state with
// fewer migrations, every one of them under the same name as now. (The
// parent of the commit that added the newest file is not enough: a branch
// merged by fast-forward may have numbered its migration differently
// before it was renumbered at landing, and a replica of that state never
// ran.)
func previousCommit(root string) (string, error) {
	if from := os.Getenv(envFrom); from != "" {
		return gitOut(root, "rev-parse", "--verify", from+"^{commit}")
	}
	args := append([]string{"status", "--porcelain", "--"}, migrationDirs...)
	if changed, err := gitOut(root, args...); err != nil || changed != "" {
		return "HEAD", err
	}
	files := func(commit string) (map[string]bool, error) {
		out, err := gitOut(root, append([]string{"ls-tree", "-r", "--name-only", commit, "--"}, migrationDirs...)...)
		if err != nil {
			return nil, err
		}
		set := map[string]bool{}
		for _, f := range strings.Fields(out) {
			set[f] = true
		}
		return set, nil
	}
	head, err := files("HEAD")
	if err != nil {
		return "", fmt.Errorf("find the latest migration: %v", err)
	}
	commits, err := gitOut(root, "rev-list", "--first-parent", "--max-count=2000", "HEAD")
	if err != nil {
		return "", fmt.Errorf("find the latest migration: %v", err)
	}
	for _, c := range strings.Fields(commits) {
		set, err := files(c)
		if err != nil {
			return "", err
		}
		if len(set) == 0 || len(set) >= len(head) {
			continue
		}
		subset := true
		for f := range set {
			subset = subset && head[f]
		}
		if subset {
			return c, nil
		}
	}
	return "", fmt.Errorf("find the latest migration: no earlier commit has a subset of HEAD's migrations")
}

// extract writes the tree of commit into dir.
func extract(root, commit, dir string) error {
	cmd := exec.Command("git", "archive", "--format=tar", commit)
	cmd.Dir = root
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("git archive %s: %w", commit, err)
		}
		if err := extractEntry(dir, h, tr); err != nil {
			return err
		}
	}
	return cmd.Wait()
}

func extractEntry(dir string, h *tar.Header, r io.Reader) error {
	path := filepath.Join(dir, filepath.FromSlash(h.Name))
	if !strings.HasPrefix(path, filepath.Clean(dir)+string(filepath.Separator)) {
		return fmt.Errorf("git archive: %q leaves the tree", h.Name)
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(path, 0o755)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		return errors.Join(err, f.Close())
	}
	return nil // links and the pax header: nothing the build needs
}

func gitOut(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// goTool is the go command: on PATH, or in GOROOT as go test sets it.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

func tail(b []byte, lines int) []byte {
	all := bytes.Split(b, []byte("\n"))
	return bytes.Join(all[max(0, len(all)-lines):], []byte("\n"))
}
