package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/session"
)

// Two different values for the session cookie (one planted for a longer
// Path or a parent domain by a sibling app) are refused rather than
// guessed between: the first would otherwise win and take over a subtree.
func TestProxy_TwoDifferentSessionCookiesAre400(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	h := newHarness(t, up.URL, nil)
	a := h.sessionCookies(alice, time.Now().Add(time.Hour))[0]
	b := h.sessionCookies(bob, time.Now().Add(time.Hour))[0]
	for _, tc := range []struct {
		name   string
		cookie string
	}{
		{"bob's planted first", "portcullis=" + b.Value + "; portcullis=" + a.Value},
		{"on two lines", "portcullis=" + a.Value + "\x00portcullis=" + b.Value},
		{"a duplicate chunk of a one-cookie session is never read", "portcullis=" + a.Value + "; portcullis_1=x; portcullis_1=y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{"Cookie": strings.Split(tc.cookie, "\x00")}
			resp := h.do("GET", "/reports", hdr, nil)
			if strings.HasPrefix(tc.name, "a duplicate chunk") {
				// alice's value is short, so no chunk is read: not a
				// conflict that matters, and she is served as herself.
				if e := decodeEcho(t, resp); e.Header.Get("X-Forwarded-User") != "alice" {
					t.Errorf("user %q, want alice", e.Header.Get("X-Forwarded-User"))
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
		})
	}
	got := h.logs.FilterField(zap.String("reason", "duplicate_cookie")).Len()
	if got != 2 {
		t.Errorf("%d session_rejected reason=duplicate_cookie audit events, want 2", got)
	}
}

// After the default name became __Host-portcullis, a cookie of the old name
// is no session, never reaches the upstream, and is expired in the browser.
func TestProxy_LegacySessionCookieIsIgnoredStrippedAndExpired(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	keys, err := session.ParseKeys(session.GenerateKeys())
	if err != nil {
		t.Fatal(err)
	}
	current, _ := session.NewCodec("__Host-portcullis", keys, true, 8*time.Hour)
	current.SetLegacyNames("portcullis")
	old, _ := session.NewCodec("portcullis", keys, true, 8*time.Hour)
	h := newHarnessWith(t, up.URL, nil, func(o *Options) { o.Sessions = current })
	h.codec = old
	oldCookie := h.sessionCookies(alice, time.Now().Add(time.Hour))[0]
	hdr := http.Header{"Cookie": {"theme=dark; portcullis=" + oldCookie.Value + "; portcullis_1=rest"}}

	if resp := h.do("GET", "/reports", hdr, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("old-name session on a protected route: status %d, want 401 (no session)", resp.StatusCode)
	}
	resp := h.do("GET", "/healthz", hdr, nil)
	e := decodeEcho(t, resp)
	if got := e.Header.Get("Cookie"); got != "theme=dark" {
		t.Errorf("upstream got Cookie %q, want only the app's own", got)
	}
	expired := map[string]bool{}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 && c.Path == "/" {
			expired[c.Name] = true
		}
	}
	if !expired["portcullis"] || !expired["portcullis_1"] {
		t.Errorf("Set-Cookie %q: want portcullis and portcullis_1 expired", resp.Header.Values("Set-Cookie"))
	}
}
