package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/portcullis-sso/portcullis/samlsp"
)

// e2e is the whole real-peer setup: SimpleSAMLphp as the IdP, the proxy as
// `portcullis serve` wires it, an echo upstream and one Chromium.
type e2e struct {
	publicURL      string // http://127.0.0.1:PORT, the proxy
	upstreamURL    string // the echo app, reachable directly too
	cookieName     string
	trackingPrefix string
	idp            *simpleSAMLphp
	logs           *lockedBuffer // everything the proxy logged
	browser        context.Context
	slo            *sloPeers // the other SPs at the same IdP

	secretsMu sync.Mutex
	secrets   map[string]string // value → what it is; never in the logs
}

var identityHeaders = []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username"}

func TestE2E_SimpleSAMLphpChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	requireE2EPeers(t)
	e := setupE2E(t)

	t.Run("SignInKeepsPathAndQueryAndSendsIdentity", func(t *testing.T) {
		tb := e.newTab(t)
		// An app cookie on the proxy's origin must reach the upstream as is.
		if _, err := chromedp.Call(tb.ctx, network.SetCookie,
			network.SetCookieParams{Name: "app_pref", Value: "dark", URL: e.publicURL}); err != nil {
			t.Fatal(err)
		}
		tb.do("open a protected page", chromedp.Navigate(e.publicURL+"/reports?year=2026"))
		tb.signIn("alice", "alicepass")

		if loc := tb.location(); loc.String() != e.publicURL+"/reports?year=2026" {
			t.Errorf("after sign-in the browser is at %s, want %s/reports?year=2026", loc, e.publicURL)
		}
		v := tb.upstream()
		if v.Path != "/reports" || v.Query != "year=2026" {
			t.Errorf("upstream got %s?%s, want /reports?year=2026", v.Path, v.Query)
		}
		wantOneHeader(t, v, "X-Forwarded-User", "alice")
		wantOneHeader(t, v, "X-Forwarded-Email", "alice@example.com")
		wantOneHeader(t, v, "X-Forwarded-Preferred-Username", "Alice Anders")
		groups := strings.Split(v.Header.Get("X-Forwarded-Groups"), ",")
		if !slices.Contains(groups, "staff") || !slices.Contains(groups, "admins") {
			t.Errorf("X-Forwarded-Groups = %q, want staff and admins", v.Header.Get("X-Forwarded-Groups"))
		}
		for _, name := range cookieNames(v.Header["Cookie"]) {
			if e.isOurCookie(name) {
				t.Errorf("upstream received Portcullis cookie %q (Cookie names: %q)", name, cookieNames(v.Header["Cookie"]))
			}
		}
		if !slices.Contains(strings.Split(strings.Join(v.Header["Cookie"], "; "), "; "), "app_pref=dark") {
			t.Errorf("upstream Cookie header %q lacks the app's own cookie app_pref=dark", v.Header["Cookie"])
		}

		var session *network.Cookie
		for _, c := range tb.cookies() {
			if c.Name == e.cookieName {
				session = c
			}
		}
		switch {
		case session == nil:
			t.Errorf("no %q cookie in the browser after sign-in", e.cookieName)
		case !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax:
			t.Errorf("session cookie: HttpOnly=%v SameSite=%q, want HttpOnly and Lax", session.HTTPOnly, session.SameSite)
		}

		// alice is in admins: /admin/ reaches the upstream.
		tb.do("open /admin/", chromedp.Navigate(e.publicURL+"/admin/"))
		tb.waitUpstream()
		if v := tb.upstream(); v.Path != "/admin/" {
			t.Errorf("alice on /admin/: upstream got %s", v.Path)
		}
	})

	t.Run("SpoofedIdentityHeadersAreReplaced", func(t *testing.T) {
		tb := e.newTab(t)
		tb.setExtraHeaders(map[string]string{
			"X-Forwarded-User":   "root",
			"X_Forwarded_User":   "root",
			"X-Forwarded-Groups": "admins",
		})
		// Control: straight to the app, both spellings arrive, so the
		// browser really sends what the proxy must remove.
		tb.do("open the upstream directly", chromedp.Navigate(e.upstreamURL+"/direct"))
		tb.waitUpstream()
		if vals, names := headerValues(tb.upstream().Header, "X-Forwarded-User"); len(names) != 2 || len(vals) != 2 {
			t.Fatalf("control: direct to the upstream, X-Forwarded-User spellings %q values %q; want both spoofed spellings", names, vals)
		}

		tb.do("open a protected page", chromedp.Navigate(e.publicURL+"/reports"))
		tb.signIn("bob", "bobpass")
		v := tb.upstream()
		wantOneHeader(t, v, "X-Forwarded-User", "bob")
		wantOneHeader(t, v, "X-Forwarded-Groups", "staff")
		for _, h := range []string{"X-Forwarded-User", "X-Forwarded-Groups"} {
			vals, names := headerValues(v.Header, h)
			if slices.Contains(vals, "root") || slices.ContainsFunc(vals, func(s string) bool { return strings.Contains(s, "admins") }) {
				t.Errorf("a spoofed value reached the upstream: %q under %q", vals, names)
			}
		}

		tb.do("open /admin/ as bob", chromedp.Navigate(e.publicURL+"/admin/"))
		title := runTab(tb, "read title", chromedp.Title())
		body := tb.bodyText()
		if title != "No access" || !strings.Contains(body, "you do not have access to this page") {
			tb.fatal("bob on /admin/ with a spoofed X-Forwarded-Groups: title %q, body %q; want the 403 No access page", title, body)
		}
	})

	t.Run("PublicRouteSendsNoIdentity", func(t *testing.T) {
		tb := e.newTab(t)
		tb.setExtraHeaders(map[string]string{
			"X-Forwarded-User":               "root",
			"X_Forwarded_User":               "root",
			"x-forwarded-email":              "root@example.com",
			"X-Forwarded-Groups":             "admins",
			"X_FORWARDED_PREFERRED_USERNAME": "Root",
		})
		tb.do("open /healthz", chromedp.Navigate(e.publicURL+"/healthz"))
		tb.waitUpstream()
		if loc := tb.location(); loc.String() != e.publicURL+"/healthz" {
			t.Errorf("public route: browser ended at %s, want %s/healthz without a sign-in", loc, e.publicURL)
		}
		reqs, _ := tb.requestsSince(0)
		for _, r := range reqs {
			if strings.HasPrefix(r.URL, e.idp.origin+"/") {
				t.Errorf("public route sent the browser to the IdP: %s %s", r.Method, r.URL)
			}
		}
		v := tb.upstream()
		if v.Path != "/healthz" {
			t.Errorf("upstream got %s, want /healthz", v.Path)
		}
		for _, h := range identityHeaders {
			if vals, names := headerValues(v.Header, h); len(names) > 0 {
				t.Errorf("anonymous request on a public route: upstream got %q = %q", names, vals)
			}
		}
	})

	t.Run("LogoutNeedsTheIdPAgain", func(t *testing.T) {
		tb := e.newTab(t)
		tb.do("open a protected page", chromedp.Navigate(e.publicURL+"/reports"))
		tb.signIn("carol", "carolpass")
		logins := e.logs.countAudit("login_succeeded", "carol")
		if logins != 1 {
			t.Errorf("audit log has %d login_succeeded for carol after one sign-in, want 1", logins)
		}
		oldSession := tb.sessionCookie()
		if oldSession == "" {
			tb.fatal("no session cookie after sign-in")
		}

		_, mark := tb.requestsSince(0)
		tb.startNavigation(e.publicURL + "/saml/logout?rd=/")
		// rd=/ is protected, so the browser must go through the IdP again;
		// Single Logout ended the IdP's own session on the way, so the IdP
		// asks for the password.
		tb.do("wait for the IdP form", chromedp.WaitVisible(chromedp.CSS("#username")))
		tb.signIn("carol", "carolpass")
		tb.waitUpstream()

		if loc := tb.location(); loc.String() != e.publicURL+"/" {
			t.Errorf("after logout?rd=/ and sign-in the browser is at %s, want %s/", loc, e.publicURL)
		}
		wantOneHeader(t, tb.upstream(), "X-Forwarded-User", "carol")
		reqs, _ := tb.requestsSince(mark)
		sawIdP, sawACS := -1, -1
		for i, r := range reqs {
			if sawIdP < 0 && strings.HasPrefix(r.URL, e.idp.ssoURL) {
				sawIdP = i
			}
			if r.Method == "POST" && r.URL == e.publicURL+"/saml/acs" {
				sawACS = i
			}
		}
		if sawIdP < 0 || sawACS < sawIdP {
			tb.fatal("after logout the browser did not go IdP SSO (at %d) then ACS (at %d)", sawIdP, sawACS)
		}
		if n := e.logs.countAudit("logout", "carol"); n != 1 {
			t.Errorf("audit log has %d logout events for carol, want 1", n)
		}
		if n := e.logs.countAudit("login_succeeded", "carol"); n != logins+1 {
			t.Errorf("audit log has %d login_succeeded for carol, want %d (a second sign-in)", n, logins+1)
		}
		if s := tb.sessionCookie(); s == "" || s == oldSession {
			t.Errorf("after logout and sign-in the session cookie is unchanged or missing")
		}
	})

	t.Run("IdPLogoutEndsThePortcullisSession", func(t *testing.T) {
		tb := e.newTab(t)
		tb.do("open a protected page", chromedp.Navigate(e.publicURL+"/reports"))
		tb.signIn("bob", "bobpass")
		if tb.sessionCookie() == "" {
			tb.fatal("no session cookie after sign-in")
		}
		// Sign out at the IdP: SimpleSAMLphp sends its signed LogoutRequest
		// through the browser to /saml/slo, which must answer with a
		// signed LogoutResponse for the IdP to carry on to ReturnTo.
		returnTo := e.publicURL + "/healthz"
		tb.do("sign out at the IdP", chromedp.Navigate(e.idp.origin+
			"/simplesaml/saml2/idp/SingleLogoutService.php?ReturnTo="+url.QueryEscape(returnTo)))
		tb.waitUpstream()
		if loc := tb.location(); loc.String() != returnTo {
			tb.fatal("after the IdP's logout the browser is at %s, want %s", loc, returnTo)
		}
		if tb.sessionCookie() != "" {
			t.Error("the IdP's logout left Portcullis's session cookie in the browser")
		}
		// Portcullis's next request is a sign-in, and the IdP asks for the
		// password: both sessions are gone.
		tb.do("open a protected page again", chromedp.Navigate(e.publicURL+"/reports"))
		tb.do("wait for the IdP form", chromedp.WaitVisible(chromedp.CSS("#username")))
	})

	t.Run("SignOutAtPortcullisEndsTheSecondSPsSession", e.testSecondSPLogout)
	t.Run("IdPLogoutEndsTheSessionOnBothReplicas", e.testReplicasLogout)

	e.checkLogsClean(t)
}

// setupE2E starts everything and registers the cleanup of everything.
func setupE2E(t *testing.T) *e2e {
	t.Helper()
	began := time.Now()
	dir := t.TempDir()
	if err := writeKeys(dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	pub, adm := listenLoopback(t), listenLoopback(t)
	t.Cleanup(func() { pub.Close(); adm.Close() }) // in case serveOn never owns them
	publicURL := "http://" + pub.Addr().String()

	peers := newSLOPeers(t)
	idp := startSimpleSAMLphp(t, freePort(t), publicURL+"/saml/metadata", publicURL+"/saml/acs", filepath.Join(dir, "sp.crt"),
		peers.idpArgs()...)
	t.Logf("IdP up in %s: %s", time.Since(began).Round(time.Millisecond), idp.metadataURL)

	up := newEchoUpstream(t)
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	cfg := fmt.Sprintf(`version: 1
listen: %q
adminListen: %q
publicURL: %q
upstream: %q
saml:
  idpMetadataURL: %q
  certFile: sp.crt
  keyFile: sp.key
  attributes: {user: uid, email: mail, name: displayName, groups: groups}
session:
  keysFile: session.keys
routes:
  - path: /healthz
    public: true
  - path: /admin/
    allowGroups: [admins]
`, pub.Addr().String(), adm.Addr().String(), publicURL, up.URL, idp.metadataURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	e := &e2e{
		publicURL:   publicURL,
		upstreamURL: up.URL,
		idp:         idp,
		slo:         peers,
		logs:        logs,
		secrets:     map[string]string{},
	}
	t.Cleanup(func() {
		if t.Failed() {
			idp.logTail(t, 300)
			t.Logf("--- proxy logs:\n%s", logs.String())
		}
	})

	readyAt := time.Now()
	a := serveLogged(t, cfgPath, logs, pub, adm)
	e.cookieName = a.cfg.Session.CookieName
	e.trackingPrefix = samlsp.TrackingCookiePrefix(e.cookieName)
	t.Logf("proxy ready in %s", time.Since(readyAt).Round(time.Millisecond))

	browserAt := time.Now()
	var out *lockedBuffer
	e.browser, out = startBrowser(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- chromium output:\n%s", out.String())
		}
	})
	t.Logf("chromium up in %s; setup took %s", time.Since(browserAt).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	return e
}

// wantOneHeader fails unless exactly one header, in any spelling, carries
// name, with exactly one value, want.
func wantOneHeader(t *testing.T, v upstreamView, name, want string) {
	t.Helper()
	vals, names := headerValues(v.Header, name)
	if len(vals) != 1 || vals[0] != want {
		t.Errorf("upstream %s = %q (header names %q), want exactly [%q]", name, vals, names, want)
	}
}
