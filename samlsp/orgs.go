package samlsp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
)

// connSet is every IdP connection the SP serves, swapped whole when the
// organizations change (organizationsDir), so a request sees one
// consistent set.
type connSet struct {
	def      *conn            // the top-level IdP's; nil when the config has none
	byID     map[string]*conn // every connection, def under identity.DefaultOrg
	byHost   map[string]*conn // an organization's hosts (lower case, as configured)
	byDomain map[string]*conn // verified email domains of every organization but default
	// sources are the organization configs the connections were built
	// from, to keep a connection (and its loaded metadata) across a reload
	// that does not change it.
	sources map[string]config.Organization
}

// multi reports whether any organization besides the default exists.
func (s *connSet) multi() bool { return len(s.byID) > 1 || (s.def == nil && len(s.byID) > 0) }

// orgRunner runs each connection's metadata refresh in its own goroutine,
// started and stopped as organizations come and go.
type orgRunner struct {
	mu      sync.Mutex
	ctx     context.Context // nil until Run
	cancels map[*conn]context.CancelFunc
	wg      sync.WaitGroup
}

// buildConnSet builds the connections for the default organization (when
// the config names a top-level IdP) and orgs, reusing prev's connection for
// an organization whose config did not change.
func (sp *SP) buildConnSet(cfg *config.Config, orgs []config.Organization, prev *connSet) (*connSet, error) {
	set := &connSet{byID: map[string]*conn{}, byHost: map[string]*conn{}, byDomain: map[string]*conn{},
		sources: map[string]config.Organization{}}
	if cfg.HasDefaultOrg() {
		if prev != nil && prev.def != nil {
			set.def = prev.def
		} else {
			c, err := sp.newConn(cfg, identity.DefaultOrg, cfg.SAML, "")
			if err != nil {
				return nil, err
			}
			set.def = c
		}
		set.byID[identity.DefaultOrg] = set.def
	}
	public := strings.TrimSuffix(cfg.Public.String(), "/")
	for i := range orgs {
		o := &orgs[i]
		if _, dup := set.byID[o.ID]; dup {
			return nil, fmt.Errorf("organization %q is defined twice", o.ID)
		}
		c := (*conn)(nil)
		if prev != nil && reflect.DeepEqual(prev.sources[o.ID], *o) {
			c = prev.byID[o.ID]
		}
		if c == nil {
			base := public
			if len(o.Hosts) > 0 {
				base = cfg.Public.Scheme + "://" + o.Hosts[0]
			}
			field := o.Source
			if field == "" {
				field = "organizations[" + o.ID + "]"
			}
			var err error
			if c, err = sp.newConnAt(cfg, o.ID, cfg.OrgSAMLConfig(o), "/"+o.ID, base, field+".saml"); err != nil {
				return nil, err
			}
			c.domains = slices.Clone(o.Domains)
			c.name = o.Name
		}
		set.byID[o.ID] = c
		set.sources[o.ID] = *o
		for _, h := range o.Hosts {
			set.byHost[h] = c
		}
		for _, d := range o.Domains {
			set.byDomain[d] = c
		}
	}
	return set, nil
}

// SetOrganizations replaces the organizations served (the default one stays
// as configured): new ones start loading their IdP metadata, removed ones
// stop, and unchanged ones keep theirs. orgs must have passed config's
// checks, those across organizations included.
func (sp *SP) SetOrganizations(orgs []config.Organization) error {
	sp.setMu.Lock()
	defer sp.setMu.Unlock()
	prev := sp.conns.Load()
	set, err := sp.buildConnSet(sp.cfg, orgs, prev)
	if err != nil {
		return err
	}
	sp.conns.Store(set)
	sp.runner.sync(set)
	return nil
}

// Organizations lists the organization ids served, default first.
func (sp *SP) Organizations() []string {
	set := sp.conns.Load()
	ids := make([]string, 0, len(set.byID))
	for id := range set.byID {
		if id != identity.DefaultOrg {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if set.def != nil {
		ids = append([]string{identity.DefaultOrg}, ids...)
	}
	return ids
}

// HostOrg is the organization a request on host belongs to ("" when the
// host is not one of an organization's hosts: it serves them all). A
// session of another organization is no session on such a host.
func (sp *SP) HostOrg(host string) string {
	set := sp.conns.Load()
	if len(set.byHost) == 0 {
		return ""
	}
	if c := set.byHost[strings.ToLower(host)]; c != nil {
		return c.org
	}
	return ""
}

// Admits reports whether a session of organization org is one on a request
// for host: the organization is still served, and host is not a host of
// another organization (proxy.Organizations).
func (sp *SP) Admits(host, org string) bool {
	set := sp.conns.Load()
	c := set.byID[org]
	if c == nil {
		return false
	}
	if len(set.byHost) == 0 {
		return true
	}
	h := set.byHost[host]
	if h == nil && hasUpper(host) {
		h = set.byHost[strings.ToLower(host)]
	}
	return h == nil || h == c
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// Run keeps every connection's IdP metadata loaded until ctx is done; each
// connection refreshes on its own, so one IdP's outage touches only its
// organization.
func (sp *SP) Run(ctx context.Context) {
	sp.runner.start(ctx, sp.conns.Load())
	<-ctx.Done()
	sp.runner.wg.Wait()
}

func (r *orgRunner) start(ctx context.Context, set *connSet) {
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
	r.sync(set)
}

// sync starts the refresh of every connection of set not yet running and
// stops those no longer in it.
func (r *orgRunner) sync(set *connSet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		return // not running yet: start will sync
	}
	if r.cancels == nil {
		r.cancels = map[*conn]context.CancelFunc{}
	}
	live := map[*conn]bool{}
	for _, c := range set.byID {
		live[c] = true
		if _, ok := r.cancels[c]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(r.ctx)
		r.cancels[c] = cancel
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			c.run(ctx)
		}()
	}
	for c, cancel := range r.cancels {
		if !live[c] {
			cancel()
			delete(r.cancels, c)
		}
	}
}

// LoadMetadata loads every connection's IdP metadata once, now; the error
// names each organization whose metadata could not be had.
func (sp *SP) LoadMetadata(ctx context.Context) error {
	set := sp.conns.Load()
	var errs []error
	for _, id := range sp.Organizations() {
		if err := set.byID[id].load(ctx); err != nil {
			if id != identity.DefaultOrg {
				err = fmt.Errorf("organization %s: %w", id, err)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// connFor picks the connection a browser signs in with, without asking: by
// the request's host, then ?organization=, then a login_hint or
// domain_hint. ok is false when nothing named one; c is nil (with ok true)
// when what was named matches no organization.
func (sp *SP) connFor(r *http.Request) (c *conn, ok bool) {
	set := sp.conns.Load()
	if c := set.byHost[strings.ToLower(r.Host)]; c != nil {
		return c, true
	}
	if !set.multi() {
		return set.def, set.def != nil
	}
	q := r.URL.Query()
	if id := q.Get("organization"); id != "" {
		return set.byID[id], true
	}
	if hint := q.Get("login_hint"); hint != "" {
		return set.forEmail(hint), true
	}
	if d := q.Get("domain_hint"); d != "" {
		return set.forDomain(d), true
	}
	return nil, false
}

// forEmail is the connection for an email address by its domain.
func (s *connSet) forEmail(email string) *conn {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return nil
	}
	return s.forDomain(email[at+1:])
}

// forDomain is the organization that claims domain, or the default
// organization (which has every domain no other claims), or nil.
func (s *connSet) forDomain(domain string) *conn {
	d := strings.ToLower(strings.TrimSpace(domain))
	if d == "" {
		return nil
	}
	if c := s.byDomain[d]; c != nil {
		return c
	}
	return s.def
}

// emailDomainAllowed applies the domain rule to a signed-in email: an
// organization's IdP may sign in addresses of its own domains only, and
// the default organization's IdP addresses of no other organization's.
// An IdP administrator can mint any address; this keeps one customer's IdP
// out of another's space.
func (s *connSet) emailDomainAllowed(c *conn, email string) error {
	at := strings.LastIndexByte(email, '@')
	domain := ""
	if at > 0 {
		domain = strings.ToLower(email[at+1:])
	}
	if c.org == identity.DefaultOrg {
		if other := s.byDomain[domain]; other != nil && domain != "" {
			return fmt.Errorf("email domain %s belongs to organization %s, not to the default organization", domain, other.org)
		}
		return nil
	}
	if domain == "" {
		return errors.New("no email address to check against the organization's domains")
	}
	if !slices.Contains(c.domains, domain) {
		return fmt.Errorf("email domain %s is not one of organization %s's domains", domain, c.org)
	}
	return nil
}
