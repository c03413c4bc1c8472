package proxy

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// The public listener's chain, outermost first:
//
//	recoverer → scope → bodyIdle → serve:
//	    ownRoute → [withinPrefix] → routePolicy → authenticate → gateCheck → requireSignIn → authorize → [identityToken] → forward
//
// The first three are http.Handler middleware. After the own routes (/saml/,
// SCIM), every request passes the steps below in order; each does one job
// and either lets the request go on (true) or answers it (false). A new
// concern (an organization check, a signed identity token) is one more step
// in Proxy.steps, not a branch inside another.
type step func(*exchange) bool

// exchange is one request on its way through the steps: what each step
// decided, for the steps after it. Each field has one writer, named beside
// it. It lives in the request's scope allocation, so it costs nothing.
type exchange struct {
	w   http.ResponseWriter
	r   *http.Request
	now time.Time // one clock for the session's expiry and the view's staleness

	policy  policy           // routePolicy
	session *session.Session // authenticate; nil: no valid session
	ended   bool             // authenticate: the session was ended one by one (gateCheck drops it)
	// who is who the request goes upstream as; nil: nobody. authenticate
	// sets it from the session, gateCheck replaces it with the directory's
	// view (or nil on a public route), forward's rewrite injects it.
	who    *identity.Principal
	merged identity.Principal // gateCheck's storage for who, so it does not allocate
	scimID string             // gateCheck: the directory's id for who, "" if none
	// token is the signed identity token for who (identityToken), in a
	// one-element array so that the header's value needs no allocation.
	token [1]string
	// fa is set when the request is a forward-auth question (forwardAuth):
	// the steps then answer with refuse and signIn's forward-auth statuses.
	fa     *faCall
	faCall faCall // fa's storage
}

func (p *Proxy) buildSteps() []step {
	steps := []step{p.routePolicy, p.authenticate, p.gateCheck, p.requireSignIn, p.authorize}
	if p.cfg.UpstreamPathPrefix != "" {
		steps = append([]step{p.withinPrefix}, steps...)
	}
	if p.signer != nil {
		steps = append(steps, p.identityToken)
	}
	return steps
}

// buildForwardAuthSteps are the steps for a request an ingress describes:
// those of proxy mode but withinPrefix (upstreamPathPrefix is about this
// proxy's own upstream).
func (p *Proxy) buildForwardAuthSteps() []step {
	steps := []step{p.routePolicy, p.authenticate, p.gateCheck, p.requireSignIn, p.authorize}
	if p.signer != nil {
		steps = append(steps, p.identityToken)
	}
	return steps
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if p.ownRoute(w, r) {
		return
	}
	if p.rp == nil { // forward-auth only: no upstream
		web.Page(w, r, http.StatusNotFound, "Not found", "There is no page at this address.")
		return
	}
	st := stateOf(r.Context())
	x := &st.x
	x.w, x.r, x.now = w, r, p.now()
	for _, s := range p.steps {
		if !s(x) {
			return
		}
	}
	p.forward(x)
}

// ownRoute serves /saml/ (the Authenticator), the SCIM base path and the
// identity token's key set; the outcome stays OutcomeOther for them.
func (p *Proxy) ownRoute(w http.ResponseWriter, r *http.Request) bool {
	path := r.URL.Path
	switch {
	case path == jwksPath && p.signer != nil:
		p.signer.serveJWKS(w, r)
	case p.isForwardAuth(path):
		p.forwardAuth(w, r)
	case strings.HasPrefix(path, "/saml/"):
		p.auth.ServeHTTP(w, r)
	case p.scim != nil && (path == p.scimBase || strings.HasPrefix(path, p.scimBase) && path[len(p.scimBase)] == '/'):
		p.scim.ServeHTTP(w, r)
	default:
		return false
	}
	return true
}

// withinPrefix answers 404 for a path outside upstreamPathPrefix: the app
// has nothing there. It compares the escaped path, so an encoded spelling of
// the prefix is outside it too.
func (p *Proxy) withinPrefix(x *exchange) bool {
	if inPrefix(x.r.URL.EscapedPath(), p.cfg.UpstreamPathPrefix) {
		return true
	}
	web.Page(x.w, x.r, http.StatusNotFound, "Not found", "There is no page at this address.")
	return false
}

func inPrefix(path, prefix string) bool {
	return strings.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/')
}

// routePolicy finds the route; a path that could be read two ways is 400.
func (p *Proxy) routePolicy(x *exchange) bool {
	pol, err := p.routes.decide(x.r.URL)
	if err != nil {
		p.log.Debug("refused ambiguous path", zap.String("request_id", web.RequestID(x.r.Context())))
		p.refuse(x, http.StatusBadRequest, "Bad request", "The request path is not acceptable.")
		return false
	}
	x.policy = pol
	return true
}

// authenticate reads the session cookie. Two different session cookies
// are refused (400) rather than guessed between; cookies of legacy names
// are expired in the browser.
func (p *Proxy) authenticate(x *exchange) bool {
	s, dup := p.readSession(x.r, x.now)
	if dup {
		stateOf(x.r.Context()).outcome = metrics.OutcomeLoginRequired
		p.audit.Info("session rejected",
			zap.String("event", "session_rejected"),
			zap.String("reason", "duplicate_cookie"),
			zap.String("request_id", web.RequestID(x.r.Context())))
		p.refuse(x, http.StatusBadRequest, "Bad request",
			"Your browser sent two different sign-in cookies for this site. Clear this site's cookies and sign in again.")
		return false
	}
	if x.fa == nil { // an ingress would hand the cookie to the app's host
		p.sessions.ClearLegacy(x.w, x.r)
	}
	if s != nil && p.orgs != nil && !p.orgs.Admits(x.r.Host, s.Principal.Org) {
		// Another organization's session on a host of one organization,
		// or a session of an organization no longer served: no session.
		p.audit.Info("session rejected",
			zap.String("event", "session_rejected"),
			zap.String("reason", "organization"),
			zap.String("organization", s.Principal.Org),
			zap.String("user", s.Principal.User),
			zap.String("request_id", web.RequestID(x.r.Context())))
		s = nil
	}
	x.ended = s != nil && p.revoked != nil && p.revoked.OrgSessionRevoked(orgOf(&s.Principal), s.ID)
	if x.ended && p.gate == nil {
		p.refuseEnded(x, s)
		s = nil
	}
	x.session = s
	if s != nil {
		x.who = &s.Principal
		stateOf(x.r.Context()).user = s.Principal.User
	}
	return true
}

// refuseEnded drops a session that was ended one by one (a logout on
// another replica, Single Logout, an admin): the request goes on without
// it, so a protected route asks for a new sign-in.
func (p *Proxy) refuseEnded(x *exchange, s *session.Session) {
	p.audit.Info("session rejected",
		zap.String("event", "session_rejected"),
		zap.String("reason", "session_ended"),
		zap.String("request_id", web.RequestID(x.r.Context())),
		zap.String("session_id", s.ID),
		zap.String("user", s.Principal.User))
	if x.fa == nil {
		p.sessions.Clear(x.w, x.r)
	}
}

// gateCheck asks the directory whether the session's user may still get
// in. On a public route a refusal only makes the request anonymous.
func (p *Proxy) gateCheck(x *exchange) bool {
	if p.gate == nil || x.session == nil {
		return true
	}
	s := x.session
	v, standing, allowed := p.gate.check(&s.Principal, s.IssuedAt, x.now, &x.merged)
	switch {
	case v == verdictAllow && x.ended:
		// Ended one by one (a logout, Single Logout, an admin): go on
		// without it, so a protected route asks for a new sign-in. A user
		// the directory removed still gets the removed page below.
		p.refuseEnded(x, s)
		x.session, x.who = nil, nil
		return true
	case v == verdictAllow:
		x.who, x.scimID = allowed, standing.ID
		return true
	case x.policy.Public:
		x.who = nil // serve it, but as nobody
		return true
	case v == verdictSessionVoided:
		stateOf(x.r.Context()).outcome = metrics.OutcomeLoginRequired
		p.metrics.SessionRevoked()
		p.audit.Info("session rejected",
			zap.String("event", "session_rejected"),
			zap.String("reason", "revoked"),
			zap.String("request_id", web.RequestID(x.r.Context())),
			zap.String("user", s.Principal.User))
		if x.fa == nil {
			p.sessions.Clear(x.w, x.r)
		}
		p.signIn(x)
		return false
	}
	stateOf(x.r.Context()).outcome = verdictOutcome(v)
	p.deny(x, v, standing.State, s.Principal.User)
	return false
}

// requireSignIn sends a request without a principal to sign in, unless the
// route is public.
func (p *Proxy) requireSignIn(x *exchange) bool {
	if x.who != nil || x.policy.Public {
		return true
	}
	stateOf(x.r.Context()).outcome = metrics.OutcomeLoginRequired
	p.signIn(x)
	return false
}

// authorize applies the route's allowGroups.
func (p *Proxy) authorize(x *exchange) bool {
	pol := x.policy
	reason := "group"
	switch {
	case x.who == nil:
		return true
	case len(pol.AllowOrgs) > 0 && !slices.Contains(pol.AllowOrgs, x.who.Org):
		reason = "organization"
	case len(pol.AllowGroups) == 0 || inAnyGroup(x.who.Groups, pol.AllowGroups):
		return true
	}
	stateOf(x.r.Context()).outcome = metrics.OutcomeDeniedGroup
	p.audit.Info("access denied",
		zap.String("event", "access_denied"),
		zap.String("reason", reason),
		zap.String("organization", x.who.Org),
		zap.String("request_id", web.RequestID(x.r.Context())),
		zap.String("user", x.who.User),
		zap.String("route", pol.Route))
	p.refuse(x, http.StatusForbidden, "No access",
		"You are signed in, but you do not have access to this page.")
	return false
}

// forward sends the request upstream as x.who (rewrite reads it from the
// request state, which saves a context and a request copy per request). A
// signed-in stream (WebSocket, SSE) is registered so that the directory can
// close it when the user is removed.
func (p *Proxy) forward(x *exchange) {
	r := x.r
	if x.who != nil && p.gate != nil && isStream(r) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer p.streams.add(identity.OrgKey(orgOf(x.who), p.gate.key(x.who)), cancel)()
		if p.revoked != nil && x.session != nil {
			defer p.sessionStreams.add(x.session.ID, cancel)()
		}
		r = r.WithContext(ctx)
	}
	st := stateOf(r.Context())
	st.outcome = metrics.OutcomeAllowed // upstreamError may still change it
	dropForeignUpgrade(r.Header)
	p.rp.ServeHTTP(x.w, r)
	st.upstreamEnd = sinceEpoch(p.now())
}

func inAnyGroup(have, allow []string) bool {
	for _, g := range have {
		if slices.Contains(allow, g) {
			return true
		}
	}
	return false
}
