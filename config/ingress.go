package config

// The settings that fit Portcullis to an ingress and to the apps behind it:
// the identity token, forward-auth, and sign-in across hosts.

import (
	"fmt"
	"net/textproto"
	"strings"
	"time"
)

// Identity token defaults.
const (
	DefaultIdentityTokenHeader   = "X-Portcullis-Identity"
	DefaultIdentityTokenLifetime = 5 * time.Minute
)

// IdentityToken configures the signed identity token (an ES256 JWT) sent
// upstream with every signed-in request, so that an app can verify who the
// request is for even when it can be reached around the proxy.
type IdentityToken struct {
	Header   string        `yaml:"header"`   // default X-Portcullis-Identity
	KeysFile string        `yaml:"keysFile"` // PEM EC P-256 private keys, newest (signing) first
	Lifetime time.Duration `yaml:"lifetime"` // default 5m
	Audience string        `yaml:"audience"` // default publicURL; routes[].audience overrides

	// Enabled is true when the identityToken key is present.
	Enabled bool `yaml:"-"`
}

func (c *Config) identityTokenDefaults(explicit map[string]bool) {
	it := &c.IdentityToken
	it.Enabled = explicit["identityToken"]
	if it.Header == "" {
		it.Header = DefaultIdentityTokenHeader
	}
	if !explicit["identityToken.lifetime"] {
		it.Lifetime = DefaultIdentityTokenLifetime
	}
}

// TokenAudience is the aud of identity tokens on the route with audience
// routeAudience ("" when it has none): the route's, else
// identityToken.audience, else publicURL.
func (c *Config) TokenAudience(routeAudience string) string {
	switch {
	case routeAudience != "":
		return routeAudience
	case c.IdentityToken.Audience != "":
		return c.IdentityToken.Audience
	case c.Public != nil:
		return c.Public.String()
	}
	return ""
}

func (v *validator) identityToken() {
	it := v.c.IdentityToken
	for i, r := range v.c.Routes {
		if r.Audience != "" && !it.Enabled {
			v.add(fmt.Sprintf("routes[%d].audience", i), "applies to the identity token only; configure identityToken or remove it")
		} else if r.Audience != "" {
			v.audience(fmt.Sprintf("routes[%d].audience", i), r.Audience)
		}
	}
	if !it.Enabled {
		return
	}
	if it.KeysFile == "" {
		v.add("identityToken.keysFile", "required: the identity key file (`portcullis keys` writes identity.keys)")
	}
	if !isToken(it.Header) {
		v.add("identityToken.header", "must be an HTTP header name; got %q", it.Header)
	} else if norm := normalHeader(it.Header); forbiddenHeaders[norm] || strings.HasPrefix(norm, "proxy-") {
		v.add("identityToken.header", "%s cannot carry the token: it is hop-by-hop, frames the request or is set by the proxy", it.Header)
	} else {
		for name := range v.c.Headers {
			if normalHeader(name) == norm {
				v.add("identityToken.header", "same header as headers.%s", textproto.CanonicalMIMEHeaderKey(name))
			}
		}
	}
	if it.Lifetime < 30*time.Second || it.Lifetime > time.Hour {
		v.add("identityToken.lifetime", "must be between 30s and 1h; got %s", it.Lifetime)
	}
	if it.Audience != "" {
		v.audience("identityToken.audience", it.Audience)
	}
}

// audience accepts a printable string without spaces: a URL or any other
// name the app checks for.
func (v *validator) audience(path, s string) {
	if len(s) > 1024 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		v.add(path, "must be a URL or name without spaces or control characters, at most 1024 bytes; got %q", truncate(s, 60))
	}
}

// ForwardAuth configures the forward-auth endpoint: with it on, the public
// listener answers /.portcullis/auth for an ingress (nginx auth_request,
// Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz) and upstream
// may be left out.
type ForwardAuth struct {
	Enabled bool `yaml:"enabled"`
}

// crossHost checks session.cookieDomain and allowedRedirectHosts.
func (v *validator) crossHost() {
	c := v.c
	if d := c.Session.CookieDomain; d != "" {
		name := strings.TrimPrefix(d, ".")
		switch {
		case !hostName(name) || !strings.Contains(name, "."):
			v.add("session.cookieDomain", "must be a domain such as .example.com; got %q", d)
		case strings.HasPrefix(c.Session.CookieName, HostCookiePrefix):
			v.add("session.cookieName", "a %s cookie cannot have a Domain; leave cookieName unset or pick another name with session.cookieDomain", HostCookiePrefix)
		case c.Public != nil && !domainMatch(strings.ToLower(c.Public.Hostname()), strings.ToLower(name)):
			v.add("session.cookieDomain", "%s does not cover publicURL's host %s, so browsers would refuse the cookie", d, c.Public.Hostname())
		}
	}
	for i, h := range c.AllowedRedirectHosts {
		host, port, hasPort := strings.Cut(h, ":")
		if !hostName(host) || hasPort && (port == "" || strings.Trim(port, "0123456789") != "") {
			v.add(fmt.Sprintf("allowedRedirectHosts[%d]", i), "must be a host name such as app2.example.com (or name:port), exactly: no scheme, path or wildcard; got %q", h)
		}
	}
}

// hostName accepts a DNS name: labels of letters, digits and "-", no
// leading or trailing dot.
func hostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// domainMatch is RFC 6265's: host is domain or ends with "." + domain.
func domainMatch(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}
