package main

// Helpers for the real-peer end-to-end test (e2e_test.go): SimpleSAMLphp on a
// private Apache as the IdP, Chromium driven by chromedp as the browser, and
// the real wiring (build + serveOn) in between.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const (
	chromiumPath = "/usr/bin/chromium"
	// tabTimeout bounds everything one subtest does in its browser tab.
	// Generous on purpose: CI machines are slow, more so under -race.
	tabTimeout = 90 * time.Second
	// readyTimeout bounds the wait for /readyz (IdP metadata loaded).
	readyTimeout = 20 * time.Second
)

// requirePeer skips the test when a real peer is missing, or fails it when
// PORTCULLIS_REQUIRE_PEERS is set (CI), so a broken CI image cannot pass by
// skipping.
func requirePeer(t testing.TB, name string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("PORTCULLIS_REQUIRE_PEERS") != "" {
		t.Fatalf("e2e: peer %s is missing and PORTCULLIS_REQUIRE_PEERS is set (bash .ci/run installs it)", name)
	}
	t.Skipf("needs %s (bash .ci/run installs and starts it); set PORTCULLIS_REQUIRE_PEERS=1 to require", name)
}

// requireE2EPeers checks for everything the SimpleSAMLphp + Chromium test needs.
func requireE2EPeers(t *testing.T) {
	t.Helper()
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "simplesamlphp").Output()
	requirePeer(t, "simplesamlphp (Debian package)", string(out) == "install ok installed")
	_, err := exec.LookPath("apache2ctl")
	if err != nil {
		_, err = os.Stat("/usr/sbin/apache2ctl") // not on a normal user's PATH
	}
	requirePeer(t, "apache2ctl", err == nil)
	fi, err := os.Stat(chromiumPath)
	requirePeer(t, chromiumPath, err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0)
}

// lockedBuffer collects the proxy's log lines; zap writes from many goroutines
// while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logEntries decodes the JSON log lines; a line that is not JSON is skipped.
func (b *lockedBuffer) logEntries() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// countAudit counts audit log entries with this event for this user.
func (b *lockedBuffer) countAudit(event, user string) int {
	n := 0
	for _, e := range b.logEntries() {
		if e["logger"] == "audit" && e["event"] == event && e["user"] == user {
			n++
		}
	}
	return n
}

// listenLoopback opens a TCP listener on a free loopback port.
func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// freePort returns a loopback port that was free a moment ago, for a peer
// (Apache) that must open the port itself.
func freePort(t testing.TB) int {
	t.Helper()
	ln := listenLoopback(t)
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// upstreamView is what the echo upstream received, as it shows it in the page.
type upstreamView struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Header http.Header `json:"header"`
}

var upstreamPage = template.Must(template.New("up").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>upstream</title></head>
<body><h1>upstream</h1><pre id="headers">{{.}}</pre></body></html>
`))

// newEchoUpstream is the app behind the proxy: an HTML page that shows the
// request it received, headers included, as JSON in <pre id="headers">.
func newEchoUpstream(t testing.TB) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			http.NotFound(w, r)
			return
		}
		v, err := json.MarshalIndent(upstreamView{r.Method, r.URL.Path, r.URL.RawQuery, r.Header}, "", "  ")
		if err != nil {
			http.Error(w, "marshal", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = upstreamPage.Execute(w, string(v))
	}))
	t.Cleanup(s.Close)
	return s
}

// headerValues returns every value of every header whose name normalises
// (lowercase, '_' read as '-') to name, and how many distinct names matched.
func headerValues(h http.Header, name string) (values []string, names []string) {
	want := normaliseHeaderName(name)
	for k, vs := range h {
		if normaliseHeaderName(k) == want {
			names = append(names, k)
			values = append(values, vs...)
		}
	}
	return values, names
}

func normaliseHeaderName(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// cookieNames returns the cookie names in a Cookie header value.
func cookieNames(header []string) []string {
	var names []string
	for _, line := range header {
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name != "" {
				names = append(names, name)
			}
		}
	}
	return names
}

// ---------------------------------------------------------------- IdP

// simpleSAMLphp is one running test IdP (a private Apache instance).
type simpleSAMLphp struct {
	dir         string
	metadataURL string
	origin      string // http://127.0.0.1:PORT
	ssoURL      string
}

// startSimpleSAMLphp starts the IdP on port with our SP registered, via
// .ci/simplesamlphp.sh (extraArgs go to its start command), and stops it
// (and removes its workdir) in Cleanup.
func startSimpleSAMLphp(t testing.TB, port int, spEntityID, spACS, spCert string, extraArgs ...string) *simpleSAMLphp {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", ".ci", "simplesamlphp.sh"))
	if err != nil {
		t.Fatal(err)
	}
	// Apache's children run as www-data when we are root: the workdir and
	// every parent must be searchable by it, which t.TempDir (0700) is not.
	dir, err := os.MkdirTemp("", "portcullis-e2e-idp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	idp := &simpleSAMLphp{dir: dir}

	run := func(timeout time.Duration, args ...string) (stdout string, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("simplesamlphp.sh %s: %w\nstderr:\n%s", args[0], err, errb.String())
		}
		return out.String(), nil
	}
	// Registered before start, so a half-started Apache is stopped too.
	t.Cleanup(func() {
		if _, err := run(2*time.Minute, "stop", "--workdir", dir); err != nil {
			t.Errorf("stop IdP: %v", err)
		}
	})
	out, err := run(5*time.Minute, append([]string{"start",
		"--port", strconv.Itoa(port), "--workdir", dir,
		"--sp-entity-id", spEntityID, "--sp-acs", spACS, "--sp-cert", spCert,
		// Single Logout at /saml/slo beside the ACS (both bindings work;
		// SimpleSAMLphp 1.19 registers one).
		"--sp-slo", strings.Replace(spACS, "/saml/acs", "/saml/slo", 1)}, extraArgs...)...)
	if err != nil {
		idp.logTail(t, 100)
		t.Fatal(err)
	}
	lines := strings.Fields(strings.TrimSpace(out))
	if len(lines) == 0 {
		t.Fatalf("simplesamlphp.sh start printed no metadata URL")
	}
	idp.metadataURL = lines[len(lines)-1]
	u, err := url.Parse(idp.metadataURL)
	if err != nil || u.Scheme != "http" || u.Host != net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) {
		t.Fatalf("simplesamlphp.sh start: unexpected metadata URL %q", idp.metadataURL)
	}
	idp.origin = u.Scheme + "://" + u.Host
	idp.ssoURL = idp.origin + "/simplesaml/saml2/idp/SSOService.php"
	return idp
}

// logTail writes the last n lines of the IdP's log files to the test log.
func (idp *simpleSAMLphp) logTail(t testing.TB, n int) {
	t.Helper()
	for _, f := range []string{"log/simplesamlphp.log", "apache2/log/error.log", "apache2/log/php_error.log"} {
		data, err := os.ReadFile(filepath.Join(idp.dir, f))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		t.Logf("--- IdP %s (last %d lines):\n%s", f, len(lines), strings.Join(lines, "\n"))
	}
}

// ---------------------------------------------------------------- proxy

// waitReady polls the admin /readyz until it answers 200 (IdP metadata
// loaded), the server goroutine ends (done closes), or the timeout passes.
func waitReady(adminURL string, done <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		resp, err := client.Get(adminURL + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz not ready after %s; last answer: %s", timeout, last)
		}
		select {
		case <-done:
			return errors.New("serveOn returned before the proxy was ready")
		case <-tick.C:
		}
	}
}

// serveLogged builds the app from the config at cfgPath, logging JSON at
// debug level into logs, and serves it as `serve` does on pub and adm
// until the test ends. It returns once /readyz answers 200.
func serveLogged(t testing.TB, cfgPath string, logs *lockedBuffer, pub, adm net.Listener) *app {
	t.Helper()
	log, err := newLogger("json", "debug", logs)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(context.Background(), cfgPath, log)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var serveErr error
	go func() {
		defer close(done)
		serveErr = serveOn(ctx, a, pub, adm, log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if serveErr != nil {
				t.Errorf("serveOn: %v", serveErr)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("serveOn did not return within 60s of cancel")
		}
	})
	if err := waitReady("http://"+adm.Addr().String(), done, readyTimeout); err != nil {
		t.Fatalf("%v\nproxy logs:\n%s", err, logs.String())
	}
	return a
}

// ---------------------------------------------------------------- browser

// startBrowser starts one headless Chromium for the whole test; each subtest
// opens its own browser context (separate cookie jar) in it.
func startBrowser(t *testing.T) (context.Context, *lockedBuffer) {
	t.Helper()
	return startBrowserWith(t, "")
}

// startBrowserWith is startBrowser with host-resolver rules put before the
// ones that keep every name off the network ("MAP *.pc.test 127.0.0.1"),
// and extra allocator options.
func startBrowserWith(t testing.TB, rules string, extra ...chromedp.ExecAllocatorOption) (context.Context, *lockedBuffer) {
	t.Helper()
	if rules != "" {
		rules += " , "
	}
	output := &lockedBuffer{}
	profile := t.TempDir() // removed after the browser is gone (Cleanup is LIFO)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
		// Nothing here may leave the machine: no name resolves, and every
		// peer is addressed as 127.0.0.1.
		chromedp.Flag("host-resolver-rules", rules+"MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.CombinedOutput(output),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	// The first Run starts the browser; it must not carry a timeout, so the
	// start is bounded by a watchdog instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(browserCtx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v\noutput:\n%s", err, output.String())
		}
	case <-time.After(60 * time.Second):
		cancelBrowser()
		t.Fatalf("start chromium: no answer after 60s\noutput:\n%s", output.String())
	}
	return browserCtx, output
}

// seenRequest is one request the browser sent.
type seenRequest struct {
	Method string
	URL    string
	// Form is the url-decoded body of a form POST (the ACS post).
	Form url.Values
}

// tab is one browser context (its own cookie jar) with one page.
type tab struct {
	t    *testing.T
	e    *e2e
	base context.Context // the tab, without a deadline (for dumps)
	ctx  context.Context // the tab with the subtest's deadline

	mu       sync.Mutex
	requests []seenRequest
}

func (e *e2e) newTab(t *testing.T) *tab {
	t.Helper()
	base, cancel := chromedp.NewContext(e.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, e: e, base: base}
	if err := chromedp.Do(base); err != nil { // opens the tab
		t.Fatalf("open tab: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(base, tabTimeout)
	t.Cleanup(cancelTimeout)
	tb.ctx = ctx
	if err := chromedp.Listen(base, tb.onEvent); err != nil {
		t.Fatal(err)
	}
	// Ask for the bodies of form posts in the request events, so the test
	// knows the SAMLResponse values it must never find in the logs.
	maxPost := int64(1 << 20)
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{MaxPostDataSize: &maxPost}); err != nil {
		t.Fatalf("network.enable: %v", err)
	}
	return tb
}

// onEvent runs on chromedp's read loop: record and return.
func (tb *tab) onEvent(ev any) {
	e, ok := ev.(*network.EventRequestWillBeSent)
	if !ok || e.Request == nil || strings.HasPrefix(e.Request.URL, "data:") {
		return
	}
	r := seenRequest{Method: e.Request.Method, URL: e.Request.URL}
	if e.Request.Method == http.MethodPost {
		var body []byte
		for _, p := range e.Request.PostDataEntries {
			body = append(body, p.Bytes...)
		}
		if form, err := url.ParseQuery(string(body)); err == nil {
			r.Form = form
		}
		if v := r.Form.Get("SAMLResponse"); v != "" {
			tb.e.secret("a SAMLResponse", v)
		}
	}
	tb.mu.Lock()
	tb.requests = append(tb.requests, r)
	tb.mu.Unlock()
}

// requestsSince returns the requests recorded from index i on, and the
// current count.
func (tb *tab) requestsSince(i int) ([]seenRequest, int) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]seenRequest(nil), tb.requests[i:]...), len(tb.requests)
}

// fatal dumps what the page shows, then fails the subtest.
func (tb *tab) fatal(format string, args ...any) {
	tb.t.Helper()
	tb.dump()
	tb.t.Fatalf(format, args...)
}

// dump writes the page's URL and outerHTML to the test log.
func (tb *tab) dump() {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.base, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		loc = "(location: " + err.Error() + ")"
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		html = "(outerHTML: " + err.Error() + ")"
	}
	tb.t.Logf("--- page at failure: %s\n%s", loc, html)
	reqs, _ := tb.requestsSince(0)
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "  %s %s\n", r.Method, r.URL)
	}
	tb.t.Logf("--- requests the browser sent:\n%s", b.String())
}

// do runs actions and fails the subtest with a page dump on error.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.fatal("%s: %v", what, err)
	}
}

func runTab[T any](tb *tab, what string, a chromedp.Action[T]) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, a)
	if err != nil {
		tb.fatal("%s: %v", what, err)
	}
	return v
}

func (tb *tab) location() *url.URL {
	tb.t.Helper()
	loc := runTab(tb, "read location", chromedp.Location())
	u, err := url.Parse(loc)
	if err != nil {
		tb.fatal("parse location %q: %v", loc, err)
	}
	return u
}

// startNavigation sends the page to u without waiting for a load event: for
// redirect chains that end in a page posting itself onwards with JavaScript
// (the IdP's response form), where "loaded" is a moving target. The page
// goes to about:blank first, so a later wait cannot match the old page.
func (tb *tab) startNavigation(u string) {
	tb.t.Helper()
	tb.do("blank the page", chromedp.Navigate("about:blank"))
	res, err := chromedp.Call(tb.ctx, page.Navigate, page.NavigateParams{URL: u})
	if err == nil && res.ErrorText != "" {
		err = errors.New(res.ErrorText)
	}
	if err != nil {
		tb.fatal("navigate to %s: %v", u, err)
	}
}

func (tb *tab) setExtraHeaders(h map[string]string) {
	tb.t.Helper()
	hs := network.Headers{}
	for k, v := range h {
		hs[k] = v
	}
	if _, err := chromedp.Call(tb.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: hs}); err != nil {
		tb.fatal("set extra headers: %v", err)
	}
}

// cookies returns the browser's cookies for the proxy's origin, and records
// every long cookie value as a secret the logs must never contain.
func (tb *tab) cookies() []*network.Cookie {
	tb.t.Helper()
	res, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{tb.e.publicURL}})
	if err != nil {
		tb.fatal("get cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if len(c.Value) >= 16 {
			tb.e.secret("the value of cookie "+c.Name, c.Value)
		}
	}
	return res.Cookies
}

// sessionCookie returns the value of the session cookie, or "".
func (tb *tab) sessionCookie() string {
	tb.t.Helper()
	for _, c := range tb.cookies() {
		if c.Name == tb.e.cookieName {
			return c.Value
		}
	}
	return ""
}

// upstream reads what the echo upstream received from the page it shows.
func (tb *tab) upstream() upstreamView {
	tb.t.Helper()
	text := runTab(tb, "read upstream page", chromedp.Text(chromedp.ID("headers")))
	var v upstreamView
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		tb.fatal("decode upstream page: %v", err)
	}
	return v
}

// signIn waits for the IdP's login form, signs in and waits for the upstream
// page (SimpleSAMLphp posts the response to our ACS with JavaScript).
func (tb *tab) signIn(user, password string) {
	tb.t.Helper()
	tb.do("wait for the IdP login form", chromedp.WaitVisible(chromedp.ID("username")))
	if loc := tb.location(); !strings.HasPrefix(loc.String(), tb.e.idp.origin+"/") {
		tb.fatal("login form is not served by the IdP: %s", loc)
	}
	tb.cookies() // the sign-in tracking cookie is set now: remember its value
	tb.do("fill in the login form",
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit_button")),
	)
	tb.waitUpstream()
}

// waitUpstream waits for the echo upstream's page and records the cookies
// the browser holds then.
func (tb *tab) waitUpstream() {
	tb.t.Helper()
	tb.do("wait for the upstream page", chromedp.WaitVisible(chromedp.ID("headers")))
	tb.cookies()
}

// bodyText returns the text of the page body.
func (tb *tab) bodyText() string {
	tb.t.Helper()
	return runTab(tb, "read body text", chromedp.Text(chromedp.CSS("body")))
}

// ---------------------------------------------------------------- secrets

// secret records a value that must never appear in the proxy's logs.
func (e *e2e) secret(what, value string) {
	e.secretsMu.Lock()
	defer e.secretsMu.Unlock()
	if _, ok := e.secrets[value]; !ok {
		e.secrets[value] = what
	}
}

func (e *e2e) isSessionChunk(name string) bool {
	rest, ok := strings.CutPrefix(name, e.cookieName+"_")
	return ok && len(rest) == 1 && rest[0] >= '1' && rest[0] <= '9'
}

// isOurCookie reports whether a cookie name belongs to Portcullis (session,
// session chunk or sign-in tracking cookie).
func (e *e2e) isOurCookie(name string) bool {
	return name == e.cookieName || e.isSessionChunk(name) || strings.HasPrefix(name, e.trackingPrefix)
}

// checkLogsClean fails if the proxy's logs contain a SAMLResponse or a
// cookie value the browser held.
func (e *e2e) checkLogsClean(t *testing.T) {
	t.Helper()
	logs := e.logs.String()
	if strings.Contains(logs, "SAMLResponse=") {
		t.Errorf("proxy logs contain %q", "SAMLResponse=")
	}
	e.secretsMu.Lock()
	defer e.secretsMu.Unlock()
	sawResponse := false
	for v, what := range e.secrets {
		if what == "a SAMLResponse" {
			sawResponse = true
		}
		// A prefix catches a truncated copy too; a URL-escaped copy differs
		// only after the first + / =, so check that form as well.
		probe := v
		if len(probe) > 40 {
			probe = probe[:40]
		}
		if strings.Contains(logs, probe) || strings.Contains(logs, url.QueryEscape(probe)) {
			t.Errorf("proxy logs contain %s", what)
		}
	}
	if !sawResponse {
		t.Errorf("no SAMLResponse was captured from the browser, so the log check for it proves nothing")
	}
}
