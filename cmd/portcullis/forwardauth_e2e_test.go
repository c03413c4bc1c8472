package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/portcullis-sso/portcullis/internal/demoidp"
	"github.com/portcullis-sso/portcullis/scimsync"
)

// The forward-auth end-to-end test: Portcullis in forward-auth mode (no
// upstream) behind a real nginx (auth_request) and a real Caddy
// (forward_auth), each on its own host name under one cookie domain, with
// the demo IdP for sign-in and Chromium as the browser. The nginx and Caddy
// configurations are the README's snippets with the test's ports.

const (
	nginxPath = "/usr/sbin/nginx"
	caddyPath = "/usr/bin/caddy"
	faDomain  = "pc.test" // Chromium maps *.pc.test to 127.0.0.1
)

// faIdentityHeaders are the headers Portcullis answers with (the defaults
// and the identity token).
var faIdentityHeaders = []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Portcullis-Identity"}

type faEnv struct {
	publicURL, nginxURL, caddyURL string
	scimURL, token                string
	users                         map[string]string // name → SCIM id
	jwks                          string            // URL of the key set
	logs                          *lockedBuffer
	upstream                      string
	adminURL                      string
}

func TestForwardAuth_NginxAndCaddyChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	for _, p := range []string{chromiumPath, nginxPath, caddyPath} {
		fi, err := os.Stat(p)
		requirePeer(t, p, err == nil && fi.Mode()&0o111 != 0)
	}
	env := startForwardAuthEnv(t)
	browser, chromeOut := startBrowserWith(t, "MAP *."+faDomain+" 127.0.0.1")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- chromium output:\n%s\n--- portcullis logs:\n%s", chromeOut, env.logs)
		}
	})
	e := &e2e{publicURL: env.publicURL, cookieName: "portcullis", logs: env.logs, browser: browser, secrets: map[string]string{env.token: "the SCIM token"}}

	var aliceCookie string
	t.Run("NginxSignsInThroughThe401AndCaddySharesTheSession", func(t *testing.T) {
		tb := e.newTab(t)
		tb.do("open the nginx app", chromedp.Navigate(env.nginxURL+"/x/page?a=1&b=2"))
		demoSignInTab(tb, "alice")
		if loc := tb.location(); loc.String() != env.nginxURL+"/x/page?a=1&b=2" {
			tb.fatal("after sign-in the browser is at %s, want the nginx app's page with its whole query", loc)
		}
		checkIdentity(t, env, tb.upstream(), "alice")
		tb.do("open the Caddy app", chromedp.Navigate(env.caddyURL+"/y"))
		tb.waitUpstream()
		checkIdentity(t, env, tb.upstream(), "alice")
		aliceCookie = tb.sessionCookie()
	})
	t.Run("CaddyRedirectsABrowserToSignIn", func(t *testing.T) {
		tb := e.newTab(t)
		tb.do("open the Caddy app", chromedp.Navigate(env.caddyURL+"/z?q=1"))
		demoSignInTab(tb, "bob")
		if loc := tb.location(); loc.String() != env.caddyURL+"/z?q=1" {
			tb.fatal("after sign-in the browser is at %s, want the Caddy app's page", loc)
		}
		checkIdentity(t, env, tb.upstream(), "bob")
	})
	if aliceCookie == "" {
		t.Fatal("no session from the first subtest")
	}
	session := &http.Cookie{Name: "portcullis", Value: aliceCookie}
	t.Run("IngressDropsClientIdentityHeadersInEverySpelling", func(t *testing.T) {
		for _, base := range []string{env.nginxURL, env.caddyURL} {
			h := http.Header{}
			for _, name := range faIdentityHeaders {
				for _, spelling := range []string{name, strings.ToLower(name), strings.ToUpper(name), strings.ReplaceAll(name, "-", "_"),
					strings.ToLower(strings.ReplaceAll(name, "-", "_")), strings.Replace(name, "-", "_", 1)} {
					h[spelling] = []string{"forged"}
				}
			}
			status, view := getUpstream(t, base+"/spoof", h, session)
			if status != 200 {
				t.Fatalf("%s: status %d", base, status)
			}
			checkIdentity(t, env, view, "alice")
		}
	})
	t.Run("BothIngressesAreAnsweredOnTheFastLoop", func(t *testing.T) {
		// nginx with the README's upstream keepalive, and Caddy, ask over
		// kept-alive HTTP/1.1 connections: each question is answered on
		// the fast loop, none is handed to net/http.
		for _, base := range []string{env.nginxURL, env.caddyURL} {
			before := fastPathCounts(t, env)
			for range 3 {
				if status, _ := getUpstream(t, base+"/fast", nil, session); status != 200 {
					t.Fatalf("%s: status %d", base, status)
				}
			}
			after := fastPathCounts(t, env)
			if after[0]-before[0] < 3 || after[1] != before[1] {
				t.Errorf("%s: 3 questions moved the fast loop's answers %v → %v and hand-overs %v → %v; want +3 and +0",
					base, before[0], after[0], before[1], after[1])
			}
		}
	})
	t.Run("TamperedCookieIs401", func(t *testing.T) {
		bad := &http.Cookie{Name: "portcullis", Value: flipOneByte(aliceCookie)}
		if status, _ := getUpstream(t, env.caddyURL+"/x", nil, bad); status != 401 {
			t.Errorf("Caddy: status %d, want Portcullis's 401", status)
		}
		status, loc := getStatus(t, env.nginxURL+"/x", nil, bad)
		if status != 302 || !strings.HasPrefix(loc, env.publicURL+"/saml/login?rd=") {
			t.Errorf("nginx: status %d Location %q, want its error_page 401 redirect to sign-in", status, loc)
		}
	})
	t.Run("UntrustedCallerCannotPickTheURL", func(t *testing.T) {
		// From 127.0.0.3, outside trustedProxies, the describing headers
		// name the public route /public/; they are ignored.
		untrusted := &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirect, Transport: &http.Transport{
			Proxy: nil, DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}).DialContext}}
		trusted := &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirect, Transport: &http.Transport{Proxy: nil}}
		for _, h := range []http.Header{
			{"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"app.pc.test"}, "X-Forwarded-Uri": {"/public/x"}, "Accept": {"text/html"}},
			{"X-Original-Url": {"http://app.pc.test/public/x"}, "X-Original-Method": {"GET"}},
		} {
			if got := authStatus(t, trusted, env.publicURL, h); got != 200 {
				t.Fatalf("control: from a trusted proxy %v is %d, want 200 (a public route)", h, got)
			}
			if got := authStatus(t, untrusted, env.publicURL, h); got != 401 {
				t.Errorf("from an untrusted address %v is %d, want 401 (judged as /.portcullis/auth)", h, got)
			}
		}
	})
	t.Run("DeactivatedUserIs403", func(t *testing.T) {
		deactivate(t, env, "alice")
		for _, base := range []string{env.nginxURL, env.caddyURL} {
			if status, _ := getStatus(t, base+"/x", nil, session); status != 403 {
				t.Errorf("%s: status %d for a deactivated user, want 403", base, status)
			}
		}
	})
}

// demoSignIn clicks user on the demo IdP's page and waits for the app.
func demoSignInTab(tb *tab, user string) {
	tb.t.Helper()
	tb.do("wait for the demo IdP login page", chromedp.WaitVisible(chromedp.ID("user-"+user)))
	tb.cookies()
	tb.do("click "+user, chromedp.Click(chromedp.ID("user-"+user)))
	tb.waitUpstream()
}

// checkIdentity: the upstream saw exactly Portcullis's identity headers,
// one spelling each, and a token that verifies.
func checkIdentity(t *testing.T, env *faEnv, v upstreamView, user string) {
	t.Helper()
	for _, name := range faIdentityHeaders {
		vals, names := headerValues(v.Header, name)
		if len(names) != 1 || len(vals) != 1 || vals[0] == "forged" {
			t.Errorf("upstream got %s as %q = %q; want exactly Portcullis's one value", name, names, vals)
		}
	}
	if got := v.Header.Get("X-Forwarded-User"); got != user {
		t.Errorf("X-Forwarded-User = %q, want %s", got, user)
	}
	tok := v.Header.Get("X-Portcullis-Identity")
	claims := verifyTokenE2E(t, env, tok)
	if claims["sub"] != user || claims["scim_id"] != env.users[user] {
		t.Errorf("token claims %v, want sub %s and its SCIM id %s", claims, user, env.users[user])
	}
}

func getUpstream(t *testing.T, u string, h http.Header, c *http.Cookie) (int, upstreamView) {
	t.Helper()
	resp := doGet(t, u, h, c)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v upstreamView
	if resp.StatusCode == 200 {
		i, j := strings.Index(string(body), `<pre id="headers">`), strings.Index(string(body), "</pre>")
		if i < 0 || j < i {
			t.Fatalf("%s: not the upstream page: %s", u, body)
		}
		raw := html.UnescapeString(string(body)[i+len(`<pre id="headers">`) : j])
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	return resp.StatusCode, v
}

func getStatus(t *testing.T, u string, h http.Header, c *http.Cookie) (int, string) {
	t.Helper()
	resp := doGet(t, u, h, c)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

func doGet(t *testing.T, u string, h http.Header, c *http.Cookie) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v // as spelled: Go writes non-canonical keys as they are
	}
	if c != nil {
		req.AddCookie(c)
	}
	// The app's host name resolves to the ingress's loopback port.
	client := &http.Client{Timeout: 15 * time.Second, CheckRedirect: noRedirect, Transport: &http.Transport{Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
		}}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func authStatus(t *testing.T, c *http.Client, publicURL string, h http.Header) int {
	t.Helper()
	u, _ := url.Parse(publicURL)
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+u.Port()+"/.portcullis/auth", nil)
	req.Header = h
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func flipOneByte(v string) string {
	b := []byte(v)
	i := len(b) / 2
	b[i] ^= 1
	if b[i] == '=' || b[i] == ';' || b[i] < 0x21 {
		b[i] = 'A'
	}
	return string(b)
}

func deactivate(t *testing.T, env *faEnv, user string) {
	t.Helper()
	u, _ := url.Parse(env.scimURL)
	body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`
	req, _ := http.NewRequest("PATCH", "http://127.0.0.1:"+u.Port()+u.Path+"/Users/"+env.users[user], strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+env.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("deactivate %s: status %d", user, resp.StatusCode)
	}
}

// startForwardAuthEnv runs Portcullis (forward-auth only), the demo IdP,
// the echo app, nginx and Caddy, all on loopback, until the test ends.
func startForwardAuthEnv(t *testing.T) *faEnv {
	t.Helper()
	dir := t.TempDir()
	if err := writeKeys(dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	token := scimsync.GenerateToken()
	writeFileT(t, filepath.Join(dir, "scim.tokens"), "e2e "+token+"\n")
	pub, adm, idpLn := listenLoopback(t), listenLoopback(t), listenLoopback(t)
	port := func(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }
	ngx, cad := freePort(t), freePort(t)
	env := &faEnv{
		publicURL: fmt.Sprintf("http://auth.%s:%d", faDomain, port(pub)),
		nginxURL:  fmt.Sprintf("http://app.%s:%d", faDomain, ngx),
		caddyURL:  fmt.Sprintf("http://app2.%s:%d", faDomain, cad),
		token:     token,
		logs:      &lockedBuffer{},
		upstream:  newEchoUpstream(t).URL,
	}
	env.scimURL = env.publicURL + "/scim/v2"
	env.adminURL = "http://" + adm.Addr().String()
	env.jwks = fmt.Sprintf("http://127.0.0.1:%d/.well-known/portcullis/jwks.json", port(pub))
	// The IdP shares the site (pc.test) with Portcullis, so that the SAML
	// tracking cookie (SameSite=Lax on http) comes back with the ACS post.
	idpURL := fmt.Sprintf("http://idp.%s:%d", faDomain, port(idpLn))
	cfg := fmt.Sprintf(`version: 1
listen: "%s"
adminListen: "%s"
publicURL: "%s"
forwardAuth: {enabled: true}
trustedProxies: ["127.0.0.1"]
allowedRedirectHosts: ["app.%s:%d", "app2.%s:%d"]
saml:
  idpMetadataFile: idp.xml
  certFile: sp.crt
  keyFile: sp.key
  attributes: {user: uid, email: mail, name: displayName, groups: groups}
session:
  keysFile: session.keys
  cookieDomain: ".%s"
identityToken:
  keysFile: identity.keys
  audience: https://apps.%s
routes:
  - path: /public/
    public: true
scim:
  enabled: true
  tokensFile: scim.tokens
  match: {identityField: email, scimAttribute: userName}
store:
  dsn: portcullis.db
`, pub.Addr(), adm.Addr(), env.publicURL, faDomain, ngx, faDomain, cad, faDomain, faDomain)
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	writeFileT(t, cfgPath, cfg)
	log, err := newLogger("json", "debug", env.logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := build(ctx, cfgPath, log)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	spMeta, err := a.sp.MetadataXML()
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(idpURL)
	idp, err := demoidp.New(demoidp.Options{BaseURL: base, SPMetadata: spMeta, Users: demoidp.Users(), AppURL: env.publicURL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	idpSrv := &http.Server{Handler: idp}
	go func() { _ = idpSrv.Serve(idpLn) }()
	md := httptest.NewRecorder()
	idp.ServeHTTP(md, httptest.NewRequest("GET", idpURL+demoidp.PathMetadata, nil))
	writeFileT(t, filepath.Join(dir, "idp.xml"), md.Body.String())
	if err := a.sp.LoadMetadata(ctx); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serveOn(ctx, a, pub, adm, log) }()
	t.Cleanup(func() {
		cancel()
		<-served
		_ = idpSrv.Close()
		_ = a.Close()
	})
	users, err := provisionDemo(ctx, fmt.Sprintf("http://127.0.0.1:%d/scim/v2", port(pub)), token, demoidp.Users())
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	env.users = map[string]string{}
	for _, u := range users {
		env.users[u.Name] = u.ID
	}
	vars := ingressVars{Dir: dir, Portcullis: fmt.Sprintf("127.0.0.1:%d", port(pub)), PublicURL: env.publicURL,
		Upstream: strings.TrimPrefix(env.upstream, "http://"), NginxPort: ngx, CaddyPort: cad, Domain: faDomain}
	startNginx(t, dir, vars)
	startCaddy(t, dir, vars)
	return env
}

func writeFileT(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// verifyTokenE2E checks the token against the JWKS Portcullis publishes.
func verifyTokenE2E(t *testing.T, env *faEnv, tok string) map[string]any {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}).Get(env.jwks)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	claims, err := verifyWithJWKS(resp.Body, tok, env.publicURL, "https://apps."+faDomain)
	if err != nil {
		t.Fatalf("identity token: %v", err)
	}
	return claims
}

// verifyWithJWKS verifies tok with go-jose against the key set in r.
func verifyWithJWKS(r io.Reader, tok, issuer, audience string) (map[string]any, error) {
	var keys jose.JSONWebKeySet
	if err := json.NewDecoder(r).Decode(&keys); err != nil {
		return nil, err
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	all := map[string]any{}
	if err := parsed.Claims(&keys, &std, &all); err != nil {
		return nil, err
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audience}, Time: time.Now()}, 30*time.Second); err != nil {
		return nil, err
	}
	return all, nil
}

// fastPathCounts reads portcullis_fastpath_answers_total and
// portcullis_fastpath_handoffs_total from the admin listener.
func fastPathCounts(t *testing.T, env *faEnv) [2]float64 {
	t.Helper()
	resp, err := http.Get(env.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out [2]float64
	for i, name := range []string{"portcullis_fastpath_answers_total ", "portcullis_fastpath_handoffs_total "} {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, name); ok {
				out[i], _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return out
}
