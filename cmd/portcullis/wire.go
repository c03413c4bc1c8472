package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/filewatch"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/internal/status"
	"github.com/portcullis-sso/portcullis/proxy"
	"github.com/portcullis-sso/portcullis/samlsp"
	"github.com/portcullis-sso/portcullis/scimsync"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// app is everything one process serves.
type app struct {
	cfg      *config.Config
	sp       *samlsp.SP
	proxy    *proxy.Proxy
	admin    http.Handler
	store    io.Closer               // nil without SCIM
	follower *scimsync.Follower      // nil unless the store is shared (postgres)
	metrics  *metrics.Metrics        // served at /metrics on the admin listener
	drift    *scimsync.DriftDetector // nil without SCIM
	// watches re-read files that may change while serving (scim.tokensFile).
	watches []*filewatch.Watcher
	// runs are background loops serveOn starts (webhook delivery, the
	// sweep of expired sessions).
	runs []func(context.Context)
}

// Close releases what build opened.
func (a *app) Close() error {
	if a.store != nil {
		return a.store.Close()
	}
	return nil
}

// build loads the config and every file it names and builds all handlers,
// without listening or fetching anything over the network.
func build(ctx context.Context, path string, log *zap.Logger) (*app, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return buildFrom(ctx, cfg, log)
}

// scimParts is what SCIM adds to the process.
type scimParts struct {
	// dirs is every organization's directory view (the gate); dir is the
	// default organization's, nil when the config has no top-level IdP.
	dirs *scimsync.Directories
	// orgs adds and removes the SCIM directories of organizationsDir's
	// organizations; nil without SCIM.
	orgs     *orgDirectories
	dir      *scimsync.Directory
	drift    *scimsync.DriftDetector
	svc      http.Handler
	store    io.Closer
	follower *scimsync.Follower
	replay   samlsp.ReplayCache // shared across replicas; nil = in-memory
	reader   orgReader          // the store's read side, for the status page
	ledger   store.Ledger       // login ledger
	events   store.EventSummary // event stats
	router   *scimsync.Router   // every organization's Service (its LastToken, for the status page)
	logins   *scimsync.LoginRecorder
	ender    *scimsync.SessionEnder // ends sessions one by one
	tokens   []*filewatch.Watcher   // the tokens files, re-read when they change
	// deliveries is the event feed and webhook side of the store;
	// sessions writes session.created into it.
	deliveries store.Deliveries
	sessions   *scimsync.SessionEvents
}

// orgReader is the store's read side: the default organization's, and
// each organization's by ForOrg.
type orgReader interface {
	store.Reader
	ForOrg(org string) *store.OrgStore
}

// buildFrom wires a loaded config.
func buildFrom(ctx context.Context, cfg *config.Config, log *zap.Logger) (*app, error) {
	for _, w := range cfg.Warnings() {
		log.Warn("risky setting", zap.String("warning", w))
	}
	if err := cfg.CheckSecretFiles(); err != nil {
		return nil, err
	}
	keyText, err := os.ReadFile(cfg.Resolve(cfg.Session.KeysFile))
	if err != nil {
		return nil, fmt.Errorf("session.keysFile: %w", err)
	}
	keys, err := session.ParseKeys(keyText)
	if err != nil {
		return nil, fmt.Errorf("session.keysFile %s: %w", cfg.Session.KeysFile, err)
	}
	codec, err := session.NewCodec(cfg.Session.CookieName, keys,
		cfg.Public.Scheme == "https", cfg.Session.Lifetime)
	if err != nil {
		return nil, fmt.Errorf("session.keysFile: %w", err)
	}
	codec.SetLegacyNames(cfg.Session.LegacyCookieNames...)
	codec.SetDomain(cfg.Session.CookieDomain)
	upstreamPaths := []string{"/"}
	if cfg.UpstreamPathPrefix != "" {
		upstreamPaths = append(upstreamPaths, cfg.UpstreamPathPrefix)
	}
	codec.SetUpstreamCookies(cfg.Session.ExpireUpstreamCookies, upstreamPaths)
	ownPrefixes := []string{samlsp.TrackingCookiePrefix(cfg.Session.CookieName)}
	for _, l := range cfg.Session.LegacyCookieNames {
		ownPrefixes = append(ownPrefixes, samlsp.TrackingCookiePrefix(l))
	}
	adminToken, err := readAdminToken(cfg)
	if err != nil {
		return nil, err
	}
	ring := status.NewAuditRing(0)
	ring.ForgetAfter(cfg.Events.Retention) // its entries name users: kept no longer than the events
	audit := log.Named("audit").WithOptions(ring.Tee())
	a := &app{cfg: cfg, metrics: metrics.New()}
	a.metrics.UpstreamTLSInsecure(cfg.UpstreamTLS.InsecureSkipVerify)
	var sc scimParts
	var onLogin func(context.Context, samlsp.Login)
	if cfg.SCIM.Enabled {
		sc, err = buildSCIMWith(ctx, cfg, log, audit, a.metrics)
		if err != nil {
			return nil, err
		}
		a.store, a.follower, a.drift = sc.store, sc.follower, sc.drift
		a.watches = append(a.watches, sc.tokens...)
		onLogin = func(ctx context.Context, l samlsp.Login) {
			sc.drift.Check(ctx, l.Principal)
			sc.logins.Record(ctx, l.Principal, store.Login{SessionID: l.SessionID, Issued: l.Issued, Expires: l.Expires,
				IdPInitiated: l.IdPInitiated, Org: l.Principal.Org,
				IdP: l.SAML.IdP, NameID: l.SAML.NameID, SessionIndex: l.SAML.SessionIndex})
			sc.sessions.Created(ctx, l.Principal, l.SessionID, l.Issued, l.Expires)
		}
		var secrets []*filewatch.Watcher
		if a.runs, secrets, err = eventRunners(cfg, sc.deliveries, a.metrics, log.Named("webhook")); err != nil {
			_ = a.Close()
			return nil, err
		}
		if sc.ender != nil { // each replica sweeps; the store gives each expired session to one
			a.runs = append(a.runs, func(ctx context.Context) {
				sc.ender.RunExpiry(ctx, scimsync.ExpirySweepInterval, log.Named("scimsync"))
			})
		}
		a.watches = append(a.watches, secrets...)
	}
	var ender samlsp.SessionEnder
	if sc.ender != nil {
		ender = samlEnder{e: sc.ender, identityField: cfg.SCIM.Match.IdentityField}
	}
	a.sp, err = samlsp.New(samlsp.Options{
		Ender:       ender,
		Config:      cfg,
		Sessions:    codec,
		SessionKeys: keys,
		Replay:      sc.replay,
		Logger:      log.Named("samlsp"),
		Audit:       audit,
		OnLogin:     onLogin,
		Metrics:     a.metrics,
	})
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	opts := proxy.Options{
		Config:            cfg,
		Auth:              a.sp,
		Organizations:     a.sp,
		Sessions:          codec,
		OwnCookiePrefixes: ownPrefixes,
		Logger:            log.Named("proxy"),
		Access:            log.Named("access"),
		Audit:             audit,
		Metrics:           a.metrics,
	}
	if sc.dirs != nil {
		opts.Gate, opts.SCIM, opts.Revocations = sc.dirs, sc.svc, sc.dirs
	}
	if opts.IdentityKeys, err = readIdentityKeys(cfg); err != nil {
		_ = a.Close()
		return nil, err
	}
	if sc.follower != nil { // a typed nil would read as a Freshness
		opts.Freshness = sc.follower
	}
	a.proxy, err = proxy.New(opts)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	if sc.dirs != nil {
		sc.dirs.OnRevoke(a.proxy.CloseStreams)
		sc.dirs.OnSessionRevoke(a.proxy.CloseSessionStreams)
	}
	a.metrics.WatchMetadata(a.sp.EachMetadataLoadedAt)
	checks := []proxy.ReadyCheck{proxy.AuthCheck(a.sp), a.proxy.DirectoryCheck()}
	if cfg.OrganizationsDir != "" {
		od := &orgsDir{cfg: cfg, sp: a.sp, scim: sc.orgs, ender: sc.ender, log: log.Named("organizations")}
		if err := od.load(); err != nil {
			_ = a.Close()
			return nil, err
		}
		a.watches = append(a.watches, filewatch.NewDir(cfg.Resolve(cfg.OrganizationsDir), orgsRecheck, od.load, log.Named("organizations")))
		checks = append(checks, od.check())
	}
	a.admin = proxy.AdminHandler(proxy.AdminOptions{
		Checks:  checks,
		Metrics: a.metrics.Handler(),
		JWKS:    a.proxy.JWKS(),
		Status:  statusPage(a, sc, checks, ring, adminToken, log),
		Events:  eventFeed(sc, cfg.HasOrganizations(), adminToken, log),
		// Nothing but the loopback bind guards the listener: refuse Hosts
		// that a DNS-rebinding page would send.
		LoopbackHostsOnly: !cfg.AdminTokenRequired(),
	})
	return a, nil
}

// statusPage wires the status page to what a and sc offer.
func statusPage(a *app, sc scimParts, checks []proxy.ReadyCheck, ring *status.AuditRing, adminToken []byte, log *zap.Logger) http.Handler {
	so := status.Options{
		Gatherer:      a.metrics.Gatherer(),
		Checks:        statusChecks(checks),
		Audit:         ring,
		Replica:       hostname(),
		TokenRequired: a.cfg.AdminTokenRequired(),
		Token:         adminToken,
		Logger:        log.Named("status"),
		IdPCerts: func() status.IdPCerts {
			c := a.sp.SigningCerts()
			return status.IdPCerts{Current: c.Current, Previous: c.Previous, ChangedAt: c.ChangedAt}
		},
		Organizations: func() []status.Organization {
			var out []status.Organization
			for _, o := range a.sp.OrganizationStates() {
				out = append(out, status.Organization(o))
			}
			return out
		},
	}
	if sc.deliveries != nil {
		if eps, err := webhookEndpoints(a.cfg); err == nil { // build read them already
			so.Webhooks = webhookStatus(sc.deliveries, eps)
		}
	}
	if sc.dirs != nil {
		// Search and sign-out work in the organization the page is
		// filtered to: its part of the store, its sessions in the ledger.
		attr := a.cfg.SCIM.Match.SCIMAttribute
		so.Ledger = sc.ledger
		so.MatchKey = func(u *store.User) string { return store.MatchKeyOf(attr, u) }
		so.DirectoryOf = func(org string) status.Directory {
			if sc.dirs.Get(org) == nil { // not served, or served without SCIM
				return nil
			}
			return sc.reader.ForOrg(org)
		}
		// The Directory and Sync health sections follow the filter too:
		// the organization's view, its events, its SCIM service's token.
		so.Events = sc.events
		so.DirectoryCountsOf = func(org string) (status.DirectoryCounts, bool) {
			d := sc.dirs.Get(org)
			if d == nil {
				return status.DirectoryCounts{}, false
			}
			active, inactive, groups := d.Counts()
			return status.DirectoryCounts{Active: active, Inactive: inactive, Groups: groups,
				AppliedSeq: d.Seq(), LastEvent: d.LastEventTime()}, true
		}
		so.LastToken = func(org string) (string, time.Time, bool) {
			svc := sc.router.Service(org)
			if svc == nil {
				return "", time.Time{}, false
			}
			u, ok := svc.LastToken()
			return u.Label, u.Time, ok
		}
		if sc.ender != nil {
			so.SignOut = func(ctx context.Context, org, matchKey string) (int, error) {
				ended, err := sc.ender.End(ctx, store.SessionQuery{Org: org, MatchKey: matchKey}, "admin", "status-page")
				return len(ended), err
			}
		}
	}
	if sc.dir != nil {
		so.Directory = sc.reader
	}
	return status.New(so)
}

// statusChecks passes /readyz's checks to the status page.
func statusChecks(checks []proxy.ReadyCheck) []status.Check {
	out := make([]status.Check, 0, len(checks))
	for _, c := range checks {
		out = append(out, status.Check{Name: c.Name, Check: func() (string, bool, string) {
			st, reason := c.Check()
			return st.String(), st == proxy.Ready, reason
		}})
	}
	return out
}

func checkConfig(ctx context.Context, path string, log *zap.Logger, out io.Writer) error {
	a, err := build(ctx, path, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if a.cfg.OrganizationsDir != "" {
		// The server serves the other organizations; check-config fails.
		files, err := a.cfg.ReadOrganizationsDir()
		if err != nil {
			return err
		}
		var errs []error
		for _, f := range files {
			if f.Err != nil {
				errs = append(errs, f.Err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	if err := a.sp.LoadMetadata(ctx); err != nil {
		return fmt.Errorf("saml: %w", err)
	}
	fmt.Fprintf(out, "config ok: %s\n", path)
	return nil
}

func printMetadata(ctx context.Context, path, org string, log *zap.Logger, out io.Writer) error {
	a, err := build(ctx, path, log)
	if err != nil {
		return err
	}
	defer a.Close()
	xml, err := a.sp.MetadataXML(identity.OrgOrDefault(org))
	if err != nil {
		return err
	}
	_, err = out.Write(xml)
	return err
}

// readIdentityKeys loads identityToken.keysFile; nil when the token is off.
func readIdentityKeys(cfg *config.Config) ([]*ecdsa.PrivateKey, error) {
	if !cfg.IdentityToken.Enabled {
		return nil, nil
	}
	text, err := os.ReadFile(cfg.Resolve(cfg.IdentityToken.KeysFile))
	if err != nil {
		return nil, fmt.Errorf("identityToken.keysFile: %w", err)
	}
	keys, err := proxy.ParseIdentityKeys(text)
	if err != nil {
		return nil, fmt.Errorf("identityToken.keysFile %s: %w", cfg.IdentityToken.KeysFile, err)
	}
	return keys, nil
}
