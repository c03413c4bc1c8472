package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/metrics"
	"github.com/portcullis-sso/portcullis/proxy"
	"github.com/portcullis-sso/portcullis/samlsp"
	"github.com/portcullis-sso/portcullis/scimsync"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// orgsDir serves the organizations of organizationsDir: read at start and
// again whenever the directory changes (filewatch.NewDir). A file that
// fails its checks is refused with its path, field and line and the others
// are served; an organization whose file goes away stops being served, and
// its sessions end: at once as far as the proxy is concerned
// (proxy.Organizations), and for good in the store (ender), so that
// adding the organization back does not bring them back.
type orgsDir struct {
	cfg *config.Config
	sp  *samlsp.SP
	// scim adds and removes the organizations' SCIM directories; nil
	// without SCIM.
	scim *orgDirectories
	// ender ends a removed organization's sessions in the store; nil
	// without SCIM (sessions then live in cookies only).
	ender *scimsync.SessionEnder
	log   *zap.Logger

	mu      sync.Mutex
	refused []string        // files refused by the last read, for /readyz
	served  map[string]bool // the organizations the last read served
}

// load reads the directory and swaps the organizations served. Only an
// unreadable directory is an error; the organizations served then stay.
func (d *orgsDir) load() error {
	files, err := d.cfg.ReadOrganizationsDir()
	if err != nil {
		return err
	}
	orgs := slices.Clone(d.cfg.Organizations)
	var refused []string
	for _, f := range files {
		if f.Err != nil {
			d.log.Error("organization file refused; the other organizations are served",
				zap.String("file", f.Path), zap.Error(f.Err))
			refused = append(refused, filepath.Base(f.Path))
			continue
		}
		orgs = append(orgs, *f.Org)
	}
	if err := d.sp.SetOrganizations(orgs); err != nil {
		return fmt.Errorf("organizationsDir: %w", err)
	}
	d.endRemoved(orgs, len(refused) > 0)
	if d.scim != nil {
		for _, id := range d.scim.sync(orgs[len(d.cfg.Organizations):]) {
			refused = append(refused, "the SCIM directory of "+id)
		}
	}
	d.mu.Lock()
	d.refused = refused
	d.mu.Unlock()
	d.log.Info("organizations loaded", zap.Int("organizations", len(orgs)), zap.Int("refused_files", len(refused)))
	return nil
}

// endRemoved ends, in the store, every live session of each organization
// an earlier read served and orgs does not. While a file is refused
// nothing is ended: the missing organization may be the refused file's (an
// operator's typo must not sign a customer out for good); it is ended at
// the first read that refuses nothing and still lacks it. Every replica
// that sees the change does this; the second finds nothing left to end.
func (d *orgsDir) endRemoved(orgs []config.Organization, refused bool) {
	now := make(map[string]bool, len(orgs))
	for _, o := range orgs {
		now[o.ID] = true
	}
	d.mu.Lock()
	before := d.served
	if refused {
		for id := range before {
			now[id] = true
		}
	}
	d.served = now
	d.mu.Unlock()
	if d.ender == nil || refused {
		return
	}
	for id := range before {
		if now[id] {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ended, err := d.ender.End(ctx, store.SessionQuery{Org: id, All: true}, store.ReasonOrganizationRemoved, "config")
		cancel()
		if err != nil {
			// The proxy refuses them anyway while the organization is
			// not served; only adding it back could bring them back.
			d.log.Error("end the sessions of a removed organization", zap.String("organization", id), zap.Error(err))
			continue
		}
		d.log.Info("organization removed; its sessions ended", zap.String("organization", id), zap.Int("sessions", len(ended)))
	}
}

// check is the "organizations" /readyz check: degraded while a file is
// refused (the replica serves every other organization).
func (d *orgsDir) check() proxy.ReadyCheck {
	return proxy.ReadyCheck{Name: "organizations", Check: func() (proxy.Readiness, string) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.refused) == 0 {
			return proxy.Ready, ""
		}
		return proxy.Degraded, "organizationsDir files refused (see the log): " + strings.Join(d.refused, ", ")
	}}
}

// orgDirectories adds and removes the SCIM directories (view, service,
// tokens watcher) of organizationsDir's organizations as they come and go.
// organizations[]'s were built with the rest and stay.
type orgDirectories struct {
	cfg    *config.Config
	st     interface{ ForOrg(string) *store.OrgStore }
	log    *zap.Logger
	audit  *zap.Logger
	m      *metrics.Metrics
	parts  *scimParts
	router *scimsync.Router
	owners *tokenOwners

	mu   sync.Mutex
	live map[string]*orgDirectory
}

// orgDirectory is one organization's SCIM directory as served.
type orgDirectory struct {
	src  config.Organization
	stop context.CancelFunc // its tokens watcher
}

// sync serves exactly orgs' SCIM directories: new ones are loaded, removed
// ones dropped (their users become unknown to the gate at once), changed
// ones rebuilt. It returns the ids of organizations whose directory could
// not be built: their sign-ins work but the gate knows none of their users.
func (d *orgDirectories) sync(orgs []config.Organization) (failed []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := map[string]config.Organization{}
	for _, o := range orgs {
		want[o.ID] = o
	}
	for id, od := range d.live {
		if o, ok := want[id]; ok && o.SCIM == od.src.SCIM {
			continue
		}
		d.drop(id, od)
	}
	for _, o := range orgs {
		if _, ok := d.live[o.ID]; ok || o.SCIM.TokensFile == "" {
			continue
		}
		if err := d.add(o); err != nil {
			d.log.Error("organization's SCIM directory not served; the gate knows none of its users",
				zap.String("organization", o.ID), zap.Error(err))
			failed = append(failed, o.ID)
		}
	}
	return failed
}

func (d *orgDirectories) add(o config.Organization) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := len(d.parts.tokens)
	if err := addOrgSCIM(ctx, d.cfg, d.st.ForOrg(o.ID), &o, d.log, d.audit, d.m, d.parts, d.router, d.owners); err != nil {
		d.owners.release(tokensField(o.ID))
		return err
	}
	// addOrgSCIM appended its tokens watcher: run it here, for as long as
	// the organization is served.
	w := d.parts.tokens[n]
	d.parts.tokens = d.parts.tokens[:n]
	wctx, stop := context.WithCancel(context.Background())
	go w.Run(wctx)
	d.live[o.ID] = &orgDirectory{src: o, stop: stop}
	d.log.Info("organization's SCIM directory served", zap.String("organization", o.ID))
	return nil
}

func (d *orgDirectories) drop(id string, od *orgDirectory) {
	od.stop()
	d.router.Set(id, nil)
	d.parts.dirs.Remove(id)
	d.owners.release(tokensField(id))
	delete(d.live, id)
	d.log.Info("organization's SCIM directory no longer served", zap.String("organization", id))
}

// tokensField is how errors name an organization's tokens file.
func tokensField(id string) string { return "organizations[" + id + "].scim.tokensFile" }
