package proxy

import (
	"crypto/ecdsa"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// faHarness is forward-auth only (no upstream) with a gate and the identity
// token; trusted says whether the test client (127.0.0.1) is a trusted proxy.
func faHarness(t *testing.T, gate *mapGate, trusted bool) *harness {
	t.Helper()
	key := newIdentityKey(t)
	return newHarnessWith(t, "http://unused.invalid", func(c *config.Config) {
		c.UpstreamURL = nil
		c.ForwardAuth.Enabled = true
		c.IdentityToken = config.IdentityToken{Enabled: true, Header: config.DefaultIdentityTokenHeader, Lifetime: 5 * time.Minute}
		c.SCIM = config.SCIM{Enabled: true, Match: config.Match{IdentityField: "email"}, GroupsSource: "scim", RequireProvisioned: true}
		c.Trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		if trusted {
			c.Trusted = append(c.Trusted, netip.MustParsePrefix("127.0.0.0/8"))
		}
	}, func(o *Options) { o.Gate, o.IdentityKeys = gate, []*ecdsa.PrivateKey{key} })
}

func faGate() *mapGate {
	return &mapGate{m: map[string]identity.Standing{
		"alice@example.com": {State: identity.StateActive, Groups: []string{"staff"}, ID: "id-alice"},
		"root@example.com":  {State: identity.StateActive, Groups: []string{"admins"}},
		"gone@example.com":  {State: identity.StateInactive, ValidAfter: past},
		"old@example.com":   {State: identity.StateActive, ValidAfter: time.Now().Add(time.Hour)},
	}}
}

const html = "text/html,application/xhtml+xml"

func traefik(method, host, uri, accept string) http.Header {
	return http.Header{"X-Forwarded-Method": {method}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {host},
		"X-Forwarded-Uri": {uri}, "Accept": {accept}}
}

func nginxHeaders(method, u, accept string) http.Header {
	return http.Header{"X-Original-Method": {method}, "X-Original-Url": {u}, "Accept": {accept}}
}

func with(h http.Header, k string, v ...string) http.Header {
	h = h.Clone()
	h[k] = v
	return h
}

// allowedStatuses are the only answers forward-auth may give (nginx turns
// anything else into a 500; Envoy takes only 200 as allowed).
var allowedStatuses = []int{200, 302, 401, 403}

func TestForwardAuth_Answers(t *testing.T) {
	t.Parallel()
	h := faHarness(t, faGate(), true)
	alice := h.sessionCookies(identity.Principal{User: "alice", Email: "alice@example.com", Name: "Alice"}, time.Now().Add(time.Hour))
	root := h.sessionCookies(identity.Principal{User: "root", Email: "root@example.com"}, time.Now().Add(time.Hour))
	gone := h.sessionCookies(identity.Principal{User: "gone", Email: "gone@example.com"}, time.Now().Add(time.Hour))
	nobody := h.sessionCookies(identity.Principal{User: "carol", Email: "carol@example.com"}, time.Now().Add(time.Hour))
	old := h.sessionCookies(identity.Principal{User: "old", Email: "old@example.com"}, time.Now().Add(time.Hour))
	tampered := []*http.Cookie{{Name: alice[0].Name, Value: flipByte(alice[0].Value)}}
	tests := []struct {
		name     string
		path     string
		header   http.Header
		cookies  []*http.Cookie
		want     int
		location string // for 302
	}{
		{"traefik signed in", faPath, traefik("GET", "app2.example.com", "/x?y=1", html), alice, 200, ""},
		{"traefik browser without a session", faPath, traefik("GET", "app2.example.com", "/x?y=1", html), nil, 302,
			"https://app.example.com/saml/login?rd=" + url.QueryEscape("https://app2.example.com/x?y=1")},
		{"traefik on publicURL's own host returns to the path", faPath, traefik("GET", "app.example.com", "/x", html), nil, 302,
			"https://app.example.com/saml/login?rd=" + url.QueryEscape("/x")},
		{"traefik API call without a session", faPath, traefik("GET", "app2.example.com", "/api", "application/json"), nil, 401, ""},
		{"traefik POST without a session", faPath, traefik("POST", "app2.example.com", "/x", html), nil, 401, ""},
		{"nginx signed in", faPath, nginxHeaders("GET", "https://app2.example.com/x", html), alice, 200, ""},
		{"nginx browser without a session gets 401, not a redirect nginx would drop", faPath, nginxHeaders("GET", "https://app2.example.com/x?a=1&b=2", html), nil, 401,
			"https://app.example.com/saml/login?rd=" + url.QueryEscape("https://app2.example.com/x?a=1&b=2")},
		{"envoy signed in", faEnvoy + "/x/y?z=1", http.Header{"Accept": {html}}, alice, 200, ""},
		{"envoy browser without a session", faEnvoy + "/x/y?z=1", http.Header{"Accept": {html}}, nil, 302,
			"https://app.example.com/saml/login?rd=" + url.QueryEscape("https://"+strings.TrimPrefix(h.front.URL, "http://")+"/x/y?z=1")},
		{"deactivated", faPath, traefik("GET", "app2.example.com", "/x", html), gone, 403, ""},
		{"unprovisioned", faPath, traefik("GET", "app2.example.com", "/x", html), nobody, 403, ""},
		{"revoked session signs in again", faPath, traefik("GET", "app2.example.com", "/x", html), old, 302,
			"https://app.example.com/saml/login?rd=" + url.QueryEscape("https://app2.example.com/x")},
		{"wrong group", faPath, traefik("GET", "app2.example.com", "/admin/users", html), alice, 403, ""},
		{"right group", faPath, traefik("GET", "app2.example.com", "/admin/users", html), root, 200, ""},
		{"group rule on an uppercase spelling", faPath, traefik("GET", "app2.example.com", "/ADMIN/users", html), alice, 403, ""},
		{"public route without a session", faPath, traefik("GET", "app2.example.com", "/healthz", html), nil, 200, ""},
		{"session cookie with one byte changed", faPath, traefik("GET", "app2.example.com", "/x", "application/json"), tampered, 401, ""},
		{"reserved path", "/.portcullis/other", nil, alice, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.do("GET", tt.path, tt.header, tt.cookies)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.location != "" && resp.StatusCode == 302 && resp.Header.Get("Location") != tt.location {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), tt.location)
			}
			if tt.location != "" && resp.StatusCode == 401 && resp.Header.Get("X-Portcullis-Signin") != tt.location {
				t.Errorf("X-Portcullis-Signin %q, want %q", resp.Header.Get("X-Portcullis-Signin"), tt.location)
			}
			if resp.StatusCode == 200 {
				for _, name := range []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "X-Portcullis-Identity"} {
					if _, ok := resp.Header[name]; !ok {
						t.Errorf("200 without %s: every identity header must be set, empty when unknown", name)
					}
				}
			}
		})
	}
}

func TestForwardAuth_200CarriesIdentityAndAVerifiableToken(t *testing.T) {
	t.Parallel()
	h := faHarness(t, faGate(), true)
	alice := h.sessionCookies(identity.Principal{User: "alice", Email: "alice@example.com"}, time.Now().Add(time.Hour))
	resp := h.do("GET", faPath, traefik("GET", "app2.example.com", "/x", html), alice)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := map[string]string{}
	for _, k := range []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username"} {
		got[k] = resp.Header.Get(k)
	}
	want := map[string]string{"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "staff", "X-Forwarded-Preferred-Username": ""}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	id, err := verifyIdentity(resp.Header.Get("X-Portcullis-Identity"), fetchJWKS(t, h), testIssuer, testIssuer)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if id.Subject != "alice" || id.SCIMID != "id-alice" || !slices.Equal(id.Groups, []string{"staff"}) {
		t.Errorf("claims %+v", id)
	}
}

// TestForwardAuth_AnyDoubtIs401: a description that does not parse, is
// ambiguous or repeats a header never gets a 200, even for a signed-in
// administrator.
func TestForwardAuth_AnyDoubtIs401(t *testing.T) {
	t.Parallel()
	h := faHarness(t, faGate(), true)
	root := h.sessionCookies(identity.Principal{User: "root", Email: "root@example.com"}, time.Now().Add(time.Hour))
	ok := traefik("GET", "app2.example.com", "/x", html)
	tests := []struct {
		name   string
		path   string
		header http.Header
	}{
		{"two X-Forwarded-Uri values", faPath, with(ok, "X-Forwarded-Uri", "/x", "/admin/")},
		{"two X-Forwarded-Host values", faPath, with(ok, "X-Forwarded-Host", "a.example.com", "b.example.com")},
		{"a comma-joined host", faPath, with(ok, "X-Forwarded-Host", "a.example.com, b.example.com")},
		{"host with user info", faPath, with(ok, "X-Forwarded-Host", "evil@app2.example.com")},
		{"absolute X-Forwarded-Uri", faPath, with(ok, "X-Forwarded-Uri", "https://evil.example.com/x")},
		{"scheme-relative X-Forwarded-Uri", faPath, with(ok, "X-Forwarded-Uri", "//evil.example.com/x")},
		{"X-Forwarded-Uri without a slash", faPath, with(ok, "X-Forwarded-Uri", "x")},
		{"X-Forwarded-Uri with a fragment", faPath, with(ok, "X-Forwarded-Uri", "/x#y")},
		{"ambiguous path (encoded slash)", faPath, with(ok, "X-Forwarded-Uri", "/admin%2fusers")},
		{"ambiguous path (dot-segment)", faPath, with(ok, "X-Forwarded-Uri", "/public/../admin/")},
		{"a method that is not a token", faPath, with(ok, "X-Forwarded-Method", "GE T")},
		{"no X-Forwarded-Method", faPath, with(ok, "X-Forwarded-Method")},
		{"proto not http or https", faPath, with(ok, "X-Forwarded-Proto", "ftp")},
		{"two protos", faPath, with(ok, "X-Forwarded-Proto", "https, http")},
		{"Traefik and nginx conventions at once", faPath, with(ok, "X-Original-Url", "https://app2.example.com/x")},
		{"X-Original-URL not absolute", faPath, nginxHeaders("GET", "/x", html)},
		{"X-Original-URL with user info", faPath, nginxHeaders("GET", "https://u@app2.example.com/x", html)},
		{"two X-Original-URL values", faPath, with(nginxHeaders("GET", "https://app2.example.com/x", html), "X-Original-Url", "https://a/x", "https://b/y")},
		{"no X-Original-Method", faPath, with(nginxHeaders("GET", "https://app2.example.com/x", html), "X-Original-Method")},
		{"envoy prefix with a Traefik header", faEnvoy + "/x", http.Header{"X-Forwarded-Uri": {"/x"}}},
		{"envoy ambiguous path", faEnvoy + "/admin%2Fx", nil},
		{"envoy path without a slash", faEnvoy + "x", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.do("GET", tt.path, tt.header, root)
			want := 401
			if tt.path == faEnvoy+"x" {
				want = 404 // not the endpoint at all
			}
			if resp.StatusCode != want {
				t.Errorf("status %d, want %d", resp.StatusCode, want)
			}
		})
	}
}

// TestForwardAuth_UntrustedCallerCannotPickTheURL: from a peer outside
// trustedProxies the describing headers are ignored and the request is
// judged as one for /.portcullis/auth itself — never as the public
// /healthz it names, never with a 302 to a URL it names, never with a token.
func TestForwardAuth_UntrustedCallerCannotPickTheURL(t *testing.T) {
	t.Parallel()
	h := faHarness(t, faGate(), false)
	alice := h.sessionCookies(identity.Principal{User: "alice", Email: "alice@example.com"}, time.Now().Add(time.Hour))
	for _, hdr := range []http.Header{
		traefik("GET", "app2.example.com", "/healthz", html),
		nginxHeaders("GET", "https://app2.example.com/healthz", html),
	} {
		resp := h.do("GET", faPath, hdr, nil)
		if resp.StatusCode != 401 {
			t.Errorf("%v: status %d, want 401 (judged as %s, which is not public)", hdr, resp.StatusCode, faPath)
		}
	}
	resp := h.do("GET", faEnvoy+"/healthz", http.Header{"Accept": {html}}, nil)
	if resp.StatusCode != 401 {
		t.Errorf("envoy prefix from an untrusted peer: status %d, want 401", resp.StatusCode)
	}
	resp = h.do("GET", faPath, traefik("GET", "app2.example.com", "/admin/", html), alice)
	if resp.StatusCode != 200 || resp.Header.Get("X-Portcullis-Identity") != "" {
		t.Errorf("signed in, untrusted: status %d, token %q; want 200 judged on %s and no token",
			resp.StatusCode, resp.Header.Get("X-Portcullis-Identity"), faPath)
	}
}

func TestForwardAuth_NeverAnotherStatus(t *testing.T) {
	t.Parallel()
	h := faHarness(t, faGate(), true)
	alice := h.sessionCookies(identity.Principal{User: "alice", Email: "alice@example.com"}, time.Now().Add(time.Hour))
	dup := append(alice, &http.Cookie{Name: alice[0].Name, Value: flipByte(alice[0].Value)})
	for _, c := range []struct {
		hdr     http.Header
		cookies []*http.Cookie
	}{
		{traefik("GET", "app2.example.com", "/x", html), dup}, // 400 in proxy mode
		{traefik("GET", "app2.example.com", "/a;b", html), alice},
		{traefik("PROPFIND", "app2.example.com", "/x", html), alice},
		{traefik("GET", "app2.example.com", "/%zz", html), alice},
	} {
		resp := h.do("POST", faPath, c.hdr, c.cookies)
		if !slices.Contains(allowedStatuses, resp.StatusCode) {
			t.Errorf("%v: status %d, not one of %v", c.hdr, resp.StatusCode, allowedStatuses)
		}
	}
}

func TestForwardAuth_OffLeavesThePathToTheApp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newEcho(t).URL, nil)
	cookies := h.sessionCookies(identity.Principal{User: "alice", Email: "alice@example.com"}, time.Now().Add(time.Hour))
	if e := decodeEcho(t, h.do("GET", faPath, nil, cookies)); e.Path != faPath {
		t.Errorf("upstream saw %q", e.Path)
	}
}

func TestForwardAuth_WithoutUpstreamOtherPathsAre404(t *testing.T) {
	t.Parallel()
	h := faHarness(t, faGate(), true)
	alice := h.sessionCookies(identity.Principal{User: "alice", Email: "alice@example.com"}, time.Now().Add(time.Hour))
	if resp := h.do("GET", "/app/x", nil, alice); resp.StatusCode != 404 {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
	if resp := h.do("GET", "/saml/login", nil, nil); resp.StatusCode != http.StatusTeapot {
		t.Errorf("/saml/ not served: %d", resp.StatusCode)
	}
}

// flipByte changes one byte in the middle of a cookie value.
func flipByte(v string) string {
	b := []byte(v)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
