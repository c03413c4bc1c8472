package main

// Tests that run the real binary as its own process: durability of SCIM
// writes across a kill -9, and (opt-in, memory_test.go) the process's
// memory with a large directory. They build the binary with `go build`, so they skip under
// -short, and they are heavy: do not run them in parallel with other heavy
// tests.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/scimsync"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

// ---------------------------------------------------------------- binary

// The binary is built once per test binary and shared by every test that
// runs it (TestMain removes it).
var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	binaryDir  string
)

// buildBinary builds cmd/portcullis once and returns its path.
func buildBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary: skipped with -short")
	}
	binaryOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = "/usr/local/go/bin/go" // where this machine kind keeps Go
		}
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			binaryErr = err
			return
		}
		if binaryDir, binaryErr = os.MkdirTemp("", "portcullis-bin-"); binaryErr != nil {
			return
		}
		out := filepath.Join(binaryDir, "portcullis")
		cmd := exec.Command(goTool, "build", "-o", out, "./cmd/portcullis")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, b)
			return
		}
		binaryPath = out
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopOrgsFixture()
	if binaryDir != "" {
		_ = os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// serveConfig is a config directory for the real binary.
type serveConfig struct {
	path   string // portcullis.yaml
	dbPath string
	token  string
}

// writeServeConfig writes keys, IdP metadata (from a generated key), a SCIM
// token and a config with SCIM on and the SQLite store in dir. Both
// listeners take free ports; the process logs which.
func writeServeConfig(t testing.TB, dir string) serveConfig {
	t.Helper()
	return writeServeConfigStore(t, dir, "store:\n  driver: sqlite\n  dsn: store/portcullis.db\n")
}

// writeServeConfigStore is writeServeConfig with the given store: section.
func writeServeConfigStore(t testing.TB, dir, store string) serveConfig {
	t.Helper()
	if err := writeKeys(dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	writeIdPMetadata(t, dir)
	token := scimsync.GenerateToken()
	if err := os.WriteFile(filepath.Join(dir, "scim.tokens"), []byte("okta "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `version: 1
listen: "127.0.0.1:0"
adminListen: "127.0.0.1:0"
publicURL: "https://app.example.com"
upstream: "http://127.0.0.1:9"
saml:
  idpMetadataFile: idp.xml
  certFile: sp.crt
  keyFile: sp.key
session:
  keysFile: session.keys
scim:
  enabled: true
  tokensFile: scim.tokens
` + store
	p := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return serveConfig{path: p, dbPath: filepath.Join(dir, "store", "portcullis.db"), token: token}
}

// proc is one running `portcullis serve`.
type proc struct {
	cmd       *exec.Cmd
	logs      *lockedBuffer
	publicURL string
	adminURL  string
	readyIn   time.Duration // from exec to /readyz 200
	exited    chan struct{}
	waitErr   error
}

// startBinary runs `portcullis serve` (with env added to ours), learns its ports from the "listening"
// log line and waits for /readyz. Cleanup stops it with SIGTERM (SIGKILL if
// it does not stop) unless the test killed it already.
func startBinary(t testing.TB, bin, cfgPath string, env ...string) *proc {
	t.Helper()
	p := &proc{logs: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--config", cfgPath, "--log-format", "json", "--log-level", "info")
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	began := time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if !p.running() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.waitErr != nil {
				t.Errorf("portcullis serve exited with %v after SIGTERM\nlogs:\n%s", p.waitErr, p.logs)
			}
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("portcullis serve did not stop within 30s of SIGTERM")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for p.publicURL == "" {
		for _, e := range p.logs.logEntries() {
			if e["msg"] == "listening" {
				pub, _ := e["listen"].(string)
				adm, _ := e["admin_listen"].(string)
				p.publicURL, p.adminURL = "http://"+pub, "http://"+adm
			}
		}
		if p.publicURL != "" {
			break
		}
		if !p.running() || time.Now().After(deadline) {
			t.Fatalf("portcullis serve never logged \"listening\" (running: %v, wait: %v)\nlogs:\n%s", p.running(), p.waitErr, p.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := waitReady(p.adminURL, p.exited, 60*time.Second); err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, p.logs)
	}
	p.readyIn = time.Since(began)
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("process %d still there 10s after SIGKILL", p.cmd.Process.Pid)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Errorf("portcullis serve exited with %v after SIGTERM", p.waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("process %d did not stop within 30s of SIGTERM", p.cmd.Process.Pid)
	}
}

// directoryLoadedUsers returns the users count of the "directory loaded" log line.
func (p *proc) directoryLoadedUsers() (int, bool) {
	for _, e := range p.logs.logEntries() {
		if e["msg"] == "directory loaded" {
			n, ok := e["users"].(float64)
			return int(n), ok
		}
	}
	return 0, false
}

// memory reads VmRSS and VmHWM (in MiB) from /proc/<pid>/status.
func (p *proc) memory(t testing.TB) (rss, hwm float64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	field := func(name string) float64 {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				if err != nil {
					t.Fatalf("/proc status %s: %q", name, line)
				}
				return kb / 1024
			}
		}
		t.Fatalf("/proc status has no %s", name)
		return 0
	}
	return field("VmRSS"), field("VmHWM")
}

// ---------------------------------------------------------------- SCIM client

// scimClient talks SCIM to a process; it never calls t.Fatal, so workers
// may use it.
type scimClient struct {
	token string
	http  *http.Client
}

func newSCIMClient(token string) *scimClient {
	return &scimClient{token: token, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8},
	}}
}

// do sends one SCIM request to base + /scim/v2 + path and decodes the body.
// err is a transport error: no answer.
func (c *scimClient) do(base, method, path string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+"/scim/v2"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("status %d, body is not JSON: %q", resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, m, nil
}

// listUserNames pages through GET /Users (the largest page the server
// allows) and counts each userName.
func (c *scimClient) listUserNames(t *testing.T, base string) map[string]int {
	t.Helper()
	names := map[string]int{}
	for start, total := 1, -1; total < 0 || start <= total; {
		status, body, err := c.do(base, "GET", fmt.Sprintf("/Users?startIndex=%d&count=500&attributes=userName", start), nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("list users from %d: %d %v %v", start, status, body, err)
		}
		total = int(body["totalResults"].(float64))
		res, _ := body["Resources"].([]any)
		if len(res) == 0 {
			if start <= total {
				t.Fatalf("list users from %d: empty page but totalResults %d", start, total)
			}
			break
		}
		for _, r := range res {
			n, _ := r.(map[string]any)["userName"].(string)
			names[n]++
		}
		start += len(res)
	}
	return names
}

// countUserName returns totalResults of filter=userName eq "name".
func (c *scimClient) countUserName(t *testing.T, base, name string) int {
	t.Helper()
	q := url.Values{"filter": {fmt.Sprintf("userName eq %q", name)}}
	status, body, err := c.do(base, "GET", "/Users?"+q.Encode(), nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("filter userName eq %q: %d %v %v", name, status, body, err)
	}
	return int(body["totalResults"].(float64))
}

// ---------------------------------------------------------------- bulk store

// fillStore creates the store at path (schema by sqlite.Open) and
// writes nUsers users and nGroups groups in one transaction, straight into
// the tables: group 0 has 10,000 members, every other group 50. Going
// around the Store API is what makes 100k users take seconds instead of one
// fsync per user; the columns are those of scimsync/store/sqlite/migrations/0001_init.sql.
// It returns the number of memberships written.
func fillStore(t testing.TB, path string, nUsers, nGroups int) int {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	must := func(_ sql.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	insUser, err := tx.PrepareContext(ctx, `INSERT INTO users (pk, id, user_name, user_name_lower, external_id, email, email_lower,
		active, doc, version, created, last_modified, valid_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nUsers {
		name := fmt.Sprintf("user%06d@example.com", i)
		doc := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,`+
			`"name":{"givenName":"User","familyName":"%06d"},"emails":[{"primary":true,"value":%q,"type":"work"}],`+
			`"displayName":"User %06d","locale":"en-US","externalId":"ext-%06d","active":%v}`, name, i, name, i, i, i%20 != 0)
		must(insUser.ExecContext(ctx, i+1, benchUserID(i), name, name, fmt.Sprintf("ext-%06d", i), name, name,
			i%20 != 0, []byte(doc), now, now, now))
	}
	insGroup, err := tx.PrepareContext(ctx, `INSERT INTO groups (pk, id, display_name, display_name_lower, external_id, doc,
		version, created, last_modified) VALUES (?, ?, ?, ?, '', ?, 1, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	insMember, err := tx.PrepareContext(ctx, `INSERT INTO group_members (group_pk, user_pk) VALUES (?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	memberships := 0
	for g := range nGroups {
		name := fmt.Sprintf("group-%05d", g)
		doc := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":%q}`, name)
		must(insGroup.ExecContext(ctx, g+1, fmt.Sprintf("%08x-1111-4000-8000-%012x", g, g), name, name, []byte(doc), now, now))
		for _, u := range benchGroupMembers(g, nUsers) {
			must(insMember.ExecContext(ctx, g+1, u+1))
			memberships++
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return memberships
}

// benchUserID is user i's SCIM id (UUID-shaped, 36 bytes like real ones).
func benchUserID(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }

// benchGroupMembers returns the user indexes of group g: 10,000 for group 0,
// else 50 distinct users spread over the directory.
func benchGroupMembers(g, nUsers int) []int {
	n := 50
	if g == 0 {
		n = min(10_000, nUsers)
	}
	out := make([]int, n)
	for m := range out {
		if g == 0 {
			out[m] = m
		} else {
			out[m] = ((g*50 + m) * 7919) % nUsers // 7919 is prime: distinct for consecutive m
		}
	}
	return out
}
