package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
)

// testPostgresSchema returns a DSN (with search_path) on a fresh schema that
// is dropped when the test ends. It skips without a server, and fails
// instead when PORTCULLIS_REQUIRE_PEERS is set (CI).
func testPostgresSchema(t *testing.T) string {
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
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Forwarded-User"))
	}))
	t.Cleanup(up.Close)
	token := "replica-test-token-0123456789"
	path := testConfigDir(t, `scim:
  enabled: true
  tokensFile: scim.tokens
store:
  driver: postgres
  dsnFile: store.dsn
`)
	dir := filepath.Dir(path)
	_ = os.WriteFile(filepath.Join(dir, "scim.tokens"), []byte(token+"\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "store.dsn"), []byte(dsn+"\n"), 0o600)
	raw, _ := os.ReadFile(path)
	_ = os.WriteFile(path, []byte(strings.Replace(string(raw), "http://127.0.0.1:3000", up.URL, 1)), 0o600)

	start := func(name string) string {
		ctx, cancel := context.WithCancel(context.Background())
		a, err := build(ctx, path, zap.NewNop())
		if err != nil {
			t.Fatalf("replica %s: %v", name, err)
		}
		pub, _ := net.Listen("tcp", "127.0.0.1:0")
		adm, _ := net.Listen("tcp", "127.0.0.1:0")
		done := make(chan struct{})
		go func() { _ = serveOn(ctx, a, pub, adm, zap.NewNop()); close(done) }()
		t.Cleanup(func() { cancel(); <-done; a.Close() })
		return "http://" + pub.Addr().String()
	}
	a, b := start("A"), start("B")

	scim := func(method, u, body string) (int, string) {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(rb)
	}
	code, body := scim("POST", a+"/scim/v2/Users", `{"userName":"alice@example.com","emails":[{"value":"alice@example.com","primary":true}]}`)
	if code != 201 {
		t.Fatalf("create on A: %d %s", code, body)
	}
	id := body[strings.Index(body, `"id":"`)+6:]
	id = id[:strings.Index(id, `"`)]

	// A session as the SAML ACS would have issued it, a second ago.
	keys, _ := session.ParseKeys(mustRead(t, filepath.Join(dir, "session.keys")))
	codec, _ := session.NewCodec("portcullis", keys, true, time.Hour)
	value, _ := codec.Encode(&session.Session{ID: session.NewID(), IssuedAt: time.Now().Add(time.Second),
		Expires: time.Now().Add(time.Hour), Principal: identity.Principal{User: "alice", Email: "alice@example.com"}})
	get := func(base string) int {
		req, _ := http.NewRequest("GET", base+"/app", nil)
		req.Header.Set("Accept", "application/json")
		req.AddCookie(&http.Cookie{Name: "portcullis", Value: value})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// B learns about the new user from the event log (it never saw the POST).
	waitFor(t, "B to see the new user", 5*time.Second, func() bool { return get(b) == 200 })

	if code, body := scim("PATCH", a+"/scim/v2/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`); code != 200 {
		t.Fatalf("deactivate on A: %d %s", code, body)
	}
	deactivated := time.Now()
	if got := get(a); got != http.StatusForbidden {
		t.Errorf("A after its own write: %d, want 403 at once", got)
	}
	waitFor(t, "B to block the deactivated user", time.Second, func() bool { return get(b) == http.StatusForbidden })
	t.Logf("deactivation through A blocked the user on B after %s", time.Since(deactivated))

	// Two replicas creating the same userName at once: one 201, one 409.
	codes := make(chan int, 2)
	for _, base := range []string{a, b} {
		go func() {
			c, _ := scim("POST", base+"/scim/v2/Users", `{"userName":"race@example.com"}`)
			codes <- c
		}()
	}
	c1, c2 := <-codes, <-codes
	if !(c1 == 201 && c2 == 409 || c1 == 409 && c2 == 201) {
		t.Errorf("concurrent creates on two replicas: %d and %d, want one 201 and one 409", c1, c2)
	}
}

func mustRead(t *testing.T, p string) []byte {
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
