package status

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

const adminToken = "admin-token-0123456789"

// testNow is the page's clock in these tests. It follows the real clock
// (whole seconds, UTC) because the store prunes expired ledger sessions by
// its own, real clock: a fixed date would expire the test's sessions once
// the real time passed it.
var testNow = time.Now().UTC().Truncate(time.Second)

// get serves one request to h and returns the status, headers and body.
func get(t *testing.T, h http.Handler, target string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	r := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, w.Header(), string(b)
}

func TestHandler_TokenRules(t *testing.T) {
	t.Parallel()
	basic := func(user, pass string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}
	tests := []struct {
		name     string
		required bool
		token    string
		auth     string
		want     int
	}{
		{"loopback without a token is open", false, "", "", 200},
		{"non-loopback without a token file is forbidden", true, "", "Bearer anything-at-all-here", 403},
		{"no credentials", true, adminToken, "", 401},
		{"wrong bearer", true, adminToken, "Bearer admin-token-0123456788", 401},
		{"token prefix", true, adminToken, "Bearer admin-token", 401},
		{"right bearer", true, adminToken, "Bearer " + adminToken, 200},
		{"bearer scheme in any case", true, adminToken, "bearer " + adminToken, 200},
		{"basic with the token as password", true, adminToken, basic("ops", adminToken), 200},
		{"basic with the token as user name", true, adminToken, basic(adminToken, ""), 401},
		{"configured token on loopback is still enforced", true, adminToken, "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := Options{TokenRequired: tt.required, Now: func() time.Time { return testNow }}
			if tt.token != "" {
				o.Token = []byte(tt.token)
			}
			code, hdr, body := get(t, New(o), "/", "Authorization", tt.auth)
			if code != tt.want {
				t.Fatalf("status %d, want %d; body:\n%s", code, tt.want, body)
			}
			switch code {
			case 401:
				ch := hdr.Values("WWW-Authenticate")
				if len(ch) == 0 || !strings.HasPrefix(ch[0], "Basic ") {
					t.Errorf("WWW-Authenticate %q, want a Basic challenge first so a browser prompts", ch)
				}
				if strings.Contains(body, "Sync health") {
					t.Error("a refused request got the page")
				}
			case 403:
				if !strings.Contains(body, "adminTokenFile") {
					t.Errorf("403 page does not say to set adminTokenFile:\n%s", body)
				}
			case 200:
				if !strings.Contains(body, "Sync health") {
					t.Errorf("200 without the page:\n%s", body)
				}
			}
			if strings.Contains(body, adminToken) {
				t.Error("the token appears in the page")
			}
		})
	}
}

func TestHandler_SecurityHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	h := New(Options{TokenRequired: true, Token: []byte(adminToken)})
	for _, auth := range []string{"", "Bearer " + adminToken} {
		_, hdr, _ := get(t, h, "/", "Authorization", auth)
		for k, want := range map[string]string{
			"Cache-Control":   "no-store",
			"X-Frame-Options": "DENY",
			"Content-Type":    "text/html; charset=utf-8",
		} {
			if got := hdr.Get(k); got != want {
				t.Errorf("auth %q: %s = %q, want %q", auth, k, got, want)
			}
		}
		c := hdr.Get("Content-Security-Policy")
		for _, part := range []string{"default-src 'none'", "style-src 'sha256-" + cssHash() + "'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(c, part) {
				t.Errorf("CSP %q lacks %q", c, part)
			}
		}
		if strings.Contains(c, "unsafe-inline") || strings.Contains(c, "script-src") {
			t.Errorf("CSP %q allows script or inline style", c)
		}
	}
}

func TestHandler_ReadOnlyAndOnlyAtRoot(t *testing.T) {
	t.Parallel()
	h := New(Options{})
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(m, "/?user=x", strings.NewReader("a=b")))
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", m, w.Code)
		}
	}
	if code, _, _ := get(t, h, "/other"); code != http.StatusNotFound {
		t.Errorf("/other: status %d, want 404", code)
	}
}

func TestHandler_AbsentMetricsShowAsDash(t *testing.T) {
	t.Parallel()
	for name, g := range map[string]prometheus.Gatherer{"nil gatherer": nil, "empty registry": prometheus.NewRegistry()} {
		code, _, body := get(t, New(Options{Gatherer: g}), "/")
		if code != 200 {
			t.Fatalf("%s: status %d", name, code)
		}
		for _, id := range []string{"drift-unprovisioned", "users-active", "idp-metadata-age", "replica-lag", "requests-allowed"} {
			if got := cell(t, body, id); got != absent {
				t.Errorf("%s: #%s = %q, want %q", name, id, got, absent)
			}
		}
	}
}

func TestHandler_NumbersComeFromTheRegistry(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.Drift(metrics.DriftUnprovisioned)
	m.Drift(metrics.DriftUnprovisioned)
	m.Drift(metrics.DriftGroupsMismatch)
	m.SCIMRequest("User", "create", 201)
	m.SCIMRequest("User", "patch", 200)
	m.SCIMRequest("User", "patch", 409)
	m.SCIMRequest("Group", "get", 404)
	m.SCIMRequest("User", "list", 401)
	m.SCIMRequest("User", "create", 503)
	m.WatchMetadata(func(fn func(string, time.Time)) { fn("default", time.Now().Add(-90*time.Second)) })
	st := openStore(t)
	h := New(Options{Gatherer: m.Gatherer(), Directory: st, Ledger: st.Ledger(), Events: st, Now: func() time.Time { return testNow }})
	_, _, body := get(t, h, "/")
	for id, want := range map[string]string{
		"drift-unprovisioned":   "2",
		"drift-groups_mismatch": "1",
		"drift-email_mismatch":  "0",
		"scim-requests":         "6",
		"scim-error-rate":       "33.3% (2 answered 5xx, 401 or 403)",
		"idp-metadata-age":      "1m30s",
	} {
		if got := cell(t, body, id); got != want {
			t.Errorf("#%s = %q, want %q", id, got, want)
		}
	}
}

func TestHandler_SearchShowsStateGroupsLoginsAndSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	mk := func(id, name string, active bool) {
		u := &store.User{ID: id, UserName: name, Email: name + "@example.com", Active: active, Version: 1,
			Created: testNow.Add(-48 * time.Hour), LastModified: testNow.Add(-2 * time.Hour), ValidAfter: testNow.Add(-48 * time.Hour)}
		if _, err := st.CreateUser(ctx, u, "okta"); err != nil {
			t.Fatal(err)
		}
	}
	mk("u1", "alice", true)
	mk("u2", "bob", false)
	if _, err := st.CreateGroup(ctx, &store.Group{ID: "g1", DisplayName: "eng", Members: []string{"u1", "u2"}, Version: 1}, "okta"); err != nil {
		t.Fatal(err)
	}
	for i, sid := range []string{"sess-alice-1", "sess-alice-2"} {
		if err := st.Ledger().RecordLogin(ctx, store.Login{MatchKey: "alice", User: "alice", SessionID: sid,
			Issued: testNow.Add(time.Duration(i-3) * time.Hour), Expires: testNow.Add(5 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Ledger().RecordLogin(ctx, store.Login{MatchKey: "bob", User: "bob", SessionID: "sess-bob",
		Issued: testNow.Add(-time.Hour), Expires: testNow.Add(7 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Ledger().RecordLogin(ctx, store.Login{MatchKey: "mallory@example.com", User: "mallory", SessionID: "sess-m",
		Issued: testNow.Add(-time.Minute), Expires: testNow.Add(7 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Directory: st, Ledger: st.Ledger(), Events: st, MatchKey: userNameKey, Now: func() time.Time { return testNow }})

	_, _, body := get(t, h, "/?user=ALICE")
	alice := userBlock(t, body, "alice")
	for _, want := range []string{`class="state ok">active<`, `class="groups">eng<`, `class="live-sessions">2<`, "2h0m0s ago", "sess-ali…"} {
		if !strings.Contains(alice, want) {
			t.Errorf("alice's block lacks %q:\n%s", want, alice)
		}
	}
	if strings.Contains(alice, "sess-alice-1") {
		t.Error("a whole session ID is on the page")
	}

	// A person types the start of a name.
	_, _, body = get(t, h, "/?user=Al")
	if userBlock(t, body, "alice") == "" || strings.Contains(body, `id="no-results"`) {
		t.Errorf("searching the prefix Al does not find alice:\n%s", body)
	}

	_, _, body = get(t, h, "/?user=bob@example.com")
	bob := userBlock(t, body, "bob")
	for _, want := range []string{`class="state bad">deactivated<`, `class="live-sessions">0<`, `class="last-login">1h0m0s ago`} {
		if !strings.Contains(bob, want) {
			t.Errorf("bob's block lacks %q:\n%s", want, bob)
		}
	}

	_, _, body = get(t, h, "/?user=mallory@example.com")
	if !strings.Contains(body, `id="no-results"`) || !strings.Contains(body, `id="login-only"`) {
		t.Errorf("an unprovisioned user who logged in is not reported:\n%s", body)
	}
	_, _, body = get(t, h, "/?user=nobody")
	if !strings.Contains(body, `id="no-results"`) || strings.Contains(body, `id="login-only"`) {
		t.Errorf("unknown name: want no results and no login:\n%s", body)
	}
}

func TestHandler_HostileNamesAreEscaped(t *testing.T) {
	t.Parallel()
	const evil = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	ctx := context.Background()
	st := openStore(t)
	if _, err := st.CreateUser(ctx, &store.User{ID: "u1", UserName: evil, Active: true, Version: 1}, `<b>tok</b>`); err != nil {
		t.Fatal(err)
	}
	ring := NewAuditRing(10)
	zap.New(ring.Core()).Info("access denied", zap.String("event", "access_denied"), zap.String("user", evil),
		zap.String("reason", evil))
	h := New(Options{Directory: st, Ledger: st.Ledger(), Events: st, Audit: ring, Now: func() time.Time { return testNow }})
	_, _, body := get(t, h, "/?user="+url.QueryEscape(evil))
	for _, bad := range []string{"<script>", "<img", "<b>tok"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	if n := strings.Count(body, "&lt;script&gt;alert(1)&lt;/script&gt;"); n < 4 {
		t.Errorf("escaped name appears %d times, want the search box, the result, the audit user and reason", n)
	}
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	for in, ok := range map[string]bool{
		adminToken + "\n":              true,
		"  " + adminToken + "  ":       true,
		"":                             false,
		"short\n":                      false,
		adminToken + "\n" + adminToken: false,
	} {
		got, err := ParseToken([]byte(in))
		if (err == nil) != ok {
			t.Errorf("ParseToken(%q) error %v, want ok=%v", in, err, ok)
		}
		if ok && string(got) != adminToken {
			t.Errorf("ParseToken(%q) = %q", in, got)
		}
	}
}

func TestHandler_ReadyChecksShown(t *testing.T) {
	t.Parallel()
	h := New(Options{Checks: []Check{
		{Name: "idp", Check: func() (string, bool, string) { return "ok", true, "" }},
		{Name: "directory", Check: func() (string, bool, string) { return "degraded", false, "store unreachable for 2m" }},
	}})
	_, _, body := get(t, h, "/")
	if got := cell(t, body, "check-idp"); got != "ok" {
		t.Errorf("idp check = %q", got)
	}
	if got := cell(t, body, "check-directory"); got != "degraded" || !strings.Contains(body, "store unreachable for 2m") {
		t.Errorf("directory check = %q, reason missing?", got)
	}
}

// openStore is a real SQLite store in a temporary directory.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/dir.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// cell returns the text of the element with id in body.
func cell(t *testing.T, body, id string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, `id="`+id+`"`)
	if !ok {
		t.Fatalf("no element #%s in the page", id)
	}
	_, rest, _ = strings.Cut(rest, ">")
	text, _, _ := strings.Cut(rest, "<")
	return strings.TrimSpace(text)
}

// userBlock returns the search result block of userName.
func userBlock(t *testing.T, body, userName string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, `data-user="`+userName+`"`)
	if !ok {
		t.Fatalf("no result for %s in:\n%s", userName, body)
	}
	block, _, _ := strings.Cut(rest, `<div class="user"`)
	return block
}

// userNameKey is a user's match key under the userName rule, as the
// directory view gives it.
func userNameKey(u *store.User) string { return store.MatchKeyOf("userName", u) }
