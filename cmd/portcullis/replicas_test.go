package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
)

// testPostgresSchema returns a DSN (with search_path) on a fresh schema that
// is dropped when the test ends. It skips without a server, and fails
// instead when PORTCULLIS_REQUIRE_PEERS is set (CI).
func testPostgresSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv("PORTCULLIS_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err == nil {
		err = admin.Ping(ctx)
	}
	requirePeer(t, fmt.Sprintf("PostgreSQL at PORTCULLIS_TEST_POSTGRES (%v)", err), err == nil)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "portcullis_cmd_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close(context.Background())
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestReplicas_DeactivationOnAReachesB runs two proxies ("replicas") on one
// PostgreSQL directory: a deactivation written through A blocks the user on
// B within a second, without any request to B's SCIM API.
func TestReplicas_DeactivationOnAReachesB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two proxies on PostgreSQL")
	}
	dsn := testPostgresSchema(t)
	rs := newReplicaSet(t, "")
	a, b := rs.start("a", dsn).public, rs.start("b", dsn).public
	id := rs.createUser(a, "alice@example.com")
	alice := rs.sessionFor("alice", "alice@example.com")

	// B learns about the new user from the event log (it never saw the POST).
	waitFor(t, "B to see the new user", 5*time.Second, func() bool { c, _ := rs.get(b, alice); return c == 200 })

	stream := rs.openStream(b, alice) // open on B, a replica that never sees the SCIM call
	rs.setActive(a, id, false)
	deactivated := time.Now()
	if got, _ := rs.get(a, alice); got != http.StatusForbidden {
		t.Errorf("A after its own write: %d, want 403 at once", got)
	}
	waitFor(t, "B to block the deactivated user", time.Second, func() bool { c, _ := rs.get(b, alice); return c == http.StatusForbidden })
	t.Logf("deactivation through A blocked the user on B after %s", time.Since(deactivated))
	select {
	case <-stream:
		t.Logf("and closed the user's open stream on B after %s", time.Since(deactivated))
	case <-time.After(5 * time.Second):
		t.Error("the deactivated user's SSE stream on B is still open 5 s after the deactivation on A")
	}

	// Two replicas creating the same userName at once: one 201, one 409.
	codes := make(chan int, 2)
	for _, base := range []string{a, b} {
		go func() {
			c, _, _ := rs.scim("POST", base+"/scim/v2/Users", `{"userName":"race@example.com"}`)
			codes <- c
		}()
	}
	c1, c2 := <-codes, <-codes
	if !(c1 == 201 && c2 == 409 || c1 == 409 && c2 == 201) {
		t.Errorf("concurrent creates on two replicas: %d and %d, want one 201 and one 409", c1, c2)
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReplicas_ShareTheReplayCache: with PostgreSQL, the replay cache the
// SP gets is the store's, so an assertion ID accepted by one replica is
// refused by another (samlsp's own tests show the SP refuses what its
// ReplayCache has seen).
func TestReplicas_ShareTheReplayCache(t *testing.T) {
	dsn := testPostgresSchema(t)
	rs := newReplicaSet(t, "")
	if err := os.WriteFile(filepath.Join(rs.dir, "store.dsn"), []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(rs.dir, "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var replicas []scimParts
	for range 2 {
		p, err := buildSCIM(ctx, cfg, zap.NewNop(), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.store.Close() })
		if p.replay == nil {
			t.Fatal("buildSCIM on postgres gives no shared replay cache")
		}
		replicas = append(replicas, p)
	}
	expires := time.Now().Add(time.Hour)
	if seen, err := replicas[0].replay.Seen(ctx, "assertion-1", expires); err != nil || seen {
		t.Fatalf("first use on replica 0: seen=%v err=%v", seen, err)
	}
	if seen, err := replicas[1].replay.Seen(ctx, "assertion-1", expires); err != nil || !seen {
		t.Errorf("the same assertion ID on replica 1: seen=%v err=%v, want seen", seen, err)
	}
}
