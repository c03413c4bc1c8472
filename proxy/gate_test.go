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

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// mapGate is a Gate over a map, guarded so tests can change it mid-test.
type mapGate struct {
	mu sync.Mutex
	m  map[string]identity.Standing
}

func (g *mapGate) OrgStanding(_, key string) identity.Standing { return g.Standing(key) }

func (g *mapGate) Standing(key string) identity.Standing {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[strings.ToLower(key)]
}

func (g *mapGate) set(key string, st identity.Standing) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.m[key] = st
}

func newGateHarness(t *testing.T, upstream string, gate *mapGate, scim config.SCIM) *harness {
	t.Helper()
	return newHarnessWith(t, upstream, func(c *config.Config) {
		scim.Enabled = true
		if scim.Match.IdentityField == "" {
			scim.Match.IdentityField = "email"
		}
		if scim.GroupsSource == "" {
			scim.GroupsSource = "scim"
		}
		c.SCIM = scim
	}, func(o *Options) { o.Gate = gate })
}

var past = time.Now().Add(-time.Hour)

func TestGate_Decisions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		standing   identity.Standing
		require    bool
		wantStatus int
		wantText   string
		wantEvent  string
	}{
		{"active user passes", identity.Standing{State: identity.StateActive, ValidAfter: past, Groups: []string{"staff"}}, true, 200, "", ""},
		{"deactivated user: removed page, no redirect", identity.Standing{State: identity.StateInactive, ValidAfter: past}, true, 403, "Your access has been removed", "access_denied"},
		{"deleted user: removed page", identity.Standing{State: identity.StateDeleted, ValidAfter: past}, false, 403, "Your access has been removed", "access_denied"},
		{"never provisioned with requireProvisioned", identity.Standing{}, true, 403, "No access", "access_denied"},
		{"never provisioned without requireProvisioned", identity.Standing{}, false, 200, "", ""},
		{"session older than reactivation: must sign in again", identity.Standing{State: identity.StateActive, ValidAfter: time.Now().Add(time.Minute)}, true, 302, "", "session_rejected"},
		{"unknown key a rename left: a session from before must sign in again", identity.Standing{State: identity.StateUnknown, ValidAfter: time.Now().Add(time.Minute)}, false, 302, "", "session_rejected"},
		{"ambiguous match key: denied even without requireProvisioned", identity.Standing{State: identity.StateAmbiguous}, false, 403, "No access", "access_denied"},
		{"a state the gate does not know: denied", identity.Standing{State: identity.StateAmbiguous + 1, ValidAfter: past}, false, 403, "No access", "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gate := &mapGate{m: map[string]identity.Standing{"bob@example.com": tt.standing}}
			h := newGateHarness(t, newEcho(t).URL, gate, config.SCIM{RequireProvisioned: tt.require})
			resp := h.do("GET", "/app", browser, h.sessionCookies(bob, time.Now().Add(time.Hour)))
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if !strings.Contains(string(body), tt.wantText) {
				t.Errorf("page lacks %q", tt.wantText)
			}
			if tt.wantStatus == 403 && resp.Header.Get("Location") != "" {
				t.Error("a denied user must not be redirected to the IdP")
			}
			if tt.wantEvent != "" && h.logs.FilterField(zap.String("event", tt.wantEvent)).Len() != 1 {
				t.Errorf("no %s audit event", tt.wantEvent)
			}
			if tt.wantStatus == 302 {
				cleared := false
				for _, c := range resp.Cookies() {
					if c.Name == "portcullis" && c.MaxAge < 0 {
						cleared = true
					}
				}
				if !cleared {
					t.Error("voided session cookie not cleared")
				}
			}
		})
	}
}

func TestGate_DeactivationAppliesToTheNextRequest(t *testing.T) {
	t.Parallel()
	gate := &mapGate{m: map[string]identity.Standing{"bob@example.com": {State: identity.StateActive, ValidAfter: past}}}
	h := newGateHarness(t, newEcho(t).URL, gate, config.SCIM{RequireProvisioned: true})
	cookies := h.sessionCookies(bob, time.Now().Add(time.Hour))
	decodeEcho(t, h.do("GET", "/app", browser, cookies))
	gate.set("bob@example.com", identity.Standing{State: identity.StateInactive, ValidAfter: time.Now()})
	if resp := h.do("GET", "/app", browser, cookies); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d after deactivation, want 403", resp.StatusCode)
	}
}

func TestGate_GroupsSource(t *testing.T) {
	t.Parallel()
	// The session (SAML) says staff; the directory says admins.
	st := identity.Standing{State: identity.StateActive, ValidAfter: past, Groups: []string{"admins"}}
	tests := []struct {
		source     string
		wantGroups string
		adminOK    bool
	}{
		{"scim", "admins", true},
		{"saml", "staff", false},
		{"both", "staff,admins", true},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			t.Parallel()
			gate := &mapGate{m: map[string]identity.Standing{"bob@example.com": st}}
			h := newGateHarness(t, newEcho(t).URL, gate, config.SCIM{RequireProvisioned: true, GroupsSource: tt.source})
			cookies := h.sessionCookies(bob, time.Now().Add(time.Hour))
			e := decodeEcho(t, h.do("GET", "/app", browser, cookies))
			if got := e.Header.Get("X-Forwarded-Groups"); got != tt.wantGroups {
				t.Errorf("groups header %q, want %q", got, tt.wantGroups)
			}
			resp := h.do("GET", "/admin/x", browser, cookies)
			if (resp.StatusCode == 200) != tt.adminOK {
				t.Errorf("/admin/ status %d, want allowed=%v", resp.StatusCode, tt.adminOK)
			}
		})
	}
}

func TestGate_PublicRouteServesRemovedUserAnonymously(t *testing.T) {
	t.Parallel()
	gate := &mapGate{m: map[string]identity.Standing{"bob@example.com": {State: identity.StateInactive}}}
	h := newGateHarness(t, newEcho(t).URL, gate, config.SCIM{RequireProvisioned: true})
	e := decodeEcho(t, h.do("GET", "/healthz", nil, h.sessionCookies(bob, time.Now().Add(time.Hour))))
	if v := e.Header.Get("X-Forwarded-User"); v != "" {
		t.Errorf("removed user's identity reached the upstream on a public route: %q", v)
	}
}

func TestGate_DeactivationClosesOpenWebSocket(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw) // echo until closed
	}))
	t.Cleanup(up.Close)
	gate := &mapGate{m: map[string]identity.Standing{"bob@example.com": {State: identity.StateActive, ValidAfter: past}}}
	h := newGateHarness(t, up.URL, gate, config.SCIM{RequireProvisioned: true})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ck := h.sessionCookies(bob, time.Now().Add(time.Hour))[0]
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: %s=%s\r\n\r\n", ck.Name, ck.Value)
	br := bufio.NewReader(conn)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(conn, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil {
		t.Fatal(err)
	}
	// The directory deactivates bob and tells the proxy.
	gate.set("bob@example.com", identity.Standing{State: identity.StateInactive})
	start := time.Now()
	h.proxy.CloseStreams("Bob@Example.com")
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("stream still open after deactivation")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("stream not closed within 2s: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("stream closed after %s, want under 1s", d)
	}
}
