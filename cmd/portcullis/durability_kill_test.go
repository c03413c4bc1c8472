package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDurability_KillDuringSCIMWrites kills `portcullis serve` with SIGKILL
// while four SCIM clients create users and patch them and a fifth sends
// Bulk requests (RFC 7644 §3.7) of creates and a patch, on each store
// driver, then restarts it on the same database: every acknowledged create
// and patch is there (also each operation a Bulk response acknowledged),
// nothing is there twice, and the IdP's retry of a
// request the kill cut off is safe (a create meets 409 if it had landed,
// a patch sets the same value again).
func TestDurability_KillDuringSCIMWrites(t *testing.T) {
	bin := buildBinary(t)
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			store := "store:\n  driver: sqlite\n  dsn: store/portcullis.db\n"
			if driver == "postgres" {
				dsn := testPostgresSchema(t)
				if err := os.WriteFile(filepath.Join(dir, "store.dsn"), []byte(dsn+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				store = "store:\n  driver: postgres\n  dsnFile: store.dsn\n"
			}
			killDuringWrites(t, bin, writeServeConfigStore(t, dir, store))
		})
	}
}

// patchGiven is the PATCH the workers send: a new givenName.
func patchGiven(v string) map[string]any {
	return patchOp(map[string]any{"op": "replace", "path": "name.givenName", "value": v})
}

type killResult struct {
	created     []string          // userName → 201
	ids         map[string]string // userName → id, for the created
	patched     map[string]string // id → givenName, 200
	uncertain   []string          // creates with no answer
	uncertainPt map[string]string // id → givenName, patches with no answer
	odd         []string          // any other answer
}

func killDuringWrites(t *testing.T, bin string, cfg serveConfig) {
	const (
		workers   = 4
		killAfter = 300 // acknowledged writes before the kill
		limit     = 60 * time.Second
	)
	p := startBinary(t, bin, cfg.path)
	t.Logf("first start: ready in %s", p.readyIn.Round(time.Millisecond))
	c := newSCIMClient(cfg.token)

	var (
		acked   atomic.Int64
		stop    = make(chan struct{})
		results = make([]killResult, workers+1) // the last: the Bulk client
		wg      sync.WaitGroup
	)
	began := time.Now()
	for w := range workers {
		r := &results[w]
		r.ids, r.patched, r.uncertainPt = map[string]string{}, map[string]string{}, map[string]string{}
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("dur-w%d-%05d@example.com", w, i)
				status, body, err := c.do(p.publicURL, "POST", "/Users", scimUser(name, "Dur", strconv.Itoa(i)))
				switch {
				case err != nil:
					r.uncertain = append(r.uncertain, name)
					return // the process is gone
				case status != http.StatusCreated:
					r.odd = append(r.odd, fmt.Sprintf("create %s: %d %v", name, status, body))
					continue
				}
				id, _ := body["id"].(string)
				r.created, r.ids[name] = append(r.created, name), id
				acked.Add(1)
				given := "patched-" + strconv.Itoa(i)
				status, body, err = c.do(p.publicURL, "PATCH", "/Users/"+id, patchGiven(given))
				switch {
				case err != nil:
					r.uncertainPt[id] = given
					return
				case status != http.StatusOK:
					r.odd = append(r.odd, fmt.Sprintf("patch %s: %d %v", id, status, body))
					continue
				}
				r.patched[id] = given
				acked.Add(1)
			}
		})
	}
	bulk := &results[workers]
	bulk.ids, bulk.patched, bulk.uncertainPt = map[string]string{}, map[string]string{}, map[string]string{}
	wg.Go(func() { bulkWrites(c, p.publicURL, bulk, &acked, stop) })
	deadline := time.Now().Add(limit)
	for acked.Load() < killAfter && time.Now().Before(deadline) && p.running() {
		time.Sleep(time.Millisecond)
	}
	if acked.Load() < killAfter {
		close(stop)
		wg.Wait()
		t.Fatalf("only %d writes acknowledged in %s (process running: %v)\nlogs:\n%s", acked.Load(), limit, p.running(), p.logs)
	}
	atKill, took := acked.Load(), time.Since(began)
	p.kill(t)
	close(stop)
	wg.Wait()
	t.Logf("SIGKILL after %d acknowledged writes in %s (%.0f writes/s from %d clients, %d of them Bulk operations)",
		atKill, took.Round(time.Millisecond), float64(atKill)/took.Seconds(), workers+1, len(bulk.created)+len(bulk.patched))
	if len(bulk.created) == 0 {
		t.Errorf("no Bulk operation was acknowledged before the kill")
	}

	created, patched := map[string]bool{}, map[string]string{}
	isUncertain, uncertainPt := map[string]bool{}, map[string]string{}
	for w, r := range results {
		for _, n := range r.created {
			created[n] = true
		}
		for id, v := range r.patched {
			patched[id] = v
		}
		for _, n := range r.uncertain {
			isUncertain[n] = true
		}
		for id, v := range r.uncertainPt {
			uncertainPt[id] = v
		}
		for _, o := range r.odd {
			t.Errorf("worker %d: unexpected answer: %s", w, o)
		}
	}
	t.Logf("%d creates and %d patches acknowledged; %d creates and %d patches cut off by the kill",
		len(created), len(patched), len(isUncertain), len(uncertainPt))

	p = startBinary(t, bin, cfg.path)
	t.Logf("restart after the kill: ready in %s", p.readyIn.Round(time.Millisecond))
	listed := c.listUserNames(t, p.publicURL)

	// Every acknowledged create survived, none twice, nothing invented.
	missing, total := 0, 0
	for n := range created {
		if listed[n] == 0 {
			if missing++; missing <= 10 {
				t.Errorf("user %s got a 201 before the kill and is gone after the restart", n)
			}
		}
	}
	for n, k := range listed {
		total += k
		if k != 1 {
			t.Errorf("user %s is listed %d times", n, k)
		}
		if !created[n] && !isUncertain[n] {
			t.Errorf("user %s is stored but was never acknowledged nor in flight", n)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged creates are lost", missing, len(created))
	}
	if loaded, ok := p.directoryLoadedUsers(); !ok || loaded != total {
		t.Errorf("after the restart the directory loaded %d users (found: %v), the SCIM list has %d", loaded, ok, total)
	}
	// Every acknowledged patch survived.
	givenName := func(id string) string {
		status, body, err := c.do(p.publicURL, "GET", "/Users/"+id, nil)
		if err != nil || status != http.StatusOK {
			t.Errorf("get %s: %d %v", id, status, err)
			return ""
		}
		name, _ := body["name"].(map[string]any)
		g, _ := name["givenName"].(string)
		return g
	}
	lost := 0
	for id, v := range patched {
		if got := givenName(id); got != v {
			if lost++; lost <= 10 {
				t.Errorf("user %s: givenName %q after the restart, but %q was acknowledged", id, got, v)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged patches are lost", lost, len(patched))
	}

	// The IdP's retries: a create is 201 if it never landed, 409 if it
	// did, never a second user; a patch lands (again) with the same value.
	for n := range isUncertain {
		status, body, err := c.do(p.publicURL, "POST", "/Users", scimUser(n, "Dur", "retry"))
		switch {
		case err != nil:
			t.Errorf("retry %s: %v", n, err)
			continue
		case status == http.StatusConflict && listed[n] == 1:
			t.Logf("retried create of %s: 409 (it was stored before the kill)", n)
		case status == http.StatusCreated && listed[n] == 0:
			t.Logf("retried create of %s: 201 (it was not stored before the kill)", n)
		default:
			t.Errorf("retry %s: status %d (listed %d times before), want 409 if stored else 201; body %v", n, status, listed[n], body)
		}
		if got := c.countUserName(t, p.publicURL, n); got != 1 {
			t.Errorf("after the retry, filter userName eq %q finds %d users, want 1", n, got)
		}
	}
	for id, v := range uncertainPt {
		before := givenName(id)
		if status, body, err := c.do(p.publicURL, "PATCH", "/Users/"+id, patchGiven(v)); err != nil || status != http.StatusOK {
			t.Errorf("retried patch of %s: %d %v %v", id, status, body, err)
		}
		if got := givenName(id); got != v {
			t.Errorf("after the retried patch %s has givenName %q, want %q", id, got, v)
		}
		t.Logf("retried patch of %s: had %q before the retry (landed before the kill: %v)", id, before, before == v)
	}
	if status, body, err := c.do(p.publicURL, "POST", "/Users", scimUser("after-restart@example.com", "After", "Restart")); err != nil || status != http.StatusCreated {
		t.Errorf("create after the restart: %d %v %v", status, body, err)
	}
}

// bulkWrites sends Bulk requests until stop or until the process is gone:
// each creates five users and patches the first through its bulkId. Only
// the operations a Bulk response answered 201 or 200 count as
// acknowledged; a request without an answer leaves its creates uncertain.
func bulkWrites(c *scimClient, base string, r *killResult, acked *atomic.Int64, stop chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		var ops []any
		var names []string
		for j := range 5 {
			name := fmt.Sprintf("dur-bulk-%05d-%d@example.com", i, j)
			names = append(names, name)
			ops = append(ops, map[string]any{"method": "POST", "path": "/Users", "bulkId": fmt.Sprint("u", j),
				"data": scimUser(name, "Dur", strconv.Itoa(i))})
		}
		given := fmt.Sprint("bulk-patched-", i)
		ops = append(ops, map[string]any{"method": "PATCH", "path": "/Users/bulkId:u0", "data": patchGiven(given)})
		status, body, err := c.do(base, "POST", "/Bulk", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"}, "Operations": ops})
		switch {
		case err != nil:
			r.uncertain = append(r.uncertain, names...)
			return
		case status != http.StatusOK:
			r.odd = append(r.odd, fmt.Sprintf("bulk %d: %d %v", i, status, body))
			continue
		}
		results, _ := body["Operations"].([]any)
		if len(results) != len(ops) {
			r.odd = append(r.odd, fmt.Sprintf("bulk %d: %d results for %d operations", i, len(results), len(ops)))
			continue
		}
		var first string
		for j, v := range results {
			res, _ := v.(map[string]any)
			loc, _ := res["location"].(string)
			id := loc[strings.LastIndexByte(loc, '/')+1:]
			switch {
			case j < 5 && res["status"] == "201":
				r.created, r.ids[names[j]] = append(r.created, names[j]), id
				if j == 0 {
					first = id
				}
			case j == 5 && res["status"] == "200" && id == first:
				r.patched[id] = given
			default:
				r.odd = append(r.odd, fmt.Sprintf("bulk %d operation %d: %v", i, j, res))
				continue
			}
			acked.Add(1)
		}
	}
}
