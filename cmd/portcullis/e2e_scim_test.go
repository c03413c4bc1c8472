package main

// The directory gate end to end with real peers: SCIM writes over HTTP with
// the bearer token, SimpleSAMLphp as the IdP, Chromium as the browser, and
// the real wiring (build + serveOn) with the SQLite store in between. It
// reuses the helpers of e2e_helpers_test.go and e2e_test.go; what only this
// test needs is below.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
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

// ---------------------------------------------------------------- SCIM client

func scimUser(userName, given, family string) map[string]any {
	return map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    userName,
		"name":        map[string]any{"givenName": given, "familyName": family},
		"emails":      []any{map[string]any{"primary": true, "value": userName, "type": "work"}},
		"displayName": given + " " + family,
		"active":      true,
	}
}

// patchOp is a PatchOp message with the given operations, as Okta sends it.
func patchOp(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, op := range ops {
		list[i] = op
	}
	return map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": list,
	}
}

// scim sends one SCIM request with the bearer token and returns the status
// and the decoded body (nil when empty).
func (s *scimE2E) scim(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.scimURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "application/scim+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("SCIM %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("SCIM %s %s: read body: %v", method, path, err)
	}
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("SCIM %s %s: status %d, body is not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, m
}

// scimCreated POSTs a resource, wants 201 and returns its id.
func (s *scimE2E) scimCreated(t *testing.T, path string, body any) string {
	t.Helper()
	st, m := s.scim(t, "POST", path, body)
	id, _ := m["id"].(string)
	if st != http.StatusCreated || id == "" {
		t.Fatalf("SCIM POST %s: status %d body %v, want 201 with an id", path, st, m)
	}
	return id
}

// scimOK sends a write and wants 200.
func (s *scimE2E) scimOK(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	st, m := s.scim(t, method, path, body)
	if st != http.StatusOK {
		t.Fatalf("SCIM %s %s: status %d body %v, want 200", method, path, st, m)
	}
	return m
}

// ---------------------------------------------------------------- audit log

// countAuditField counts audit entries with this event whose field equals value.
func (s *scimE2E) countAuditField(event, field, value string) int {
	n := 0
	for _, e := range s.logs.logEntries() {
		if e["logger"] == "audit" && e["event"] == event && e[field] == value {
			n++
		}
	}
	return n
}

// countAccessDenied counts access_denied audit entries for user with reason.
func (s *scimE2E) countAccessDenied(user, reason string) int {
	n := 0
	for _, e := range s.logs.logEntries() {
		if e["logger"] == "audit" && e["event"] == "access_denied" && e["user"] == user && e["reason"] == reason {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------- from Go

// cookieHeader renders the browser's cookies as a Cookie header value.
func cookieHeader(cookies []*network.Cookie) string {
	parts := make([]string, 0, len(cookies))
	for _, c := range cookies {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// wantDirect sends a browser-like navigation from Go with the browser's
// cookies and checks the status and, for a redirect, that Location starts
// with wantLocation and the session cookie is cleared. A 403 must carry no
// Location: a removed user is never sent to the IdP.
func (s *scimE2E) wantDirect(t *testing.T, path string, cookies []*network.Cookie, wantStatus int, wantLocation string) {
	t.Helper()
	req, err := http.NewRequest("GET", s.publicURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Cookie", cookieHeader(cookies))
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s from Go: %v", path, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != wantStatus {
		t.Errorf("GET %s from Go with the browser's cookies: status %d (Location %q), want %d; body:\n%s", path, resp.StatusCode, loc, wantStatus, body)
		return
	}
	switch {
	case wantLocation == "" && loc != "":
		t.Errorf("GET %s from Go: status %d with Location %q, want no redirect", path, resp.StatusCode, loc)
	case wantLocation != "" && !strings.HasPrefix(loc, wantLocation):
		t.Errorf("GET %s from Go: Location %q, want it to start with %q", path, loc, wantLocation)
	}
	if wantStatus/100 == 3 {
		cleared := false
		for _, c := range resp.Cookies() {
			if c.Name == s.cookieName && c.MaxAge < 0 {
				cleared = true
			}
		}
		if !cleared {
			t.Errorf("GET %s from Go: the voided session cookie was not cleared", path)
		}
	}
}

// wsConn is a WebSocket-ish stream through the proxy, opened from Go.
type wsConn struct {
	conn   net.Conn
	opened time.Time
	closed chan wsClosed // one value: when and how the first read failed
}

type wsClosed struct {
	at  time.Time
	err error
}

// openWebSocket upgrades /ws through the proxy with the browser's cookies,
// checks one echo round trip and then watches the connection for its end.
func (s *scimE2E) openWebSocket(t *testing.T, cookies []*network.Cookie) *wsConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.publicURL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: %s\r\n\r\n",
		strings.TrimPrefix(s.publicURL, "http://"), cookieHeader(cookies))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("WebSocket upgrade: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.Fatalf("WebSocket upgrade: status %d, want 101; body %q", resp.StatusCode, body)
	}
	fmt.Fprint(conn, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("WebSocket echo: got %q, %v", buf, err)
	}
	ws := &wsConn{conn: conn, opened: time.Now(), closed: make(chan wsClosed, 1)}
	_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	go func() {
		_, err := br.ReadByte()
		if err == nil {
			err = errors.New("unexpected data on an idle stream")
		}
		ws.closed <- wsClosed{at: time.Now(), err: err}
	}()
	return ws
}

// wantStreamsClosedBy runs write (a SCIM write that removes the streams'
// user) and checks every stream ends within streamCloseBudget of the
// write's 2xx. It logs the measured times.
func (s *scimE2E) wantStreamsClosedBy(t *testing.T, streams []*wsConn, what string, write func()) {
	t.Helper()
	for i, ws := range streams {
		select {
		case c := <-ws.closed:
			t.Fatalf("stream %d ended before %s: %v", i, what, c.err)
		default:
		}
	}
	sent := time.Now()
	write()
	acked := time.Now()
	t.Logf("%s: SCIM round trip %s", what, acked.Sub(sent).Round(time.Microsecond))
	for i, ws := range streams {
		var c wsClosed
		select {
		case c = <-ws.closed:
		case <-time.After(time.Until(acked.Add(5 * time.Second))):
			t.Fatalf("stream %d is still open 5s after the 2xx of %s", i, what)
		}
		var ne net.Error
		if errors.As(c.err, &ne) && ne.Timeout() {
			t.Fatalf("stream %d: the read timed out instead of the stream being closed: %v", i, c.err)
		}
		if !errors.Is(c.err, io.EOF) && !errors.Is(c.err, net.ErrClosed) && !isConnReset(c.err) {
			t.Errorf("stream %d ended with an unexpected error: %v", i, c.err)
		}
		afterAck := c.at.Sub(acked)
		t.Logf("stream %d closed %s after %s was sent, %s relative to its 2xx (negative: before the 2xx reached the client)",
			i, c.at.Sub(sent).Round(time.Microsecond), what, afterAck.Round(time.Microsecond))
		if afterAck > streamCloseBudget {
			t.Errorf("stream %d closed %s after the 2xx of %s, want within %s", i, afterAck, what, streamCloseBudget)
		}
	}
}

func isConnReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// ---------------------------------------------------------------- browser

func respStatus(r *network.Response) any {
	if r == nil {
		return "no response"
	}
	return r.Status
}

// wantPage navigates to u and wants the status, our page title and a text
// in the body.
func (tb *tab) wantPage(u string, status int64, title, text string) {
	tb.t.Helper()
	resp := runTab(tb, "open "+u, chromedp.NavigateResponse(u))
	tb.wantShown(resp, status, title, text)
}

// wantShown checks the response and page the browser shows now.
func (tb *tab) wantShown(resp *network.Response, status int64, title, text string) {
	tb.t.Helper()
	// Title and text in one evaluation: the same document for both.
	page := runTab(tb, "read title and text", chromedp.Evaluate[[]string](
		`[document.title, document.body ? document.body.innerText : ""]`))
	if len(page) != 2 {
		tb.fatal("read title and text: got %q", page)
	}
	got, body := page[0], page[1]
	if resp == nil || resp.Status != status || got != title || !strings.Contains(body, text) {
		tb.fatal("page: status %v title %q body %q; want %d %q containing %q", respStatus(resp), got, body, status, title, text)
	}
}

// reloadNow asks the page to reload without waiting for anything.
var reloadNow = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	_, err := cdp.Call(ctx, t, page.Reload, page.ReloadParams{})
	return err
})

// wantReload reloads the page (the user pressing F5) and wants our page
// with status and title.
func (tb *tab) wantReload(status int64, title string) {
	tb.t.Helper()
	resp, err := chromedp.RunResponse(tb.ctx, reloadNow)
	if err != nil {
		tb.fatal("reload: %v", err)
	}
	tb.wantShown(resp, status, title, "")
}

// startReload starts a reload and returns at once, for a reload that goes
// through the IdP's self-posting form (see startNavigation).
func (tb *tab) startReload() {
	tb.t.Helper()
	if _, err := chromedp.Run(tb.ctx, reloadNow); err != nil {
		tb.fatal("reload: %v", err)
	}
}

// waitTitle waits until the page is at u with the title and returns the
// text of its body. Location, title and text are read in one evaluation from
// Go, so navigations in between (IdP form, self-posting response) cannot
// break the wait, and the text is that of the very page that matched.
func (tb *tab) waitTitle(u, title string) string {
	tb.t.Helper()
	deadline := time.Now().Add(tabTimeout / 2)
	last := ""
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
			`[document.location.href, document.title, document.body ? document.body.innerText : ""]`))
		cancel()
		if err == nil && len(got) == 3 {
			if got[0] == u && got[1] == title {
				return got[2]
			}
			last = fmt.Sprintf("at %s titled %q", got[0], got[1])
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.fatal("page never reached %s titled %q; last %s", u, title, last)
	return ""
}

// wantNoSignIn fails if, since request mark, the browser went to the IdP or
// to any sign-in endpoint.
func (tb *tab) wantNoSignIn(mark int, after string) {
	tb.t.Helper()
	reqs, _ := tb.requestsSince(mark)
	for _, r := range reqs {
		if strings.HasPrefix(r.URL, tb.e.idp.origin+"/") || strings.HasPrefix(r.URL, tb.e.publicURL+"/saml/") {
			tb.fatal("after %s the browser was sent to sign in: %s %s", after, r.Method, r.URL)
		}
	}
}

// wantSignIn fails unless, since request mark, the browser went to the IdP
// SSO endpoint and then posted a response to our ACS.
func (tb *tab) wantSignIn(mark int, after string) {
	tb.t.Helper()
	reqs, _ := tb.requestsSince(mark)
	sawIdP, sawACS := -1, -1
	for i, r := range reqs {
		if sawIdP < 0 && strings.HasPrefix(r.URL, tb.e.idp.ssoURL) {
			sawIdP = i
		}
		if r.Method == "POST" && r.URL == tb.e.publicURL+"/saml/acs" {
			sawACS = i
		}
	}
	if sawIdP < 0 || sawACS < sawIdP {
		tb.fatal("after %s the browser did not go IdP SSO (at %d) then ACS (at %d)", after, sawIdP, sawACS)
	}
}
