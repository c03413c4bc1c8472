package scimsync

// Benchmarks whose figures go in the docs: SCIM creates and lookups through
// the HTTP handler on a real SQLite file, and the memory of the directory
// view at 100,000 users and 10,000 groups. BenchmarkSCIMFilter100k builds
// its 100k store once (that takes a while) and runs the lookups on it as
// sub-benchmarks, so the store lives in the benchmark's temp dir and needs no
// process-wide state.

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

const (
	bench100kUsers  = 100_000
	bench100kGroups = 10_000
)

// newBenchService is the SCIM API over st and d as cmd/portcullis wires it
// (default page size and body limit), without logging.
func newBenchService(st *sqlite.Store, d *Directory) (*Service, error) {
	pub, _ := url.Parse("https://app.example.com")
	cfg := &config.Config{Public: pub, SCIM: config.SCIM{
		Enabled: true, BasePath: "/scim/v2", MaxBodyBytes: 4 << 20, MaxPageSize: 500,
	}}
	tokens, err := ParseTokens([]byte("okta " + testToken + "\n"))
	if err != nil {
		return nil, err
	}
	return NewService(Options{Config: cfg, Store: st, Reader: st, Directory: d, Tokens: tokens})
}

// benchDo runs one request through the handler.
func benchDo(svc http.Handler, method, target, body string) *httptest.ResponseRecorder {
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, target, nil)
	} else {
		req = httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/scim+json")
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	svc.ServeHTTP(rec, req)
	return rec
}

// BenchmarkSCIMCreateUser is POST /Users through the handler on a SQLite
// file: body parse, validation, one synced write transaction with its event,
// the directory catch-up and the response. clients=4 has four goroutines
// posting at once (writes queue on the one write connection).
func BenchmarkSCIMCreateUser(b *testing.B) {
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "portcullis.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			d, _ := NewDirectory("userName")
			svc, err := newBenchService(st, d)
			if err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			create := func() {
				name := fmt.Sprintf("bench%07d@example.com", n.Add(1))
				if rec := benchDo(svc, "POST", "/scim/v2/Users", userBody(name, true)); rec.Code != http.StatusCreated {
					b.Fatalf("create %s: %d %s", name, rec.Code, rec.Body)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			if clients == 1 {
				for b.Loop() {
					create()
				}
			} else {
				b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						create()
					}
				})
			}
			b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "creates/s")
		})
	}
}

// BenchmarkSCIMFilter100k runs SCIM lookups through the handler on a store
// of 100,000 users and 10,000 groups (built once, in one transaction, with
// its directory loaded):
//
//   - userName_eq: GET /Users?filter=userName eq "…", the lookup every IdP
//     makes before it creates a user; successive iterations ask for
//     different users.
//   - emails_value_eq: emails[type eq "work"].value eq "…", which Entra ID
//     sends: the email index gives the candidates, the filter decides.
//   - scan_displayName_co: a filter no index answers, which reads and
//     filters every user (its peak-MiB is the scan's heap).
func BenchmarkSCIMFilter100k(b *testing.B) {
	svc := benchStore100k(b)
	one := []byte(`"totalResults":1`)
	b.Run("userName_eq", func(b *testing.B) {
		targets := make([]string, 1024)
		for i := range targets {
			u := (i * 7919) % bench100kUsers
			targets[i] = "/scim/v2/Users?" + url.Values{"filter": {fmt.Sprintf("userName eq %q", benchUserName(u))}}.Encode()
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			rec := benchDo(svc, "GET", targets[i%len(targets)], "")
			if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), one) {
				b.Fatalf("%s: %d %s", targets[i%len(targets)], rec.Code, rec.Body)
			}
			i++
		}
	})
	b.Run("emails_value_eq", func(b *testing.B) {
		target := "/scim/v2/Users?" + url.Values{"filter": {fmt.Sprintf(`emails[type eq "work"].value eq %q`, benchUserName(4242))}}.Encode()
		b.ReportAllocs()
		for b.Loop() {
			rec := benchDo(svc, "GET", target, "")
			if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), one) {
				b.Fatalf("%s: %d %.300s", target, rec.Code, rec.Body)
			}
		}
	})
	b.Run("scan_displayName_co", func(b *testing.B) {
		// A filter no index answers scans every user; peak-MiB is the
		// largest heap seen while it runs (sampled every millisecond), which
		// is what a memory limit on the container meets, and base-MiB the
		// heap before it (the store and the directory view of 100k users).
		target := "/scim/v2/Users?" + url.Values{"filter": {fmt.Sprintf(`displayName co %q`, "User 004242")}}.Encode()
		peak := heapPeak(b)
		b.ReportAllocs()
		for b.Loop() {
			rec := benchDo(svc, "GET", target, "")
			if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), one) {
				b.Fatalf("%s: %d %.300s", target, rec.Code, rec.Body)
			}
		}
		most, base := peak()
		b.ReportMetric(float64(most)/(1<<20), "peak-MiB")
		b.ReportMetric(float64(base)/(1<<20), "base-MiB")
	})
}

// BenchmarkDirectoryLoad100k loads a snapshot of 100,000 users and 10,000
// groups (50 members each, one of 10,000) into a Directory, then drops the
// snapshot, forces GC and reports the heap: MiB-directory is what the view
// holds (HeapInuse after minus before), MiB-HeapInuse the whole heap of the
// test process (meaningful when this benchmark runs alone). ns/op is one
// Load.
func BenchmarkDirectoryLoad100k(b *testing.B) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	snap := benchSnapshot(bench100kUsers, bench100kGroups)
	var d *Directory
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d, _ = NewDirectory("userName")
		d.Load(snap)
	}
	b.StopTimer()
	snap = nil
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	active, inactive, groups := d.Counts()
	if active+inactive != bench100kUsers || groups != bench100kGroups {
		b.Fatalf("directory has %d users and %d groups", active+inactive, groups)
	}
	const mib = 1 << 20
	b.ReportMetric(float64(after.HeapInuse)/mib, "MiB-HeapInuse")
	b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/mib, "MiB-directory")
	runtime.KeepAlive(d)
}

// ---------------------------------------------------------------- data

func benchUserName(i int) string { return fmt.Sprintf("user%06d@example.com", i) }

// benchSnapshot builds a directory as the store would load it: users with
// an Okta-like document (every 20th inactive), and groups whose member IDs
// share the users' ID strings. Group 0 has 10,000 members, the others 50.
func benchSnapshot(nUsers, nGroups int) *store.Snapshot {
	now := time.Now().UTC().Truncate(time.Millisecond)
	snap := &store.Snapshot{Users: make([]*store.User, nUsers), Groups: make([]*store.Group, nGroups)}
	for i := range nUsers {
		name := benchUserName(i)
		active := i%20 != 0
		snap.Users[i] = &store.User{
			ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), UserName: name, Email: name,
			ExternalID: fmt.Sprintf("ext-%06d", i), Active: active, Version: 1,
			Created: now, LastModified: now, ValidAfter: now,
			Doc: fmt.Appendf(nil, `{"schemas":["%s"],"userName":%q,"name":{"givenName":"User","familyName":"%06d"},`+
				`"emails":[{"primary":true,"value":%q,"type":"work"}],"displayName":"User %06d","locale":"en-US",`+
				`"externalId":"ext-%06d","active":%v}`, SchemaUser, name, i, name, i, i, active),
		}
	}
	for g := range nGroups {
		n := 50
		if g == 0 {
			n = min(10_000, nUsers)
		}
		members := make([]string, n)
		for m := range members {
			u := m
			if g != 0 {
				u = ((g*50 + m) * 7919) % nUsers // 7919 is prime: distinct for consecutive m
			}
			members[m] = snap.Users[u].ID
		}
		name := fmt.Sprintf("group-%05d", g)
		snap.Groups[g] = &store.Group{
			ID: fmt.Sprintf("%08x-1111-4000-8000-%012x", g, g), DisplayName: name, Version: 1,
			Created: now, LastModified: now, Members: members,
			Doc: fmt.Appendf(nil, `{"schemas":["%s"],"displayName":%q}`, SchemaGroup, name),
		}
	}
	return snap
}

// benchStore100k builds the 100k store in b's temp dir, loads its
// directory and returns the SCIM API over both.
func benchStore100k(b *testing.B) *Service {
	b.Helper()
	began := time.Now()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "portcullis.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := benchFill(ctx, path, benchSnapshot(bench100kUsers, bench100kGroups)); err != nil {
		b.Fatal(err)
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		b.Fatal(err)
	}
	d, _ := NewDirectory("userName")
	d.Load(snap)
	svc, err := newBenchService(st, d)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("100k store built and loaded in %s", time.Since(began).Round(time.Millisecond))
	return svc
}

// benchFill writes a snapshot into the store's file at path in one
// transaction of a connection of its own, with the columns CreateUser and
// CreateGroup write, but without an event per resource: one fsync for the
// lot instead of 110,000.
func benchFill(ctx context.Context, path string, snap *store.Snapshot) error {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insUser, err := tx.PrepareContext(ctx, `INSERT INTO users
		(id, user_name, user_name_lower, external_id, email, email_lower, active, doc, version, created, last_modified, valid_after)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	insEmail, err := tx.PrepareContext(ctx, `INSERT INTO user_emails (user_pk, value_key) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	for _, u := range snap.Users {
		res, err := insUser.ExecContext(ctx, u.ID, u.UserName, strings.ToLower(u.UserName), u.ExternalID, u.Email,
			strings.ToLower(u.Email), u.Active, u.Doc, u.Version, u.Created.UnixMilli(), u.LastModified.UnixMilli(), u.ValidAfter.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert user %s: %w", u.UserName, err)
		}
		upk, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for _, k := range store.EmailKeys(u.Doc) { // the email index, as CreateUser keeps it
			if _, err := insEmail.ExecContext(ctx, upk, k); err != nil {
				return fmt.Errorf("index emails of %s: %w", u.UserName, err)
			}
		}
	}
	insGroup, err := tx.PrepareContext(ctx, `INSERT INTO groups
		(id, display_name, display_name_lower, external_id, doc, version, created, last_modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	insMember, err := tx.PrepareContext(ctx, `INSERT INTO group_members (group_pk, user_pk) SELECT ?, pk FROM users WHERE id = ?`)
	if err != nil {
		return err
	}
	for _, g := range snap.Groups {
		res, err := insGroup.ExecContext(ctx, g.ID, g.DisplayName, strings.ToLower(g.DisplayName), g.ExternalID, g.Doc,
			g.Version, g.Created.UnixMilli(), g.LastModified.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert group %s: %w", g.DisplayName, err)
		}
		gpk, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for _, m := range store.SortedUnique(g.Members) {
			if _, err := insMember.ExecContext(ctx, gpk, m); err != nil {
				return fmt.Errorf("group %s: member %s: %w", g.DisplayName, m, err)
			}
		}
	}
	return tx.Commit()
}

// heapPeak samples the heap's objects every millisecond until the benchmark
// ends; the returned func reports the largest value seen and the value
// after a GC at the start.
func heapPeak(b *testing.B) func() (peak, base uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var maxSeen atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > maxSeen.Load() {
					maxSeen.Store(v)
				}
			}
		}
	}()
	b.Cleanup(func() { close(stop); <-done })
	return func() (uint64, uint64) { return maxSeen.Load(), base }
}
