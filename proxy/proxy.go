// Package proxy owns the request chain of the public listener: request
// scope and access log, the own routes (/saml/ is delegated to an
// Authenticator), route policy, the session check, group authorisation,
// identity-header injection and the reverse proxy to the upstream. It also
// serves the admin listener's health endpoints. It declares the small
// interfaces it needs and never imports the packages that satisfy them.
package proxy

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// sessionCacheSize bounds the verified-session cache (about 300 bytes an entry).
const sessionCacheSize = 10000

// Authenticator is the sign-in side (samlsp satisfies it).
type Authenticator interface {
	// ServeHTTP serves the sign-in endpoints under /saml/.
	http.Handler
	// StartLogin sends the browser to the identity provider, to come back to returnTo.
	StartLogin(w http.ResponseWriter, r *http.Request, returnTo string)
	// Ready is nil once sign-in can work (IdP metadata loaded). Its error
	// is shown to operators on /readyz, so it must hold no secrets.
	Ready() error
}

// Organizations says which sessions a request may use when one proxy
// serves several organizations (samlsp satisfies it).
type Organizations interface {
	// Admits reports whether a session of organization org is one on a
	// request for host: the organization is served, and host is not a
	// host of another organization.
	Admits(host, org string) bool
}

// Options wires a Proxy.
type Options struct {
	Config   *config.Config
	Auth     Authenticator
	Sessions *session.Codec
	// OwnCookiePrefixes are further cookie-name prefixes that never reach
	// the upstream (the SAML tracking cookies).
	OwnCookiePrefixes []string
	Logger            *zap.Logger // named "proxy"
	Access            *zap.Logger // named "access"
	Audit             *zap.Logger // named "audit"
	// Organizations, when set, scopes sessions to their organization.
	Organizations Organizations
	// Gate, when set, is consulted on every authenticated request
	// (config scim.* says how).
	Gate Gate
	// Freshness, when set, says how current the Gate's view is; past
	// Config.Store.MaxStaleness the gate fails closed (503).
	Freshness Freshness
	// SCIM, when set, serves Config.SCIM.BasePath without a login (it does
	// its own bearer-token authentication).
	SCIM http.Handler
	// Metrics, when set, counts requests by outcome and the proxy's overhead.
	Metrics *metrics.Metrics
	// IdentityKeys sign the identity token, newest first (the first signs,
	// all are published); required when Config.IdentityToken is enabled.
	IdentityKeys []*ecdsa.PrivateKey
	// Revocations, when set, says which sessions were ended one by one
	// (Single Logout, an admin's revocation); scimsync.Directory satisfies it.
	Revocations Revocations
	// Transport overrides the upstream transport (tests).
	Transport http.RoundTripper
	Now       func() time.Time
}

// Proxy is the public-listener handler.
type Proxy struct {
	cfg      *config.Config
	auth     Authenticator
	sessions *session.Codec
	log      *zap.Logger
	access   *zap.Logger
	audit    *zap.Logger
	now      func() time.Time
	metrics  *metrics.Metrics // nil: not counted

	orgs     Organizations // nil: one organization, every session admitted
	gate     *gatePolicy
	scim     http.Handler
	scimBase string
	streams  *streamSet
	cache    *sessionCache
	revoked  Revocations // nil: sessions end only by expiry and the gate
	// sessionStreams are the open streams by session ID, closed when
	// that one session ends.
	sessionStreams *streamSet

	routes  *routeTable
	headers *headerPlan
	// signer mints identity tokens; nil when identityToken is off.
	signer      *tokenSigner
	tokenHeader string // canonical identityToken.header
	defaultAud  string // identityToken.audience or publicURL
	cookies     cookieFilter
	rp          *httputil.ReverseProxy
	steps       []step
	faSteps     []step // forward-auth's (buildForwardAuthSteps)
	// groupWarn logs group names the groups header leaves out.
	groupWarn *groupWarner
	handler   http.Handler
}

// New builds the proxy from a validated config.
func New(o Options) (*Proxy, error) {
	if o.Config == nil || o.Auth == nil || o.Sessions == nil {
		return nil, errors.New("proxy: Config, Auth and Sessions are required")
	}
	if o.Gate != nil && !o.Config.SCIM.Enabled {
		return nil, errors.New("proxy: a Gate needs scim.enabled in the config")
	}
	if o.Config.UpstreamURL == nil && !o.Config.ForwardAuth.Enabled {
		return nil, errors.New("proxy: config has no parsed upstream URL")
	}
	p := &Proxy{
		cfg:            o.Config,
		auth:           o.Auth,
		sessions:       o.Sessions,
		log:            nopIfNil(o.Logger),
		access:         nopIfNil(o.Access),
		audit:          nopIfNil(o.Audit),
		now:            o.Now,
		metrics:        o.Metrics,
		orgs:           o.Organizations,
		gate:           newGatePolicy(o.Gate, o.Freshness, o.Config.SCIM, o.Config.Store),
		scim:           o.SCIM,
		scimBase:       o.Config.SCIM.BasePath,
		streams:        newStreamSet(),
		cache:          newSessionCache(sessionCacheSize),
		revoked:        o.Revocations,
		sessionStreams: newExactStreamSet(),
		routes:         newRouteTable(o.Config.Routes, o.Config.UpstreamPathParameters),
		headers:        newHeaderPlan(o.Config.Headers, tokenHeaderOf(o.Config)),
		cookies: cookieFilter{
			session:  o.Sessions.IsSessionCookie,
			prefixes: o.OwnCookiePrefixes,
		},
	}
	if p.now == nil {
		p.now = time.Now
	}
	if err := p.setupIdentityToken(o.IdentityKeys); err != nil {
		return nil, err
	}
	p.steps, p.faSteps = p.buildSteps(), p.buildForwardAuthSteps()
	p.groupWarn = &groupWarner{log: p.log, seen: map[string]struct{}{}}
	p.handler = p.recoverer(p.scope(p.bodyIdle(http.HandlerFunc(p.serve))))
	if o.Config.UpstreamURL == nil {
		return p, nil // forward-auth only
	}
	transport := o.Transport
	if transport == nil {
		var err error
		if transport, err = newUpstreamTransport(o.Config, p.log); err != nil {
			return nil, err
		}
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       p.rewrite,
		Transport:     transport,
		ErrorHandler:  p.upstreamError,
		BufferPool:    newBufferPool(),
		ErrorLog:      zap.NewStdLog(p.log.Named("reverseproxy")),
		FlushInterval: 0, // text/event-stream responses are flushed at once by ReverseProxy itself
	}
	return p, nil
}

func nopIfNil(l *zap.Logger) *zap.Logger {
	if l == nil {
		return zap.NewNop()
	}
	return l
}

// ServeHTTP serves the public listener.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// CloseStreams ends every open WebSocket and SSE stream of the user whose
// match key is key. The directory calls it when it removes a user.
func (p *Proxy) CloseStreams(key string) {
	if n := p.streams.closeAll(key); n > 0 {
		p.metrics.StreamsClosed(n)
		p.audit.Info("streams closed", zap.String("event", "streams_closed"), zap.String("match_key", key), zap.Int("count", n))
	}
}

// CloseSessionStreams ends every open WebSocket and SSE stream of the
// session with this ID. The directory calls it when the session ends.
func (p *Proxy) CloseSessionStreams(sessionID string) {
	if n := p.sessionStreams.closeAll(sessionID); n > 0 {
		p.metrics.StreamsClosed(n)
		p.audit.Info("streams closed", zap.String("event", "streams_closed"), zap.String("session_id", sessionID), zap.Int("count", n))
	}
}

// loginRequired redirects a browser navigation to the IdP and answers
// anything else (API calls, XHR, non-GET) with 401, since a redirect to an
// IdP is useless to them.
func (p *Proxy) loginRequired(w http.ResponseWriter, r *http.Request) {
	if isBrowserNavigation(r) {
		p.auth.StartLogin(w, r, r.URL.RequestURI())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("401 unauthorized: sign in first (request ID " + web.RequestID(r.Context()) + ")\n"))
}

func isBrowserNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if strings.EqualFold(r.Header.Get("X-Requested-With"), "XMLHttpRequest") {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && mode != "navigate" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// rewrite prepares the upstream request. ReverseProxy has already removed
// hop-by-hop headers (including any named in Connection) and the inbound
// X-Forwarded-* and Forwarded headers before calling it, so nothing a client
// sends can remove what we set here.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	prefix := p.cfg.UpstreamPathPrefix
	if prefix != "" { // withinPrefix let only paths inside it through
		trimPrefix(pr.Out.URL, prefix)
	}
	pr.SetURL(p.cfg.UpstreamURL)
	if p.cfg.PreserveHost {
		pr.Out.Host = pr.In.Host
	}
	peer := peerAddr(pr.In)
	if p.trusted(peer) {
		if v := pr.In.Header["X-Forwarded-For"]; len(v) > 0 {
			pr.Out.Header["X-Forwarded-For"] = v
		}
	}
	pr.SetXForwarded()
	if p.trusted(peer) {
		if v := pr.In.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
			pr.Out.Header.Set("X-Forwarded-Proto", v)
		}
		if v := pr.In.Header.Get("X-Forwarded-Host"); v != "" {
			pr.Out.Header.Set("X-Forwarded-Host", v)
		}
	} else {
		// Behind no trusted proxy the browser reached us at publicURL.
		// Frameworks build links from these (Spring's
		// ForwardedHeaderFilter, Rails, Express behind 'trust proxy'), so
		// a client's own must never arrive.
		pr.Out.Header.Set("X-Forwarded-Proto", p.cfg.Public.Scheme)
		pr.Out.Header.Del("X-Real-Ip")
		pr.Out.Header.Del("X-Forwarded-Prefix")
		pr.Out.Header.Del("X-Forwarded-Port")
	}
	if prefix != "" {
		pr.Out.Header.Set("X-Forwarded-Prefix", pr.Out.Header.Get("X-Forwarded-Prefix")+prefix)
	}
	st := stateOf(pr.In.Context())
	if applyIdentity(pr.Out.Header, p.headers, p.cookies, st.x.who) {
		p.groupWarn.note(st.x.who.Groups)
	}
	if st.x.token[0] != "" {
		pr.Out.Header[p.tokenHeader] = st.x.token[:1:1]
	}
	// From here the time is the upstream's (see observe).
	st.upstreamStart = sinceEpoch(p.now())
}

func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	id := web.RequestID(r.Context())
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody is left to read a page.
		w.WriteHeader(499)
		return
	}
	stateOf(r.Context()).outcome = metrics.OutcomeUpstreamError
	if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
		p.log.Warn("upstream timeout", zap.String("request_id", id), zap.Error(err))
		web.Page(w, r, http.StatusGatewayTimeout, "Gateway timeout",
			"The application did not answer in time. Try again in a moment.")
		return
	}
	p.log.Warn("upstream error", zap.String("request_id", id), zap.Error(err))
	web.Page(w, r, http.StatusBadGateway, "Bad gateway",
		"The application is not reachable right now. Try again in a moment.")
}

// trimPrefix removes prefix (plain unreserved characters, so the same
// escaped or not) from the start of u's path.
func trimPrefix(u *url.URL, prefix string) {
	u.Path = strings.TrimPrefix(u.Path, prefix)
	if u.Path == "" {
		u.Path = "/"
	}
	if u.RawPath != "" {
		u.RawPath = strings.TrimPrefix(u.RawPath, prefix)
		if u.RawPath == "" || u.RawPath == "/" {
			u.RawPath = ""
		}
	}
}
