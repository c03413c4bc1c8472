package main

// The end-to-end tests' browser: headless Chromium through chromedp, one
// tab per test, with what it saw kept for the failure report.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

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
