package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
)

// TestProcessMemory_100kUsers10kGroups starts the real binary on a SQLite
// store of 100,000 users and 10,000 groups (509,950 memberships) and
// reports the process's memory from /proc/PID/status: VmHWM (the peak) at
// ready, which is the start with the directory load, and VmRSS after a
// period of SCIM reads and writes (Bulk included) and proxied requests
// through the gate. Opt-in: PORTCULLIS_MEMTEST=1 (bench/scim-memory.sh);
// PORTCULLIS_MEMTEST_STEADY sets the period (default 60s). It logs figures
// and asserts none (STYLE.md: figures go in notes), beyond the workload's
// answers being right.
func TestProcessMemory_100kUsers10kGroups(t *testing.T) {
	if os.Getenv("PORTCULLIS_MEMTEST") != "1" {
		t.Skip("memory test: set PORTCULLIS_MEMTEST=1 to run it (bench/scim-memory.sh)")
	}
	period := 60 * time.Second
	if v := os.Getenv("PORTCULLIS_MEMTEST_STEADY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("PORTCULLIS_MEMTEST_STEADY: %v", err)
		}
		period = d
	}
	const nUsers, nGroups = 100_000, 10_000
	bin := buildBinary(t)

	empty := startBinary(t, bin, writeServeConfig(t, t.TempDir()).path)
	rss, _ := empty.memory(t)
	t.Logf("empty store: ready in %s, VmRSS %.1f MiB", empty.readyIn.Round(time.Millisecond), rss)
	empty.stop(t)

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	cfg := writeServeConfig(t, dir)
	raw, _ := os.ReadFile(cfg.path)
	if err := os.WriteFile(cfg.path, []byte(strings.Replace(string(raw), "http://127.0.0.1:9", up.URL, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	members := fillStore(t, cfg.dbPath, nUsers, nGroups)
	t.Logf("store: %d users, %d groups, %d memberships written in %s", nUsers, nGroups, members, time.Since(began).Round(time.Millisecond))

	p := startBinary(t, bin, cfg.path, "GODEBUG=gctrace=1")
	startRSS, startHWM := p.memory(t)
	loaded, _ := p.directoryLoadedUsers()
	t.Logf("start to ready: %s (directory loaded %d users)", p.readyIn.Round(time.Millisecond), loaded)

	keys, err := session.ParseKeys(mustRead(t, filepath.Join(dir, "session.keys")))
	if err != nil {
		t.Fatal(err)
	}
	codec, _ := session.NewCodec(httpsCookieName, keys, true, time.Hour)
	n := memoryWorkload(t, p, cfg, codec, period, nUsers)
	time.Sleep(5 * time.Second) // let the last requests' garbage be collected
	steadyRSS, steadyHWM := p.memory(t)

	t.Logf("workload for %s: %s", period, n)
	t.Logf("gctrace (heap at GC start -> end -> live MB):\n%s", gcTrace(p))
	t.Logf("at the end: %s", p.rssParts(t))
	t.Logf("MEMORY at ready (start): VmHWM %.1f MiB (%.1f MB), VmRSS %.1f MiB", startHWM, startHWM*1.048576, startRSS)
	t.Logf("MEMORY after the workload (steady): VmRSS %.1f MiB (%.1f MB), VmHWM over the whole run %.1f MiB",
		steadyRSS, steadyRSS*1.048576, steadyHWM)
}

func gcTrace(p *proc) string {
	var trace []string
	for line := range strings.SplitSeq(p.logs.String(), "\n") {
		if strings.HasPrefix(line, "gc ") {
			trace = append(trace, line)
		}
	}
	return strings.Join(trace, "\n")
}

// workloadCounts counts the requests of memoryWorkload by kind.
type workloadCounts struct {
	mu                              sync.Mutex
	proxied, reads, writes, bulkOps int
}

func (c *workloadCounts) String() string {
	return fmt.Sprintf("%d proxied requests through the gate, %d SCIM reads, %d SCIM writes (%d of them Bulk operations)",
		c.proxied, c.reads, c.writes, c.bulkOps)
}

// memoryWorkload runs, for period, one client of proxied requests with the
// sessions of random users and one SCIM client reading (filter, get, list
// page, group without members) and writing (PATCH, Bulk create, group
// member add) as an IdP would, and returns the counts.
func memoryWorkload(t *testing.T, p *proc, cfg serveConfig, codec *session.Codec, period time.Duration, nUsers int) *workloadCounts {
	t.Helper()
	counts := &workloadCounts{}
	deadline := time.Now().Add(period)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for time.Now().Before(deadline) {
			i := rng.IntN(nUsers)
			name := fmt.Sprintf("user%06d@example.com", i)
			now := time.Now()
			cookie, _ := codec.Encode(&session.Session{ID: session.NewID(), IssuedAt: now.Add(time.Second),
				Expires: now.Add(time.Hour), Principal: identity.Principal{User: name, Email: name}})
			req, _ := http.NewRequest("GET", p.publicURL+"/app", nil)
			req.AddCookie(&http.Cookie{Name: httpsCookieName, Value: cookie})
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("proxied request: %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if want := map[bool]int{true: 200, false: 403}[i%20 != 0]; resp.StatusCode != want {
				t.Errorf("proxied request as %s: %d, want %d", name, resp.StatusCode, want)
				return
			}
			counts.mu.Lock()
			counts.proxied++
			counts.mu.Unlock()
		}
	})
	wg.Go(func() { scimWorkload(t, p, cfg, counts, deadline, nUsers) })
	wg.Wait()
	return counts
}

func scimWorkload(t *testing.T, p *proc, cfg serveConfig, counts *workloadCounts, deadline time.Time, nUsers int) {
	c := newSCIMClient(cfg.token)
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(what string, status int, body map[string]any, err error, want int) bool {
		if err != nil || status != want {
			t.Errorf("%s: %d %v %v, want %d", what, status, body, err, want)
			return false
		}
		return true
	}
	for round := 0; time.Now().Before(deadline); round++ {
		i := rng.IntN(nUsers)
		name, id := fmt.Sprintf("user%06d@example.com", i), benchUserID(i)
		gi := 1 + rng.IntN(9_999)
		gid := fmt.Sprintf("%08x-1111-4000-8000-%012x", gi, gi) // as fillStore writes it
		reads := []string{
			"/Users?filter=" + strings.ReplaceAll(`userName eq "`+name+`"`, " ", "%20"),
			"/Users/" + id,
			fmt.Sprintf("/Users?startIndex=%d&count=100", 1+rng.IntN(nUsers-100)),
			"/Groups/" + gid + "?excludedAttributes=members",
		}
		for _, path := range reads {
			status, body, err := c.do(p.publicURL, "GET", path, nil)
			if !check("GET "+path, status, body, err, 200) {
				return
			}
		}
		status, body, err := c.do(p.publicURL, "PATCH", "/Users/"+id,
			patchOp(map[string]any{"op": "replace", "path": "displayName", "value": fmt.Sprint("Round ", round)}))
		if !check("PATCH user", status, body, err, 200) {
			return
		}
		status, body, err = c.do(p.publicURL, "PATCH", "/Groups/"+gid,
			patchOp(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id}}}))
		if !check("PATCH group", status, body, err, 200) && status != 204 {
			return
		}
		var ops []any
		for j := range 10 {
			ops = append(ops, map[string]any{"method": "POST", "path": "/Users", "bulkId": fmt.Sprint(j),
				"data": scimUser(fmt.Sprintf("mem-%05d-%d@example.com", round, j), "Mem", "User")})
		}
		status, body, err = c.do(p.publicURL, "POST", "/Bulk", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"}, "Operations": ops})
		if !check("Bulk", status, body, err, 200) {
			return
		}
		counts.mu.Lock()
		counts.reads += len(reads)
		counts.writes += 2 + len(ops)
		counts.bulkOps += len(ops)
		counts.mu.Unlock()
	}
}

// rssParts reads the parts of VmRSS (anonymous: heap, stacks, SQLite's
// caches; file: the binary) from /proc/PID/status.
func (p *proc) rssParts(t *testing.T) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "RssAnon:") || strings.HasPrefix(line, "RssFile:") {
			parts = append(parts, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(parts, ", ")
}
