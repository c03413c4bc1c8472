package main

// TestE2E_SCIMGate's helpers: its SCIM client, audit log reads, requests
// and streams from Go, and what it asks of the browser tab.

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
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

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
		// readyState: the title is set as soon as the head is parsed, the
		// body may still be empty then (CI once read "" for a page that was
		// right a moment later).
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
			`[document.location.href, document.title, document.body ? document.body.innerText : "", document.readyState]`))
		cancel()
		if err == nil && len(got) == 4 {
			if got[0] == u && got[1] == title && got[3] == "complete" {
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
