package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/proxy"
	"github.com/portcullis-sso/portcullis/samlsp"
)

// orgsDir serves the organizations of organizationsDir: read at start and
// again whenever the directory changes (filewatch.NewDir). A file that
// fails its checks is refused with its path, field and line and the others
// are served; an organization whose file goes away stops being served, and
// its sessions stop being sessions (proxy.Organizations).
type orgsDir struct {
	cfg *config.Config
	sp  *samlsp.SP
	log *zap.Logger

	mu      sync.Mutex
	refused []string // files refused by the last read, for /readyz
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
	d.mu.Lock()
	d.refused = refused
	d.mu.Unlock()
	d.log.Info("organizations loaded", zap.Int("organizations", len(orgs)), zap.Int("refused_files", len(refused)))
	return nil
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
