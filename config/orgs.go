package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/portcullis-sso/portcullis/internal/identity"
)

// Organization is one customer company: its IdP connection, its SCIM
// directory, its verified email domains and, optionally, the hosts it is
// served on. The top-level saml and scim blocks keep the SP's own settings
// and, optionally, the IdP and directory of the organization "default".
type Organization struct {
	ID   string `yaml:"id"`   // ^[a-z0-9][a-z0-9-]{0,62}$, unique, never "default"
	Name string `yaml:"name"` // shown on pages and the status page
	// Domains are the organization's verified email domains: a sign-in
	// through its IdP must carry an email in one of them, and the
	// identifier-first page routes an address there by its domain.
	Domains []string `yaml:"domains"`
	// Hosts, when set, serve this organization only: a request on one of
	// them belongs to it, and its SAML URLs hang off Hosts[0].
	Hosts []string `yaml:"hosts"`
	SAML  OrgSAML  `yaml:"saml"`
	SCIM  OrgSCIM  `yaml:"scim"`

	// Source is the file the organization was read from: the config file
	// for organizations[], or a file under organizationsDir.
	Source string `yaml:"-"`
}

// OrgSAML is an organization's IdP connection.
type OrgSAML struct {
	IDPMetadataURL  string `yaml:"idpMetadataURL"`
	IDPMetadataFile string `yaml:"idpMetadataFile"`
	// Attributes: keys left unset inherit the top-level saml.attributes.
	Attributes        Attributes `yaml:"attributes"`
	AllowIDPInitiated bool       `yaml:"allowIDPInitiated"`

	MetadataURL *url.URL `yaml:"-"` // from IDPMetadataURL
}

// OrgSCIM is an organization's SCIM directory.
type OrgSCIM struct {
	TokensFile string `yaml:"tokensFile"` // as scim.tokensFile; tokens are unique across organizations
}

// orgIDPattern is what an organization id may be: it appears in URLs
// (/saml/acs/{id}, {scim.basePath}/{id}), metric labels and headers.
var orgIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// scimEndpointNames are the names under scim.basePath an organization id
// may not take, in lower case (ids are lower case).
var scimEndpointNames = []string{"users", "groups", "schemas", "resourcetypes", "serviceproviderconfig", "bulk", "me"}

// HasDefaultOrg reports whether the top-level saml block names an IdP: the
// organization "default". A config with organizations and no top-level
// IdP has none.
func (c *Config) HasDefaultOrg() bool {
	return c.SAML.IDPMetadataURL != "" || c.SAML.IDPMetadataFile != ""
}

// HasOrganizations reports whether organizations may exist besides the
// default one.
func (c *Config) HasOrganizations() bool {
	return len(c.Organizations) > 0 || c.OrganizationsDir != ""
}

// OrgSAMLConfig is the saml block an organization's connection runs with:
// the top-level SP settings, the organization's IdP, and its attribute
// names with unset ones inherited.
func (c *Config) OrgSAMLConfig(o *Organization) SAML {
	s := c.SAML
	s.EntityID = "" // each organization has its own, derived from its URLs
	s.IDPMetadataURL, s.IDPMetadataFile, s.MetadataURL = o.SAML.IDPMetadataURL, o.SAML.IDPMetadataFile, o.SAML.MetadataURL
	s.AllowIDPInitiated = o.SAML.AllowIDPInitiated
	inherit := func(own, top string) string {
		if own != "" {
			return own
		}
		return top
	}
	a := o.SAML.Attributes
	s.Attributes = Attributes{
		User:   inherit(a.User, c.SAML.Attributes.User),
		Email:  inherit(a.Email, c.SAML.Attributes.Email),
		Name:   inherit(a.Name, c.SAML.Attributes.Name),
		Groups: inherit(a.Groups, c.SAML.Attributes.Groups),
	}
	return s
}

// organization checks one organization on its own (path is its config
// path, "organizations[2]", or "" for a file of its own) and fills its
// parsed fields. The checks across organizations are crossOrganizations'.
func (v *validator) organization(path string, o *Organization) {
	at := func(field string) string {
		if path == "" {
			return field
		}
		return path + "." + field
	}
	switch {
	case o.ID == "":
		v.add(at("id"), "required: a short name such as acme")
	case o.ID == identity.DefaultOrg:
		v.add(at("id"), "%q is reserved for the top-level saml and scim settings", o.ID)
	case !orgIDPattern.MatchString(o.ID):
		v.add(at("id"), "must match ^[a-z0-9][a-z0-9-]{0,62}$ (lower case letters, digits, \"-\"); got %q", truncate(o.ID, 70))
	case slices.Contains(scimEndpointNames, o.ID):
		v.add(at("id"), "%q is a SCIM endpoint name under scim.basePath; pick another id", o.ID)
	}
	if len(o.Domains) == 0 {
		v.add(at("domains"), "required: the organization's verified email domains, such as [acme.com]")
	}
	for i, d := range o.Domains {
		if d != strings.ToLower(d) || !hostName(d) || !strings.Contains(d, ".") {
			v.add(fmt.Sprintf("%s[%d]", at("domains"), i), "must be a lower-case domain such as acme.com; got %q", truncate(d, 70))
		}
	}
	for i, h := range o.Hosts {
		host, port, hasPort := strings.Cut(h, ":")
		if h != strings.ToLower(h) || !hostName(host) || hasPort && (port == "" || strings.Trim(port, "0123456789") != "") {
			v.add(fmt.Sprintf("%s[%d]", at("hosts"), i), "must be a lower-case host name such as acme.app.example.com (or name:port); got %q", truncate(h, 70))
		} else if v.c.Public != nil && strings.EqualFold(h, v.c.Public.Host) {
			v.add(fmt.Sprintf("%s[%d]", at("hosts"), i), "is publicURL's host, which serves every organization; give the organization a host of its own")
		}
	}
	s := &o.SAML
	s.MetadataURL = nil
	switch {
	case s.IDPMetadataURL != "" && s.IDPMetadataFile != "":
		v.add(at("saml.idpMetadataFile"), "set only one of idpMetadataURL and idpMetadataFile")
	case s.IDPMetadataURL == "" && s.IDPMetadataFile == "":
		v.add(at("saml.idpMetadataURL"), "required: set idpMetadataURL or idpMetadataFile")
	case s.IDPMetadataURL != "":
		s.MetadataURL = v.metadataURL(at("saml.idpMetadataURL"), s.IDPMetadataURL)
	}
	v.attributes(at("saml.attributes"), s.Attributes)
	if v.c.SCIM.Enabled && o.SCIM.TokensFile == "" {
		v.add(at("scim.tokensFile"), "required when scim.enabled: the file of bearer tokens this organization's IdP uses")
	}
}

// organizations checks organizations[] and organizationsDir, and the top-level
// IdP's being optional once they exist.
func (v *validator) organizations() {
	c := v.c
	for i := range c.Organizations {
		v.organization(fmt.Sprintf("organizations[%d]", i), &c.Organizations[i])
	}
	if d := c.OrganizationsDir; d != "" && strings.TrimSpace(d) != d {
		v.add("organizationsDir", "must not start or end with whitespace; got %q", d)
	}
	for _, p := range CrossOrganizationProblems(c.Organizations, "organizations") {
		v.add(p.Path, "%s", p.Msg)
	}
}

// CrossOrganizationProblems checks what must hold across organizations:
// unique ids, each domain and each host in one organization only. list is
// the config path the indexes refer to ("organizations"), or "" when the
// organizations come from files (then each problem names the files).
func CrossOrganizationProblems(orgs []Organization, list string) []Problem {
	var ps []Problem
	// name is how a problem names organization i: its config path, or
	// for a file's own organization (the last, when list is "") nothing
	// but the field, since the error names the file.
	name := func(i int) string {
		switch {
		case list != "":
			return fmt.Sprintf("%s[%d]", list, i)
		case orgs[i].Source != "":
			return orgs[i].Source
		}
		return "the config file's organizations"
	}
	field := func(i int, f string) string {
		if list == "" && i == len(orgs)-1 {
			return f
		}
		return name(i) + "." + f
	}
	ids := map[string]int{}
	domains := map[string]int{}
	hosts := map[string]int{}
	for i, o := range orgs {
		if j, ok := ids[o.ID]; ok && o.ID != "" {
			ps = append(ps, Problem{Path: field(i, "id"), Msg: fmt.Sprintf("%q is also the id of %s", o.ID, name(j))})
		}
		ids[o.ID] = i
		for k, d := range o.Domains {
			if j, ok := domains[d]; ok && j != i {
				ps = append(ps, Problem{Path: field(i, fmt.Sprintf("domains[%d]", k)), Msg: fmt.Sprintf("%s is already a domain of %s (%s); a domain belongs to one organization", d, orgs[j].ID, name(j))})
			}
			domains[d] = i
		}
		for k, h := range o.Hosts {
			if j, ok := hosts[h]; ok && j != i {
				ps = append(ps, Problem{Path: field(i, fmt.Sprintf("hosts[%d]", k)), Msg: fmt.Sprintf("%s is already a host of %s (%s); a host belongs to one organization", h, orgs[j].ID, name(j))})
			}
			hosts[h] = i
		}
	}
	return ps
}

// ParseOrganization reads one organizationsDir file: an Organization
// mapping, checked strictly and validated against c (the loaded config)
// like an entry of organizations[]. Problems carry the field and line;
// the error names the file.
func (c *Config) ParseOrganization(data []byte, file string) (*Organization, error) {
	fail := func(ps problems) (*Organization, error) {
		return nil, fmt.Errorf("organization file %s: %w", file, ps.err())
	}
	if len(data) > maxConfigSize {
		var ps problems
		ps.add("", 0, "file is %d bytes; the limit is %d", len(data), maxConfigSize)
		return fail(ps)
	}
	root, ps := parseDocument(data)
	if len(ps) > 0 {
		return fail(ps)
	}
	expandNode(root, "", os.LookupEnv, &ps)
	w := newWalker()
	w.walk(root, orgType, "")
	ps = append(ps, w.problems...)
	o := &Organization{}
	if err := root.Decode(o); err != nil {
		return fail(append(ps, decodeProblems(err)...))
	}
	o.Source = file
	// Validate with a validator whose lines are the file's.
	fv := &validator{c: &Config{Public: c.Public, SCIM: c.SCIM, lines: w.lines, baseDir: filepath.Dir(file)}}
	fv.organization("", o)
	for _, p := range fv.ps {
		if !covered(ps, w.meant, p.Path) {
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		return fail(ps)
	}
	// Relative paths in the file resolve against its directory.
	if o.SAML.IDPMetadataFile != "" && !filepath.IsAbs(o.SAML.IDPMetadataFile) {
		o.SAML.IDPMetadataFile = filepath.Join(filepath.Dir(file), o.SAML.IDPMetadataFile)
	}
	if o.SCIM.TokensFile != "" && !filepath.IsAbs(o.SCIM.TokensFile) {
		o.SCIM.TokensFile = filepath.Join(filepath.Dir(file), o.SCIM.TokensFile)
	}
	return o, nil
}

// OrgFile is one organizationsDir file as read: its organization, or why it
// was refused.
type OrgFile struct {
	Path string
	Org  *Organization // nil when refused
	Err  error
}

// ErrNotOrganizationFile marks a directory entry that is not read (a
// subdirectory, a dotfile, a file not ending in .yaml or .yml).
var ErrNotOrganizationFile = errors.New("not an organization file")

// ReadOrganizationsDir reads every *.yaml and *.yml file of
// organizationsDir (Kubernetes' ..data symlinks are followed; dotfiles are
// skipped), each on its own: one bad file is refused with its problems and
// the others are read. A file whose organization clashes with an earlier
// one (by file name) or with organizations[] is refused too.
func (c *Config) ReadOrganizationsDir() ([]OrgFile, error) {
	dir := c.Resolve(c.OrganizationsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("organizationsDir: %w", err)
	}
	var out []OrgFile
	accepted := slices.Clone(c.Organizations)
	taken := newOrgIndex(accepted)
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			out = append(out, OrgFile{Path: path, Err: fmt.Errorf("organization file %s: %w", path, err)})
			continue
		}
		o, err := c.ParseOrganization(data, path)
		if err != nil {
			out = append(out, OrgFile{Path: path, Err: err})
			continue
		}
		// The index answers the common case (no clash) without the
		// quadratic full check; a clash gets the full check's messages.
		if taken.clashes(o) {
			if ps := CrossOrganizationProblems(append(slices.Clone(accepted), *o), ""); len(ps) > 0 {
				out = append(out, OrgFile{Path: path, Err: fmt.Errorf("organization file %s: %w", path, problems(ps).err())})
				continue
			}
		}
		accepted = append(accepted, *o)
		taken.add(o)
		out = append(out, OrgFile{Path: path, Org: o})
	}
	return out, nil
}

// orgIndex is the ids, domains and hosts organizations have taken, so that
// reading a directory of n files checks each against the others in O(1)
// rather than O(n).
type orgIndex struct{ ids, domains, hosts map[string]bool }

func newOrgIndex(orgs []Organization) *orgIndex {
	x := &orgIndex{ids: map[string]bool{}, domains: map[string]bool{}, hosts: map[string]bool{}}
	for i := range orgs {
		x.add(&orgs[i])
	}
	return x
}

func (x *orgIndex) add(o *Organization) {
	x.ids[o.ID] = true
	for _, d := range o.Domains {
		x.domains[d] = true
	}
	for _, h := range o.Hosts {
		x.hosts[h] = true
	}
}

// clashes reports whether o's id, or one of its domains or hosts, is taken.
func (x *orgIndex) clashes(o *Organization) bool {
	if x.ids[o.ID] {
		return true
	}
	for _, d := range o.Domains {
		if x.domains[d] {
			return true
		}
	}
	for _, h := range o.Hosts {
		if x.hosts[h] {
			return true
		}
	}
	return false
}
