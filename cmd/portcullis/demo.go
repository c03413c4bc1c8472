package main

// `portcullis demo`: the proxy as `serve` wires it, with an embedded demo
// IdP, a demo app and SCIM, all on loopback, from nothing but this command.
// This is the only file that imports internal/demoidp (demo_test.go checks).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/internal/demoidp"
	"github.com/portcullis-sso/portcullis/scimsync"
)

const demoListen = "127.0.0.1:8080"

// demoOptions configures runDemo.
type demoOptions struct {
	Listen string // the proxy's address; must be loopback (port 0 picks one)
	Logger *zap.Logger
	// Ready, if set, is called once everything is up and the banner is
	// printed, with what the banner says.
	Ready func(demoInfo)
}

// demoInfo is what a running demo tells its user.
type demoInfo struct {
	URL         string // the app through the proxy: open this
	IdPURL      string
	UpstreamURL string
	SCIMURL     string
	AdminURL    string // health, /metrics and the status page
	EventsURL   string // the demo app's page of the webhooks it received
	Token       string
	Dir         string // the temporary directory, removed on exit
	Users       []demoUser
}

type demoUser struct {
	demoidp.User
	ID string // SCIM id
}

// runDemoCommand is `portcullis demo [--organizations] [--listen ADDR] [--log-level L] [--log-format F]`.
func runDemoCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", demoListen, "proxy address (loopback only)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "console", "json or console")
	orgs := fs.Bool("organizations", false, "two organizations (acme.test, globex.test), each with its own demo IdP and SCIM directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portcullis demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(*logFormat, *logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis demo: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	run := runDemo
	if *orgs {
		run = runDemoOrgs
	}
	if err := run(ctx, demoOptions{Listen: *listen, Logger: log}, stdout); err != nil {
		fmt.Fprintf(stderr, "portcullis demo: %s\n", errorText(err))
		return 1
	}
	return 0
}

// runDemo runs the demo until ctx ends, then shuts everything down and
// removes its temporary directory.
func runDemo(ctx context.Context, opts demoOptions, out io.Writer) (err error) {
	log, dir, cleanup, err := demoStart(opts)
	if err != nil {
		return err
	}
	defer func() { err = cleanup(err) }()
	token := scimsync.GenerateToken()
	if err := os.WriteFile(filepath.Join(dir, "scim.tokens"), []byte("demo "+token+"\n"), 0o600); err != nil {
		return err
	}
	hooks, err := demoHooks(dir)
	if err != nil {
		return err
	}

	lns, err := demoListeners(opts.Listen, 4) // proxy, admin, IdP, app
	if err != nil {
		return err
	}
	defer closeAll(lns)
	pub, adm, idpLn, upLn := lns[0], lns[1], lns[2], lns[3]
	info := demoInfo{
		URL:         "http://" + pub.Addr().String(),
		IdPURL:      "http://" + idpLn.Addr().String(),
		UpstreamURL: "http://" + upLn.Addr().String(),
		AdminURL:    "http://" + adm.Addr().String(),
		Token:       token,
		Dir:         dir,
	}
	info.SCIMURL = info.URL + "/scim/v2"
	info.EventsURL = info.UpstreamURL + demoidp.PathEvents

	cfgPath := filepath.Join(dir, "portcullis.yaml")
	cfgText := fmt.Sprintf(demoConfig, pub.Addr(), adm.Addr(), info.URL, info.UpstreamURL, info.IdPURL+demoidp.PathMetadata,
		info.UpstreamURL+demoidp.PathHooks)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return err
	}
	a, err := build(ctx, cfgPath, log) // config.Load: the demo config is validated like any other
	if err != nil {
		return err
	}
	defer a.Close()
	spMeta, err := a.sp.MetadataXML()
	if err != nil {
		return err
	}
	base, err := url.Parse(info.IdPURL)
	if err != nil {
		return err
	}
	idp, err := demoidp.New(demoidp.Options{
		BaseURL: base, SPMetadata: spMeta, Users: demoidp.Users(), AppURL: info.URL + "/", Logger: log.Named("demoidp"),
	})
	if err != nil {
		return err
	}
	var hints demoHints
	upstream := demoidp.App(hints.lookup, hooks)

	stopPeers := servePeers(a, lns[2:], []http.Handler{idp, upstream}, log)
	defer stopPeers()
	// Now, so a failure is an error here rather than a retry loop in Run.
	if err := a.sp.LoadMetadata(ctx); err != nil {
		return fmt.Errorf("demo idp metadata: %w", err)
	}

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- serveOn(sctx, a, pub, adm, log) }()

	info.Users, err = provisionDemo(sctx, info.SCIMURL, token, demoidp.Users())
	if err != nil {
		stop()
		return errors.Join(fmt.Errorf("provision demo users through SCIM: %w", err), <-served)
	}
	m := map[string]string{}
	for _, u := range info.Users {
		m[strings.ToLower(u.Email)] = deactivateCurl(info.SCIMURL, token, u.ID)
	}
	hints.m.Store(&m)
	printDemo(out, info, cfgPath)
	if opts.Ready != nil {
		opts.Ready(info)
	}
	return <-served
}

// demoConfig is the config the demo writes into its temporary directory;
// relative paths resolve there.
const demoConfig = `# Written by portcullis demo; removed when it exits.
version: 1
listen: "%s"
adminListen: "%s"
publicURL: "%s"
upstream: "%s"
saml:
  idpMetadataURL: "%s"
  certFile: sp.crt
  keyFile: sp.key
  attributes: {user: uid, email: mail, name: displayName, groups: groups}
session:
  keysFile: session.keys
routes:
  - path: /admin/
    allowGroups: [admins]
scim:
  enabled: true
  tokensFile: scim.tokens
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

// demoStart is what every demo does first: its logger (opts.Logger or
// none), the loopback check of opts.Listen and its temporary directory
// (demoDir; the caller defers cleanup).
func demoStart(opts demoOptions) (log *zap.Logger, dir string, cleanup func(error) error, err error) {
	if log = opts.Logger; log == nil {
		log = zap.NewNop()
	}
	if err := checkLoopback(opts.Listen); err != nil {
		return nil, "", nil, err
	}
	dir, cleanup, err = demoDir()
	return log, dir, cleanup, err
}

// demoHints is the demo app's "deactivate me" curl per email (lower
// case), set once the users are provisioned.
type demoHints struct {
	m atomic.Pointer[map[string]string]
}

func (h *demoHints) lookup(email string) string {
	if m := h.m.Load(); m != nil {
		return (*m)[strings.ToLower(email)]
	}
	return ""
}

// demoHooks writes a fresh Standard Webhooks secret (whsec_ and 32 random
// bytes in base64) to dir/webhook.secret and returns the demo app's
// receiver for it: the proxy signs with the file, the app verifies with
// the value.
func demoHooks(dir string) (*demoidp.Hooks, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	if err := os.WriteFile(filepath.Join(dir, "webhook.secret"), []byte(secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	return demoidp.NewHooks(secret)
}

// checkLoopback refuses a --listen that is not a loopback address: the
// demo IdP signs anyone in with a click.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q: the demo listens on a loopback address only (e.g. 127.0.0.1:8080)", addr)
}

// provisionDemo creates the users and the groups staff and admins through
// the SCIM API, as an IdP would, and returns the users with their ids.
func provisionDemo(ctx context.Context, scimURL, token string, users []demoidp.User) ([]demoUser, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	post := func(path string, body map[string]any) (string, error) {
		b, err := json.Marshal(body)
		if err != nil {
			return "", err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, scimURL+path, bytes.NewReader(b))
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var res struct {
			ID     string `json:"id"`
			Detail string `json:"detail"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res)
		if resp.StatusCode != http.StatusCreated || res.ID == "" {
			return "", fmt.Errorf("POST %s: status %d: %s", path, resp.StatusCode, res.Detail)
		}
		return res.ID, nil
	}
	out := make([]demoUser, 0, len(users))
	members := map[string][]any{}
	var groups []string
	for _, u := range users {
		given, family, _ := strings.Cut(u.DisplayName, " ")
		id, err := post("/Users", map[string]any{
			"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName":    u.Email,
			"name":        map[string]any{"givenName": given, "familyName": family},
			"displayName": u.DisplayName,
			"emails":      []any{map[string]any{"value": u.Email, "type": "work", "primary": true}},
			"active":      true,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, demoUser{User: u, ID: id})
		for _, g := range u.Groups {
			if members[g] == nil {
				groups = append(groups, g)
			}
			members[g] = append(members[g], map[string]any{"value": id, "display": u.Email})
		}
	}
	for _, g := range groups {
		if _, err := post("/Groups", map[string]any{
			"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"displayName": g,
			"members":     members[g],
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deactivateCurl is the command that deactivates a user as Okta does.
func deactivateCurl(scimURL, token, id string) string {
	return fmt.Sprintf(`curl -sS -X PATCH '%s/Users/%s' \
  -H 'Authorization: Bearer %s' \
  -H 'Content-Type: application/scim+json' \
  -d '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}'`,
		scimURL, id, token)
}

func printDemo(out io.Writer, info demoInfo, cfgPath string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nPortcullis demo is running. Everything listens on loopback; Ctrl-C stops it and removes %s.\n\n", info.Dir)
	fmt.Fprintf(&b, "  Open:     %s/\n", info.URL)
	fmt.Fprintf(&b, "  IdP:      %s/  (demo only: pick a user, no password)\n", info.IdPURL)
	fmt.Fprintf(&b, "  App:      %s/  (the upstream behind the proxy)\n", info.UpstreamURL)
	if info.EventsURL != "" {
		fmt.Fprintf(&b, "  Events:   %s  (the webhooks the app received from Portcullis, each verified)\n", info.EventsURL)
	}
	fmt.Fprintf(&b, "  Status:   %s/  (sync health, users, audit events; /metrics, /readyz)\n", info.AdminURL)
	fmt.Fprintf(&b, "  SCIM:     %s  (bearer token %s)\n", info.SCIMURL, info.Token)
	fmt.Fprintf(&b, "  Config:   %s\n\n", cfgPath)
	fmt.Fprintf(&b, "Demo users, provisioned through SCIM (groups from the SCIM directory):\n")
	for _, u := range info.Users {
		fmt.Fprintf(&b, "  %-6s %-18s %-14s id %s\n", u.Name, u.Email, strings.Join(u.Groups, ", "), u.ID)
	}
	if len(info.Users) > 0 {
		u := info.Users[0]
		fmt.Fprintf(&b, "\nSign in as %s, then remove %s's access through SCIM and reload the page:\n\n%s\n\n",
			u.Name, u.Name, deactivateCurl(info.SCIMURL, info.Token, u.ID))
		fmt.Fprintf(&b, "The app is told too: %s shows the user.deactivated webhook it received, verified.\n\n", info.EventsURL)
	}
	_, _ = io.WriteString(out, b.String())
}
