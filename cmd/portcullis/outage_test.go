package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/faultnet"
)

// TestOutage_ReplicaLosesPostgreSQL takes PostgreSQL away from one replica
// (A) while the IdP keeps provisioning through another (B), and walks
// through what the issue promises: A enforces the last directory it knew,
// answers SCIM with 503 + Retry-After and an RFC 7644 body, says on /readyz
// why it is degraded, fails closed once store.maxStaleness has passed, and
// when the database is back catches up with every write B acknowledged.
func TestOutage_ReplicaLosesPostgreSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two proxies on PostgreSQL through a fault forwarder")
	}
	dsn := testPostgresSchema(t)
	u, _ := url.Parse(dsn)
	fwd, err := faultnet.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fwd.Close)
	cutURL := *u
	cutURL.Host = fwd.Addr()

	const maxStale = 6 * time.Second
	rs := newReplicaSet(t, "  maxStaleness: "+maxStale.String()+"\n")
	b := rs.start("b", dsn).public
	a := rs.start("a", cutURL.String())
	aliceID := rs.createUser(b, "alice@example.com")
	bobID := rs.createUser(b, "bob@example.com")
	rs.setActive(b, bobID, false)
	alice, bob := rs.sessionFor("alice", "alice@example.com"), rs.sessionFor("bob", "bob@example.com")
	waitFor(t, "A to learn the directory", 5*time.Second, func() bool {
		ca, _ := rs.get(a.public, alice)
		cb, _ := rs.get(a.public, bob)
		return ca == 200 && cb == 403
	})

	fwd.Set(faultnet.Refuse)
	cut := time.Now()

	// The last known directory is enforced both ways.
	if c, body := rs.get(a.public, alice); c != 200 {
		t.Errorf("active user on A during the outage: %d %s", c, body)
	}
	if c, _ := rs.get(a.public, bob); c != 403 {
		t.Errorf("deactivated user on A during the outage: %d, want 403", c)
	}
	// SCIM writes are refused so that the IdP retries.
	code, hdr, body := rs.scim("POST", a.public+"/scim/v2/Users", `{"userName":"carol@example.com"}`)
	var scimErr struct {
		Schemas []string `json:"schemas"`
		Status  string   `json:"status"`
		Detail  string   `json:"detail"`
	}
	_ = json.Unmarshal([]byte(body), &scimErr)
	if code != 503 || hdr.Get("Retry-After") == "" || scimErr.Status != "503" ||
		len(scimErr.Schemas) != 1 || scimErr.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" ||
		!strings.HasPrefix(hdr.Get("Content-Type"), "application/scim+json") {
		t.Errorf("SCIM create on A during the outage: %d Retry-After=%q %s, want 503 with Retry-After and an RFC 7644 error",
			code, hdr.Get("Retry-After"), body)
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "dial") {
		t.Errorf("the SCIM error body leaks the cause: %s", body)
	}
	// /readyz says why, and still lets traffic in.
	waitFor(t, "/readyz to report the outage", maxStale, func() bool {
		c, body := readyz(t, a.admin)
		return c == 200 && strings.Contains(body, "ready (degraded)") && strings.Contains(body, "directory: degraded: enforcing the last known directory")
	})
	// The trade-off of store.maxStaleness: a deactivation B acknowledges
	// now does not reach A until the database is back; A keeps serving
	// alice from its last view until maxStaleness, then nobody.
	rs.setActive(b, aliceID, false)
	c, _ := rs.get(a.public, alice)
	t.Logf("alice on A %s into the outage, just deactivated through B: %d", time.Since(cut).Round(100*time.Millisecond), c)
	waitFor(t, "A to fail closed past maxStaleness", maxStale+5*time.Second, func() bool {
		c, body := rs.get(a.public, alice)
		return c == 503 && strings.Contains(body, "Temporarily unavailable")
	})
	t.Logf("A failed closed %s after losing PostgreSQL (maxStaleness %s)", time.Since(cut).Round(100*time.Millisecond), maxStale)
	if c, _ := rs.get(a.public, bob); c != 503 {
		t.Errorf("bob on a stale A: %d, want 503", c)
	}
	if c, body := readyz(t, a.admin); c != 503 || !strings.Contains(body, "directory: not ready") {
		t.Errorf("/readyz on a stale A: %d %q, want 503 naming the directory", c, body)
	}

	// The database is back: A catches up, and enforces what B acknowledged.
	fwd.Set(faultnet.Pass)
	back := time.Now()
	waitFor(t, "A to catch up after the outage", 15*time.Second, func() bool { c, _ := rs.get(a.public, alice); return c == 403 })
	t.Logf("A enforced the deactivation made during the outage %s after the database came back", time.Since(back).Round(time.Millisecond))
	// The listener reconnects with a backoff (up to 5 s); until then the
	// check stays degraded, naming the listener.
	waitFor(t, "/readyz to recover", 15*time.Second, func() bool {
		c, body := readyz(t, a.admin)
		return c == 200 && body == "ready\nidp: ok\ndirectory: ok\n"
	})
	// The IdP's retry of the refused create lands once.
	if code, _, body := rs.scim("POST", a.public+"/scim/v2/Users", `{"userName":"carol@example.com"}`); code != 201 {
		t.Errorf("retried create after recovery: %d %s", code, body)
	}
	code, _, body = rs.scim("GET", b+`/scim/v2/Users?filter=userName%20eq%20%22carol@example.com%22`, "")
	if code != 200 || !strings.Contains(body, `"totalResults":1`) {
		t.Errorf("carol after the retry: %d %s, want exactly one", code, body)
	}
}
