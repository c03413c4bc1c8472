package storetest

// PostgreSQL for tests: every package whose tests need a server uses these,
// so that they all skip or fail alike and never meet in one schema.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The PostgreSQL tests need a server. They skip when none answers at
// PORTCULLIS_TEST_POSTGRES (default below), and fail instead when
// PORTCULLIS_REQUIRE_PEERS is set, as in CI. Each test works in a schema of
// its own, dropped at the end, so parallel tests and CI runs never meet.
const pgDefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var pgReachable = sync.OnceValues(func() (string, error) {
	dsn := os.Getenv("PORTCULLIS_TEST_POSTGRES")
	if dsn == "" {
		dsn = pgDefaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return dsn, err
	}
	defer conn.Close(ctx)
	return dsn, conn.Ping(ctx)
})

// PostgresAdmin returns a connection to the test database, skipping the test if
// there is none.
func PostgresAdmin(t testing.TB) *pgx.Conn {
	t.Helper()
	dsn, err := pgReachable()
	if err != nil {
		shown := "(a key=value DSN)"
		if u, perr := url.Parse(dsn); perr == nil && u.Scheme != "" {
			shown = u.Redacted()
		}
		msg := fmt.Sprintf("PostgreSQL not reachable at PORTCULLIS_TEST_POSTGRES=%s: %v", shown, err)
		if os.Getenv("PORTCULLIS_REQUIRE_PEERS") != "" {
			t.Fatal(msg + " (required: PORTCULLIS_REQUIRE_PEERS is set)")
		}
		t.Skip(msg + " (set PORTCULLIS_REQUIRE_PEERS to fail instead)")
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// PostgresSchema creates a fresh schema, dropped when the test ends, and returns
// a DSN whose connections use it (search_path) and carry its name as
// application_name, so pg_stat_activity can tell them apart.
func PostgresSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	admin := PostgresAdmin(t)
	var b [6]byte
	rand.Read(b[:])
	schema = "portcullis_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	base, _ := pgReachable()
	params := [][2]string{{"search_path", schema}, {"application_name", schema}, {"pool_max_conns", "4"}}
	if u, err := url.Parse(base); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		for _, p := range params {
			q.Set(p[0], p[1])
		}
		u.RawQuery = q.Encode()
		return u.String(), schema
	}
	for _, p := range params { // key=value form
		base += " " + p[0] + "=" + p[1]
	}
	return base, schema
}

// PostgresConn returns a connection of its own to schema, closed when the test ends.
func PostgresConn(t testing.TB, schema string) *pgx.Conn {
	t.Helper()
	base, _ := pgReachable()
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
