package main

// The Single Logout acceptance test's real peers beside TestE2E's proxy,
// on its SimpleSAMLphp and its Chromium: a second SP (another Portcullis
// with its own entity ID, keys, cookie and upstream) and two replicas on
// PostgreSQL. Their addresses are taken before the IdP starts, so that
// one IdP knows all three SPs.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// secondCookie is the second SP's session cookie name: cookies do not
// tell ports apart, so on 127.0.0.1 it must differ from the first SP's.
const secondCookie = "second"

// sloPeers are the listeners of the SPs registered at the IdP beside the
// first: the second SP and replica A (whose publicURL both replicas use).
type sloPeers struct {
	secondDir           string
	secondPub, secondAd net.Listener
	secondURL           string
	replicaPub          net.Listener
	replicaURL          string
}

// newSLOPeers opens the peers' listeners and writes the second SP's keys.
func newSLOPeers(t *testing.T) *sloPeers {
	t.Helper()
	p := &sloPeers{secondDir: t.TempDir()}
	if err := writeKeys(p.secondDir, io.Discard); err != nil {
		t.Fatal(err)
	}
	p.secondPub, p.secondAd, p.replicaPub = listenLoopback(t), listenLoopback(t), listenLoopback(t)
	t.Cleanup(func() { p.secondPub.Close(); p.secondAd.Close(); p.replicaPub.Close() })
	p.secondURL = "http://" + p.secondPub.Addr().String()
	p.replicaURL = "http://" + p.replicaPub.Addr().String()
	return p
}

// idpArgs registers the peers at the IdP (.ci/simplesamlphp.sh: each
// --sp-entity-id after the first is one more SP). The replicas' cert is
// written by newReplicaSet later, so they sign with the second SP's
// keys, copied in (an SP's keys are its own; two SPs sharing a pair is
// harmless here).
func (p *sloPeers) idpArgs() []string {
	var args []string
	for _, base := range []string{p.secondURL, p.replicaURL} {
		args = append(args, "--sp-entity-id", base+"/saml/metadata", "--sp-acs", base+"/saml/acs",
			"--sp-cert", filepath.Join(p.secondDir, "sp.crt"), "--sp-slo", base+"/saml/slo")
	}
	return args
}

// startSecond serves the second SP until the test ends: no store, so its
// sessions live in their cookies. It reads the IdP's metadata from a file
// in which the IdP's SingleLogoutService is HTTP-POST only (SimpleSAMLphp
// takes a LogoutRequest in either binding at the same URL), so that its
// sign-outs go by POST.
func (e *e2e) startSecond(t *testing.T) *lockedBuffer {
	t.Helper()
	p := e.slo
	up := newEchoUpstream(t)
	resp, err := http.Get(e.idp.metadataURL)
	if err != nil {
		t.Fatal(err)
	}
	md, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	slo := regexp.MustCompile(`(<md:SingleLogoutService Binding=")urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"`)
	if !slo.Match(md) {
		t.Fatalf("the IdP's metadata has no HTTP-Redirect SingleLogoutService to turn into HTTP-POST:\n%s", md)
	}
	md = slo.ReplaceAll(md, []byte(`${1}urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"`))
	if err := os.WriteFile(filepath.Join(p.secondDir, "idp.xml"), md, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(p.secondDir, "portcullis.yaml")
	cfg := fmt.Sprintf(`version: 1
listen: %q
adminListen: %q
publicURL: %q
upstream: %q
saml:
  idpMetadataFile: idp.xml
  certFile: sp.crt
  keyFile: sp.key
  attributes: {user: uid, email: mail, name: displayName, groups: groups}
session:
  keysFile: session.keys
  cookieName: %s
`, p.secondPub.Addr().String(), p.secondAd.Addr().String(), p.secondURL, up.URL, secondCookie)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- second SP logs:\n%s", logs.String())
		}
	})
	serveLogged(t, cfgPath, logs, p.secondPub, p.secondAd)
	return logs
}

// hasCookie reports whether the browser holds a cookie named name for
// 127.0.0.1 (any port).
func (tb *tab) hasCookie(name string) bool {
	tb.t.Helper()
	for _, c := range tb.cookies() {
		if c.Name == name {
			return true
		}
	}
	return false
}

// sawRequest returns the first request since mark whose URL starts with
// prefix, or "".
func (tb *tab) sawRequest(mark int, prefix string) string {
	reqs, _ := tb.requestsSince(mark)
	for _, r := range reqs {
		if strings.HasPrefix(r.URL, prefix) {
			return r.URL
		}
	}
	return ""
}

// testSecondSPLogout: signed in to both SPs with one IdP session, a
// sign-out at the first ends the IdP session, SimpleSAMLphp 1.19 carries
// its LogoutRequest through the browser to the second SP (its
// "traditional" front-channel logout, one SP after the other), which
// ends its session there, and the second SP's next sign-in asks for the
// password.
func (e *e2e) testSecondSPLogout(t *testing.T) {
	secondLogs := e.startSecond(t)
	second := e.slo.secondURL
	tb := e.newTab(t)
	tb.do("open the first SP", chromedp.Navigate(e.publicURL+"/reports"))
	tb.signIn("alice", "alicepass")

	// The IdP session signs the browser in to the second SP without a form.
	_, mark := tb.requestsSince(0)
	tb.startNavigation(second + "/app")
	tb.waitUpstream()
	if loc := tb.location(); loc.String() != second+"/app" {
		tb.fatal("the second SP's sign-in ended at %s, want %s/app", loc, second)
	}
	wantOneHeader(t, tb.upstream(), "X-Forwarded-User", "alice")
	if u := tb.sawRequest(mark, e.idp.origin+"/simplesaml/module.php/core/loginuserpass.php"); u != "" {
		t.Errorf("the IdP asked for the password again for the second SP: %s", u)
	}
	if !tb.hasCookie(secondCookie) || !tb.hasCookie(e.cookieName) {
		tb.fatal("want both SPs' session cookies after signing in to both")
	}

	_, mark = tb.requestsSince(0)
	tb.startNavigation(e.publicURL + "/saml/logout?rd=/healthz")
	tb.waitUpstream()
	if loc := tb.location(); loc.String() != e.publicURL+"/healthz" {
		tb.fatal("after the sign-out the browser is at %s, want %s/healthz", loc, e.publicURL)
	}
	if u := tb.sawRequest(mark, second+"/saml/slo?SAMLRequest="); u == "" {
		tb.fatal("SimpleSAMLphp did not send the second SP a LogoutRequest during the first SP's sign-out")
	}
	if u := tb.sawRequest(mark, e.publicURL+"/saml/slo?SAMLResponse="); u == "" {
		tb.fatal("the IdP's LogoutResponse never came back to the first SP")
	}
	if tb.hasCookie(secondCookie) {
		t.Error("the second SP's session cookie outlived the IdP's logout")
	}
	if tb.hasCookie(e.cookieName) {
		t.Error("the first SP's session cookie outlived its own sign-out")
	}
	// Without a store the second SP ends the session of the browser that
	// carries the request, and says the logout may be partial.
	partial := 0
	for _, en := range secondLogs.logEntries() {
		if en["logger"] == "audit" && en["event"] == "logout_partial" {
			partial++
		}
	}
	if partial != 1 {
		t.Errorf("the second SP audited %d logout_partial events, want 1 (the IdP's LogoutRequest)", partial)
	}

	// The IdP session is gone: the second SP's next sign-in asks for the
	// password.
	tb.startNavigation(second + "/app")
	tb.do("wait for the IdP form", chromedp.WaitVisible(chromedp.ID("username")))
	tb.signIn("alice", "alicepass")
	if loc := tb.location(); loc.String() != second+"/app" {
		t.Errorf("after signing in again the browser is at %s, want %s/app", loc, second)
	}

	// The second SP's own sign-out goes by HTTP-POST (its IdP metadata has
	// only that): its page posts the LogoutRequest, with JavaScript by its
	// script and without by its button; either way the IdP session ends.
	idpSLO := e.idp.origin + "/simplesaml/saml2/idp/SingleLogoutService.php"
	for _, script := range []bool{true, false} {
		if !script {
			tb.startNavigation(second + "/app")
			tb.signIn("alice", "alicepass")
			tb.scripts(false)
		}
		_, mark = tb.requestsSince(0)
		tb.startNavigation(second + "/saml/logout?rd=/app")
		if !script {
			tb.do("press the form's button", chromedp.WaitVisible(chromedp.ID("SAMLSubmitButton")),
				chromedp.Click(chromedp.ID("SAMLSubmitButton")))
		}
		tb.do("wait for the IdP form", chromedp.WaitVisible(chromedp.ID("username")))
		posted := false
		reqs, _ := tb.requestsSince(mark)
		for _, r := range reqs {
			posted = posted || r.Method == http.MethodPost && strings.HasPrefix(r.URL, idpSLO) && r.Form.Get("SAMLRequest") != ""
		}
		if !posted {
			tb.fatal("script %v: the second SP's sign-out did not POST a LogoutRequest to the IdP", script)
		}
		if tb.sawRequest(mark, second+"/saml/slo?SAMLResponse=") == "" {
			tb.fatal("script %v: the IdP's LogoutResponse never came back to the second SP", script)
		}
	}
	tb.scripts(true)
}

// scripts turns JavaScript on or off in the tab.
func (tb *tab) scripts(on bool) {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, emulation.SetScriptExecutionDisabled,
		emulation.SetScriptExecutionDisabledParams{Value: !on}); err != nil {
		tb.fatal("scripts %v: %v", on, err)
	}
}

// testReplicasLogout: two replicas on PostgreSQL behind one browser.
// Signed in through A, a sign-out at the IdP reaches A (the front channel
// goes to the publicURL, A); a copy of the old session cookie is then a
// sign-in on A and on B, which only learnt of the end from the store. The
// IdP's LogoutRequest, replayed or stripped of its signature, ends
// nothing.
func (e *e2e) testReplicasLogout(t *testing.T) {
	dsn := testPostgresSchema(t)
	rs := newReplicaSet(t, "")
	up := newEchoUpstream(t)
	rs.editConfig(func(c string) string {
		c = strings.Replace(c, `publicURL: "https://app.example.com"`, fmt.Sprintf("publicURL: %q", e.slo.replicaURL), 1)
		c = strings.Replace(c, "  idpMetadataFile: idp.xml\n", fmt.Sprintf(
			"  idpMetadataURL: %q\n  attributes: {user: uid, email: mail, name: displayName, groups: groups}\n", e.idp.metadataURL), 1)
		c = regexp.MustCompile(`(?m)^upstream: .*$`).ReplaceAllString(c, fmt.Sprintf("upstream: %q", up.URL))
		return c + "routes:\n  - path: /healthz\n    public: true\n"
	})
	// The replicas are registered at the IdP with the second SP's cert.
	for _, f := range []string{"sp.crt", "sp.key"} {
		if err := os.WriteFile(filepath.Join(rs.dir, f), mustRead(t, filepath.Join(e.slo.secondDir, f)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ua := rs.startOn("a", dsn, e.slo.replicaPub)
	ub := rs.start("b", dsn)
	a, b := ua.public, ub.public
	for _, adm := range []string{ua.admin, ub.admin} {
		waitFor(t, "the replicas to load the IdP metadata", readyTimeout, func() bool { c, _ := readyz(t, adm); return c == 200 })
	}
	rs.createUser(a, "bob@example.com")

	tb := e.newTab(t)
	tb.do("open replica A", chromedp.Navigate(a+"/app"))
	tb.signIn("bob", "bobpass")
	wantOneHeader(t, tb.upstream(), "X-Forwarded-User", "bob")
	cookie := tb.sessionCookie()
	if cookie == "" {
		tb.fatal("no session cookie after signing in through A")
	}
	waitFor(t, "B to accept the session", 5*time.Second, func() bool { return replicaStatus(t, b, cookie) == http.StatusOK })
	tb.startNavigation(b + "/app")
	tb.waitUpstream()
	wantOneHeader(t, tb.upstream(), "X-Forwarded-User", "bob")

	_, mark := tb.requestsSince(0)
	returnTo := a + "/healthz"
	tb.startNavigation(e.idp.origin + "/simplesaml/saml2/idp/SingleLogoutService.php?ReturnTo=" + url.QueryEscape(returnTo))
	tb.waitUpstream()
	if loc := tb.location(); loc.String() != returnTo {
		tb.fatal("after the IdP's logout the browser is at %s, want %s", loc, returnTo)
	}
	logoutRequest := tb.sawRequest(mark, a+"/saml/slo?SAMLRequest=")
	if logoutRequest == "" {
		tb.fatal("the IdP's logout did not send A a LogoutRequest")
	}
	ended := time.Now()
	waitFor(t, "B to refuse the ended session", time.Second, func() bool { return replicaStatus(t, b, cookie) != http.StatusOK })
	t.Logf("B refused the session %s after the IdP's logout finished on A", time.Since(ended))

	// A copy of the old cookie (another tab, a thief) is a sign-in on both.
	for _, base := range []string{a, b} {
		tb.setSessionCookie(cookie)
		tb.startNavigation(base + "/app")
		tb.do("wait for the IdP form from "+base, chromedp.WaitVisible(chromedp.ID("username")))
	}

	// Signed in again, the IdP's old LogoutRequest, replayed or unsigned,
	// is refused and ends nothing.
	tb.signIn("bob", "bobpass")
	again := tb.sessionCookie()
	unsigned, err := url.Parse(logoutRequest)
	if err != nil {
		t.Fatal(err)
	}
	q := unsigned.Query()
	q.Del("Signature")
	q.Del("SigAlg")
	unsigned.RawQuery = q.Encode()
	for what, u := range map[string]string{"replayed": logoutRequest, "unsigned": unsigned.String()} {
		tb.do("send the "+what+" LogoutRequest", chromedp.Navigate(u))
		if title := runTab(tb, "read title", chromedp.Title()); title != "Sign-out refused" {
			tb.fatal("%s LogoutRequest: page %q, want Sign-out refused", what, title)
		}
		if c := tb.sessionCookie(); c != again {
			t.Errorf("%s LogoutRequest changed the session cookie", what)
		}
		for _, base := range []string{a, b} {
			if c := replicaStatus(t, base, again); c != http.StatusOK {
				t.Errorf("%s LogoutRequest: %s answers the new session %d, want 200", what, base, c)
			}
		}
	}
}

// setSessionCookie puts value back in the browser as the session cookie.
func (tb *tab) setSessionCookie(value string) {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, network.SetCookie, network.SetCookieParams{Name: tb.e.cookieName, Value: value,
		URL: tb.e.publicURL, SameSite: network.CookieSameSiteLax}); err != nil {
		tb.fatal("set the session cookie: %v", err)
	}
}

// replicaStatus is the status of GET base/app with the http session
// cookie, not following redirects (a sign-in is a redirect).
func replicaStatus(t *testing.T, base, cookie string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/app", nil)
	req.AddCookie(&http.Cookie{Name: "portcullis", Value: cookie})
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
