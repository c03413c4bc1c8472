// Package samlsp owns the SAML 2.0 service provider: the SP key pair and
// metadata, IdP metadata loading and refresh, starting a login (a signed
// HTTP-Redirect AuthnRequest tied to a single-use tracking cookie), the
// assertion consumer service with its checks on top of crewjam/saml's
// (tracking, time window, replay, hostile XML), and issuing the session
// cookie. It serves /saml/metadata, /saml/acs, /saml/login and /saml/logout.
//
// It builds on crewjam's root saml.ServiceProvider and never on crewjam's
// samlsp middleware, whose sessions and request tracking are replaced here.
package samlsp

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	"github.com/gorilla/securecookie"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"
	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/redirect"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/internal/web"
)

// Defaults for settings that config loading normally fills; New applies
// them when a Config built in code leaves them at zero.
const (
	// DefaultReplayCacheSize bounds the in-memory replay cache.
	DefaultReplayCacheSize = 100_000
	// maxMetadataBytes bounds an IdP metadata document.
	maxMetadataBytes = 5 << 20
	// metadataRetry is how often Run retries while no metadata is loaded.
	metadataRetry = 30 * time.Second
)

// Paths served by the SP.
const (
	pathMetadata = "/saml/metadata"
	pathACS      = "/saml/acs"
	pathLogin    = "/saml/login"
	pathLogout   = "/saml/logout"
	pathSLO      = "/saml/slo"
)

// Options wires an SP.
type Options struct {
	Config *config.Config
	// Sessions issues the session cookie after a successful ACS.
	Sessions *session.Codec
	// SessionKeys also protect the tracking cookie.
	SessionKeys []session.KeyPair
	// Replay records accepted assertion IDs; nil means an in-memory bounded cache.
	Replay ReplayCache
	// Logger is named "samlsp"; Audit is the audit logger.
	Logger *zap.Logger
	Audit  *zap.Logger
	// HTTPClient fetches IdP metadata; nil means a client with timeouts.
	HTTPClient *http.Client
	// Now is the clock for everything, crewjam's checks included; nil means time.Now.
	Now func() time.Time
	// OnLogin, if set, is called after each accepted login, once the session
	// cookie is written: drift detection and the login ledger hang off it.
	// It must not block for long; it cannot refuse the login.
	OnLogin func(ctx context.Context, l Login)
	// Metrics, if set, counts logins by result and reason, and failed
	// metadata loads.
	Metrics *metrics.Metrics
	// Ender, if set, ends sessions on every replica (logout, Single
	// Logout). Without one a logout clears this browser's cookies only and
	// an IdP's LogoutRequest is answered PartialLogout.
	Ender SessionEnder
}

// SessionEnder ends sessions on every replica (cmd adapts
// scimsync.SessionEnder).
type SessionEnder interface {
	// EndSessions ends the sessions q selects and reports how many it
	// ended; an error means none was.
	EndSessions(ctx context.Context, q EndQuery) (int, error)
}

// EndQuery selects sessions to end, for Reason ("logout", "idp_logout").
type EndQuery struct {
	Org    string
	Reason string
	// Session is a session this browser holds: it ends even if the store
	// never recorded it.
	Session *session.Session
	// IdP and NameID select that principal's sessions from that IdP,
	// narrowed to SessionIndexes when there are any.
	IdP, NameID    string
	SessionIndexes []string
}

// Login describes an accepted login to Options.OnLogin.
type Login struct {
	// Principal is the whole identity the assertion gave, its groups
	// included even when the session cookie does not keep them.
	Principal    identity.Principal
	SessionID    string
	Issued       time.Time
	Expires      time.Time
	IdPInitiated bool
	// SAML is the IdP's names for the session (Single Logout finds it by them).
	SAML session.SAMLSession
}

// SP is the service provider. It is safe for concurrent use.
type SP struct {
	log        *zap.Logger
	audit      *zap.Logger
	sessions   *session.Codec
	replay     ReplayCache
	httpClient *http.Client
	now        func() time.Time
	onLogin    func(ctx context.Context, l Login)
	metrics    *metrics.Metrics // nil: not counted
	ender      SessionEnder     // nil: logout is local only
	clock      *dsig.Clock

	// Settings resolved from the config with defaults applied.
	nameIDFormat saml.NameIDFormat
	// redirects judges return targets: same-origin paths, and absolute URLs
	// on allowedRedirectHosts (an IdP-initiated RelayState: paths only).
	redirects    *redirect.Policy
	skew         time.Duration
	loginWindow  time.Duration
	lifetime     time.Duration
	acsLimit     int64
	refreshEvery time.Duration
	retryEvery   time.Duration
	secure       bool // publicURL is https: tracking cookies are SameSite=None; Secure
	// groupsFromDirectory: SCIM is on with groupsSource scim, so the gate
	// takes every request's groups from the directory and the session
	// cookie does not keep the assertion's (OnLogin still sees them).
	groupsFromDirectory bool

	// key and cert are the SP's own, shared by every connection.
	key  *rsa.PrivateKey
	cert *x509.Certificate
	// conns are the IdP connections, one per organization (orgs.go);
	// setMu serialises their replacement and runner runs their refresh.
	cfg    *config.Config
	conns  atomic.Pointer[connSet]
	setMu  sync.Mutex
	runner orgRunner
	// hints bounds the identifier-first page's lookups per client (choose.go).
	hints *hintLimiter

	trackPrefix string
	trackCodecs []securecookie.Codec

	// parse runs crewjam's response parsing; tests replace it to prove
	// that a panic inside it is contained.
	parse func(sp *saml.ServiceProvider, xml []byte, requestIDs []string) (*saml.Assertion, error)
}

// idpState is one loaded copy of the IdP metadata, swapped atomically.
type idpState struct {
	sp         *saml.ServiceProvider // base plus IDPMetadata; never modified once stored
	ssoURL     string                // HTTP-Redirect SingleSignOnService
	loadedAt   time.Time
	validUntil time.Time // zero: the metadata sets none
	certs      []string  // signing certificates' SHA-256 fingerprints, sorted
}

// New builds an SP from the config: it loads the SP key and certificate but
// not the IdP metadata (see LoadMetadata and Run).
func New(opts Options) (*SP, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("samlsp: no config")
	}
	if cfg.Public == nil {
		return nil, errors.New("samlsp: config has no parsed publicURL")
	}
	if opts.Sessions == nil {
		return nil, errors.New("samlsp: no session codec")
	}
	sp := newWithCollaborators(opts)
	if err := sp.applyConfig(cfg); err != nil {
		return nil, err
	}
	key, cert, err := loadKeyPair(cfg.Resolve(cfg.SAML.KeyFile), cfg.Resolve(cfg.SAML.CertFile))
	if err != nil {
		return nil, err
	}
	sp.trackPrefix = TrackingCookiePrefix(cfg.Session.CookieName)
	if sp.trackCodecs, err = trackingCodecs(opts.SessionKeys); err != nil {
		return nil, err
	}
	sp.key, sp.cert, sp.cfg = key, cert, cfg
	if !cfg.HasDefaultOrg() && len(cfg.Organizations) == 0 && cfg.OrganizationsDir == "" {
		return nil, errors.New("saml: one of idpMetadataURL and idpMetadataFile is required (or organizations)")
	}
	set, err := sp.buildConnSet(cfg, cfg.Organizations, nil)
	if err != nil {
		return nil, err
	}
	sp.conns.Store(set)
	sp.hints = newHintLimiter(sp.now)
	return sp, nil
}

// newWithCollaborators builds the SP from its options' collaborators,
// filling in the ones left out.
func newWithCollaborators(opts Options) *SP {
	sp := &SP{
		log:        opts.Logger,
		audit:      opts.Audit,
		sessions:   opts.Sessions,
		replay:     opts.Replay,
		httpClient: opts.HTTPClient,
		now:        opts.Now,
		onLogin:    opts.OnLogin,
		metrics:    opts.Metrics,
		ender:      opts.Ender,
		parse:      parseWithCrewjam,
	}
	if sp.log == nil {
		sp.log = zap.NewNop()
	}
	if sp.audit == nil {
		sp.audit = zap.NewNop()
	}
	if sp.now == nil {
		sp.now = time.Now
	}
	sp.clock = dsig.NewFakeClock(funcClock{Clock: clockwork.NewRealClock(), now: sp.now})
	if sp.replay == nil {
		sp.replay = newMemoryReplayCache(DefaultReplayCacheSize, sp.now)
	}
	if sp.httpClient == nil {
		sp.httpClient = defaultHTTPClient()
	} else {
		c := *sp.httpClient // the redirect rule holds for any client
		c.CheckRedirect = checkMetadataRedirect
		sp.httpClient = &c
	}
	return sp
}

// applyConfig takes the SP's shared settings from the loaded config
// (defaults were applied once, by config.Load; a hand-built config must set
// what it uses). Each connection's own come from newConn.
func (sp *SP) applyConfig(cfg *config.Config) error {
	s := cfg.SAML
	var err error
	if sp.nameIDFormat, err = nameIDFormat(s.NameIDFormat); err != nil {
		return err
	}
	public := strings.TrimSuffix(cfg.Public.String(), "/")
	sp.redirects = redirect.NewPolicy(cfg.AllowedRedirectHosts, strings.HasPrefix(public, "http://"))
	sp.skew = s.ClockSkew // zero is a valid, explicit setting
	sp.loginWindow = s.LoginWindow
	sp.lifetime = cfg.Session.Lifetime
	sp.refreshEvery = s.MetadataRefresh
	sp.retryEvery = min(metadataRetry, sp.refreshEvery)
	sp.acsLimit = cfg.Server.ACSBodyLimit
	sp.secure = cfg.Public.Scheme == "https"
	sp.groupsFromDirectory = cfg.SCIM.Enabled && cfg.SCIM.GroupsSource == "scim"
	return nil
}

// TrackingCookiePrefix is the prefix of the tracking cookie names for the
// session cookie name, so that the proxy can keep them from the upstream.
func TrackingCookiePrefix(cookieName string) string { return cookieName + "_t_" }

// Ready is nil once IdP metadata is loaded. The error holds no secrets.
// Without a top-level IdP it is always nil: each organization whose
// metadata is missing is reported by Degraded, and only its sign-ins fail.
func (sp *SP) Ready() error {
	if def := sp.conns.Load().def; def != nil {
		return def.ready()
	}
	return nil
}

// MetadataLoadedAt is when the IdP metadata in use was loaded, or the zero
// time if none is (for a metadata-age metric).
func (sp *SP) MetadataLoadedAt() time.Time {
	if def := sp.conns.Load().def; def != nil {
		return def.loadedAt()
	}
	return time.Time{}
}

// ServeHTTP serves the /saml/ endpoints; any other path is a 404 page.
// The default organization's are /saml/metadata and /saml/acs; another
// organization's are /saml/metadata/{id} and /saml/acs/{id}.
func (sp *SP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case pathLogin:
		sp.serveLogin(w, r)
		return
	case pathLogout:
		sp.serveLogout(w, r)
		return
	}
	set := sp.conns.Load()
	if c, ok := set.endpoint(r.URL.Path, pathMetadata); ok {
		sp.serveMetadata(w, r, c)
		return
	}
	if c, ok := set.endpoint(r.URL.Path, pathACS); ok {
		sp.serveACS(w, r, c)
		return
	}
	if c, ok := set.endpoint(r.URL.Path, pathSLO); ok {
		sp.serveSLO(w, r, c)
		return
	}
	web.Page(w, r, http.StatusNotFound, "Not found", "There is nothing at this address.")
}

// endpoint finds the connection whose endpoint base (/saml/acs) path is:
// base itself for the default organization, base/{id} for another.
func (s *connSet) endpoint(path, base string) (*conn, bool) {
	if path == base {
		return s.def, s.def != nil
	}
	id, ok := strings.CutPrefix(path, base+"/")
	if !ok || id == identity.DefaultOrg {
		return nil, false
	}
	c := s.byID[id]
	return c, c != nil
}

func (sp *SP) serveMetadata(w http.ResponseWriter, r *http.Request, c *conn) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	body, err := c.metadataXML()
	if err != nil {
		sp.log.Error("build sp metadata", zap.String("request_id", web.RequestID(r.Context())), zap.Error(err))
		web.Page(w, r, http.StatusInternalServerError, "Metadata unavailable", "The service provider metadata could not be built.")
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// allowMethods writes a 405 page and reports false unless r uses one of methods.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	web.Page(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This address does not accept that kind of request.")
	return false
}

func nameIDFormat(f string) (saml.NameIDFormat, error) {
	switch f {
	case "", "emailAddress":
		return saml.EmailAddressNameIDFormat, nil
	case "persistent":
		return saml.PersistentNameIDFormat, nil
	case "transient":
		return saml.TransientNameIDFormat, nil
	case "unspecified":
		return saml.UnspecifiedNameIDFormat, nil
	}
	return "", fmt.Errorf("saml.nameIDFormat: %q is not one of emailAddress, persistent, transient, unspecified", f)
}

// funcClock is a clockwork.Clock whose Now is an injected function, so that
// crewjam and goxmldsig see the same time as the rest of the SP without
// the deprecated package-level saml.TimeNow and saml.Clock.
type funcClock struct {
	clockwork.Clock
	now func() time.Time
}

func (c funcClock) Now() time.Time                  { return c.now() }
func (c funcClock) Since(t time.Time) time.Duration { return c.now().Sub(t) }
func (c funcClock) Until(t time.Time) time.Duration { return t.Sub(c.now()) }
