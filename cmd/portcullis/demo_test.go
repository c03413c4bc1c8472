package main

// `portcullis demo` end to end: what it prints, the SSO + SCIM walk-through
// in headless Chromium (reusing the browser helpers of e2e_helpers_test.go),
// and the guarantee that nothing but the demo subcommand reaches the demo IdP.

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/demoidp"
	"github.com/portcullis-sso/portcullis/samlsp"
)

// demoRun is one runDemo on port 0.
type demoRun struct {
	info demoInfo
	out  *lockedBuffer // what the demo printed
	logs *lockedBuffer // what it logged
}

// startDemo runs the demo until the test ends, then checks it returned
// cleanly and removed its temporary directory.
func startDemo(t *testing.T) *demoRun {
	t.Helper()
	return startDemoWith(t, runDemo)
}

// startDemoWith is startDemo with run instead of runDemo.
func startDemoWith(t *testing.T, run func(context.Context, demoOptions, io.Writer) error) *demoRun {
	t.Helper()
	d := &demoRun{out: &lockedBuffer{}, logs: &lockedBuffer{}}
	log, err := newLogger("json", "debug", d.logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan demoInfo, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, demoOptions{Listen: "127.0.0.1:0", Logger: log, Ready: func(i demoInfo) { ready <- i }}, d.out)
	}()
	select {
	case d.info = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("runDemo returned before it was ready: %v\nlogs:\n%s", err, d.logs)
	case <-time.After(90 * time.Second):
		cancel()
		t.Fatalf("demo not ready after 90s\nlogs:\n%s", d.logs)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runDemo: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("runDemo did not return within 60s of cancel")
		}
		if _, err := os.Stat(d.info.Dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("temporary directory %s is still there after exit (stat: %v)", d.info.Dir, err)
		}
		if t.Failed() {
			t.Logf("--- demo output:\n%s\n--- demo logs:\n%s", d.out, d.logs)
		}
	})
	return d
}

// printedCurl is the deactivation command the demo printed, taken apart.
type printedCurl struct {
	method, url, body string
	header            http.Header
}

// run sends the printed command as curl would and returns the status and
// body of the answer.
func (c printedCurl) run(t *testing.T) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = c.header
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// parseCurl finds the curl command in the output and reads it as a shell
// would: single-quoted words, backslash-newline continuations.
func parseCurl(t *testing.T, out string) printedCurl {
	t.Helper()
	i := strings.Index(out, "curl ")
	if i < 0 {
		t.Fatalf("no curl command in the output:\n%s", out)
	}
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	s := out[i:]
loop:
	for j := 0; j < len(s); j++ {
		c := s[j]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && j+1 < len(s) && s[j+1] == '\n':
			j++
		case c == '\n':
			break loop
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	pc := printedCurl{method: http.MethodGet, header: http.Header{}}
	for k := 1; k < len(words); k++ {
		arg := func() string {
			k++
			if k >= len(words) {
				t.Fatalf("curl: %s needs an argument: %q", words[k-1], words)
			}
			return words[k]
		}
		switch w := words[k]; w {
		case "-sS":
		case "-X":
			pc.method = arg()
		case "-H":
			name, value, _ := strings.Cut(arg(), ":")
			pc.header.Add(name, strings.TrimSpace(value))
		case "-d":
			pc.body = arg()
		default:
			if strings.HasPrefix(w, "-") || pc.url != "" {
				t.Fatalf("curl: unexpected word %q in %q", w, words)
			}
			pc.url = w
		}
	}
	return pc
}

func TestDemo_PrintsURLUsersAndCurl(t *testing.T) {
	if testing.Short() {
		t.Skip("demo: skipped with -short")
	}
	d := startDemo(t)
	out := d.out.String()
	for _, want := range []string{d.info.URL + "/", d.info.IdPURL, d.info.SCIMURL, "Bearer " + d.info.Token} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if len(d.info.Users) != 3 {
		t.Fatalf("demo provisioned %d users, want 3", len(d.info.Users))
	}
	for _, u := range d.info.Users {
		if u.ID == "" || !strings.Contains(out, u.Name) || !strings.Contains(out, u.Email) || !strings.Contains(out, u.ID) {
			t.Errorf("output lacks user %s (%s, id %q)", u.Name, u.Email, u.ID)
		}
	}
	c := parseCurl(t, out)
	alice := d.info.Users[0]
	if c.method != http.MethodPatch || c.url != d.info.SCIMURL+"/Users/"+alice.ID ||
		c.header.Get("Authorization") != "Bearer "+d.info.Token ||
		!strings.Contains(c.body, `{"op":"replace","value":{"active":false}}`) {
		t.Errorf("printed curl = %+v; want a PATCH of alice's SCIM user with the token", c)
	}
	if strings.Contains(d.logs.String(), d.info.Token) {
		t.Errorf("the SCIM token appears in the logs")
	}

	// A browser navigation is sent to the demo IdP, nothing else.
	client := &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, _ := http.NewRequest(http.MethodGet, d.info.URL+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, d.info.IdPURL+"/sso?") {
		t.Errorf("GET / : %d Location %q, want 303 to %s/sso", resp.StatusCode, loc, d.info.IdPURL)
	}
}

func TestDemo_BrowserSignInThenSCIMDeactivation(t *testing.T) {
	if testing.Short() {
		t.Skip("demo: skipped with -short")
	}
	fi, err := os.Stat(chromiumPath)
	requirePeer(t, chromiumPath, err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0)
	d := startDemo(t)
	browser, chromeOut := startBrowser(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- chromium output:\n%s", chromeOut)
		}
	})
	e := &e2e{
		publicURL:      d.info.URL,
		upstreamURL:    d.info.UpstreamURL,
		cookieName:     config.DefaultCookieName,
		trackingPrefix: samlsp.TrackingCookiePrefix(config.DefaultCookieName),
		logs:           d.logs,
		browser:        browser,
		secrets:        map[string]string{d.info.Token: "the SCIM token"},
	}
	tb := e.newTab(t)

	tb.do("open the printed URL", chromedp.Navigate(d.info.URL+"/"))
	tb.do("wait for the demo IdP login page", chromedp.WaitVisible(chromedp.ID("user-alice")))
	if loc := tb.location(); !strings.HasPrefix(loc.String(), d.info.IdPURL+"/sso?") {
		tb.fatal("login page is not the demo IdP's: %s", loc)
	}
	tb.cookies() // the tracking cookie: a secret for the log check
	tb.do("click alice", chromedp.Click(chromedp.ID("user-alice")))
	tb.do("wait for the upstream page", chromedp.WaitVisible(chromedp.ID("identity")))
	if loc := tb.location(); loc.String() != d.info.URL+"/" {
		t.Errorf("after sign-in the browser is at %s, want %s/", loc, d.info.URL)
	}
	if tb.sessionCookie() == "" {
		tb.fatal("no session cookie after sign-in")
	}
	cell := func(h string) string {
		return strings.TrimSpace(runTab(tb, "read "+h, chromedp.Text(chromedp.ID(h))))
	}
	if got := cell("X-Forwarded-User"); got != "alice" {
		tb.fatal("page shows X-Forwarded-User %q, want alice", got)
	}
	if got := cell("X-Forwarded-Email"); got != "alice@example.com" {
		t.Errorf("page shows X-Forwarded-Email %q, want alice@example.com", got)
	}
	if got := strings.Split(cell("X-Forwarded-Groups"), ","); !slices.Contains(got, "admins") {
		t.Errorf("page shows X-Forwarded-Groups %q, want admins among them", got)
	}

	// Deactivate alice exactly as the printed curl would.
	status, body := parseCurl(t, d.out.String()).run(t)
	if status != http.StatusOK || !strings.Contains(string(body), `"active":false`) {
		t.Fatalf("the printed curl: status %d body %s; want 200 with active false", status, body)
	}

	tb.wantReload(http.StatusForbidden, titleRemoved)
	if n := d.logs.countAudit("access_denied", "alice"); n == 0 {
		t.Errorf("no access_denied audit event for alice after the reload")
	}
	e.checkLogsClean(t)
}

// TestDemo_OnlyDemoGoImportsDemoIdP: no code path but `portcullis demo`
// can construct the demo IdP, because no other non-test file in the module
// imports it (demo_orgs.go is `portcullis demo --organizations`).
func TestDemo_OnlyDemoGoImportsDemoIdP(t *testing.T) {
	const pkg = "github.com/portcullis-sso/portcullis/internal/demoidp"
	var importers []string
	err := filepath.WalkDir(filepath.Join("..", ".."), func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			if n := de.Name(); n != ".." && n != "." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "charts") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == pkg {
				rel, _ := filepath.Rel(filepath.Join("..", ".."), path)
				importers = append(importers, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cmd/portcullis/demo.go", "cmd/portcullis/demo_orgs.go"}; !slices.Equal(importers, want) {
		t.Errorf("internal/demoidp is imported by %q, want only %q", importers, want)
	}
}

// TestDemo_ConfigHasNoDemoKnob: no config key, at any depth, mentions the
// demo, so no config file can turn the demo IdP on under `serve`.
func TestDemo_ConfigHasNoDemoKnob(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := path + "." + f.Name
			if strings.Contains(strings.ToLower(f.Name+" "+string(f.Tag)), "demo") {
				t.Errorf("config field %s (tag %q) mentions the demo", name, f.Tag)
			}
			walk(name, f.Type)
		}
	}
	walk("Config", reflect.TypeFor[config.Config]())
	if len(seen) < 5 {
		t.Errorf("walked only %d struct types; the walk is broken", len(seen))
	}
}

func TestDemo_ListenMustBeLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.1:0", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"192.0.2.10:8080", false},
		{"example.com:8080", false},
		{"127.0.0.1", false},
	} {
		if err := checkLoopback(tc.addr); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
	err := runDemo(context.Background(), demoOptions{Listen: "0.0.0.0:0"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("runDemo on 0.0.0.0: %v, want a loopback error", err)
	}
}

// The demo users are what the brief promises newcomers.
func TestDemo_Users(t *testing.T) {
	groups := map[string][]string{}
	for _, u := range demoidp.Users() {
		groups[u.Name] = u.Groups
	}
	want := map[string][]string{"alice": {"staff", "admins"}, "bob": {"staff"}, "carol": {"staff"}}
	if !reflect.DeepEqual(groups, want) {
		t.Errorf("demo users %v, want %v", groups, want)
	}
}

// eventRow is one row of the demo app's events page.
type eventRow struct{ id, typ, verified, html string }

// demoEvents reads the demo app's events page.
func demoEvents(t *testing.T, pageURL string) []eventRow {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}).Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", pageURL, resp.StatusCode)
	}
	cell := func(row, class string) string {
		_, rest, _ := strings.Cut(row, `class="`+class+`">`)
		v, _, _ := strings.Cut(rest, "</td>")
		return strings.TrimSuffix(strings.TrimPrefix(v, "<code>"), "</code>")
	}
	var rows []eventRow
	for _, row := range strings.Split(string(body), `<tr class="event">`)[1:] {
		rows = append(rows, eventRow{id: cell(row, "id"), typ: cell(row, "type"), verified: cell(row, "verified"), html: row})
	}
	return rows
}

// waitDemoEvent waits until the demo app's events page lists an event of
// type typ, and returns the page's rows.
func waitDemoEvent(t *testing.T, pageURL, typ string) []eventRow {
	t.Helper()
	var rows []eventRow
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		rows = demoEvents(t, pageURL)
		for _, r := range rows {
			if r.typ == typ {
				return rows
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on the events page after 30s; rows %+v", typ, rows)
		}
	}
}

// A SCIM deactivation in the demo reaches the demo app as a webhook, which
// it verifies (Standard Webhooks library) and shows; a forged one is shown
// as refused.
func TestDemo_DeactivationWebhookShownVerifiedOnTheAppsEventsPage(t *testing.T) {
	if testing.Short() {
		t.Skip("demo: skipped with -short")
	}
	d := startDemo(t)
	if d.info.EventsURL == "" || !strings.Contains(d.out.String(), d.info.EventsURL) {
		t.Fatalf("the banner does not give the events page (%q):\n%s", d.info.EventsURL, d.out)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get(d.info.UpstreamURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `href="/hooks/"`) {
		t.Errorf("the demo app's page does not link the events page:\n%s", page)
	}

	if status, _ := parseCurl(t, d.out.String()).run(t); status != http.StatusOK {
		t.Fatalf("the printed curl: status %d", status)
	}
	rows := waitDemoEvent(t, d.info.EventsURL, "user.deactivated")
	for _, r := range rows {
		if r.verified != "yes" || !strings.HasPrefix(r.id, "evt_") {
			t.Errorf("event %+v: want an evt_ id, verified yes", r)
		}
	}

	// A delivery without a valid signature is refused and shown so.
	forged, _ := http.NewRequest(http.MethodPost, d.info.UpstreamURL+demoidp.PathHooks,
		strings.NewReader(`{"type":"user.deleted","timestamp":"2026-12-05T00:00:00.000Z","data":{"id":"x"}}`))
	forged.Header.Set("webhook-id", "evt_forged")
	forged.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	forged.Header.Set("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl")
	resp, err = client.Do(forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forged webhook: status %d, want 400", resp.StatusCode)
	}
	rows = demoEvents(t, d.info.EventsURL)
	if len(rows) == 0 || rows[0].id != "evt_forged" || !strings.HasPrefix(rows[0].verified, "no") {
		t.Errorf("newest row %+v, want evt_forged not verified", rows[:min(1, len(rows))])
	}
}
