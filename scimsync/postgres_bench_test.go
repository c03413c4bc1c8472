package scimsync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis-sso/portcullis/scimsync"
	"github.com/portcullis-sso/portcullis/scimsync/store/postgres"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// BenchmarkPostgresSnapshot100k loads the directory of
// BenchmarkSQLiteSnapshot100k (100,000 users; 10,000 groups of 10 members,
// one of 10,000) and builds the in-memory view from it: how long a replica
// takes to be ready. The rows are seeded with COPY, not through the store.
func BenchmarkPostgresSnapshot100k(b *testing.B) {
	const nUsers, nGroups = 100_000, 10_000
	ctx := context.Background()
	dsn, schema := storetest.PostgresSchema(b)
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	conn := storetest.PostgresConn(b, schema)

	start := time.Now()
	now := time.Now().UTC().Truncate(time.Millisecond)
	userRows := make([][]any, nUsers)
	for i := range userRows {
		name := fmt.Sprintf("user%d@example.com", i)
		userRows[i] = []any{fmt.Sprintf("2819c223-7f76-453a-919d-%012d", i), name, name, fmt.Sprint(i), name, name, true,
			fmt.Appendf(nil, `{"name":{"givenName":"User","familyName":"%d"},"emails":[{"value":"%s","primary":true}]}`, i, name),
			1, now, now, now}
	}
	groupRows := make([][]any, nGroups)
	var memberRows [][]any
	for g := range groupRows {
		name := fmt.Sprintf("Group %d", g)
		groupRows[g] = []any{fmt.Sprintf("group-%d", g), name, strings.ToLower(name), "", []byte(`{"displayName":"x"}`), 1, now, now}
		n := 10
		if g == 0 {
			n = 10_000
		}
		for i := range n {
			memberRows = append(memberRows, []any{int64(g + 1), int64((g*10+i)%nUsers + 1)}) // fresh identities start at 1
		}
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"users", []string{"id", "user_name", "user_name_lower", "external_id", "email", "email_lower", "active", "doc", "version", "created", "last_modified", "valid_after"}, userRows},
		{"groups", []string{"id", "display_name", "display_name_lower", "external_id", "doc", "version", "created", "last_modified"}, groupRows},
		{"group_members", []string{"group_pk", "user_pk"}, memberRows},
	} {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			b.Fatalf("copy %s: %v", c.table, err)
		}
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.Logf("setup: %d users, %d groups, %d memberships in %v", nUsers, nGroups, len(memberRows), time.Since(start).Round(time.Millisecond))

	b.ReportAllocs()
	b.ResetTimer()
	var snapTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		s, err := st.Snapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		snapTime += time.Since(t0)
		if len(s.Users) != nUsers || len(s.Groups) != nGroups {
			b.Fatalf("snapshot has %d users, %d groups", len(s.Users), len(s.Groups))
		}
		dir, _ := scimsync.NewDirectory("userName")
		dir.Load(s)
	}
	b.ReportMetric(float64(snapTime.Milliseconds())/float64(b.N), "snapshot-ms/op")
}
