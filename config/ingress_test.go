package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIdentityToken_ParsedWithDefaults(t *testing.T) {
	t.Parallel()
	c, err := ParseWithEnv([]byte(minimal+"identityToken:\n  keysFile: identity.keys\n"), "/srv", noEnv)
	if err != nil {
		t.Fatalf("ParseWithEnv: %v", err)
	}
	want := IdentityToken{Header: DefaultIdentityTokenHeader, KeysFile: "identity.keys", Lifetime: 5 * time.Minute, Enabled: true}
	if diff := cmp.Diff(want, c.IdentityToken); diff != "" {
		t.Errorf("identityToken (-want +got):\n%s", diff)
	}
	if got := c.TokenAudience(""); got != "https://app.example.com" {
		t.Errorf("default audience = %q, want publicURL", got)
	}
	if got := c.TokenAudience("https://other.example.com"); got != "https://other.example.com" {
		t.Errorf("route audience = %q", got)
	}
	var found bool
	for _, f := range c.SecretFiles() {
		found = found || f.Field == "identityToken.keysFile"
	}
	if !found {
		t.Error("identityToken.keysFile is not checked as a secret file")
	}
}

func TestIdentityToken_ReportsEachProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"no keys file", "identityToken:\n  lifetime: 5m\n", []string{
			"line 10: identityToken.keysFile: required: the identity key file (`portcullis keys` writes identity.keys)"}},
		{"header taken by an identity header", "identityToken:\n  keysFile: k\n  header: x_forwarded_user\n", []string{
			"line 12: identityToken.header: same header as headers.X-Forwarded-User"}},
		{"header the proxy sets", "identityToken:\n  keysFile: k\n  header: Authorization\n", []string{
			"line 12: identityToken.header: Authorization cannot carry the token: it is hop-by-hop, frames the request or is set by the proxy"}},
		{"lifetime too long", "identityToken:\n  keysFile: k\n  lifetime: 2h\n", []string{
			"line 12: identityToken.lifetime: must be between 30s and 1h; got 2h0m0s"}},
		{"audience with a space", "identityToken:\n  keysFile: k\n  audience: my app\n", []string{
			`line 12: identityToken.audience: must be a URL or name without spaces or control characters, at most 1024 bytes; got "my app"`}},
		{"route audience without a token", "routes:\n  - path: /x/\n    audience: https://x.example.com\n", []string{
			"line 12: routes[0].audience: applies to the identity token only; configure identityToken or remove it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseWithEnv([]byte(minimal+tt.yaml), "/srv", noEnv)
			if diff := cmp.Diff(tt.want, problemLines(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForwardAuth_UpstreamOptional(t *testing.T) {
	t.Parallel()
	noUpstream := strings.Replace(minimal, "upstream: http://127.0.0.1:3000\n", "", 1)
	if _, err := ParseWithEnv([]byte(noUpstream), "/srv", noEnv); err == nil {
		t.Error("a config without upstream and without forwardAuth loaded")
	}
	c, err := ParseWithEnv([]byte(noUpstream+"forwardAuth:\n  enabled: true\n"), "/srv", noEnv)
	if err != nil {
		t.Fatalf("forward-auth only: %v", err)
	}
	if c.UpstreamURL != nil {
		t.Errorf("UpstreamURL = %v, want nil", c.UpstreamURL)
	}
	if w := strings.Join(c.Warnings(), "\n"); !strings.Contains(w, "forwardAuth.enabled: with no trustedProxies") {
		t.Errorf("no warning about missing trustedProxies: %q", w)
	}
}

func TestCrossHost_CookieDomainDefaultsAndChecks(t *testing.T) {
	t.Parallel()
	c, err := ParseWithEnv([]byte(strings.Replace(minimal, "session:\n", "session:\n  cookieDomain: .example.com\n", 1)+
		"allowedRedirectHosts: [app2.example.com, app3.example.com:8443]\n"), "/srv", noEnv)
	if err != nil {
		t.Fatalf("ParseWithEnv: %v", err)
	}
	if c.Session.CookieName != "__Secure-portcullis" {
		t.Errorf("cookieName = %q, want __Secure-portcullis (a __Host- cookie cannot have a Domain)", c.Session.CookieName)
	}
	tests := []struct {
		name, session, extra string
		want                 []string
	}{
		{"domain not covering publicURL", "  cookieDomain: .other.com\n", "", []string{
			"line 9: session.cookieDomain: .other.com does not cover publicURL's host app.example.com, so browsers would refuse the cookie"}},
		{"a top-level domain", "  cookieDomain: .com\n", "", []string{
			`line 9: session.cookieDomain: must be a domain such as .example.com; got ".com"`}},
		{"__Host- with a domain", "  cookieDomain: .example.com\n  cookieName: __Host-x\n", "", []string{
			"line 10: session.cookieName: a __Host- cookie cannot have a Domain; leave cookieName unset or pick another name with session.cookieDomain"}},
		{"wildcard host", "", "allowedRedirectHosts: ['*.example.com', https://a.example.com, a.example.com/x, 'a.example.com:']\n", []string{
			`line 10: allowedRedirectHosts[0]: must be a host name such as app2.example.com (or name:port), exactly: no scheme, path or wildcard; got "*.example.com"`,
			`line 10: allowedRedirectHosts[1]: must be a host name such as app2.example.com (or name:port), exactly: no scheme, path or wildcard; got "https://a.example.com"`,
			`line 10: allowedRedirectHosts[2]: must be a host name such as app2.example.com (or name:port), exactly: no scheme, path or wildcard; got "a.example.com/x"`,
			`line 10: allowedRedirectHosts[3]: must be a host name such as app2.example.com (or name:port), exactly: no scheme, path or wildcard; got "a.example.com:"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			text := strings.Replace(minimal, "session:\n", "session:\n"+tt.session, 1) + tt.extra
			_, err := ParseWithEnv([]byte(text), "/srv", noEnv)
			if diff := cmp.Diff(tt.want, problemLines(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
