package main

// The acceptance test of organizations (#15), end to end: two real
// SimpleSAMLphp IdPs (acme's and globex's), one Portcullis serving both
// organizations, Chromium for what a person does and a Go client with a
// cookie jar for what an attacker does with a real IdP's real responses.
// Every test of this file shares one set of peers (orgsFixture), started
// by the first test that needs it and stopped by TestMain.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/portcullis-sso/portcullis/samlsp"
)

// orgsE2E is the shared setup. acme is served on publicURL's host (with the
// identifier-first page); globex on a host of its own, globexURL.
type orgsE2E struct {
	publicURL   string // http://127.0.0.1:PORT
	globexURL   string // http://globex.localhost:PORT, the same listener
	upstreamURL string
	cookieName  string
	acme        *simpleSAMLphp // users alice, bob, carol @acme.test
	globex      *simpleSAMLphp // users alice, bob, carol @globex.test; mallory@acme.test
	logs        *lockedBuffer
	browser     context.Context
}

const globexHostName = "globex.localhost"

var orgsShared struct {
	once sync.Once
	tb   *fixtureTB
	o    *orgsE2E
}

// orgsFixture returns the shared setup, starting it on first use; a test
// skips (or fails under PORTCULLIS_REQUIRE_PEERS) when a peer is missing.
func orgsFixture(t *testing.T) *orgsE2E {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	requireE2EPeers(t)
	orgsShared.once.Do(func() {
		orgsShared.tb = &fixtureTB{name: "organizations e2e fixture"}
		orgsShared.tb.run(func() { orgsShared.o = setupOrgsE2E(orgsShared.tb) })
	})
	if msg := orgsShared.tb.failure(); msg != "" {
		t.Fatalf("shared setup failed:\n%s", msg)
	}
	o := orgsShared.o
	t.Cleanup(func() {
		if t.Failed() {
			o.acme.logTail(t, 80)
			o.globex.logTail(t, 80)
			t.Logf("--- proxy logs:\n%s", o.logs.String())
		}
	})
	return o
}

// stopOrgsFixture runs the shared setup's cleanups (TestMain).
func stopOrgsFixture() {
	if orgsShared.tb != nil {
		orgsShared.tb.stop()
	}
}

func setupOrgsE2E(t testing.TB) *orgsE2E {
	began := time.Now()
	dir := t.TempDir()
	if err := writeKeys(dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	pub, adm := listenLoopback(t), listenLoopback(t)
	t.Cleanup(func() { pub.Close(); adm.Close() }) // in case serveOn never owns them
	// Browsers send the SameSite=None tracking cookie on the IdP's
	// cross-site POST only over https (and globex's host is another site
	// than the IdPs'), so Portcullis is behind a TLS front as behind an
	// ingress.
	front := startTLSFront(t, "http://"+pub.Addr().String())
	_, port, _ := net.SplitHostPort(front)
	o := &orgsE2E{
		publicURL: "https://" + front,
		globexURL: "https://" + net.JoinHostPort(globexHostName, port),
		logs:      &lockedBuffer{},
	}
	spCert := filepath.Join(dir, "sp.crt")
	o.acme = startSimpleSAMLphp(t, freePort(t), o.publicURL+"/saml/metadata/acme", o.publicURL+"/saml/acs/acme", spCert,
		"--mail-domain", "acme.test")
	o.globex = startSimpleSAMLphp(t, freePort(t), o.globexURL+"/saml/metadata/globex", o.globexURL+"/saml/acs/globex", spCert,
		"--mail-domain", "globex.test", "--extra-user", "mallory:mallorypass:mallory@acme.test")
	t.Logf("IdPs up in %s", time.Since(began).Round(time.Millisecond))

	up := newEchoUpstream(t)
	o.upstreamURL = up.URL
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	cfg := fmt.Sprintf(`version: 1
listen: %q
adminListen: %q
publicURL: %q
upstream: %q
saml:
  certFile: sp.crt
  keyFile: sp.key
  attributes: {user: uid, email: mail, name: displayName, groups: groups}
session:
  keysFile: session.keys
trustedProxies: ["127.0.0.1/32"]
scim:
  enabled: false
headers:
  X-Forwarded-User: user
  X-Forwarded-Email: email
  X-Forwarded-Org: organization
organizations:
  - id: acme
    name: Acme Corporation
    domains: [acme.test]
    saml: {idpMetadataURL: %q}
  - id: globex
    name: Globex Incorporated
    domains: [globex.test]
    hosts: [%q]
    saml: {idpMetadataURL: %q}
routes:
  - path: /acme-only/
    allowOrganizations: [acme]
`, pub.Addr().String(), adm.Addr().String(), o.publicURL, up.URL,
		o.acme.metadataURL, net.JoinHostPort(globexHostName, port), o.globex.metadataURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a := serveLogged(t, cfgPath, o.logs, pub, adm)
	o.cookieName = a.cfg.Session.CookieName
	o.browser, _ = startBrowserWith(t, "MAP "+globexHostName+" 127.0.0.1",
		chromedp.Flag("ignore-certificate-errors", true)) // the TLS front's test certificate
	t.Logf("organizations e2e setup took %s", time.Since(began).Round(time.Millisecond))
	return o
}

// startTLSFront serves https on a loopback port in front of target (with
// httptest's certificate), keeping the Host header as an ingress does, and
// returns its host:port.
func startTLSFront(t testing.TB, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
		pr.SetXForwarded()
	}}
	srv := httptest.NewUnstartedServer(rp)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// view is the e2e the Chromium helpers (newTab, signIn, cookies) work
// with, for one organization: its IdP and the origin its session is on.
func (o *orgsE2E) view(idp *simpleSAMLphp, origin string) *e2e {
	return &e2e{
		publicURL:      origin,
		upstreamURL:    o.upstreamURL,
		cookieName:     o.cookieName,
		trackingPrefix: samlsp.TrackingCookiePrefix(o.cookieName),
		idp:            idp,
		logs:           o.logs,
		browser:        o.browser,
		secrets:        map[string]string{},
	}
}

// auditMark is where the audit log is now; auditSince reads what came after.
func (o *orgsE2E) auditMark() int { return len(o.logs.logEntries()) }

func (o *orgsE2E) auditSince(mark int, event string) []map[string]any {
	var out []map[string]any
	for _, e := range o.logs.logEntries()[mark:] {
		if e["logger"] == "audit" && e["event"] == event {
			out = append(out, e)
		}
	}
	return out
}

// ---------------------------------------------------------------- tests

func TestOrgsE2E_IdentifierFirstRoutesEachAddressToItsIdP(t *testing.T) {
	o := orgsFixture(t)
	for _, tc := range []struct {
		name, email, user, pass, org string
		idp                          *simpleSAMLphp
		origin                       string // where the session lives
	}{
		{"acme", "alice@acme.test", "alice", "alicepass", "acme", o.acme, o.publicURL},
		{"globex", "bob@globex.test", "bob", "bobpass", "globex", o.globex, o.globexURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := o.view(tc.idp, tc.origin).newTab(t)
			tb.do("open a protected page", chromedp.Navigate(o.publicURL+"/reports?year=2026"))
			tb.do("wait for the identifier-first page", chromedp.WaitVisible(chromedp.ID("email")))
			if loc := tb.location(); loc.Path != "/saml/login" || loc.Scheme+"://"+loc.Host != o.publicURL {
				tb.fatal("the protected page sent the browser to %s, want the identifier-first page", loc)
			}
			tb.do("enter the work email",
				chromedp.SendKeys(chromedp.ID("email"), tc.email),
				chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
			waitAt(tb, tc.idp.origin+"/simplesaml/module.php/core/loginuserpass.php")
			tb.signIn(tc.user, tc.pass) // checks the form is tc.idp's
			if loc := tb.location(); loc.String() != tc.origin+"/reports?year=2026" {
				t.Errorf("after sign-in the browser is at %s, want %s/reports?year=2026", loc, tc.origin)
			}
			v := tb.upstream()
			wantOneHeader(t, v, "X-Forwarded-Org", tc.org)
			wantOneHeader(t, v, "X-Forwarded-Email", tc.email)
			wantOneHeader(t, v, "X-Forwarded-User", tc.user)
		})
	}

	t.Run("login_hint skips the page", func(t *testing.T) {
		tb := o.view(o.globex, o.globexURL).newTab(t)
		tb.do("open /saml/login with a login_hint",
			chromedp.Navigate(o.publicURL+"/saml/login?login_hint=carol%40globex.test&rd=%2Fdocs"))
		waitAt(tb, o.globex.origin+"/simplesaml/module.php/core/loginuserpass.php")
		tb.signIn("carol", "carolpass")
		if loc := tb.location(); loc.String() != o.globexURL+"/docs" {
			t.Errorf("after sign-in the browser is at %s, want %s/docs", loc, o.globexURL)
		}
		v := tb.upstream()
		wantOneHeader(t, v, "X-Forwarded-Org", "globex")
		wantOneHeader(t, v, "X-Forwarded-Email", "carol@globex.test")
		reqs, _ := tb.requestsSince(0)
		for _, r := range reqs {
			if r.Method == http.MethodPost && strings.HasSuffix(strings.SplitN(r.URL, "?", 2)[0], "/saml/login") {
				t.Errorf("a login_hint sign-in went through the identifier-first form: %s %s", r.Method, r.URL)
			}
		}
	})
}

func TestOrgsE2E_GlobexAssertionAtAcmeACSIsRefused(t *testing.T) {
	o := orgsFixture(t)
	c := o.newClient(t)
	// A real response of globex's IdP, for a login started at globex.
	resp := c.idpLogin(o.globexURL+"/saml/login?rd=%2F", o.globex, "bob", "bobpass")
	if want := o.globexURL + "/saml/acs/globex"; resp.action != want {
		t.Fatalf("globex's IdP posts to %s, want %s", resp.action, want)
	}
	acmeACS := o.publicURL + "/saml/acs/acme"

	t.Run("with acme's own login in the browser", func(t *testing.T) {
		// The same browser starts a login at acme, so acme's ACS has a
		// login of its own (tracking cookie and RelayState) to match.
		r := c.get(o.publicURL + "/saml/login?organization=acme&rd=%2F")
		loc, _ := url.Parse(r.Header.Get("Location"))
		if r.StatusCode != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), o.acme.ssoURL) {
			t.Fatalf("start of acme's login: %d to %q, want 303 to acme's IdP", r.StatusCode, r.Header.Get("Location"))
		}
		mark := o.auditMark()
		got := c.post(acmeACS, url.Values{"SAMLResponse": {resp.samlResponse}, "RelayState": {loc.Query().Get("RelayState")}})
		o.wantRefused(t, got, mark, "in_response_to")
	})
	t.Run("with globex's login's RelayState and tracking cookie", func(t *testing.T) {
		mark := o.auditMark()
		got := c.post(acmeACS, url.Values{"SAMLResponse": {resp.samlResponse}, "RelayState": {resp.relayState}},
			c.cookiesOf(o.globexURL)...)
		o.wantRefused(t, got, mark, "organization")
	})
	t.Run("control: the same response at globex's ACS signs bob in", func(t *testing.T) {
		mark := o.auditMark()
		got := c.post(resp.action, url.Values{"SAMLResponse": {resp.samlResponse}, "RelayState": {resp.relayState}})
		if got.StatusCode != http.StatusSeeOther || len(sessionCookies(got, o.cookieName)) == 0 {
			t.Fatalf("globex's response at globex's ACS: %d, session cookies %d; want 303 and a session (else the refusals above prove nothing)",
				got.StatusCode, len(sessionCookies(got, o.cookieName)))
		}
		if ok := o.auditSince(mark, "login_succeeded"); len(ok) != 1 || ok[0]["user"] != "bob" {
			t.Errorf("audit login_succeeded after the control: %v", ok)
		}
	})
}

func TestOrgsE2E_GlobexIdPCannotSignInAnAcmeAddress(t *testing.T) {
	o := orgsFixture(t)
	c := o.newClient(t)
	// mallory is a user of globex's IdP whose mail is @acme.test: what a
	// hostile (or careless) IdP administrator at globex can mint.
	resp := c.idpLogin(o.globexURL+"/saml/login?rd=%2F", o.globex, "mallory", "mallorypass")
	if !strings.Contains(mustDecodeB64(t, resp.samlResponse), "mallory@acme.test") {
		t.Fatalf("globex's IdP response does not assert mallory@acme.test; the IdP setup is wrong")
	}
	mark := o.auditMark()
	got := c.post(resp.action, url.Values{"SAMLResponse": {resp.samlResponse}, "RelayState": {resp.relayState}})
	o.wantRefused(t, got, mark, "domain_not_allowed")
	// Not signed in on acme's host either.
	if r := c.get(o.publicURL + "/acme-only/x"); r.StatusCode == http.StatusOK {
		t.Errorf("after the refused login, /acme-only/ answers 200")
	}
}

func TestOrgsE2E_AcmeSessionIsNoSessionOnGlobexHost(t *testing.T) {
	o := orgsFixture(t)
	c := o.newClient(t)
	session := c.signIn(o.publicURL+"/saml/login?organization=acme&rd=%2Fwhoami", o.acme, "alice", "alicepass")
	// Control: on acme's host the session is alice of acme.
	if v := c.upstream(o.publicURL+"/whoami", session); v.Header.Get("X-Forwarded-Org") != "acme" ||
		v.Header.Get("X-Forwarded-Email") != "alice@acme.test" {
		t.Fatalf("acme's session on acme's host: upstream saw org %q email %q", v.Header.Get("X-Forwarded-Org"), v.Header.Get("X-Forwarded-Email"))
	}

	t.Run("Go client", func(t *testing.T) {
		mark := o.auditMark()
		r := c.getWith(o.globexURL+"/whoami", session)
		loc := r.Header.Get("Location")
		if r.StatusCode != http.StatusSeeOther && r.StatusCode != http.StatusFound || !strings.HasPrefix(loc, o.globex.ssoURL) {
			t.Errorf("acme's session on globex's host: %d to %q, want a redirect to globex's IdP", r.StatusCode, loc)
		}
		if n := len(o.auditSince(mark, "session_rejected")); n != 1 {
			t.Errorf("audit session_rejected events: %d, want 1", n)
		}
	})
	t.Run("Chromium", func(t *testing.T) {
		tb := o.view(o.globex, o.globexURL).newTab(t)
		secure := true
		for _, ck := range session {
			if _, err := chromedp.Call(tb.ctx, network.SetCookie, network.SetCookieParams{
				Name: ck.Name, Value: ck.Value, URL: o.globexURL + "/", Path: "/", Secure: &secure}); err != nil {
				t.Fatal(err)
			}
		}
		tb.do("open a page on globex's host with acme's session", chromedp.Navigate(o.globexURL+"/whoami"))
		tb.do("wait for globex's IdP", chromedp.WaitVisible(chromedp.ID("username")))
		if loc := tb.location(); !strings.HasPrefix(loc.String(), o.globex.origin+"/") {
			tb.fatal("acme's session on globex's host led to %s, want globex's IdP", loc)
		}
		reqs, _ := tb.requestsSince(0)
		for _, r := range reqs {
			if strings.HasPrefix(r.URL, o.upstreamURL) {
				t.Errorf("the browser reached the app directly: %s", r.URL)
			}
		}
	})
}

func TestOrgsE2E_AllowOrganizationsRestrictsARoute(t *testing.T) {
	o := orgsFixture(t)
	acme := o.newClient(t).signIn(o.publicURL+"/saml/login?organization=acme&rd=%2F", o.acme, "carol", "carolpass")
	globex := o.newClient(t).signIn(o.globexURL+"/saml/login?rd=%2F", o.globex, "carol", "carolpass")
	c := o.newClient(t)

	if v := c.upstream(o.publicURL+"/acme-only/report", acme); v.Path != "/acme-only/report" || v.Header.Get("X-Forwarded-Org") != "acme" {
		t.Errorf("acme's carol on /acme-only/: upstream saw %s as %q", v.Path, v.Header.Get("X-Forwarded-Org"))
	}
	if v := c.upstream(o.globexURL+"/report", globex); v.Header.Get("X-Forwarded-Org") != "globex" ||
		v.Header.Get("X-Forwarded-Email") != "carol@globex.test" {
		t.Fatalf("globex's carol on globex's host: upstream saw %q %q", v.Header.Get("X-Forwarded-Org"), v.Header.Get("X-Forwarded-Email"))
	}
	mark := o.auditMark()
	if r := c.getWith(o.globexURL+"/acme-only/report", globex); r.StatusCode != http.StatusForbidden {
		t.Errorf("globex's carol on /acme-only/: %d, want 403", r.StatusCode)
	}
	denied := o.auditSince(mark, "access_denied")
	if len(denied) != 1 || denied[0]["reason"] != "organization" {
		t.Errorf("audit access_denied events %v, want one with reason organization", denied)
	}
}

func TestOrgsE2E_UnknownDomainGetsTheGenericAnswer(t *testing.T) {
	o := orgsFixture(t)
	tb := o.view(o.acme, o.publicURL).newTab(t)
	tb.do("open the identifier-first page", chromedp.Navigate(o.publicURL+"/saml/login?rd=%2F"))
	tb.do("wait for the form", chromedp.WaitVisible(chromedp.ID("email")))
	o.wantNoOrgNames(tb, "the identifier-first page")

	var answers []string
	for _, email := range []string{"dave@initech.test", "erin@umbrella.test"} {
		tb.do("open the identifier-first page", chromedp.Navigate(o.publicURL+"/saml/login?rd=%2F"))
		tb.do("enter "+email,
			chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`p[role="alert"]`)))
		answers = append(answers, runTab(tb, "read the answer", chromedp.Text(chromedp.CSS(`p[role="alert"]`))))
		o.wantNoOrgNames(tb, "the answer for "+email)
	}
	tb.do("open /saml/login with an unknown login_hint",
		chromedp.Navigate(o.publicURL+"/saml/login?login_hint=frank%40hooli.test&rd=%2F"),
		chromedp.WaitVisible(chromedp.CSS(`p[role="alert"]`)))
	answers = append(answers, runTab(tb, "read the answer", chromedp.Text(chromedp.CSS(`p[role="alert"]`))))
	o.wantNoOrgNames(tb, "the answer for an unknown login_hint")

	if !strings.Contains(answers[0], "No single sign-on is set up for this address") {
		t.Errorf("answer for an unknown domain %q, want the generic no-single-sign-on message", answers[0])
	}
	for _, a := range answers[1:] {
		if a != answers[0] {
			t.Errorf("unknown domains got different answers: %q and %q", answers[0], a)
		}
	}
	reqs, _ := tb.requestsSince(0)
	for _, r := range reqs {
		if strings.HasPrefix(r.URL, o.acme.origin) || strings.HasPrefix(r.URL, o.globex.origin) {
			t.Errorf("an unknown domain sent the browser to an IdP: %s", r.URL)
		}
	}
}

// waitAt waits until the page's URL starts with prefix: after a form post
// that redirects across origins, a query on the page could otherwise bind
// to the document being left.
func waitAt(tb *tab, prefix string) {
	tb.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		loc, err := chromedp.Run(tb.ctx, chromedp.Location())
		if err == nil && strings.HasPrefix(loc, prefix) {
			ready, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string]("document.readyState"))
			if err == nil && ready == "complete" {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.fatal("the browser did not reach %s (at %q, %v)", prefix, loc, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantNoOrgNames fails if the page names an organization (id, name or domain).
func (o *orgsE2E) wantNoOrgNames(tb *tab, what string) {
	tb.t.Helper()
	page := strings.ToLower(runTab(tb, "read the page", chromedp.OuterHTML(chromedp.CSS("html"))))
	for _, name := range []string{"acme", "globex"} {
		if strings.Contains(page, name) {
			tb.fatal("%s names organization %s", what, name)
		}
	}
}

// wantRefused checks a refused ACS post: 403, no session cookie, and one
// audit login_failed with reason since mark.
func (o *orgsE2E) wantRefused(t *testing.T, r *http.Response, mark int, reason string) {
	t.Helper()
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("ACS answered %d, want 403", r.StatusCode)
	}
	if s := sessionCookies(r, o.cookieName); len(s) > 0 {
		t.Errorf("ACS set a session cookie on a refused login")
	}
	failed := o.auditSince(mark, "login_failed")
	if len(failed) != 1 || failed[0]["reason"] != reason {
		t.Errorf("audit login_failed events %v, want one with reason %s", failed, reason)
	}
	if ok := o.auditSince(mark, "login_succeeded"); len(ok) > 0 {
		t.Errorf("audit login_succeeded on a refused login: %v", ok)
	}
}
