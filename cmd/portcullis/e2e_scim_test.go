package main

// The directory gate end to end with real peers: SCIM writes over HTTP with
// the bearer token, SimpleSAMLphp as the IdP, Chromium as the browser, and
// the real wiring (build + serveOn) with the SQLite store in between. It
// reuses the helpers of e2e_helpers_test.go and e2e_test.go; what only this
// test needs is below.

import (
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

	"github.com/chromedp/chromedp"

	"github.com/portcullis-sso/portcullis/samlsp"
	"github.com/portcullis-sso/portcullis/scimsync"
)

const (
	titleRemoved  = "Your access has been removed"
	titleNoAccess = "No access"
	// streamCloseBudget is how soon after a deactivating SCIM write's 2xx an
	// open stream of the user must be closed (README: "within a second").
	streamCloseBudget = time.Second
)

// scimE2E is the real-peer setup with SCIM on.
type scimE2E struct {
	*e2e
	scimURL string // publicURL + /scim/v2
	token   string
	// client talks to the proxy from Go: no cookie jar, no redirects.
	client *http.Client
}

func TestE2E_SCIMGate(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	requireE2EPeers(t)
	s := setupSCIME2E(t)

	// A group the IdP pushes before anyone is in it; alice joins it later.
	adminsID := s.scimCreated(t, "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "admins",
		"members":     []any{},
	})

	t.Run("AliceLifecycle", func(t *testing.T) {
		aliceID := s.scimCreated(t, "/Users", scimUser("alice@example.com", "Alice", "Anders"))
		tb := s.newTab(t)
		tb.do("open a protected page", chromedp.Navigate(s.publicURL+"/reports"))
		tb.signIn("alice", "alicepass")
		if loc := tb.location(); loc.String() != s.publicURL+"/reports" {
			t.Errorf("after sign-in the browser is at %s, want %s/reports", loc, s.publicURL)
		}
		v := tb.upstream()
		wantOneHeader(t, v, "X-Forwarded-User", "alice")
		wantOneHeader(t, v, "X-Forwarded-Email", "alice@example.com")
		// groupsSource scim: SimpleSAMLphp says staff and admins, SCIM says none.
		if vals, names := headerValues(v.Header, "X-Forwarded-Groups"); len(names) != 0 {
			t.Errorf("alice is in no SCIM group, yet the upstream got X-Forwarded-Groups %q (names %q)", vals, names)
		}
		logins := s.logs.countAudit("login_succeeded", "alice")
		if logins != 1 {
			t.Errorf("audit log has %d login_succeeded for alice after one sign-in, want 1", logins)
		}
		session := tb.sessionCookie()
		if session == "" {
			tb.fatal("no session cookie after sign-in")
		}

		// (d) Group changes apply to the next request, with no new login.
		t.Log("step d: SCIM group membership drives allowGroups without a new login")
		_, mark := tb.requestsSince(0)
		tb.wantPage(s.publicURL+"/admin/", http.StatusForbidden, titleNoAccess, "you do not have access to this page")
		s.scimOK(t, "PATCH", "/Groups/"+adminsID, patchOp(map[string]any{
			"op": "add", "path": "members",
			"value": []any{map[string]any{"value": aliceID, "display": "alice@example.com"}},
		}))
		resp := runTab(tb, "open /admin/ after the group PATCH", chromedp.NavigateResponse(s.publicURL+"/admin/"))
		if resp == nil || resp.Status != http.StatusOK {
			tb.fatal("alice in SCIM group admins: /admin/ answered %v, want 200", respStatus(resp))
		}
		v = tb.upstream()
		if v.Path != "/admin/" {
			t.Errorf("alice on /admin/: upstream got %s", v.Path)
		}
		wantOneHeader(t, v, "X-Forwarded-Groups", "admins")
		s.scimOK(t, "PATCH", "/Groups/"+adminsID, patchOp(map[string]any{
			"op": "remove", "path": fmt.Sprintf("members[value eq %q]", aliceID),
		}))
		tb.wantPage(s.publicURL+"/admin/", http.StatusForbidden, titleNoAccess, "you do not have access to this page")
		tb.wantNoSignIn(mark, "group changes")
		if n := s.logs.countAudit("login_succeeded", "alice"); n != logins {
			t.Errorf("group changes: %d login_succeeded for alice, want still %d", n, logins)
		}
		if got := tb.sessionCookie(); got != session {
			t.Errorf("group changes replaced the session cookie")
		}

		// (e) + (a) Deactivation closes the open WebSocket at once, and the
		// very next request shows the removed page without a trip to the IdP.
		t.Log("step a/e: deactivation (Okta PATCH) closes the WebSocket and removes access")
		tb.do("open /reports", chromedp.Navigate(s.publicURL+"/reports"))
		tb.waitUpstream()
		// Two streams, as from two tabs: every one of them must end.
		streams := []*wsConn{s.openWebSocket(t, tb.cookies()), s.openWebSocket(t, tb.cookies())}
		deactivate := patchOp(map[string]any{"op": "replace", "value": map[string]any{"active": false}})
		s.wantStreamsClosedBy(t, streams, "the deactivating PATCH", func() { s.scimOK(t, "PATCH", "/Users/"+aliceID, deactivate) })
		if n := s.countAuditField("streams_closed", "match_key", "alice@example.com"); n != 1 {
			t.Errorf("audit log has %d streams_closed for alice@example.com, want 1", n)
		}

		_, mark = tb.requestsSince(0)
		tb.wantReload(http.StatusForbidden, titleRemoved)
		if loc := tb.location(); loc.String() != s.publicURL+"/reports" {
			t.Errorf("removed user: browser at %s, want it to stay on %s/reports", loc, s.publicURL)
		}
		tb.wantNoSignIn(mark, "deactivation")
		s.wantDirect(t, "/reports", tb.cookies(), http.StatusForbidden, "")
		if n := s.countAccessDenied("alice", "inactive"); n == 0 {
			t.Errorf("no access_denied (reason inactive) audit event for alice")
		}

		// (b) Reactivation: the session from before is void; the next
		// request goes through the IdP and a new ACS round trip.
		t.Log("step b: reactivation voids the earlier session")
		s.scimOK(t, "PATCH", "/Users/"+aliceID, patchOp(map[string]any{"op": "replace", "value": map[string]any{"active": true}}))
		// From Go with the old cookie: a redirect to the IdP and the cookie
		// cleared, never the upstream.
		s.wantDirect(t, "/reports", tb.cookies(), http.StatusSeeOther, s.idp.ssoURL)
		logins = s.logs.countAudit("login_succeeded", "alice")
		rejected := s.logs.countAudit("session_rejected", "alice")
		_, mark = tb.requestsSince(0)
		tb.startReload()
		tb.do("wait for the IdP form or the upstream", chromedp.WaitVisible(chromedp.CSS("#username, #headers")))
		if runTab(tb, "look for the form", chromedp.Evaluate[bool](`document.getElementById("username") !== null`)) {
			t.Log("after reactivation the IdP asked for the password again")
			tb.signIn("alice", "alicepass")
		} else {
			t.Log("after reactivation the IdP signed alice in from its own session")
		}
		tb.waitUpstream()
		if loc := tb.location(); loc.String() != s.publicURL+"/reports" {
			t.Errorf("after reactivation and sign-in the browser is at %s, want %s/reports", loc, s.publicURL)
		}
		wantOneHeader(t, tb.upstream(), "X-Forwarded-User", "alice")
		tb.wantSignIn(mark, "reactivation")
		if n := s.logs.countAudit("login_succeeded", "alice"); n != logins+1 {
			t.Errorf("after reactivation: %d login_succeeded for alice, want %d (a new ACS round trip)", n, logins+1)
		}
		if n := s.logs.countAudit("session_rejected", "alice"); n != rejected+1 {
			t.Errorf("after reactivation: %d session_rejected for alice, want %d (the browser's old session)", n, rejected+1)
		}
		newSession := tb.sessionCookie()
		if newSession == "" || newSession == session {
			t.Errorf("after reactivation the session cookie is unchanged or missing")
		}

		// (f) DELETE removes access the same way, streams included.
		t.Log("step f: DELETE closes the WebSocket and removes access")
		streams = []*wsConn{s.openWebSocket(t, tb.cookies())}
		s.wantStreamsClosedBy(t, streams, "the DELETE", func() {
			if st, _ := s.scim(t, "DELETE", "/Users/"+aliceID, nil); st != http.StatusNoContent {
				t.Fatalf("DELETE /Users/%s: status %d, want 204", aliceID, st)
			}
		})
		_, mark = tb.requestsSince(0)
		tb.wantReload(http.StatusForbidden, titleRemoved)
		tb.wantNoSignIn(mark, "delete")
		s.wantDirect(t, "/reports", tb.cookies(), http.StatusForbidden, "")
		if n := s.countAccessDenied("alice", "deleted"); n == 0 {
			t.Errorf("no access_denied (reason deleted) audit event for alice")
		}
	})

	t.Run("UnprovisionedUserGetsNoAccess", func(t *testing.T) {
		// SimpleSAMLphp knows bob; SCIM never provisioned him.
		tb := s.newTab(t)
		_, mark := tb.requestsSince(0)
		tb.do("open a protected page", chromedp.Navigate(s.publicURL+"/reports"))
		tb.do("wait for the IdP login form", chromedp.WaitVisible(chromedp.ID("username")))
		tb.do("fill in the login form",
			chromedp.SendKeys(chromedp.ID("username"), "bob"),
			chromedp.SendKeys(chromedp.ID("password"), "bobpass"),
			chromedp.Click(chromedp.ID("submit_button")),
		)
		if body := tb.waitTitle(s.publicURL+"/reports", titleNoAccess); !strings.Contains(body, "has not been set up") {
			tb.fatal("bob: body %q, want the unprovisioned No access page", body)
		}
		if n := s.logs.countAudit("login_succeeded", "bob"); n != 1 {
			t.Errorf("audit log has %d login_succeeded for bob, want 1 (the IdP login works, the gate refuses)", n)
		}
		if n := s.countAccessDenied("bob", "unprovisioned"); n != 1 {
			t.Errorf("audit log has %d access_denied (unprovisioned) for bob, want 1", n)
		}
		// One trip to the IdP, no loop back to it.
		reqs, _ := tb.requestsSince(mark)
		sso := 0
		for _, r := range reqs {
			if strings.HasPrefix(r.URL, s.idp.ssoURL) {
				sso++
			}
		}
		if sso != 1 {
			tb.fatal("bob: the browser went to the IdP SSO %d times, want once", sso)
		}
		s.wantDirect(t, "/reports", tb.cookies(), http.StatusForbidden, "")
	})

	s.checkLogsClean(t)
}

// ---------------------------------------------------------------- setup

// setupSCIME2E starts the IdP, an upstream that also accepts WebSocket
// upgrades, the proxy with SCIM on (SQLite in the temp dir) and Chromium.
func setupSCIME2E(t *testing.T) *scimE2E {
	t.Helper()
	began := time.Now()
	dir := t.TempDir()
	if err := writeKeys(dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	token := scimsync.GenerateToken()
	if err := os.WriteFile(filepath.Join(dir, "scim.tokens"), []byte("okta "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, adm := listenLoopback(t), listenLoopback(t)
	t.Cleanup(func() { pub.Close(); adm.Close() }) // in case serveOn never owns them
	publicURL := "http://" + pub.Addr().String()

	idp := startSimpleSAMLphp(t, freePort(t), publicURL+"/saml/metadata", publicURL+"/saml/acs", filepath.Join(dir, "sp.crt"))
	t.Logf("IdP up in %s: %s", time.Since(began).Round(time.Millisecond), idp.metadataURL)

	up := newStreamingEchoUpstream(t)
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	cfg := fmt.Sprintf(`version: 1
listen: %q
adminListen: %q
publicURL: %q
upstream: %q
saml:
  idpMetadataURL: %q
  certFile: sp.crt
  keyFile: sp.key
  attributes: {user: uid, email: mail, name: displayName, groups: groups}
session:
  keysFile: session.keys
routes:
  - path: /healthz
    public: true
  - path: /admin/
    allowGroups: [admins]
scim:
  enabled: true
  tokensFile: scim.tokens
  match:
    identityField: email
    scimAttribute: userName
  requireProvisioned: true
  groupsSource: scim
store:
  driver: sqlite
  dsn: portcullis.db
`, pub.Addr().String(), adm.Addr().String(), publicURL, up.URL, idp.metadataURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	s := &scimE2E{
		e2e: &e2e{
			publicURL:   publicURL,
			upstreamURL: up.URL,
			idp:         idp,
			logs:        logs,
			secrets:     map[string]string{},
		},
		scimURL: publicURL + "/scim/v2",
		token:   token,
		client: &http.Client{
			Timeout:       20 * time.Second,
			Transport:     &http.Transport{Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	s.secret("the SCIM token", token)
	t.Cleanup(func() {
		if t.Failed() {
			idp.logTail(t, 300)
			t.Logf("--- proxy logs:\n%s", logs.String())
		}
	})

	a := serveLogged(t, cfgPath, logs, pub, adm)
	s.cookieName = a.cfg.Session.CookieName
	s.trackingPrefix = samlsp.TrackingCookiePrefix(s.cookieName)

	browserAt := time.Now()
	var out *lockedBuffer
	s.browser, out = startBrowser(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- chromium output:\n%s", out.String())
		}
	})
	t.Logf("chromium up in %s; setup took %s", time.Since(browserAt).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	return s
}

// newStreamingEchoUpstream is newEchoUpstream's page app, plus a
// WebSocket-ish endpoint at /ws: it answers an upgrade with 101 and echoes
// bytes until either side closes (as proxy/gate_test.go does).
func newStreamingEchoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/favicon.ico":
			http.NotFound(w, r)
			return
		case r.URL.Path == "/ws" && strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_ = brw.Flush()
			_, _ = io.Copy(conn, brw) // echo until closed
			return
		}
		v, err := json.MarshalIndent(upstreamView{r.Method, r.URL.Path, r.URL.RawQuery, r.Header}, "", "  ")
		if err != nil {
			http.Error(w, "marshal", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = upstreamPage.Execute(w, string(v))
	}))
	t.Cleanup(s.Close)
	return s
}
