package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/scimsync/store"
	"github.com/portcullis-sso/portcullis/scimsync/store/sqlite"
)

// The status page as statusPage wires it, filtered to acme, finds acme's
// pat (not the default organization's pat of the same address) and signs
// them out in acme only: acme's session ends, at the gate too; the default
// organization's pat keeps theirs.
func TestStatusWiring_OrganizationSearchAndSignOut(t *testing.T) {
	t.Parallel()
	const tok = "admin-token-for-the-test-0123"
	tokDir := t.TempDir()
	tokFile := filepath.Join(tokDir, "admin.token")
	if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	paths, _ := orgTokens(t, "acme")
	now := time.Now().Truncate(time.Second)
	const email = "pat@acme.com"
	sess := map[string]string{identity.DefaultOrg: session.NewID(), "acme": session.NewID()}
	w := newWireApp(t, orgsYAML(paths, "acme")+"adminTokenFile: "+tokFile+"\n", func(st *sqlite.Store) {
		ctx := context.Background()
		for org, id := range map[string]string{identity.DefaultOrg: "d-pat", "acme": "a-pat"} {
			u := &store.User{ID: id, UserName: email, Email: email, Active: true, Version: 1,
				Created: now.Add(-time.Hour), LastModified: now.Add(-time.Hour), ValidAfter: now.Add(-time.Hour)}
			if _, err := st.ForOrg(org).CreateUser(ctx, u, "seed"); err != nil {
				t.Fatal(err)
			}
			if err := st.Ledger().RecordLogin(ctx, store.Login{Org: org, MatchKey: email, User: email, SessionID: sess[org],
				Issued: now.Add(-time.Minute), Expires: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	})
	cookie := func(org string) string {
		v, err := w.codec.Encode(&session.Session{ID: sess[org], IssuedAt: now.Add(-time.Minute), Expires: now.Add(time.Hour),
			Principal: identity.Principal{User: email, Email: email, Org: org}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, org := range []string{identity.DefaultOrg, "acme"} {
		if status, _ := w.get(cookie(org)); status != http.StatusOK {
			t.Fatalf("%s's pat before the sign-out: %d", org, status)
		}
	}
	admin := httptest.NewServer(w.admin)
	t.Cleanup(admin.Close)
	noRedirect := *admin.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	do := func(method, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, admin.URL+path, strings.NewReader(form.Encode()))
		req.SetBasicAuth("ops", tok)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	live := regexp.MustCompile(`class="live-sessions">(\d+)<`)
	liveOf := func(query string) (string, string) {
		t.Helper()
		_, body := do("GET", "/?"+query, nil)
		m := live.FindStringSubmatch(body)
		if m == nil || !strings.Contains(body, `data-user="`+email+`"`) {
			t.Fatalf("GET /?%s: no result for %s:\n%s", query, email, body)
		}
		return m[1], body
	}

	n, body := liveOf("organization=acme&user=pat")
	if n != "1" || !strings.Contains(body, "a-pat") || strings.Contains(body, "d-pat") {
		t.Fatalf("filtered to acme, the page does not show acme's pat with one live session:\n%s", body)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if csrf == nil {
		t.Fatal("no sign-out form for acme's pat")
	}
	resp, _ := do("POST", "/signout", url.Values{"organization": {"acme"}, "user": {email}, "csrf": {csrf[1]}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "ended=1") {
		t.Fatalf("sign out acme's pat: %d, Location %q", resp.StatusCode, loc)
	}
	if n, _ := liveOf("organization=acme&user=pat"); n != "0" {
		t.Errorf("acme's pat has %s live sessions after the sign-out, want 0", n)
	}
	if n, body := liveOf("user=pat"); n != "1" || !strings.Contains(body, "d-pat") {
		t.Errorf("the default organization's pat has %s live sessions after acme's sign-out, want 1", n)
	}
	if status, _ := w.get(cookie("acme")); status == http.StatusOK {
		t.Error("acme's signed-out session still gets in")
	}
	if status, _ := w.get(cookie(identity.DefaultOrg)); status != http.StatusOK {
		t.Errorf("the default organization's pat refused after acme's sign-out: %d", status)
	}
	// The same form, replayed for the default organization, is refused.
	if resp, _ := do("POST", "/signout", url.Values{"user": {email}, "csrf": {csrf[1]}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("acme's CSRF token for the default organization: %d, want 403", resp.StatusCode)
	}
}

// The status page as statusPage wires it, filtered to acme, shows acme's
// directory view's counts, acme's events and the token acme's IdP last
// used; unfiltered, the default organization's view and token, and every
// organization's events.
func TestStatusWiring_OrganizationDirectoryEventsAndToken(t *testing.T) {
	t.Parallel()
	paths, tokens := orgTokens(t, "acme")
	w := newWireApp(t, orgsYAML(paths, "acme"), nil)
	for _, c := range []struct{ token, path, user, active string }{
		{w.token, "/Users", "dora@example.com", "true"},
		{tokens["acme"], "/acme/Users", "ann@acme.com", "true"},
		{tokens["acme"], "/acme/Users", "al@acme.com", "false"},
	} {
		if status, _ := w.scimAs(c.token, "POST", c.path, `{"userName":"`+c.user+`","active":`+c.active+`}`); status != http.StatusCreated {
			t.Fatalf("create %s at %s: %d", c.user, c.path, status)
		}
	}
	admin := httptest.NewServer(w.admin)
	t.Cleanup(admin.Close)
	for target, want := range map[string]map[string]string{
		"/":                   {"users-active": "1", "users-inactive": "0", "groups": "0", "events-per-hour": "3", "scim-token": "okta"},
		"/?organization=acme": {"users-active": "1", "users-inactive": "1", "groups": "0", "events-per-hour": "2", "scim-token": "acme-idp"},
	} {
		resp, err := admin.Client().Get(admin.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", target, resp.StatusCode)
		}
		for id, v := range want {
			if got := cellText(string(b), id); got != v {
				t.Errorf("GET %s: #%s = %q, want %q", target, id, got, v)
			}
		}
	}
}

// cellText is the text of the element with id on a status page ("" if none).
func cellText(body, id string) string {
	_, rest, ok := strings.Cut(body, `id="`+id+`"`)
	if !ok {
		return ""
	}
	_, rest, _ = strings.Cut(rest, ">")
	text, _, _ := strings.Cut(rest, "<")
	return strings.TrimSpace(text)
}
