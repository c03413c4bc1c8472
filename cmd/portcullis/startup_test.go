package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
)

// BenchmarkStartup_Postgres100kUsers10kGroups measures how long a replica
// takes from exec to /readyz 200 against a PostgreSQL directory of 100,000
// users and 10,000 groups (one of 10,000 members, the rest 10), the issue's
// target being 3 s. Each iteration is one process start; the store is
// filled once, straight into the tables with COPY.
//
//	go test ./cmd/portcullis -run '^$' -bench Startup -benchtime 5x
func BenchmarkStartup_Postgres100kUsers10kGroups(b *testing.B) {
	const nUsers, nGroups = 100_000, 10_000
	bin := buildBinary(b)
	dsn := testPostgresSchema(b)
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn) // creates the schema
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	began := time.Now()
	members := fillPostgres(b, dsn, nUsers, nGroups)
	b.Logf("store: %d users, %d groups, %d memberships copied in %s", nUsers, nGroups, members, time.Since(began).Round(time.Millisecond))

	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "store.dsn"), []byte(dsn+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := writeServeConfigStore(b, dir, "store:\n  driver: postgres\n  dsnFile: store.dsn\n")
	var ready time.Duration
	for b.Loop() {
		p := startBinary(b, bin, cfg.path)
		ready += p.readyIn
		if n, ok := p.directoryLoadedUsers(); !ok || n != nUsers {
			b.Fatalf("directory loaded %d users (found %v), want %d", n, ok, nUsers)
		}
		rss, hwm := p.memory(b)
		b.Logf("ready in %s; VmRSS %.0f MiB, peak %.0f MiB", p.readyIn.Round(time.Millisecond), rss, hwm)
		p.stop(b)
	}
	b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ready-ms")
}

// fillPostgres copies users, groups and memberships straight into the
// tables of scimsync/store/postgres/migrations/0001_init.sql and returns the number of
// memberships.
func fillPostgres(tb testing.TB, dsn string, nUsers, nGroups int) int {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	now := time.Now().UTC().Truncate(time.Millisecond)
	users := make([][]any, nUsers)
	for i := range users {
		name := fmt.Sprintf("user%06d@example.com", i)
		users[i] = []any{benchUserID(i), name, name, fmt.Sprint(i), name, name, true,
			fmt.Appendf(nil, `{"name":{"givenName":"User","familyName":"%d"},"emails":[{"value":"%s","type":"work","primary":true}]}`, i, name),
			1, now, now, now}
	}
	groups := make([][]any, nGroups)
	var members [][]any
	for g := range groups {
		name := fmt.Sprintf("Group %d", g)
		groups[g] = []any{fmt.Sprintf("group-%d", g), name, strings.ToLower(name), "", []byte(`{"displayName":"x"}`), 1, now, now}
		n := 10
		if g == 0 {
			n = 10_000
		}
		for i := range n {
			members = append(members, []any{int64(g + 1), int64((g*10+i)%nUsers + 1)}) // identities start at 1
		}
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"users", []string{"id", "user_name", "user_name_lower", "external_id", "email", "email_lower", "active", "doc", "version", "created", "last_modified", "valid_after"}, users},
		{"groups", []string{"id", "display_name", "display_name_lower", "external_id", "doc", "version", "created", "last_modified"}, groups},
		{"group_members", []string{"group_pk", "user_pk"}, members},
	} {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			tb.Fatalf("copy %s: %v", c.table, err)
		}
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		tb.Fatal(err)
	}
	return len(members)
}
