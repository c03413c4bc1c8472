package main

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/samlsp"
)

// orgIdPURL is the IdP URL the two-organization demo printed for org.
func orgIdPURL(t *testing.T, out, org string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "Organization "+org+" ")
	if !ok {
		t.Fatalf("the demo printed no organization %s:\n%s", org, out)
	}
	_, rest, _ = strings.Cut(rest, ", IdP ")
	u, _, _ := strings.Cut(rest, "/ ")
	return u
}

// The identifier-first page routes each address to its organization's IdP,
// and an address of no organization gets the generic answer.
func TestDemoOrgs_IdentifierFirstRoutesByDomain(t *testing.T) {
	if testing.Short() {
		t.Skip("demo: skipped with -short")
	}
	d := startDemoWith(t, runDemoOrgs)
	out := d.out.String()
	for _, want := range []string{"alice@acme.test", "carol@globex.test", "Acme Corp", "/scim/v2/acme", "/scim/v2/globex"} {
		if !strings.Contains(out, want) {
			t.Errorf("the banner does not mention %q:\n%s", want, out)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(d.info.URL + "/saml/login?rd=/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/saml/login: status %d, want the identifier-first page", resp.StatusCode)
	}
	for email, org := range map[string]string{"alice@acme.test": "acme", "carol@globex.test": "globex", "nobody@example.com": ""} {
		resp, err := client.PostForm(d.info.URL+"/saml/login", url.Values{"email": {email}, "rd": {"/"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if org == "" {
			if resp.StatusCode != http.StatusOK || loc != "" {
				t.Errorf("%s: status %d Location %q, want the page again", email, resp.StatusCode, loc)
			}
			continue
		}
		if want := orgIdPURL(t, out, org) + "/sso?"; resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, want) {
			t.Errorf("%s: status %d Location %q, want 303 to %s", email, resp.StatusCode, loc, want)
		}
	}
}

// A newcomer's walk in Chromium: the app sends them to the sign-in page,
// their globex address takes them to globex's IdP, and the app then sees
// organization globex; acme's route stays closed to them.
func TestDemoOrgs_BrowserSignsInThroughTheirOrganization(t *testing.T) {
	if testing.Short() {
		t.Skip("demo: skipped with -short")
	}
	fi, err := os.Stat(chromiumPath)
	requirePeer(t, chromiumPath, err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0)
	d := startDemoWith(t, runDemoOrgs)
	globexIdP := orgIdPURL(t, d.out.String(), "globex")
	browser, chromeOut := startBrowser(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- chromium output:\n%s", chromeOut)
		}
	})
	e := &e2e{publicURL: d.info.URL, upstreamURL: d.info.UpstreamURL, cookieName: config.DefaultCookieName,
		trackingPrefix: samlsp.TrackingCookiePrefix(config.DefaultCookieName), logs: d.logs, browser: browser,
		secrets: map[string]string{}}
	tb := e.newTab(t)
	tb.do("open the app", chromedp.Navigate(d.info.URL+"/"))
	tb.do("wait for the identifier-first page", chromedp.WaitVisible(chromedp.ID("email")))
	tb.do("type a globex address", chromedp.SendKeys(chromedp.ID("email"), "carol@globex.test"), chromedp.Submit(chromedp.ID("email")))
	tb.do("wait for the globex IdP", chromedp.WaitVisible(chromedp.ID("user-carol")))
	if loc := tb.location(); !strings.HasPrefix(loc.String(), globexIdP+"/sso?") {
		tb.fatal("the globex address went to %s, want globex's IdP %s", loc, globexIdP)
	}
	tb.cookies()
	tb.do("click carol", chromedp.Click(chromedp.ID("user-carol")))
	tb.do("wait for the app", chromedp.WaitVisible(chromedp.ID("identity")))
	cell := func(h string) string { return strings.TrimSpace(runTab(tb, "read "+h, chromedp.Text(chromedp.ID(h)))) }
	if got := cell("X-Forwarded-Org"); got != "globex" {
		t.Errorf("the app sees X-Forwarded-Org %q, want globex", got)
	}
	if got := cell("X-Forwarded-Email"); got != "carol@globex.test" {
		t.Errorf("the app sees X-Forwarded-Email %q", got)
	}
	resp, err := chromedp.RunResponse(tb.ctx, chromedp.Navigate(d.info.URL+"/acme/"))
	if err != nil {
		tb.fatal("open /acme/: %v", err)
	}
	if resp.Status != http.StatusForbidden {
		t.Errorf("/acme/ for a globex user: status %d, want 403", resp.Status)
	}

	// globex's SCIM deactivates carol, exactly as the printed curl would;
	// her next request is refused.
	c := parseCurl(t, d.out.String())
	if !strings.Contains(c.url, "/scim/v2/globex/Users/") {
		t.Fatalf("the printed curl goes to %s, want globex's SCIM", c.url)
	}
	e.secret("globex's SCIM token", strings.TrimPrefix(c.header.Get("Authorization"), "Bearer "))
	if status, _ := c.run(t); status != http.StatusOK {
		t.Fatalf("the printed curl: status %d, want 200", status)
	}
	tb.do("back to the app", chromedp.Navigate(d.info.URL+"/"))
	tb.wantReload(http.StatusForbidden, titleRemoved)
	e.checkLogsClean(t)
}

// In the two-organization demo the app is told too: globex's deactivation
// arrives verified, naming its organization.
func TestDemoOrgs_DeactivationWebhookNamesItsOrganization(t *testing.T) {
	if testing.Short() {
		t.Skip("demo: skipped with -short")
	}
	d := startDemoWith(t, runDemoOrgs)
	if d.info.EventsURL == "" || !strings.Contains(d.out.String(), d.info.EventsURL) {
		t.Fatalf("the banner does not give the events page (%q):\n%s", d.info.EventsURL, d.out)
	}
	if status, _ := parseCurl(t, d.out.String()).run(t); status != http.StatusOK {
		t.Fatalf("the printed curl: status %d", status)
	}
	for _, r := range waitDemoEvent(t, d.info.EventsURL, "user.deactivated") {
		if r.verified != "yes" {
			t.Errorf("event %+v: want verified", r)
		}
		if r.typ == "user.deactivated" && !strings.Contains(r.html, "(globex)") {
			t.Errorf("globex's deactivation does not name its organization: %s", r.html)
		}
	}
}
