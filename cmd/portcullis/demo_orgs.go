package main

// `portcullis demo --organizations`: two customer organizations, acme.test
// and globex.test, each signing in with its own demo IdP and provisioning
// its own SCIM directory, so a newcomer sees the identifier-first page
// route an address to its organization's IdP, and one organization's SCIM
// deactivation lock out its user. Plain `portcullis demo` keeps the single
// IdP.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/demoidp"
	"github.com/portcullis-sso/portcullis/scimsync"
)

// demoOrg is one organization of the two-organization demo.
type demoOrg struct {
	ID, Name, Domain string
	IdPURL           string
	Users            []demoidp.User
	SCIMURL, Token   string     // its SCIM base path and bearer token
	Provisioned      []demoUser // Users with their SCIM ids, once provisioned
}

// demoOrgs are the demo's organizations: the demo users under each
// organization's domain (acme keeps alice, an admin; globex gets carol).
func demoOrgs() []demoOrg {
	users := demoidp.Users()
	at := func(u demoidp.User, domain string) demoidp.User {
		u.Email = u.Name + "@" + domain
		return u
	}
	return []demoOrg{
		{ID: "acme", Name: "Acme Corp", Domain: "acme.test", Users: []demoidp.User{at(users[0], "acme.test"), at(users[1], "acme.test")}},
		{ID: "globex", Name: "Globex", Domain: "globex.test", Users: []demoidp.User{at(users[2], "globex.test")}},
	}
}

// demoOrgsConfig is the two-organization demo's config: no top-level IdP
// (so no default organization), one IdP per organization.
const demoOrgsConfig = `# Written by portcullis demo --organizations; removed when it exits.
version: 1
listen: "%s"
adminListen: "%s"
publicURL: "%s"
upstream: "%s"
saml:
  certFile: sp.crt
  keyFile: sp.key
  attributes: {user: uid, email: mail, name: displayName, groups: groups}
session:
  keysFile: session.keys
headers:
  X-Forwarded-User: user
  X-Forwarded-Email: email
  X-Forwarded-Groups: groups
  X-Forwarded-Preferred-Username: name
  X-Forwarded-Org: organization
organizations:
%s
routes:
  - path: /admin/
    allowGroups: [admins]
  - path: /acme/
    allowOrganizations: [acme]
scim:
  enabled: true
  match: {identityField: email, scimAttribute: userName}
  requireProvisioned: true
  groupsSource: scim
store:
  driver: sqlite
  dsn: portcullis.db
events:
  webhooks:
    - url: "%s"
      secretFile: webhook.secret
server:
  drainTimeout: 5s
`

// orgsConfigText renders the organizations of the demo's config.
func orgsConfigText(orgs []demoOrg) string {
	var b strings.Builder
	for _, o := range orgs {
		fmt.Fprintf(&b, "  - id: %s\n    name: %q\n    domains: [%s]\n    saml:\n      idpMetadataURL: %q\n    scim:\n      tokensFile: %s.tokens\n",
			o.ID, o.Name, o.Domain, o.IdPURL+demoidp.PathMetadata, o.ID)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// runDemoOrgs runs the two-organization demo until ctx ends.
func runDemoOrgs(ctx context.Context, opts demoOptions, out io.Writer) (err error) {
	log, dir, cleanup, err := demoStart(opts)
	if err != nil {
		return err
	}
	defer func() { err = cleanup(err) }()
	orgs := demoOrgs()
	lns, err := demoListeners(opts.Listen, 3+len(orgs)) // proxy, admin, app, one IdP per organization
	if err != nil {
		return err
	}
	defer closeAll(lns)
	pub, adm, upLn := lns[0], lns[1], lns[2]
	info := demoInfo{URL: "http://" + pub.Addr().String(), UpstreamURL: "http://" + upLn.Addr().String(),
		AdminURL: "http://" + adm.Addr().String(), Dir: dir}
	for i := range orgs {
		o := &orgs[i]
		o.IdPURL = "http://" + lns[3+i].Addr().String()
		o.SCIMURL, o.Token = info.URL+"/scim/v2/"+o.ID, scimsync.GenerateToken()
		if err := os.WriteFile(filepath.Join(dir, o.ID+".tokens"), []byte("demo "+o.Token+"\n"), 0o600); err != nil {
			return err
		}
	}
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	hooks, err := demoHooks(dir)
	if err != nil {
		return err
	}
	info.EventsURL = info.UpstreamURL + demoidp.PathEvents
	cfgText := fmt.Sprintf(demoOrgsConfig, pub.Addr(), adm.Addr(), info.URL, info.UpstreamURL, orgsConfigText(orgs),
		info.UpstreamURL+demoidp.PathHooks)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return err
	}
	a, err := build(ctx, cfgPath, log)
	if err != nil {
		return err
	}
	defer a.Close()
	var hints demoHints
	handlers := []http.Handler{demoidp.App(hints.lookup, hooks)}
	for _, o := range orgs {
		idp, err := demoOrgIdP(a, o, info.URL, log)
		if err != nil {
			return err
		}
		handlers = append(handlers, idp)
	}
	stopPeers := servePeers(a, lns[2:], handlers, log)
	defer stopPeers()
	if err := a.sp.LoadMetadata(ctx); err != nil {
		return fmt.Errorf("demo idp metadata: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- serveOn(sctx, a, pub, adm, log) }()
	m := map[string]string{}
	for i := range orgs {
		o := &orgs[i]
		if o.Provisioned, err = provisionDemo(sctx, o.SCIMURL, o.Token, o.Users); err != nil {
			stop()
			return errors.Join(fmt.Errorf("provision organization %s's demo users through SCIM: %w", o.ID, err), <-served)
		}
		for _, u := range o.Provisioned {
			m[strings.ToLower(u.Email)] = deactivateCurl(o.SCIMURL, o.Token, u.ID)
		}
	}
	hints.m.Store(&m)
	printDemoOrgs(out, info, orgs, cfgPath)
	if opts.Ready != nil {
		opts.Ready(info)
	}
	return <-served
}

// demoOrgIdP is organization o's demo IdP, trusting o's SP metadata.
func demoOrgIdP(a *app, o demoOrg, appURL string, log *zap.Logger) (http.Handler, error) {
	spMeta, err := a.sp.MetadataXML(o.ID)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(o.IdPURL)
	if err != nil {
		return nil, err
	}
	return demoidp.New(demoidp.Options{BaseURL: base, SPMetadata: spMeta, Users: o.Users,
		AppURL: appURL + "/", Logger: log.Named("demoidp." + o.ID)})
}

// demoDir makes the demo's temporary directory with the SP key pair and
// session keys; cleanup removes it and joins its error to err.
func demoDir() (dir string, cleanup func(err error) error, _ error) {
	dir, err := os.MkdirTemp("", "portcullis-demo-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func(err error) error {
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			return rmErr
		}
		return err
	}
	if err := writeKeys(dir, io.Discard); err != nil {
		return "", nil, cleanup(fmt.Errorf("keys: %w", err))
	}
	return dir, cleanup, nil
}

// demoListeners listens on first and n-1 more loopback ports.
func demoListeners(first string, n int) ([]net.Listener, error) {
	var lns []net.Listener
	for i := range n {
		addr := "127.0.0.1:0"
		if i == 0 {
			addr = first
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll(lns)
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		_ = ln.Close() // Serve closes its own; this is for early returns
	}
}

// servePeers serves handlers[i] on lns[i]; the returned func shuts them down.
func servePeers(a *app, lns []net.Listener, handlers []http.Handler, log *zap.Logger) func() {
	errLog := zap.NewStdLog(log.Named("http"))
	var servers []*http.Server
	var wg sync.WaitGroup
	for i, h := range handlers {
		s := newServer(a.cfg, h, errLog)
		servers = append(servers, s)
		wg.Go(func() { _ = s.Serve(lns[i]) })
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			if s.Shutdown(sctx) != nil {
				_ = s.Close()
			}
		}
		wg.Wait()
	}
}

func printDemoOrgs(out io.Writer, info demoInfo, orgs []demoOrg, cfgPath string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nPortcullis demo with two organizations is running. Everything listens on loopback; Ctrl-C stops it and removes %s.\n\n", info.Dir)
	fmt.Fprintf(&b, "  Open:     %s/  (the sign-in page asks for your work email and sends you to your organization's IdP)\n", info.URL)
	fmt.Fprintf(&b, "  App:      %s/  (the upstream behind the proxy)\n", info.UpstreamURL)
	fmt.Fprintf(&b, "  Events:   %s  (the webhooks the app received from Portcullis, each verified)\n", info.EventsURL)
	fmt.Fprintf(&b, "  Status:   %s/  (organizations and their IdP metadata, audit events; /metrics, /readyz)\n", info.AdminURL)
	fmt.Fprintf(&b, "  Config:   %s\n\n", cfgPath)
	for _, o := range orgs {
		fmt.Fprintf(&b, "Organization %s (%s), domain %s, IdP %s/ (demo only: pick a user, no password)\n", o.ID, o.Name, o.Domain, o.IdPURL)
		fmt.Fprintf(&b, "  SCIM %s  (bearer token %s)\n", o.SCIMURL, o.Token)
		for _, u := range o.Provisioned {
			fmt.Fprintf(&b, "  %-6s %-18s %-14s id %s\n", u.Name, u.Email, strings.Join(u.Groups, ", "), u.ID)
		}
		fmt.Fprintln(&b)
	}
	fmt.Fprintf(&b, "Type alice@acme.test or carol@globex.test at %s/ to see each routed to its own IdP;\n", info.URL)
	fmt.Fprintf(&b, "%s/acme/ is open to acme's users only. Each organization provisions its own directory:\n", info.URL)
	if g := orgs[len(orgs)-1]; len(g.Provisioned) > 0 {
		u := g.Provisioned[0]
		fmt.Fprintf(&b, "sign in as %s, then remove %s's access through %s's SCIM and reload the page:\n\n%s\n\n",
			u.Email, u.Name, g.ID, deactivateCurl(g.SCIMURL, g.Token, u.ID))
	}
	_, _ = io.WriteString(out, b.String())
}
