package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/config"
)

// hostEcho answers with the Host, path and X-Forwarded-Prefix it received.
func hostEcho(t *testing.T) (*httptest.Server, *int) {
	t.Helper()
	calls := 0
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		_ = json.NewEncoder(w).Encode(map[string]string{
			"host": r.Host, "path": r.URL.EscapedPath(), "query": r.URL.RawQuery,
			"prefix": r.Header.Get("X-Forwarded-Prefix"), "port": r.Header.Get("X-Forwarded-Port"),
			"user": r.Header.Get("X-Forwarded-User"),
		})
	}))
	t.Cleanup(s.Close)
	return s, &calls
}

func getJSON(t *testing.T, h *harness, path string, hdr http.Header, cookies []*http.Cookie) (int, map[string]string) {
	t.Helper()
	resp := h.do("GET", path, hdr, cookies)
	var m map[string]string
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, m
}

func TestProxy_UpstreamPathPrefix(t *testing.T) {
	t.Parallel()
	up, calls := hostEcho(t)
	h := newHarness(t, up.URL, func(c *config.Config) {
		c.UpstreamPathPrefix = "/app"
		c.Routes = []config.Route{
			{Path: "/app/healthz", Public: true},
			{Path: "/app/admin/", AllowGroups: []string{"admins"}},
		}
	})
	alice := h.sessionCookies(alice, time.Now().Add(time.Hour))
	for _, tc := range []struct {
		path, wantPath string
	}{
		{"/app/reports?y=2026", "/reports"},
		{"/app", "/"},
		{"/app/", "/"},
		{"/app/a%20b/c", "/a%20b/c"},
	} {
		code, got := getJSON(t, h, tc.path, nil, alice)
		if code != 200 || got["path"] != tc.wantPath || got["prefix"] != "/app" || got["user"] != "alice" {
			t.Errorf("%s: %d %v; want path %s with X-Forwarded-Prefix /app", tc.path, code, got, tc.wantPath)
		}
	}
	before := *calls
	for _, path := range []string{"/", "/other", "/application", "/%61pp/x", "/APP/x", "/saml-like"} {
		if code, _ := getJSON(t, h, path, nil, alice); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404 outside the prefix", path, code)
		}
	}
	if *calls != before {
		t.Errorf("the upstream saw %d requests from outside the prefix", *calls-before)
	}
	// Routes match the full public path.
	bobs := h.sessionCookies(bob, time.Now().Add(time.Hour))
	if code, _ := getJSON(t, h, "/app/admin/users", nil, bobs); code != http.StatusForbidden {
		t.Errorf("bob at /app/admin/: %d, want 403", code)
	}
	if code, got := getJSON(t, h, "/app/healthz", nil, nil); code != 200 || got["path"] != "/healthz" {
		t.Errorf("public /app/healthz: %d %v", code, got)
	}
}

func TestProxy_ClientForwardedPrefixAndPortNeverArrive(t *testing.T) {
	t.Parallel()
	up, _ := hostEcho(t)
	h := newHarness(t, up.URL, nil)
	hdr := http.Header{"X-Forwarded-Prefix": {"//evil.example"}, "X-Forwarded-Port": {"1"}}
	code, got := getJSON(t, h, "/healthz", hdr, nil)
	if code != 200 || got["prefix"] != "" || got["port"] != "" {
		t.Errorf("%d %v: a client's X-Forwarded-Prefix/-Port reached the upstream", code, got)
	}
}

func TestProxy_PreserveHost(t *testing.T) {
	t.Parallel()
	up, _ := hostEcho(t)
	upHost := mustURL(t, up.URL).Host
	for _, preserve := range []bool{true, false} {
		h := newHarness(t, up.URL, func(c *config.Config) { c.PreserveHost = preserve })
		code, got := getJSON(t, h, "/healthz", nil, nil)
		front := mustURL(t, h.front.URL).Host
		want := upHost
		if preserve {
			want = front // the client's Host: what the test client sent
		}
		if code != 200 || got["host"] != want {
			t.Errorf("preserveHost %v: upstream saw Host %q, want %q", preserve, got["host"], want)
		}
	}
}
