package proxy

import (
	"crypto/ecdsa"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/session"
)

// cannedTransport answers every upstream request at once without a network.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode:    200,
		Header:        http.Header{"Content-Type": {"text/plain"}},
		Body:          io.NopCloser(strings.NewReader("ok")),
		ContentLength: 2,
		Request:       r,
	}, nil
}

// benchProxy builds the proxy with the canned transport, optionally with a gate.
func benchProxy(b *testing.B, gate Gate) (*Proxy, []*http.Cookie) {
	return benchProxyWith(b, gate, false)
}

// benchProxyWith is benchProxy, with the identity token on when token.
func benchProxyWith(b *testing.B, gate Gate, token bool) (*Proxy, []*http.Cookie) {
	b.Helper()
	keysCodec := newBenchCodec(b)
	cfg := benchConfig(gate != nil)
	o := Options{Config: cfg, Auth: fakeAuth{}, Sessions: keysCodec, OwnCookiePrefixes: []string{"portcullis_t_"}, Transport: cannedTransport{}}
	if gate != nil {
		// With a directory, every request also asks whether its session
		// was ended one by one (here: 10,000 other sessions were).
		rev := &setRevocations{ids: make(map[string]bool, 10_000)}
		for i := range 10_000 {
			rev.ids["ended-"+strconv.Itoa(i)] = true
		}
		o.Gate, o.Revocations = gate, rev
	}
	if token {
		cfg.IdentityToken = config.IdentityToken{Enabled: true, Header: config.DefaultIdentityTokenHeader, Lifetime: 5 * time.Minute}
		o.IdentityKeys = []*ecdsa.PrivateKey{newIdentityKey(b)}
	}
	p, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := keysCodec.Write(rec, nil, benchSession()); err != nil {
		b.Fatal(err)
	}
	return p, rec.Result().Cookies()
}

// BenchmarkHotPath is one authenticated request through the whole chain
// (request scope, access log, route match, cookie decode, gate, header
// rewrite, ReverseProxy) with the upstream round trip replaced by a canned
// response, so only Portcullis's own work is measured.
//
// gate+token is the gate case with the identity token on: after the first
// request the token comes from the cache, so it measures the cache lookup,
// not a signature per request.
func BenchmarkHotPath(b *testing.B) {
	for _, c := range []struct {
		name        string
		gate, token bool
	}{{"no-gate", false, false}, {"gate", true, false}, {"gate+token", true, true}} {
		var gate Gate
		if c.gate {
			gate = &mapGate{m: map[string]identity.Standing{"alice@example.com": {State: identity.StateActive, Groups: []string{"staff", "admins"}}}}
		}
		b.Run(c.name, func(b *testing.B) {
			p, cookies := benchProxyWith(b, gate, c.token)
			req := httptest.NewRequest("GET", "http://app.example.com/app/page?x=1", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("X-Forwarded-User", "spoof")
			req.Header.Set("Cookie", "theme=dark; "+cookies[0].Name+"="+cookies[0].Value)
			req.RemoteAddr = "192.0.2.10:5555"
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				p.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
			}
			if c.token && len(p.signer.cache.m) != 1 {
				b.Fatalf("%d tokens cached, want the one token of the session", len(p.signer.cache.m))
			}
		})
	}
}

// BenchmarkAuthPath is the work Portcullis adds to an authenticated request
// before ReverseProxy takes over: route match, session cookie decode, the
// directory gate and the identity-header rewrite of the outgoing headers.
func BenchmarkAuthPath(b *testing.B) {
	gate := &mapGate{m: map[string]identity.Standing{"alice@example.com": {State: identity.StateActive, Groups: []string{"staff", "admins"}}}}
	p, cookies := benchProxy(b, gate)
	req := httptest.NewRequest("GET", "http://app.example.com/app/page?x=1", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("X-Forwarded-User", "spoof")
	req.Header.Set("Cookie", "theme=dark; "+cookies[0].Name+"="+cookies[0].Value)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		pol, err := p.routes.decide(req.URL)
		if err != nil || pol.Public {
			b.Fatal("route")
		}
		s, _ := p.readSession(req, p.now())
		if s == nil {
			b.Fatal("no session")
		}
		var merged identity.Principal
		v, _, principal := p.gate.check(&s.Principal, s.IssuedAt, p.now(), &merged)
		if v != verdictAllow {
			b.Fatal("gate")
		}
		out := req.Header.Clone()
		applyIdentity(out, p.headers, p.cookies, principal)
	}
}

func BenchmarkApplyIdentity(b *testing.B) {
	plan := newHeaderPlan(testHeaders)
	p := &identity.Principal{User: "alice", Email: "alice@example.com", Name: "Alice", Groups: []string{"staff", "admins"}}
	in := http.Header{
		"Accept":           {"text/html"},
		"Cookie":           {"theme=dark; portcullis=abcdef"},
		"User-Agent":       {"bench"},
		"X-Forwarded-User": {"spoof"},
	}
	b.ReportAllocs()
	for b.Loop() {
		h := in.Clone()
		applyIdentity(h, plan, testCookieFilter(), p)
	}
}

func BenchmarkSessionRead(b *testing.B) {
	c := newBenchCodec(b)
	rec := httptest.NewRecorder()
	_ = c.Write(rec, nil, benchSession())
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Cookie", "theme=dark; "+rec.Result().Cookies()[0].Name+"="+rec.Result().Cookies()[0].Value)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Read(req); err != nil {
			b.Fatal(err)
		}
	}
}

func benchConfig(scim bool) *config.Config {
	cfg := &config.Config{
		Headers: testHeaders,
		Routes: []config.Route{
			{Path: "/healthz", Public: true},
			{Path: "/admin/", AllowGroups: []string{"admins"}},
		},
		Server:  config.Server{UpstreamTimeout: 5 * time.Second},
		Session: config.Session{CookieName: "portcullis"},
	}
	cfg.Public, _ = urlParse("https://app.example.com")
	cfg.UpstreamURL, _ = urlParse("http://127.0.0.1:3000")
	if scim {
		cfg.SCIM = config.SCIM{Enabled: true, Match: config.Match{IdentityField: "email", SCIMAttribute: "userName"},
			RequireProvisioned: true, GroupsSource: "scim"}
	}
	return cfg
}

func benchSession() *session.Session {
	return &session.Session{ID: session.NewID(), Principal: identity.Principal{User: "alice", Email: "alice@example.com",
		Name: "Alice", Groups: []string{"staff", "admins"}}, IssuedAt: time.Now(), Expires: time.Now().Add(time.Hour)}
}

func newBenchCodec(b *testing.B) *session.Codec {
	keys, err := session.ParseKeys(session.GenerateKeys())
	if err != nil {
		b.Fatal(err)
	}
	c, err := session.NewCodec("portcullis", keys, true, 8*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

var urlParse = url.Parse

// The hot path piece by piece. Each is run with -benchmem by bench/allocs.sh,
// which fails CI when allocs/op grows past bench/alloc-budget.txt.

// aliceGate is the directory's answer for the benchmark session's user.
func aliceGate() *mapGate {
	return &mapGate{m: map[string]identity.Standing{"alice@example.com": {State: identity.StateActive, Groups: []string{"staff", "admins"}}}}
}

// benchRequest is a signed-in browser request as wrk sends it in bench/run.sh.
func benchRequest(cookies []*http.Cookie) *http.Request {
	req := httptest.NewRequest("GET", "http://app.example.com/app/page?x=1", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Cookie", "theme=dark; "+cookies[0].Name+"="+cookies[0].Value)
	req.RemoteAddr = "192.0.2.10:5555"
	return req
}

// BenchmarkSessionCheck is the per-request session check: find the cookie,
// hit the verified-session cache, check the expiry (the decode itself runs
// once per session; BenchmarkSessionRead is that cost).
func BenchmarkSessionCheck(b *testing.B) {
	p, cookies := benchProxy(b, nil)
	req := benchRequest(cookies)
	if s, _ := p.readSession(req, p.now()); s == nil {
		b.Fatal("no session")
	}
	b.ReportAllocs()
	for b.Loop() {
		if s, _ := p.readSession(req, p.now()); s == nil {
			b.Fatal("no session")
		}
	}
}

// BenchmarkGateCheck is the gate's verdict for a signed-in user, with the
// directory lookup behind an in-memory map (scimsync's
// BenchmarkGateLookupScale measures the real directory at 10k-1M users).
func BenchmarkGateCheck(b *testing.B) {
	for _, source := range []string{"scim", "saml"} {
		b.Run("groups="+source, func(b *testing.B) {
			cfg := benchConfig(true)
			cfg.SCIM.GroupsSource = source
			gp := newGatePolicy(aliceGate(), nil, cfg.SCIM, cfg.Store)
			s := benchSession()
			now := time.Now()
			var merged identity.Principal
			b.ReportAllocs()
			for b.Loop() {
				if v, _, _ := gp.check(&s.Principal, s.IssuedAt, now, &merged); v != verdictAllow {
					b.Fatal("gate")
				}
			}
		})
	}
}

// BenchmarkRewrite is the upstream request preparation ReverseProxy calls:
// URL, X-Forwarded-*, identity headers stripped and set, our cookies
// removed. The header clone ReverseProxy makes before it is included.
func BenchmarkRewrite(b *testing.B) {
	p, cookies := benchProxy(b, nil)
	in := benchRequest(cookies)
	in.Header.Set("X-Forwarded-User", "spoof")
	s := benchSession()
	in = in.WithContext(withState(in.Context(), &requestState{x: exchange{who: &s.Principal}}))
	out := in.Clone(in.Context())
	b.ReportAllocs()
	for b.Loop() {
		out.Header = in.Header.Clone()
		u := *in.URL
		out.URL = &u
		p.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	}
	if out.Header.Get("X-Forwarded-User") != "alice" || strings.Contains(out.Header.Get("Cookie"), "portcullis") {
		b.Fatalf("rewrite wrong: %v", out.Header)
	}
}

// BenchmarkRequestScope is the request scope (request ID, context, status
// recorder) and the access-log line around a handler that does nothing:
// access=off without an access logger, access=json with the JSON encoder
// cmd/portcullis builds, writing to io.Discard (the write itself is buffered
// in the process; see cmd/portcullis/logger.go).
func BenchmarkRequestScope(b *testing.B) {
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	ec.EncodeDuration = zapcore.SecondsDurationEncoder
	loggers := []struct {
		name string
		log  *zap.Logger
	}{
		{"access=off", nil},
		{"access=json", zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), zapcore.AddSync(io.Discard), zap.InfoLevel)).Named("access")},
	}
	for _, l := range loggers {
		b.Run(l.name, func(b *testing.B) {
			codec := newBenchCodec(b)
			p, err := New(Options{Config: benchConfig(false), Auth: fakeAuth{}, Sessions: codec, Transport: cannedTransport{}, Access: l.log})
			if err != nil {
				b.Fatal(err)
			}
			h := p.scope(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
			req := httptest.NewRequest("GET", "http://app.example.com/app/page", nil)
			req.RemoteAddr = "192.0.2.10:5555"
			w := discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// counts only the scope's own allocations.
type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header       { return w.h }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

// BenchmarkUpstreamRoundTrip is one GET to a loopback upstream and its
// 2-byte body: direct is the transport New builds (the request's own
// goroutine writes and reads), standard is http.Transport with the same
// settings. The upstream's own work in this process is included in both.
func BenchmarkUpstreamRoundTrip(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer up.Close()
	cfg := benchConfig(false)
	cfg.UpstreamURL, _ = urlParse(up.URL)
	direct, err := newUpstreamTransport(cfg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	standard := direct.(*directTransport).fallback
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"direct", direct}, {"standard", standard}} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", up.URL+"/", nil)
			req.RequestURI = ""
			b.ReportAllocs()
			for b.Loop() {
				resp, err := tc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkIdentityTokenMint is what a cache miss costs: one ES256
// signature and the claims' JSON.
func BenchmarkIdentityTokenMint(b *testing.B) {
	ts, err := newTokenSigner([]*ecdsa.PrivateKey{newIdentityKey(b)}, "https://app.example.com", 5*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	s := benchSession()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ts.mint(s.ID, &s.Principal, "", "https://app.example.com", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkForwardAuth is one signed-in Traefik-style question to
// /.portcullis/auth through the whole chain, with the session check and the
// gate on: what bench/run.sh compares with oauth2-proxy's /oauth2/auth.
func BenchmarkForwardAuth(b *testing.B) {
	keysCodec := newBenchCodec(b)
	cfg := benchConfig(true)
	cfg.UpstreamURL, cfg.ForwardAuth.Enabled = nil, true
	cfg.Trusted = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	p, err := New(Options{Config: cfg, Auth: fakeAuth{}, Sessions: keysCodec, Gate: aliceGate()})
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := keysCodec.Write(rec, nil, benchSession()); err != nil {
		b.Fatal(err)
	}
	req := benchRequest(rec.Result().Cookies())
	req.URL.Path = faPath
	for k, v := range map[string]string{"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https",
		"X-Forwarded-Host": "app.example.com", "X-Forwarded-Uri": "/app/page?x=1"} {
		req.Header.Set(k, v)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		if w.Code != 200 || w.Header().Get("X-Forwarded-User") != "alice" {
			b.Fatalf("status %d", w.Code)
		}
	}
}
