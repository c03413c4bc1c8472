package main

// The organizations e2e test's Go client: a browser made of net/http.

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// orgsClient is a browser made of net/http: a cookie jar, and every host
// (globex.localhost too) dialled on loopback.
type orgsClient struct {
	t   *testing.T
	o   *orgsE2E
	jar *cookiejar.Jar
	// addr is the client address the TLS front forwards (X-Forwarded-For):
	// each client has its own allowance of organization lookups, so the
	// Go clients do not eat into the browser's.
	addr   string
	follow *http.Client // follows redirects
	once   *http.Client // does not
}

var clientSeq atomic.Int32

func (o *orgsE2E) newClient(t *testing.T) *orgsClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{Proxy: nil,
		// The TLS front's httptest certificate names neither 127.0.0.1's
		// nor globex's host as they are dialled here; everything is loopback.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		}}
	t.Cleanup(tr.CloseIdleConnections)
	c := &orgsClient{t: t, o: o, jar: jar, addr: fmt.Sprintf("192.0.2.%d", clientSeq.Add(1)%250+1),
		follow: &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second},
		once: &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	return c
}

// idpResponse is the form an IdP's post page submits to an ACS.
type idpResponse struct {
	action, samlResponse, relayState string
}

var (
	formActionRE  = regexp.MustCompile(`(?s)<form[^>]*\baction="([^"]*)"`)
	hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`)
)

// idpLogin starts a login at start, signs in at idp's username/password
// form and returns the response form the IdP's page would auto-submit.
func (c *orgsClient) idpLogin(start string, idp *simpleSAMLphp, user, pass string) idpResponse {
	c.t.Helper()
	r, body := c.do(c.follow, http.MethodGet, start, nil)
	if !strings.HasPrefix(r.Request.URL.String(), idp.origin+"/") {
		c.t.Fatalf("login at %s ended at %s, want %s's login form", start, r.Request.URL, idp.origin)
	}
	form := url.Values{"username": {user}, "password": {pass}}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if form.Get("AuthState") == "" {
		c.t.Fatalf("no AuthState in the IdP's login form at %s:\n%s", r.Request.URL, body)
	}
	formURL := *r.Request.URL
	formURL.RawQuery = ""
	_, body = c.do(c.follow, http.MethodPost, formURL.String(), form)
	var out idpResponse
	if m := formActionRE.FindStringSubmatch(body); m != nil {
		out.action = html.UnescapeString(m[1])
	}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(body, -1) {
		switch html.UnescapeString(m[1]) {
		case "SAMLResponse":
			out.samlResponse = html.UnescapeString(m[2])
		case "RelayState":
			out.relayState = html.UnescapeString(m[2])
		}
	}
	if out.samlResponse == "" || out.action == "" {
		c.t.Fatalf("no response form after signing in as %s:\n%s", user, body)
	}
	return out
}

// signIn signs in through idp from start, posts the response to the ACS
// and returns the session cookies it set.
func (c *orgsClient) signIn(start string, idp *simpleSAMLphp, user, pass string) []*http.Cookie {
	c.t.Helper()
	resp := c.idpLogin(start, idp, user, pass)
	r := c.post(resp.action, url.Values{"SAMLResponse": {resp.samlResponse}, "RelayState": {resp.relayState}})
	session := sessionCookies(r, c.o.cookieName)
	if r.StatusCode != http.StatusSeeOther || len(session) == 0 {
		c.t.Fatalf("%s's sign-in from %s: %d with %d session cookies, want 303 and a session", user, start, r.StatusCode, len(session))
	}
	return session
}

func (c *orgsClient) do(hc *http.Client, method, u string, form url.Values, extra ...*http.Cookie) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	req.Header.Set("X-Forwarded-For", c.addr)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, ck := range extra {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp, string(b)
}

// get and post do not follow redirects; post may add cookies beyond the jar's.
func (c *orgsClient) get(u string) *http.Response {
	c.t.Helper()
	r, _ := c.do(c.once, http.MethodGet, u, nil)
	return r
}

func (c *orgsClient) post(u string, form url.Values, extra ...*http.Cookie) *http.Response {
	c.t.Helper()
	r, _ := c.do(c.once, http.MethodPost, u, form, extra...)
	return r
}

// getWith sends only the given cookies (a fresh jar-less request).
func (c *orgsClient) getWith(u string, cookies []*http.Cookie) *http.Response {
	c.t.Helper()
	bare := &http.Client{Transport: c.once.Transport, Timeout: c.once.Timeout, CheckRedirect: c.once.CheckRedirect}
	r, _ := c.do(bare, http.MethodGet, u, nil, cookies...)
	return r
}

// upstream reads what the echo app saw for a request with only cookies.
func (c *orgsClient) upstream(u string, cookies []*http.Cookie) upstreamView {
	c.t.Helper()
	bare := &http.Client{Transport: c.once.Transport, Timeout: c.once.Timeout, CheckRedirect: c.once.CheckRedirect}
	r, body := c.do(bare, http.MethodGet, u, nil, cookies...)
	if r.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %d, want the app's page", u, r.StatusCode)
	}
	return decodeUpstreamPage(c.t, body)
}

func (c *orgsClient) cookiesOf(origin string) []*http.Cookie {
	u, err := url.Parse(origin + "/")
	if err != nil {
		c.t.Fatal(err)
	}
	return c.jar.Cookies(u)
}

// sessionCookies are the session cookies (or chunks) a response sets.
func sessionCookies(r *http.Response, name string) []*http.Cookie {
	var out []*http.Cookie
	for _, ck := range r.Cookies() {
		if (ck.Name == name || strings.HasPrefix(ck.Name, name+"_")) && ck.Value != "" && ck.MaxAge >= 0 {
			out = append(out, ck)
		}
	}
	return out
}

var upstreamPreRE = regexp.MustCompile(`(?s)<pre id="headers">(.*)</pre>`)

// decodeUpstreamPage reads the echo app's page as a Go client gets it.
func decodeUpstreamPage(t testing.TB, body string) upstreamView {
	t.Helper()
	m := upstreamPreRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("not the echo app's page:\n%s", body)
	}
	var v upstreamView
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &v); err != nil {
		t.Fatalf("decode the echo app's page: %v", err)
	}
	return v
}

func mustDecodeB64(t testing.TB, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("SAMLResponse is not base64: %v", err)
	}
	return string(b)
}

// ---------------------------------------------------------------- shared setup
