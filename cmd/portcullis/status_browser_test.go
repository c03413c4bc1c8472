package main

// The admin status page of a real running proxy (`portcullis demo`: the
// wiring of `portcullis serve`, a real SQLite store, SCIM provisioning and
// the demo IdP), rendered in headless Chromium and read as a person would.

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

func TestStatusPage_InChromium_ShowsDeactivationDriftAndLogins(t *testing.T) {
	if testing.Short() {
		t.Skip("demo: skipped with -short")
	}
	fi, err := os.Stat(chromiumPath)
	requirePeer(t, chromiumPath, err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0)
	d := startDemo(t)

	// bob signs in and keeps his session; alice is deactivated through SCIM
	// (the demo's printed curl), then the IdP still signs her in: the gate
	// refuses her and drift detection counts one "inactive" drift. SCIM
	// renames carol's userName (the match attribute), so her next sign-in
	// matches no SCIM user: one "unprovisioned" drift.
	if got := signInOverHTTP(t, d, "bob"); got != http.StatusOK {
		t.Fatalf("bob's sign-in ended with %d, want 200", got)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	send := func(what string, req *http.Request) {
		t.Helper()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", what, resp.StatusCode)
		}
	}
	c := parseCurl(t, d.out.String())
	req, _ := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
	req.Header = c.header
	send("deactivate alice", req)
	if got := signInOverHTTP(t, d, "alice"); got != http.StatusForbidden {
		t.Fatalf("deactivated alice's sign-in ended with %d, want 403", got)
	}
	var carolID string
	for _, u := range d.info.Users {
		if u.Name == "carol" {
			carolID = u.ID
		}
	}
	req, _ = http.NewRequest("PATCH", d.info.SCIMURL+"/Users/"+carolID, strings.NewReader(
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":"carol.chen@example.com"}]}`))
	req.Header.Set("Authorization", "Bearer "+d.info.Token)
	req.Header.Set("Content-Type", "application/scim+json")
	send("rename carol", req)
	if got := signInOverHTTP(t, d, "carol"); got != http.StatusForbidden {
		t.Fatalf("renamed carol's sign-in ended with %d, want 403 (requireProvisioned)", got)
	}
	for _, u := range []string{"alice", "carol"} {
		if n := d.logs.countAudit("identity_drift", u); n != 1 {
			t.Fatalf("%d identity_drift events for %s in the log, want 1", n, u)
		}
	}

	browser, chromeOut := startBrowser(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- chromium output:\n%s", chromeOut)
		}
	})
	e := &e2e{publicURL: d.info.URL, logs: d.logs, browser: browser,
		secrets: map[string]string{d.info.Token: "the SCIM token"}}
	tb := e.newTab(t)
	// A phone's viewport: the page must fit it.
	if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride,
		emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 3, Mobile: true}); err != nil {
		t.Fatalf("phone viewport: %v", err)
	}
	text := func(sel string) string {
		return strings.TrimSpace(runTab(tb, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
	}

	tb.do("open the status page", chromedp.Navigate(d.info.AdminURL+"/"))
	tb.do("wait for the page", chromedp.WaitVisible(chromedp.CSS("#drift")))
	if got := text("#drift-inactive"); got != "1" {
		t.Errorf("page shows inactive drift %q, want 1", got)
	}
	if got := text("#drift-unprovisioned"); got != "1" {
		t.Errorf("page shows unprovisioned drift %q, want 1", got)
	}
	if got := text("#drift-email_mismatch"); got != "0" {
		t.Errorf("page shows email_mismatch drift %q, want 0", got)
	}
	if got := text("#users-inactive"); got != "1" {
		t.Errorf("page shows %q inactive users, want 1", got)
	}
	if got := text("#scim-token"); !strings.HasPrefix(got, "demo") {
		t.Errorf("token in use %q, want the label demo", got)
	}
	if got := text("#check-idp"); got != "ok" {
		t.Errorf("idp check %q, want ok", got)
	}
	audit := text("#audit-events")
	for _, want := range []string{"user_deactivated", "identity_drift", "access_denied"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit table lacks %s:\n%s", want, audit)
		}
	}
	if strings.Contains(audit, d.info.Token) {
		t.Error("the SCIM token is on the page")
	}

	// Look alice up with the search form, as a person would.
	tb.do("search alice", chromedp.SetValue(chromedp.CSS(`input[name="user"]`), "alice@example.com"),
		chromedp.Submit(chromedp.CSS(`input[name="user"]`)))
	tb.do("wait for the result", chromedp.WaitVisible(chromedp.CSS("#results .user")))
	if got := text("#results .user .state"); got != "deactivated" {
		t.Errorf("alice's state on the page is %q, want deactivated", got)
	}
	if got := text("#results .user .live-sessions"); got != "0" {
		t.Errorf("deactivated alice has %q live sessions on the page, want 0", got)
	}
	if got := text("#results .user .last-login"); !strings.Contains(got, "ago") {
		t.Errorf("alice's last login %q: want her refused sign-in's time (the IdP did sign her in)", got)
	}
	// The inline style sheet applies (its CSP hash is right): the state is red.
	color := runTab(tb, "read the state's colour", chromedp.Evaluate[string](
		`getComputedStyle(document.querySelector("#results .user .state")).color`))
	if color != "rgb(207, 34, 46)" {
		t.Errorf("deactivated state colour %q, want the style sheet's red: is the style blocked?", color)
	}

	tb.do("search bob", chromedp.Navigate(d.info.AdminURL+"/?user=bob@example.com"))
	tb.do("wait for the result", chromedp.WaitVisible(chromedp.CSS("#results .user")))
	if got := text("#results .user .state"); got != "active" {
		t.Errorf("bob's state %q, want active", got)
	}
	if got := text("#results .user .live-sessions"); got != "1" {
		t.Errorf("bob has %q live sessions on the page, want 1", got)
	}
	if got := text("#results .user .groups"); got != "staff" {
		t.Errorf("bob's groups %q, want staff", got)
	}
	if runTab(tb, "measure the width", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)) {
		t.Error("the page is wider than a phone's screen")
	}
}
