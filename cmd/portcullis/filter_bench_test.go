package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
)

// BenchmarkSCIMFilters100k times, through the real binary over HTTP, every
// filter Okta and Entra send to look a user or group up, on a directory of
// 100,000 users and 10,000 groups, on SQLite and on PostgreSQL (skipped
// without a server). Each must be answered from an index (issue #14: under
// 10 ms). The store is filled straight into the tables, and the email
// index is then dropped and its migration unrecorded, so that the binary's
// first start runs the migration's backfill (its time is logged).
//
//	go test ./cmd/portcullis -run '^$' -bench SCIMFilters100k -benchtime 200x
func BenchmarkSCIMFilters100k(b *testing.B) {
	const nUsers, nGroups = 100_000, 10_000
	bin := buildBinary(b)
	b.Run("sqlite", func(b *testing.B) {
		cfg := writeServeConfig(b, b.TempDir())
		began := time.Now()
		fillStore(b, cfg.dbPath, nUsers, nGroups)
		b.Logf("store filled in %s", time.Since(began).Round(time.Millisecond))
		db, err := sql.Open("sqlite", cfg.dbPath+"?_pragma=busy_timeout(5000)")
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range []string{`DROP TABLE user_emails`, `DELETE FROM schema_migrations WHERE version >= ` + emailMigration(b)} {
			if _, err := db.Exec(q); err != nil {
				b.Fatalf("%s: %v", q, err)
			}
		}
		db.Close()
		p := startTwice(b, bin, cfg.path)
		defer p.stop(b)
		benchFilters(b, p.publicURL, cfg.token, filterTargets{
			user: "user050001@example.com", externalID: "ext-050001", id: benchUserID(50_001), group: "group-00042",
		})
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := testPostgresSchema(b)
		ctx := context.Background()
		st, err := postgres.Open(ctx, dsn) // creates the schema
		if err != nil {
			b.Fatal(err)
		}
		st.Close()
		fillPostgres(b, dsn, nUsers, nGroups)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range []string{`DROP TABLE user_emails`, `DELETE FROM schema_migrations WHERE version >= ` + emailMigration(b)} {
			if _, err := conn.Exec(ctx, q); err != nil {
				b.Fatalf("%s: %v", q, err)
			}
		}
		conn.Close(ctx)
		dir := b.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "store.dsn"), []byte(dsn+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
		cfg := writeServeConfigStore(b, dir, "store:\n  driver: postgres\n  dsnFile: store.dsn\n")
		p := startTwice(b, bin, cfg.path)
		defer p.stop(b)
		benchFilters(b, p.publicURL, cfg.token, filterTargets{
			user: "user050001@example.com", externalID: "50001", id: benchUserID(50_001), group: "Group 42",
		})
	})
}

// startTwice starts the binary, which migrates the store (the email
// index's backfill), stops it and starts it again: the difference between
// the two times to ready is the backfill's.
func startTwice(b *testing.B, bin, cfgPath string) *proc {
	p := startBinary(b, bin, cfgPath)
	first := p.readyIn
	p.stop(b)
	p = startBinary(b, bin, cfgPath)
	b.Logf("ready in %s with the email index's backfill, %s at the next start",
		first.Round(time.Millisecond), p.readyIn.Round(time.Millisecond))
	return p
}

// emailMigration is the number of the email index's migration.
func emailMigration(b *testing.B) string {
	m, err := filepath.Glob(filepath.Join("..", "..", "scimsync", "store", "sqlite", "migrations", "*_user_emails.sql"))
	if err != nil || len(m) != 1 {
		b.Fatalf("the user_emails migration: %v %v", m, err)
	}
	return filepath.Base(m[0])[:4]
}

// filterTargets are a user and a group of the filled store.
type filterTargets struct{ user, externalID, id, group string }

// benchFilters runs each filter as a sub-benchmark: one GET per iteration,
// checked for a 200 and the expected number of results.
func benchFilters(b *testing.B, base, token string, tg filterTargets) {
	c := newSCIMClient(token)
	get := func(path, filter string) (int, map[string]any) {
		status, body, err := c.do(base, "GET", path+"?"+url.Values{"filter": {filter}, "excludedAttributes": {"members"}}.Encode(), nil)
		if err != nil {
			b.Fatal(err)
		}
		return status, body
	}
	// A group the user is in, as Entra asks about it.
	member := fmt.Sprintf(`members[value eq %q]`, tg.id)
	status, body := get("/Groups", member)
	res, _ := body["Resources"].([]any)
	if status != 200 || len(res) == 0 {
		b.Fatalf("%s: %d %v", member, status, body)
	}
	g := res[0].(map[string]any)
	gid, gname := g["id"].(string), g["displayName"].(string)
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	for _, tc := range []struct {
		name, path, filter string
		want               int // -1: at least one
	}{
		{"userName_eq", "/Users", "userName eq " + q(tg.user), 1},
		{"externalId_eq", "/Users", "externalId eq " + q(tg.externalID), 1},
		{"id_eq", "/Users", "id eq " + q(tg.id), 1},
		{"emails_type_work_value_eq", "/Users", `emails[type eq "work"].value eq ` + q(tg.user), 1},
		{"emails.value_eq", "/Users", "emails.value eq " + q(tg.user), 1},
		{"emails_value_eq_bracket", "/Users", "emails[value eq " + q(tg.user) + "]", 1},
		{"userName_eq_or_userName_eq", "/Users", "userName eq " + q(tg.user) + ` or userName eq "user000007@example.com"`, 2},
		{"userName_eq_and_active", "/Users", "userName eq " + q(tg.user) + " and active eq true", 1},
		{"userName_eq_or_emails_eq", "/Users", `userName eq "user000007@example.com" or emails.value eq ` + q(tg.user), 2},
		{"members_eq_or_members_eq", "/Groups", member + ` or members.value eq "` + benchUserID(7) + `"`, -1},
		{"displayName_eq", "/Groups", "displayName eq " + q(tg.group), 1},
		{"members_value_eq_bracket", "/Groups", member, -1},
		{"members.value_eq", "/Groups", "members.value eq " + q(tg.id), -1},
		{"id_eq_and_members", "/Groups", "id eq " + q(gid) + " and " + member, 1},
		{"displayName_eq_and_members", "/Groups", "displayName eq " + q(gname) + " and members.value eq " + q(tg.id), 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var worst time.Duration
			var times []time.Duration
			for b.Loop() {
				t0 := time.Now()
				status, body := get(tc.path, tc.filter)
				d := time.Since(t0)
				times = append(times, d)
				worst = max(worst, d)
				n, _ := body["totalResults"].(float64)
				if status != 200 || tc.want >= 0 && int(n) != tc.want || tc.want < 0 && n < 1 {
					b.Fatalf("%s: %d, %v results, want %d", tc.filter, status, n, tc.want)
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
		})
	}
}
