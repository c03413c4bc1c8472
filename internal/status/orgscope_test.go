package status

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// orgScoped is a page over one SQLite store holding two organizations'
// directories: alice of the default organization (one live session) and
// another alice of acme (two), anna only in acme, and mallory@acme.test
// whom acme's IdP signed in but SCIM never provisioned. globex (in
// orgsSource) is served without a directory. ended records the sign-outs
// as "org/key".
type orgScoped struct {
	h     *Handler
	ended []string
}

func newOrgScoped(t *testing.T) *orgScoped {
	t.Helper()
	ctx := context.Background()
	st := openStore(t)
	acme := st.ForOrg("acme")
	mk := func(s store.Store, id, name string) {
		t.Helper()
		u := &store.User{ID: id, UserName: name, Email: name + "@example.com", Active: true, Version: 1,
			Created: testNow.Add(-48 * time.Hour), LastModified: testNow.Add(-2 * time.Hour), ValidAfter: testNow.Add(-48 * time.Hour)}
		if _, err := s.CreateUser(ctx, u, "okta"); err != nil {
			t.Fatal(err)
		}
	}
	mk(st, "d-alice", "alice")
	mk(acme, "a-alice", "alice")
	mk(acme, "a-anna", "anna")
	for _, l := range []store.Login{
		{MatchKey: "alice", User: "alice", SessionID: "sess-default-alice"},
		{Org: "acme", MatchKey: "alice", User: "alice", SessionID: "sess-acme-alice-1"},
		{Org: "acme", MatchKey: "alice", User: "alice", SessionID: "sess-acme-alice-2"},
		{Org: "acme", MatchKey: "mallory@acme.test", User: "mallory", SessionID: "sess-acme-mallory"},
	} {
		l.Issued, l.Expires = testNow.Add(-time.Hour), testNow.Add(5*time.Hour)
		if err := st.Ledger().RecordLogin(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	o := &orgScoped{}
	o.h = New(Options{Directory: st, Ledger: st.Ledger(), Events: st, MatchKey: userNameKey,
		DirectoryOf: func(org string) Directory {
			if org == "acme" {
				return acme
			}
			return nil
		},
		SignOut: func(_ context.Context, org, key string) (int, error) {
			o.ended = append(o.ended, org+"/"+key)
			return 2, nil
		},
		Organizations: orgsSource, Token: []byte(adminToken), Now: func() time.Time { return testNow }})
	return o
}

// csrfOf is the CSRF token of the sign-out form on body, and the
// organization the form carries ("" if none).
func csrfOf(t *testing.T, body string) (csrf, org string) {
	t.Helper()
	f := regexp.MustCompile(`(?s)<form method="post" action="/signout".*?</form>`).FindString(body)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(f)
	if m == nil {
		t.Fatalf("no sign-out form in:\n%s", body)
	}
	if o := regexp.MustCompile(`name="organization" value="([^"]*)"`).FindStringSubmatch(f); o != nil {
		org = o[1]
	}
	return m[1], org
}

func TestSearch_FilteredToAnOrganizationSearchesItsDirectoryAndLedger(t *testing.T) {
	t.Parallel()
	o := newOrgScoped(t)

	_, _, body := get(t, o.h, "/?user=alice")
	if got := userBlock(t, body, "alice"); !strings.Contains(got, `class="live-sessions">1<`) || strings.Contains(got, "sess-acm") {
		t.Errorf("unfiltered, alice is not the default organization's (one session):\n%s", got)
	}
	if strings.Contains(body, `id="search-organization"`) {
		t.Error("an unfiltered page says the search is scoped to an organization")
	}

	_, _, body = get(t, o.h, "/?organization=acme&user=alice")
	alice := userBlock(t, body, "alice")
	for _, want := range []string{`class="live-sessions">2<`, "a-alice", "sess-acm"} {
		if !strings.Contains(alice, want) {
			t.Errorf("filtered to acme, alice's block lacks %q:\n%s", want, alice)
		}
	}
	if strings.Contains(alice, "d-alice") || strings.Contains(alice, "sess-def") {
		t.Errorf("filtered to acme, the default organization's alice shows:\n%s", alice)
	}
	if cell(t, body, "search-organization") != "in organization acme" ||
		!strings.Contains(body, `<input type="hidden" name="organization" value="acme">`) {
		t.Error("filtered to acme, the search form neither says so nor keeps the filter")
	}

	_, _, body = get(t, o.h, "/?organization=acme&user=ann")
	if userBlock(t, body, "anna") == "" {
		t.Error("acme's anna not found in acme")
	}
	if _, _, body = get(t, o.h, "/?user=anna"); !strings.Contains(body, `id="no-results"`) {
		t.Error("acme's anna found in the default organization")
	}

	_, _, body = get(t, o.h, "/?organization=acme&user=mallory@acme.test")
	if !strings.Contains(body, `id="login-only"`) {
		t.Errorf("filtered to acme, acme's unprovisioned sign-in is not reported:\n%s", body)
	}
	if _, _, body = get(t, o.h, "/?user=mallory@acme.test"); strings.Contains(body, `id="login-only"`) {
		t.Error("acme's ledger shows through on the default organization's search")
	}

	for _, org := range []string{"globex", "nope", "%3Cb%3Ex", strings.Repeat("a", 100)} {
		_, _, body = get(t, o.h, "/?organization="+org+"&user=alice")
		if !strings.Contains(body, `id="no-directory"`) || strings.Contains(body, `data-user="alice"`) ||
			strings.Contains(body, "Sign out everywhere") || strings.Contains(body, "<b>") {
			t.Errorf("organization %.20s…: want no directory, no result and nothing unescaped:\n%s", org, body)
		}
	}
	if _, _, body = get(t, o.h, "/?organization=nope"); !strings.Contains(body, `id="no-organization"`) {
		t.Error("an unknown organization in the filter is not reported")
	}
}

func TestSignOut_CSRFTokenOfOneOrganizationRefusedForAnother(t *testing.T) {
	t.Parallel()
	o := newOrgScoped(t)
	_, _, body := get(t, o.h, "/?user=alice")
	defTok, defOrg := csrfOf(t, body)
	_, _, body = get(t, o.h, "/?organization=acme&user=alice")
	acmeTok, acmeOrg := csrfOf(t, body)
	if defOrg != "" || acmeOrg != "acme" {
		t.Fatalf("the forms carry organizations %q and %q, want none (unfiltered) and acme", defOrg, acmeOrg)
	}
	if defTok == acmeTok {
		t.Fatal("alice of default and alice of acme get the same CSRF token")
	}
	post := func(form url.Values) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest("POST", "/signout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("admin", adminToken)
		rec := httptest.NewRecorder()
		o.h.ServeHTTP(rec, req)
		return rec
	}
	for name, tc := range map[string]struct {
		form url.Values
		want int
	}{
		"default's token for acme":        {url.Values{"organization": {"acme"}, "user": {"alice"}, "csrf": {defTok}}, http.StatusForbidden},
		"acme's token for default":        {url.Values{"user": {"alice"}, "csrf": {acmeTok}}, http.StatusForbidden},
		"acme's token for default, named": {url.Values{"organization": {"default"}, "user": {"alice"}, "csrf": {acmeTok}}, http.StatusForbidden},
		"acme's token for globex":         {url.Values{"organization": {"globex"}, "user": {"alice"}, "csrf": {acmeTok}}, http.StatusForbidden},
		"acme's token for another user":   {url.Values{"organization": {"acme"}, "user": {"anna"}, "csrf": {acmeTok}}, http.StatusForbidden},
		// A token the page would mint, for an organization with no directory here.
		"unknown organization": {url.Values{"organization": {"nope"}, "user": {"alice"},
			"csrf": {o.h.csrfToken("nope", "alice")}}, http.StatusNotFound},
		"overlong organization": {url.Values{"organization": {strings.Repeat("a", 65)}, "user": {"alice"},
			"csrf": {o.h.csrfToken(strings.Repeat("a", 65), "alice")}}, http.StatusForbidden},
	} {
		if rec := post(tc.form); rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", name, rec.Code, tc.want)
		}
	}
	if len(o.ended) != 0 {
		t.Fatalf("refused forms signed out %v", o.ended)
	}

	rec := post(url.Values{"organization": {acmeOrg}, "user": {"alice"}, "csrf": {acmeTok}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/?user=alice&ended=2&organization=acme" {
		t.Errorf("acme's sign-out: %d, Location %q", rec.Code, loc)
	}
	rec = post(url.Values{"user": {"alice"}, "csrf": {defTok}})
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || loc != "/?user=alice&ended=2" {
		t.Errorf("default's sign-out: %d, Location %q", rec.Code, loc)
	}
	if want := []string{"acme/alice", "default/alice"}; strings.Join(o.ended, ",") != strings.Join(want, ",") {
		t.Errorf("signed out %v, want %v: each in its own organization only", o.ended, want)
	}
	if _, _, body := get(t, o.h, "/?user=alice&ended=2&organization=acme"); !strings.Contains(body, "in organization acme only") {
		t.Error("the page does not say the sessions ended in acme only")
	}
}

func TestHandler_IdPMetadataRowsOfTheFilteredOrganization(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.WatchMetadata(func(fn func(string, time.Time)) {
		fn("default", time.Now().Add(-90*time.Second))
		fn("acme", time.Now().Add(-30*time.Minute))
	})
	m.MetadataRefreshFailed("acme")
	m.MetadataRefreshFailed("acme")
	m.MetadataRefreshFailed("default")
	h := New(Options{Gatherer: m.Gatherer(), Organizations: orgsSource})
	for target, want := range map[string][2]string{
		"/":                      {"1m30s", "1"},
		"/?organization=default": {"1m30s", "1"},
		"/?organization=acme":    {"30m0s", "2"},
		"/?organization=nope":    {absent, absent},
	} {
		_, _, body := get(t, h, target)
		if age, fails := cell(t, body, "idp-metadata-age"), cell(t, body, "idp-metadata-failures"); age != want[0] || fails != want[1] {
			t.Errorf("%s: metadata age %q, failures %q; want %q, %q", target, age, fails, want[0], want[1])
		}
		if named := strings.Contains(body, "IdP metadata age (organization acme)"); named != (target == "/?organization=acme") {
			t.Errorf("%s: the rows name organization acme: %v", target, named)
		}
	}
}
