package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/portcullis-sso/portcullis/internal/web"
)

// describedRequest rebuilds the request an ingress asks about. The
// describing headers count only from trustedProxies; from anyone else, and
// from a trusted caller that sends none, the request is judged as a request
// for /.portcullis/auth itself, so a client cannot choose the URL that is
// judged. ok is false when a trusted caller's description is in doubt: a
// header that does not parse, two values where one is expected, two
// conventions at once.
//
//   - Envoy ext_authz (path_prefix /.portcullis/auth/envoy): the original
//     path and query follow the prefix; method and Host are the original's.
//   - Traefik, Caddy: X-Forwarded-Method, -Proto, -Host and -Uri.
//   - nginx, ingress-nginx: X-Original-URL and X-Original-Method.
func (p *Proxy) describedRequest(r *http.Request) (*http.Request, faCall, bool) {
	call := faCall{trusted: p.trusted(peerAddr(r))}
	out := new(http.Request)
	*out = *r // shares the header (cookies, Accept) with the caller's request
	out.URL = &url.URL{Path: faPath}
	call.uri = faPath
	if !call.trusted {
		return out, call, true
	}
	h := r.Header
	envoy := r.URL.Path != faPath
	_, hasURI := h["X-Forwarded-Uri"]
	_, hasOrig := h["X-Original-Url"]
	switch btoi(envoy) + btoi(hasURI) + btoi(hasOrig) {
	case 0:
		return out, call, true // no description: a request for the endpoint itself
	case 1:
	default:
		return out, call, false // two conventions at once: a doubt
	}
	method, scheme, host, uri, ok := p.conventionOf(r, envoy, hasURI, hasOrig, &call)
	if !ok || len(method) > 32 || !web.IsToken(method) || (scheme != "http" && scheme != "https") || !web.PlainHost(host) {
		return out, call, false
	}
	u, err := url.ParseRequestURI(uri)
	// "//host/x" is a path to us, but reads as a scheme-relative URL to
	// much else: a doubt.
	if err != nil || !strings.HasPrefix(uri, "/") || strings.HasPrefix(uri, "//") || u.Host != "" || strings.ContainsAny(uri, "#\\") {
		return out, call, false
	}
	out.Method, out.Host, out.URL = method, host, u
	call.scheme, call.host, call.uri = scheme, host, uri
	return out, call, true
}

// conventionOf reads the original method, scheme, host and URI the way
// the calling ingress describes them; ok is false when no convention
// applies or its headers do not parse.
func (p *Proxy) conventionOf(r *http.Request, envoy, hasURI, hasOrig bool, call *faCall) (method, scheme, host, uri string, ok bool) {
	h := r.Header
	switch {
	case envoy:
		call.handsOn = true
		uri = strings.TrimPrefix(r.URL.EscapedPath(), faEnvoy)
		if uri == "" {
			uri = "/"
		}
		if r.URL.RawQuery != "" || r.URL.ForceQuery {
			uri += "?" + r.URL.RawQuery
		}
		method, host, scheme, ok = r.Method, r.Host, p.cfg.Public.Scheme, true
		if _, set := h["X-Forwarded-Proto"]; set {
			scheme, ok = one(h, "X-Forwarded-Proto")
		}
	case hasURI:
		call.handsOn = true
		var oks [4]bool
		method, oks[0] = one(h, "X-Forwarded-Method")
		scheme, oks[1] = one(h, "X-Forwarded-Proto")
		host, oks[2] = one(h, "X-Forwarded-Host")
		uri, oks[3] = one(h, "X-Forwarded-Uri")
		ok = oks == [4]bool{true, true, true, true}
	case hasOrig:
		orig, okURL := one(h, "X-Original-Url")
		var okMethod bool
		method, okMethod = one(h, "X-Original-Method")
		scheme, host, uri, ok = splitAbsolute(orig)
		ok = ok && okURL && okMethod
	}
	return method, scheme, host, uri, ok
}

// one returns the single value of a header: false when it is missing, empty
// or sent more than once.
func one(h http.Header, name string) (string, bool) {
	vs := h[name]
	if len(vs) != 1 || vs[0] == "" {
		return "", false
	}
	return vs[0], true
}

// splitAbsolute splits an absolute URL into its scheme, host (as written:
// plainHost judges it) and request URI; false when it has no "://".
func splitAbsolute(s string) (scheme, host, uri string, ok bool) {
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", "", "", false
	}
	rest := s[i+3:]
	j := strings.IndexAny(rest, "/?#")
	if j < 0 {
		j = len(rest)
	}
	host, uri = rest[:j], rest[j:]
	switch {
	case uri == "":
		uri = "/"
	case uri[0] == '?':
		uri = "/" + uri
	}
	return strings.ToLower(s[:i]), host, uri, true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
