package main

// Match keys end to end (issue 12, points 1 and 2): real sign-ins at the
// demo (its IdP, the SCIM API over HTTP, the gate as `serve` wires it, on
// SQLite), and two replicas on one PostgreSQL directory.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

// demoSCIM sends a SCIM request to the demo with its token.
func demoSCIM(t *testing.T, d *demoRun, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, d.info.SCIMURL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.info.Token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m)
	return resp.StatusCode, m
}

func demoSCIMOK(t *testing.T, d *demoRun, method, path, body string, want int) map[string]any {
	t.Helper()
	code, m := demoSCIM(t, d, method, path, body)
	if code != want {
		t.Fatalf("%s %s: %d %v, want %d", method, path, code, m, want)
	}
	return m
}

func scimPatch(ops string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`
}

func renameOp(userName string) string {
	return scimPatch(`{"op":"replace","path":"userName","value":"` + userName + `"}`)
}

// visit requests the app with the session in jar's client, without
// following redirects, and returns the status and Location.
func visit(t *testing.T, d *demoRun, signedIn *http.Client) (int, string) {
	t.Helper()
	c := &http.Client{Jar: signedIn.Jar, Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", d.info.URL+"/reports", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// wantNotAdmitted fails unless the gate kept the request from the upstream:
// a 403 page, or the voided session sent to the IdP to sign in again.
func wantNotAdmitted(t *testing.T, d *demoRun, signedIn *http.Client, after string) {
	t.Helper()
	code, loc := visit(t, d, signedIn)
	if code == http.StatusForbidden || code == http.StatusSeeOther && strings.HasPrefix(loc, d.info.IdPURL+"/") {
		return
	}
	t.Errorf("after %s the old session gets %d (Location %q), want 403 or a new sign-in at the IdP", after, code, loc)
}

// TestE2E_RenameAndDeleteKeepRevokedSessionsVoid is the scenario
// with real sign-ins: spare@ exists; alice signs in, is deactivated,
// renamed to alice-departed@, and spare is renamed to alice@; and the same
// after bob is deleted and spare2 renamed to bob@. Before the fix, the old
// sessions reached the upstream again (200).
func TestE2E_RenameAndDeleteKeepRevokedSessionsVoid(t *testing.T) {
	if testing.Short() {
		t.Skip("demo: skipped with -short")
	}
	d := startDemo(t)
	users := map[string]string{}
	for _, u := range d.info.Users {
		users[u.Name] = u.ID
	}
	spare := demoSCIMOK(t, d, "POST", "/Users", `{"userName":"spare@example.com"}`, 201)["id"].(string)
	spare2 := demoSCIMOK(t, d, "POST", "/Users", `{"userName":"spare2@example.com"}`, 201)["id"].(string)
	time.Sleep(5 * time.Millisecond) // the sessions are issued strictly after the spares exist

	alice, code := demoSignIn(t, d, "alice")
	if code != http.StatusOK {
		t.Fatalf("alice's sign-in ended with %d, want the app's 200", code)
	}
	bob, code := demoSignIn(t, d, "bob")
	if code != http.StatusOK {
		t.Fatalf("bob's sign-in ended with %d", code)
	}

	t.Run("DeactivateRenameRename", func(t *testing.T) {
		demoSCIMOK(t, d, "PATCH", "/Users/"+users["alice"], scimPatch(`{"op":"replace","value":{"active":false}}`), 200)
		if code, _ := visit(t, d, alice); code != http.StatusForbidden {
			t.Fatalf("deactivated alice: %d, want 403", code)
		}
		demoSCIMOK(t, d, "PATCH", "/Users/"+users["alice"], renameOp("alice-departed@example.com"), 200)
		wantNotAdmitted(t, d, alice, "alice's rename to alice-departed@")
		demoSCIMOK(t, d, "PATCH", "/Users/"+spare, renameOp("alice@example.com"), 200)
		wantNotAdmitted(t, d, alice, "spare's rename to alice@")
	})
	t.Run("DeleteThenRenameOntoTheName", func(t *testing.T) {
		if code, _ := visit(t, d, bob); code != http.StatusOK {
			t.Fatalf("bob before the delete: %d, want 200", code)
		}
		demoSCIMOK(t, d, "DELETE", "/Users/"+users["bob"], "", 204)
		if code, _ := visit(t, d, bob); code != http.StatusForbidden {
			t.Fatalf("deleted bob: %d, want 403", code)
		}
		demoSCIMOK(t, d, "PATCH", "/Users/"+spare2, renameOp("BOB@example.com"), 200)
		wantNotAdmitted(t, d, bob, "spare2's rename to bob@")
	})
	t.Run("NewSignInOfTheKeysNewHolder", func(t *testing.T) {
		// The IdP still calls the person alice@; the directory's alice@ is
		// now the former spare, active: a new sign-in gets through.
		if _, code := demoSignIn(t, d, "alice"); code != http.StatusOK {
			t.Errorf("a new sign-in as alice@ after the renames ended with %d, want 200", code)
		}
	})
}

// sessionIssued mints a session of email issued at issued.
func (rs *replicaSet) sessionIssued(user, email string, issued time.Time) string {
	rs.t.Helper()
	v, err := rs.codec.Encode(&session.Session{ID: session.NewID(), IssuedAt: issued,
		Expires: issued.Add(time.Hour), Principal: identity.Principal{User: user, Email: email}})
	if err != nil {
		rs.t.Fatal(err)
	}
	return v
}

// TestReplicas_RenameOnAVoidsTheOldSessionOnB: the rename chain written
// through replica A voids dee's session on replica B, which only follows
// the event log, and on replica C, started afterwards from a snapshot (the
// cut-offs are stored, not only in memory).
func TestReplicas_RenameOnAVoidsTheOldSessionOnB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three proxies on PostgreSQL")
	}
	dsn := testPostgresSchema(t)
	rs := newReplicaSet(t, "")
	a, b := rs.start("a", dsn).public, rs.start("b", dsn).public
	spare := rs.createUser(a, "spare@example.com")
	dee := rs.createUser(a, "dee@example.com")
	time.Sleep(5 * time.Millisecond)
	old := rs.sessionIssued("dee", "dee@example.com", time.Now())
	waitFor(t, "B to admit dee", 5*time.Second, func() bool { c, _ := rs.get(b, old); return c == 200 })

	rs.setActive(a, dee, false)
	rename := func(id, userName string) {
		t.Helper()
		code, _, body := rs.scim("PATCH", a+"/scim/v2/Users/"+id, renamePatch(userName))
		if code != 200 {
			t.Fatalf("rename to %s on A: %d %s", userName, code, body)
		}
	}
	rename(dee, "dee-departed@example.com")
	rename(spare, "dee@example.com")
	renamed := time.Now()
	fresh := rs.sessionIssued("dee", "dee@example.com", renamed.Add(time.Millisecond))
	// B has applied the renames once a new session of dee@ (now the former
	// spare, active) gets through.
	waitFor(t, "B to apply the renames", 5*time.Second, func() bool { c, _ := rs.get(b, fresh); return c == 200 })
	for name, base := range map[string]string{"A": a, "B": b, "C (started after the renames)": rs.start("c", dsn).public} {
		if code, body := rs.get(base, old); code == 200 {
			t.Errorf("replica %s: dee's session from before the renames reaches the upstream (%q)", name, body)
		}
		if code, _ := rs.get(base, fresh); code != 200 {
			t.Errorf("replica %s: a session issued after the renames gets %d, want 200", name, code)
		}
	}
}

func renamePatch(userName string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":"` +
		userName + `"}]}`
}

// wireApp is the app as `serve` builds it on SQLite, behind an httptest
// server, with an upstream that echoes the user, and sessions minted with
// its keys.
type wireApp struct {
	t     *testing.T
	pub   string
	token string
	codec *session.Codec
	dir   string       // the config's directory
	admin http.Handler // the admin listener's handler
}

// newWireApp builds the app with scimExtra added to the scim: section;
// seed, if set, writes to the store first (with the default match rule).
func newWireApp(t *testing.T, scimExtra string, seed func(st *sqlite.Store)) *wireApp {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	sc := writeServeConfigStore(t, dir, scimExtra+"store:\n  driver: sqlite\n  dsn: store/portcullis.db\n")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Forwarded-User"))
	}))
	t.Cleanup(up.Close)
	raw := mustRead(t, sc.path)
	_ = os.WriteFile(sc.path, []byte(strings.Replace(string(raw), "http://127.0.0.1:9", up.URL, 1)), 0o600)
	if seed != nil {
		st, err := sqlite.Open(ctx, sc.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		seed(st)
		st.Close()
	}
	a, err := build(ctx, sc.path, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	wctx, stop := context.WithCancel(ctx) // the file watches, as serve runs them
	t.Cleanup(stop)
	for _, fw := range a.watches {
		go fw.Run(wctx)
	}
	pub := httptest.NewServer(a.proxy)
	t.Cleanup(pub.Close)
	keys, _ := session.ParseKeys(mustRead(t, filepath.Join(dir, "session.keys")))
	codec, _ := session.NewCodec(httpsCookieName, keys, true, time.Hour)
	return &wireApp{t: t, pub: pub.URL, token: sc.token, codec: codec, dir: dir, admin: a.admin}
}

func (w *wireApp) session(user, email string, issued time.Time) string {
	v, err := w.codec.Encode(&session.Session{ID: session.NewID(), IssuedAt: issued, Expires: issued.Add(time.Hour),
		Principal: identity.Principal{User: user, Email: email}})
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

// get requests /app with cookie and returns the status and body.
func (w *wireApp) get(cookie string) (int, string) {
	req, _ := http.NewRequest("GET", w.pub+"/app", nil)
	req.AddCookie(&http.Cookie{Name: httpsCookieName, Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (w *wireApp) scim(method, path, body string) (int, map[string]any) {
	return w.scimAs(w.token, method, path, body)
}

// TestWire_EmailMatchKeyUniqueAndAmbiguousDenied: with scimAttribute email,
// the SCIM API refuses a second user with an email another has (409
// uniqueness), and a directory that already holds one email twice (written
// before the rule) has the gate deny that email, even with
// requireProvisioned off, until one of the users lets go of it.
func TestWire_EmailMatchKeyUniqueAndAmbiguousDenied(t *testing.T) {
	t.Parallel()
	w := newWireApp(t, "  match: {identityField: email, scimAttribute: email}\n  requireProvisioned: false\n",
		func(st *sqlite.Store) { // old data: one email twice, written under the userName rule
			for _, id := range []string{"u1", "u2"} {
				if _, err := st.CreateUser(context.Background(), &store.User{ID: id, UserName: id, Email: "Shared@example.com",
					Active: true, Version: 1, Created: time.Now(), ValidAfter: time.Now().Add(-time.Hour)}, "old"); err != nil {
					t.Fatal(err)
				}
			}
		})
	before := w.session("u1", "shared@example.com", time.Now())
	if code, _ := w.get(before); code != http.StatusForbidden {
		t.Errorf("session of an email two directory users share: %d, want 403", code)
	}
	code, body := w.scim("POST", "/Users", `{"userName":"u3","emails":[{"value":"SHARED@EXAMPLE.COM","primary":true}]}`)
	if code != http.StatusConflict || body["scimType"] != "uniqueness" || body["status"] != "409" ||
		fmt.Sprint(body["schemas"]) != "[urn:ietf:params:scim:api:messages:2.0:Error]" {
		t.Errorf("POST a third user with the shared email: %d %v, want 409 uniqueness (RFC 7644 error body)", code, body)
	}
	if code, body := w.scim("PATCH", "/Users/u2", scimPatch(`{"op":"replace","path":"emails","value":[{"value":"u2@example.com","primary":true}]}`)); code != 200 {
		t.Fatalf("PATCH u2's email away: %d %v", code, body)
	}
	// The key changed hands (u2 left it): sessions from before are void,
	// a new one is u1's.
	if code, _ := w.get(before); code != http.StatusUnauthorized {
		t.Errorf("once u2 let go of the email, a session from before gets %d, want 401 (sign in again)", code)
	}
	if code, _ := w.get(w.session("u1", "shared@example.com", time.Now().Add(time.Millisecond))); code != http.StatusOK {
		t.Errorf("once u2 let go of the email, a new session gets %d, want 200", code)
	}
}

// TestWire_LookalikeEmailIsNotTheDirectoryUser: an assertion email with
// U+0130 or the Kelvin sign is not alice@ or kim@ (strings.ToLower would
// fold them onto those): unprovisioned, 403, and never alice's groups.
func TestWire_LookalikeEmailIsNotTheDirectoryUser(t *testing.T) {
	t.Parallel()
	w := newWireApp(t, "", nil) // match: email ↔ userName, requireProvisioned
	for _, u := range []string{"alice@example.com", "kim@example.com"} {
		if code, body := w.scim("POST", "/Users", `{"userName":"`+u+`"}`); code != 201 {
			t.Fatalf("create %s: %d %v", u, code, body)
		}
	}
	issued := time.Now().Add(time.Millisecond)
	for _, email := range []string{"alİce@example.com", "\u212Aim@example.com"} {
		if code, body := w.get(w.session("mallory", email, issued)); code != http.StatusForbidden {
			t.Errorf("session for %q: %d %q, want 403 (no such directory user)", email, code, body)
		}
	}
	if code, _ := w.get(w.session("alice", "Alice@Example.COM", issued)); code != http.StatusOK {
		t.Errorf("session for Alice@Example.COM: %d, want 200 (ASCII case still folds)", code)
	}
}
