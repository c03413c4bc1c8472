package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
)

// fakeAuth stands in for samlsp: StartLogin redirects to a fixed IdP URL.
type fakeAuth struct{ ready error }

func (fakeAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusTeapot) // proves /saml/ is delegated
}

func (fakeAuth) StartLogin(w http.ResponseWriter, r *http.Request, returnTo string) {
	http.Redirect(w, r, "https://idp.example.com/sso?rd="+url.QueryEscape(returnTo), http.StatusFound)
}

func (a fakeAuth) Ready() error { return a.ready }

// echoUpstream answers with the request it received as JSON.
type echoed struct {
	Method string
	Path   string
	Query  string
	Header http.Header
}

func newEcho(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{r.Method, r.URL.Path, r.URL.RawQuery, r.Header})
	}))
	t.Cleanup(s.Close)
	return s
}

type harness struct {
	t     *testing.T
	proxy *Proxy
	front *httptest.Server
	codec *session.Codec
	logs  *observer.ObservedLogs
	cfg   *config.Config
}

func newHarness(t *testing.T, upstream string, mutate func(*config.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, upstream, mutate, nil)
}

func newHarnessWith(t *testing.T, upstream string, mutate func(*config.Config), opts func(*Options)) *harness {
	t.Helper()
	up, _ := url.Parse(upstream)
	pub, _ := url.Parse("https://app.example.com")
	cfg := &config.Config{
		Public:      pub,
		UpstreamURL: up,
		Headers:     testHeaders,
		Routes: []config.Route{
			{Path: "/healthz", Public: true},
			{Path: "/admin/", AllowGroups: []string{"admins"}},
		},
		PreserveHost: true,
		Server:       config.Server{UpstreamTimeout: 2 * time.Second},
		Session:      config.Session{CookieName: "portcullis"},
	}
	if mutate != nil {
		mutate(cfg)
	}
	keys, err := session.ParseKeys(session.GenerateKeys())
	if err != nil {
		t.Fatal(err)
	}
	codec, err := session.NewCodec("portcullis", keys, false, 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	o := Options{
		Config:            cfg,
		Auth:              fakeAuth{},
		Sessions:          codec,
		OwnCookiePrefixes: []string{"portcullis_t_"},
		Logger:            log.Named("proxy"),
		Access:            log.Named("access"),
		Audit:             log.Named("audit"),
	}
	if opts != nil {
		opts(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	return &harness{t: t, proxy: p, front: front, codec: codec, logs: logs, cfg: cfg}
}

func (h *harness) sessionCookies(p identity.Principal, expires time.Time) []*http.Cookie {
	h.t.Helper()
	rec := httptest.NewRecorder()
	s := &session.Session{ID: session.NewID(), Principal: p, IssuedAt: time.Now(), Expires: expires}
	if err := h.codec.Write(rec, nil, s); err != nil {
		h.t.Fatal(err)
	}
	return rec.Result().Cookies()
}

func (h *harness) do(method, path string, header http.Header, cookies []*http.Cookie) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.front.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decodeEcho(t *testing.T, resp *http.Response) echoed {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d, body %s", resp.StatusCode, b)
	}
	var e echoed
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

var alice = identity.Principal{User: "alice", Email: "alice@example.com", Name: "Alice", Groups: []string{"staff", "admins"}}
var bob = identity.Principal{User: "bob", Email: "bob@example.com", Name: "Bob", Groups: []string{"staff"}}

var browser = http.Header{"Accept": {"text/html,application/xhtml+xml"}}

func TestProxy_UnauthenticatedBrowserIsSentToIdP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	resp := h.do("GET", "/reports?year=2026", browser, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want redirect to IdP", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host != "idp.example.com" || loc.Query().Get("rd") != "/reports?year=2026" {
		t.Errorf("Location %s: want the IdP with the original path and query", loc)
	}
}

func TestProxy_UnauthenticatedNonBrowserGets401(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	tests := []struct {
		name   string
		method string
		header http.Header
	}{
		{"json api", "GET", http.Header{"Accept": {"application/json"}}},
		{"no accept", "GET", nil},
		{"xhr", "GET", http.Header{"Accept": {"text/html"}, "X-Requested-With": {"XMLHttpRequest"}}},
		{"fetch from script", "GET", http.Header{"Accept": {"text/html"}, "Sec-Fetch-Mode": {"cors"}}},
		{"post", "POST", browser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.do(tt.method, "/api/items", tt.header, nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", resp.StatusCode)
			}
			if resp.Header.Get("Location") != "" {
				t.Error("401 must not redirect")
			}
		})
	}
}

func TestProxy_InjectsIdentityAndStripsSpoofs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	hdr := browser.Clone()
	hdr["X-Forwarded-User"] = []string{"root"}
	hdr["X_Forwarded_User"] = []string{"root"}
	hdr["X-Forwarded-Groups"] = []string{"admins"}
	cookies := append(h.sessionCookies(bob, time.Now().Add(time.Hour)),
		&http.Cookie{Name: "app", Value: "keep-me"}, &http.Cookie{Name: "portcullis_t_x", Value: "track"})
	e := decodeEcho(t, h.do("GET", "/page?q=1", hdr, cookies))
	if got := e.Header.Values("X-Forwarded-User"); len(got) != 1 || got[0] != "bob" {
		t.Errorf("X-Forwarded-User = %q, want [bob]", got)
	}
	if got := e.Header.Get("X-Forwarded-Groups"); got != "staff" {
		t.Errorf("X-Forwarded-Groups = %q", got)
	}
	for k := range e.Header {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "x-forwarded-user") && k != "X-Forwarded-User" {
			t.Errorf("spoofed %s reached the upstream", k)
		}
	}
	if c := e.Header.Get("Cookie"); c != "app=keep-me" {
		t.Errorf("upstream Cookie = %q, want only the app cookie", c)
	}
	if e.Path != "/page" || e.Query != "q=1" {
		t.Errorf("path/query = %s?%s", e.Path, e.Query)
	}
}

func TestProxy_PublicRouteStripsSpoofsWithoutLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	e := decodeEcho(t, h.do("GET", "/healthz", http.Header{"X-Forwarded-User": {"root"}, "X_forwarded_email": {"x"}}, nil))
	for k := range e.Header {
		if strings.Contains(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-forwarded-user") ||
			strings.Contains(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-forwarded-email") {
			t.Errorf("spoofed %s reached the upstream on a public route", k)
		}
	}
}

func TestProxy_GroupRestriction(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	if resp := h.do("GET", "/admin/panel", browser, h.sessionCookies(bob, time.Now().Add(time.Hour))); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob on /admin/: status %d, want 403", resp.StatusCode)
	}
	decodeEcho(t, h.do("GET", "/admin/panel", browser, h.sessionCookies(alice, time.Now().Add(time.Hour))))
	if n := h.logs.FilterField(zap.String("event", "access_denied")).Len(); n != 1 {
		t.Errorf("access_denied audit events: %d, want 1", n)
	}
}

func TestProxy_ExpiredOrTamperedCookieIsNoSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	expired := h.sessionCookies(alice, time.Now().Add(-time.Second))
	if resp := h.do("GET", "/x", http.Header{"Accept": {"application/json"}}, expired); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired: status %d", resp.StatusCode)
	}
	good := h.sessionCookies(alice, time.Now().Add(time.Hour))
	v := []byte(good[0].Value)
	v[10] ^= 1
	tampered := []*http.Cookie{{Name: good[0].Name, Value: string(v)}}
	if resp := h.do("GET", "/x", http.Header{"Accept": {"application/json"}}, tampered); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("tampered: status %d", resp.StatusCode)
	}
}

func TestProxy_SAMLRoutesDelegated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	if resp := h.do("GET", "/saml/metadata", nil, nil); resp.StatusCode != http.StatusTeapot {
		t.Errorf("status %d, want the authenticator's", resp.StatusCode)
	}
}

func TestProxy_AmbiguousPathRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	resp := h.do("GET", "/healthz/..%2Fadmin/panel", nil, nil)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("status 200 for an encoded-slash traversal")
	}
}

func TestProxy_UpstreamDownIs502Page(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	h := newHarness(t, "http://"+addr, nil)
	resp := h.do("GET", "/healthz", nil, nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	id := resp.Header.Get("X-Request-Id")
	if id == "" || !bytes.Contains(body, []byte(id)) {
		t.Errorf("502 page does not show the request ID %q", id)
	}
	if bytes.Contains(body, []byte("connection refused")) || bytes.Contains(body, []byte(addr)) {
		t.Errorf("502 page leaks internals: %s", body)
	}
}

func TestProxy_UpstreamTimeoutIs504Page(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	h := newHarness(t, slow.URL, func(c *config.Config) { c.Server.UpstreamTimeout = 200 * time.Millisecond })
	resp := h.do("GET", "/healthz", nil, nil)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
}

func TestProxy_XForwardedTrustedOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	spoof := http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"evil.example"}}
	t.Run("untrusted peer", func(t *testing.T) {
		h := newHarness(t, newEcho(t).URL, nil)
		e := decodeEcho(t, h.do("GET", "/healthz", spoof, nil))
		if got := e.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q, want only the peer", got)
		}
		if got := e.Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto = %q, want publicURL's https", got)
		}
		if got := e.Header.Get("X-Forwarded-Host"); got == "evil.example" {
			t.Errorf("X-Forwarded-Host taken from an untrusted peer")
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		h := newHarness(t, newEcho(t).URL, func(c *config.Config) {
			c.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		e := decodeEcho(t, h.do("GET", "/healthz", spoof, nil))
		if got := e.Header.Get("X-Forwarded-For"); got != "203.0.113.9, 127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q", got)
		}
		if got := e.Header.Get("X-Forwarded-Host"); got != "evil.example" {
			t.Errorf("X-Forwarded-Host = %q, want the trusted proxy's", got)
		}
	})
}

func TestProxy_ConnectionHeaderCannotRemoveIdentity(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	hdr := browser.Clone()
	hdr["Connection"] = []string{"X-Forwarded-User, X-Forwarded-Groups"}
	e := decodeEcho(t, h.do("GET", "/x", hdr, h.sessionCookies(alice, time.Now().Add(time.Hour))))
	if e.Header.Get("X-Forwarded-User") != "alice" || e.Header.Get("X-Forwarded-Groups") == "" {
		t.Errorf("identity headers removed via Connection: %v", e.Header)
	}
}

func TestProxy_ServerSentEventsStream(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-next
		fmt.Fprint(w, "data: two\n\n")
	}))
	t.Cleanup(up.Close)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(next) }) })
	h := newHarness(t, up.URL, nil)
	resp := h.do("GET", "/events", http.Header{"Accept": {"text/event-stream"}}, h.sessionCookies(alice, time.Now().Add(time.Hour)))
	br := bufio.NewReader(resp.Body)
	done := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		done <- line
	}()
	select {
	case line := <-done:
		if line != "data: one\n" {
			t.Fatalf("first event %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first event not streamed before the upstream finished")
	}
	once.Do(func() { close(next) })
}

func TestProxy_WebSocketUpgradeStreams(t *testing.T) {
	t.Parallel()
	// A raw upgrade: the upstream switches protocols and echoes bytes back.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Forwarded-User") != "alice" {
			http.Error(w, "bad upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(up.Close)
	h := newHarness(t, up.URL, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ck := h.sessionCookies(alice, time.Now().Add(time.Hour))[0]
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: %s=%s\r\n\r\n", ck.Name, ck.Value)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	fmt.Fprint(conn, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo over the upgraded connection: %q, %v", buf, err)
	}
	conn.Close()
	waitUntil(t, func() bool { return h.logs.FilterLoggerName("access").Len() == 1 })
	if st := h.logs.FilterLoggerName("access").All()[0].ContextMap()["status"]; st != int64(101) {
		t.Errorf("access log status %v for an upgrade, want 101", st)
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

func TestProxy_AccessLogOneLineNoSecrets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	cookies := h.sessionCookies(alice, time.Now().Add(time.Hour))
	hdr := browser.Clone()
	hdr["Authorization"] = []string{"Bearer SECRET-TOKEN"}
	decodeEcho(t, h.do("GET", "/x?SAMLResponse=PHNhbWw", hdr, cookies))
	access := h.logs.FilterLoggerName("access").All()
	if len(access) != 1 {
		t.Fatalf("access log lines: %d, want 1", len(access))
	}
	f := access[0].ContextMap()
	for _, k := range []string{"request_id", "method", "path", "status", "duration", "user"} {
		if _, ok := f[k]; !ok {
			t.Errorf("access log lacks %s", k)
		}
	}
	if f["user"] != "alice" || f["status"] != int64(200) {
		t.Errorf("access log fields: %v", f)
	}
	for _, e := range h.logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		for _, secret := range []string{cookies[0].Value, "SECRET-TOKEN", "PHNhbWw"} {
			if strings.Contains(line, secret) {
				t.Errorf("log line leaks a secret: %s", line)
			}
		}
	}
}

func TestAdminHandler_ReadyzReportsEveryCheck(t *testing.T) {
	t.Parallel()
	check := func(name string, st Readiness, reason string) ReadyCheck {
		return ReadyCheck{Name: name, Check: func() (Readiness, string) { return st, reason }}
	}
	for _, tt := range []struct {
		name   string
		checks []ReadyCheck
		want   int
		body   string
	}{
		{"ready", []ReadyCheck{AuthCheck(fakeAuth{}), check("directory", Ready, "ignored")},
			200, "ready\nidp: ok\ndirectory: ok\n"},
		{"metadata missing", []ReadyCheck{AuthCheck(fakeAuth{ready: fmt.Errorf("idp metadata not loaded yet")})},
			503, "not ready\nidp: not ready: idp metadata not loaded yet\n"},
		{"degraded still serves", []ReadyCheck{AuthCheck(fakeAuth{}), check("directory", Degraded, "store unreachable\nsince 10:00")},
			200, "ready (degraded)\nidp: ok\ndirectory: degraded: store unreachable since 10:00\n"},
		{"worst wins", []ReadyCheck{check("a", NotReady, "x"), check("b", Degraded, "y")},
			503, "not ready\na: not ready: x\nb: degraded: y\n"},
	} {
		h := AdminHandler(AdminOptions{Checks: tt.checks})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != tt.want || rec.Body.String() != tt.body {
			t.Errorf("%s: /readyz %d %q, want %d %q", tt.name, rec.Code, rec.Body, tt.want, tt.body)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != 200 {
			t.Errorf("%s: /healthz %d", tt.name, rec.Code)
		}
	}
}

func TestProxy_CachedSessionStillExpires(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	h := newHarnessWith(t, newEcho(t).URL, nil, func(o *Options) {
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	cookies := h.sessionCookies(alice, now.Add(time.Minute))
	api := http.Header{"Accept": {"application/json"}}
	decodeEcho(t, h.do("GET", "/x", api, cookies)) // decoded and cached
	decodeEcho(t, h.do("GET", "/x", api, cookies)) // served from the cache
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if resp := h.do("GET", "/x", api, cookies); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d for a cached session past its expiry", resp.StatusCode)
	}
}
