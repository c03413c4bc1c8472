package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// setRevocations is a Revocations over a set, changed mid-test.
type setRevocations struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (s *setRevocations) OrgSessionRevoked(_, id string) bool { return s.SessionRevoked(id) }

func (s *setRevocations) SessionRevoked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

func (s *setRevocations) revoke(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[id] = true
}

func newRevocationHarness(t *testing.T, upstream string, rev *setRevocations) *harness {
	t.Helper()
	gate := &mapGate{m: map[string]identity.Standing{"bob@example.com": {State: identity.StateActive, ValidAfter: past}}}
	return newHarnessWith(t, upstream, func(c *config.Config) {
		c.SCIM = config.SCIM{Enabled: true, GroupsSource: "saml", Match: config.Match{IdentityField: "email"}}
	}, func(o *Options) { o.Gate, o.Revocations = gate, rev })
}

// sessionID is the ID inside the session cookie h issued.
func (h *harness) sessionID(t *testing.T, cookies []*http.Cookie) string {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	s, err := h.codec.Read(r)
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

func TestRevocation_EndedSessionIsAskedToSignInAgain(t *testing.T) {
	t.Parallel()
	rev := &setRevocations{ids: map[string]bool{}}
	h := newRevocationHarness(t, newEcho(t).URL, rev)
	cookies := h.sessionCookies(bob, time.Now().Add(time.Hour))
	other := h.sessionCookies(bob, time.Now().Add(time.Hour)) // bob on another browser
	decodeEcho(t, h.do("GET", "/app", browser, cookies))
	rev.revoke(h.sessionID(t, cookies))
	resp := h.do("GET", "/app", browser, cookies)
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "idp.example.com/sso") {
		t.Fatalf("ended session: status %d Location %q, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	cleared := false
	for _, c := range resp.Cookies() {
		if c.Name == h.codec.Name() && c.MaxAge < 0 {
			cleared = true
		}
	}
	if !cleared {
		t.Error("ended session's cookie not cleared")
	}
	// Only that session ended: bob's other one still works.
	decodeEcho(t, h.do("GET", "/app", browser, other))
	// An API call gets 401, not the upstream.
	if resp := h.do("GET", "/app", nil, cookies); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API call with an ended session: %d, want 401", resp.StatusCode)
	}
}

func TestRevocation_EndedSessionClosesItsWebSocket(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(up.Close)
	rev := &setRevocations{ids: map[string]bool{}}
	h := newRevocationHarness(t, up.URL, rev)
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cookies := h.sessionCookies(bob, time.Now().Add(time.Hour))
	ck := cookies[0]
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: %s=%s\r\n\r\n", ck.Name, ck.Value)
	br := bufio.NewReader(conn)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	h.proxy.CloseSessionStreams("some-other-session")
	fmt.Fprint(conn, "ping")
	if _, err := io.ReadFull(br, make([]byte, 4)); err != nil {
		t.Fatalf("another session's end closed this stream: %v", err)
	}
	h.proxy.CloseSessionStreams(h.sessionID(t, cookies))
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("stream still open after its session ended")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("stream not closed within 2s: %v", err)
	}
}

// A session ended one by one whose user the directory has also removed
// gets the removed page, never a trip to the IdP (which would sign the
// user straight back in).
func TestRevocation_EndedSessionOfRemovedUserGetsTheRemovedPage(t *testing.T) {
	t.Parallel()
	rev := &setRevocations{ids: map[string]bool{}}
	gate := &mapGate{m: map[string]identity.Standing{"bob@example.com": {State: identity.StateInactive, ValidAfter: time.Now()}}}
	h := newHarnessWith(t, newEcho(t).URL, func(c *config.Config) {
		c.SCIM = config.SCIM{Enabled: true, GroupsSource: "saml", Match: config.Match{IdentityField: "email"}}
	}, func(o *Options) { o.Gate, o.Revocations = gate, rev })
	cookies := h.sessionCookies(bob, time.Now().Add(time.Hour))
	rev.revoke(h.sessionID(t, cookies))
	if resp := h.do("GET", "/app", browser, cookies); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ended session of a deactivated user: %d, want 403", resp.StatusCode)
	}
}
