package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// Forward-auth: an ingress asks /.portcullis/auth whether to let a request
// through, describing it in headers. The request it describes is rebuilt
// and judged by the same steps as in proxy mode (route policy, session,
// gate, sign-in, groups, identity token); only the answers differ: 200 with
// the identity headers, 401 (or 302 to sign in), 403, and nothing else.
// ForwardAuthPath is the forward-auth endpoint's path; requests for it
// and below it are all forward-auth's.
const ForwardAuthPath = faPath

const (
	faPath     = "/.portcullis/auth"
	faEnvoy    = "/.portcullis/auth/envoy" // ext_authz path_prefix: the original path follows
	faReserved = "/.portcullis/"
)

// faCall is what forward-auth knows about its caller, for the steps'
// answers.
type faCall struct {
	trusted bool // the peer is in trustedProxies
	// handsOn: the caller hands the answer to the browser as it is
	// (Traefik, Caddy, Envoy), so a sign-in can be a 302.
	handsOn bool
	// The original URL, for /saml/login?rd=: uri, and scheme and host when
	// they are not publicURL's (see returnTo). Kept apart so that an
	// allowed request, which never needs it, builds no string.
	scheme, host, uri string
}

// returnTo is the original URL: a path on publicURL's origin, or absolute.
func (c *faCall) returnTo(public *url.URL) string {
	if c.host == "" || strings.EqualFold(c.host, public.Host) && c.scheme == public.Scheme {
		return c.uri
	}
	return c.scheme + "://" + c.host + c.uri
}

// isForwardAuth reports whether path is the forward-auth endpoint's.
func (p *Proxy) isForwardAuth(path string) bool {
	return p.cfg.ForwardAuth.Enabled && strings.HasPrefix(path, faReserved)
}

// forwardAuth answers an ingress's auth subrequest.
func (p *Proxy) forwardAuth(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path != faPath && path != faEnvoy && !strings.HasPrefix(path, faEnvoy+"/") {
		web.Page(w, r, http.StatusNotFound, "Not found", "There is no page at this address.")
		return
	}
	st := stateOf(r.Context())
	x := &st.x
	x.w, x.r, x.now = w, r, p.now()
	orig, call, ok := p.describedRequest(r)
	x.faCall = call
	x.fa = &x.faCall // in the scope's allocation: no allocation of its own
	if !ok {
		p.faRefuse(x, http.StatusBadRequest, "", "")
		return
	}
	x.r = orig
	for _, s := range p.faSteps {
		if !s(x) {
			return
		}
	}
	p.faAllow(x)
}

// faAllow is the 200: every configured identity header (empty when the
// field is unknown or nobody is signed in, so that an ingress copying them
// always overwrites a client's) and, for a trusted caller, the token.
func (p *Proxy) faAllow(x *exchange) {
	st := stateOf(x.r.Context())
	st.outcome = metrics.OutcomeAllowed
	h := x.w.Header()
	setIdentityAnswer(h, p.headers, x.who)
	if p.signer != nil {
		h[p.tokenHeader] = x.token[:1:1] // "" unless minted (identityToken)
	}
	h["Cache-Control"] = noStore[:1:1]
	x.w.WriteHeader(http.StatusOK)
}

// faRefuse maps a step's refusal onto the statuses every ingress takes:
// 403 for the gate and the route policy (and a stale directory, which must
// not loop through sign-in), 401 for anything else — a request that could
// not be read is never let through.
func (p *Proxy) faRefuse(x *exchange, status int, title, msg string) {
	if status == http.StatusForbidden || status == http.StatusServiceUnavailable {
		web.Page(x.w, x.r, http.StatusForbidden, title, msg)
		return
	}
	p.faUnauthorized(x)
}

// faSignIn: a browser navigation through a caller that hands the answer on
// gets 302 to Portcullis's own sign-in (the tracking cookie must be set on
// Portcullis's host, not the app's); everyone else 401.
func (p *Proxy) faSignIn(x *exchange) {
	if x.fa.handsOn && isBrowserNavigation(x.r) {
		h := x.w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Location", p.signInURL(x.fa.returnTo(p.cfg.Public)))
		x.w.WriteHeader(http.StatusFound)
		return
	}
	p.faUnauthorized(x)
}

func (p *Proxy) signInURL(returnTo string) string {
	return p.cfg.Public.String() + "/saml/login?rd=" + url.QueryEscape(returnTo)
}

// faUnauthorized is the 401. Its X-Portcullis-Signin header is the sign-in
// URL for the original request, rd encoded (nginx cannot encode it, so its
// error_page redirects there: auth_request_set).
func (p *Proxy) faUnauthorized(x *exchange) {
	if st := stateOf(x.r.Context()); st.outcome == metrics.OutcomeOther {
		st.outcome = metrics.OutcomeLoginRequired
	}
	h := x.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Portcullis-Signin", p.signInURL(x.fa.returnTo(p.cfg.Public)))
	x.w.WriteHeader(http.StatusUnauthorized)
	_, _ = x.w.Write([]byte("401 unauthorized: sign in first (request ID " + web.RequestID(x.r.Context()) + ")\n"))
}

// refuse answers a refused request: a page in proxy mode, the forward-auth
// status in forward-auth.
func (p *Proxy) refuse(x *exchange, status int, title, msg string) {
	if x.fa != nil {
		p.faRefuse(x, status, title, msg)
		return
	}
	web.Page(x.w, x.r, status, title, msg)
}

// signIn answers a request that needs a signed-in user.
func (p *Proxy) signIn(x *exchange) {
	if x.fa != nil {
		p.faSignIn(x)
		return
	}
	p.loginRequired(x.w, x.r)
}
