package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/storetest"
)

// BenchmarkEventStats_Postgres1M is BenchmarkEventStats_SQLite1M on
// PostgreSQL: one round trip, a lateral index walk per kind.
func BenchmarkEventStats_Postgres1M(b *testing.B) {
	dsn, schema := storetest.PostgresSchema(b)
	st := openPostgres(b, dsn)
	ctx := context.Background()
	began := time.Now()
	const n = 1_000_000
	start := time.Now().Add(-30 * 24 * time.Hour)
	step := 30 * 24 * time.Hour / n
	rows := make([][]any, 0, n)
	for i := range n {
		org := store.DefaultOrg
		if i%storetest.BenchOrgEvery == 0 {
			org = storetest.BenchOrg
		}
		rows = append(rows, []any{start.Add(time.Duration(i) * step), store.EventKinds[i%len(store.EventKinds)],
			"User", fmt.Sprintf("u%d", i), "okta", org})
	}
	conn := storetest.PostgresConn(b, schema)
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "events"},
		[]string{"time", "kind", "resource_type", "resource_id", "actor", "org"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE `+pgx.Identifier{schema, "events"}.Sanitize()); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d events copied in %s", n, time.Since(began).Round(time.Millisecond))
	storetest.BenchEventStats(b, st)
}
