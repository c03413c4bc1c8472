package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// orgsOnly is a config serving two customers and no top-level IdP.
const orgsOnly = `version: 1
publicURL: https://app.example.com
upstream: http://127.0.0.1:3000
saml:
  certFile: sp.crt
  keyFile: sp.key
  attributes: {email: mail, groups: memberOf}
session:
  keysFile: session.keys
scim:
  enabled: true
organizations:
  - id: acme
    name: Acme Corp
    domains: [acme.com, acme.co.uk]
    hosts: [acme.app.example.com]
    saml:
      idpMetadataURL: https://acme.okta.com/metadata
      attributes: {groups: groups}
    scim:
      tokensFile: acme.tokens
  - id: globex
    domains: [globex.com]
    saml:
      idpMetadataFile: globex-idp.xml
    scim:
      tokensFile: globex.tokens
routes:
  - path: /acme/
    allowOrganizations: [acme]
`

func TestOrganizations_ValidConfigWithoutTopLevelIdP(t *testing.T) {
	t.Parallel()
	c, err := ParseWithEnv([]byte(orgsOnly), "/etc/portcullis", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.HasDefaultOrg() {
		t.Error("HasDefaultOrg with no top-level IdP")
	}
	if len(c.Organizations) != 2 || c.Organizations[0].SAML.MetadataURL == nil {
		t.Fatalf("organizations not parsed: %+v", c.Organizations)
	}
	s := c.OrgSAMLConfig(&c.Organizations[0])
	want := Attributes{Email: "mail", Groups: "groups"} // groups its own, email inherited
	if diff := cmp.Diff(want, s.Attributes); diff != "" {
		t.Errorf("acme's attributes (-want +got):\n%s", diff)
	}
	if s.MetadataURL.String() != "https://acme.okta.com/metadata" || s.CertFile != "sp.crt" || s.EntityID != "" {
		t.Errorf("acme's saml config: %+v", s)
	}
	if got := c.Routes[0].AllowOrganizations; len(got) != 1 || got[0] != "acme" {
		t.Errorf("allowOrganizations: %v", got)
	}
}

func TestOrganizations_SingleIdPConfigStillNeedsItsIdP(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(minimal, "  idpMetadataURL: https://idp.example.com/metadata\n", "", 1)
	_, err := ParseWithEnv([]byte(cfg), "/etc/portcullis", noEnv)
	if err == nil || !strings.Contains(err.Error(), "saml.idpMetadataURL: required") {
		t.Fatalf("err = %v, want saml.idpMetadataURL required", err)
	}
}

func TestOrganizations_EachProblemNamesItsField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"reserved id", func(c *Config) { c.Organizations[1].ID = "default" },
			`line 22: organizations[1].id: "default" is reserved for the top-level saml and scim settings`},
		{"id pattern", func(c *Config) { c.Organizations[1].ID = "Globex Inc" },
			`line 22: organizations[1].id: must match ^[a-z0-9][a-z0-9-]{0,62}$ (lower case letters, digits, "-"); got "Globex Inc"`},
		{"SCIM endpoint name", func(c *Config) { c.Organizations[1].ID = "users" },
			`line 22: organizations[1].id: "users" is a SCIM endpoint name under scim.basePath; pick another id`},
		{"duplicate id", func(c *Config) { c.Organizations[1].ID = "acme" },
			`line 22: organizations[1].id: "acme" is also the id of organizations[0]`},
		{"domain in two organizations", func(c *Config) { c.Organizations[1].Domains = []string{"globex.com", "acme.com"} },
			`line 23: organizations[1].domains[1]: acme.com is already a domain of acme (organizations[0]); a domain belongs to one organization`},
		{"upper-case domain", func(c *Config) { c.Organizations[1].Domains = []string{"Globex.com"} },
			`line 23: organizations[1].domains[0]: must be a lower-case domain such as acme.com; got "Globex.com"`},
		{"no domains", func(c *Config) { c.Organizations[1].Domains = nil },
			`line 23: organizations[1].domains: required: the organization's verified email domains, such as [acme.com]`},
		{"publicURL's host", func(c *Config) { c.Organizations[0].Hosts = []string{"app.example.com"} },
			`line 16: organizations[0].hosts[0]: is publicURL's host, which serves every organization; give the organization a host of its own`},
		{"host in two organizations", func(c *Config) { c.Organizations[1].Hosts = []string{"acme.app.example.com"} },
			`line 22: organizations[1].hosts[0]: acme.app.example.com is already a host of acme (organizations[0]); a host belongs to one organization`},
		{"no IdP", func(c *Config) { c.Organizations[1].SAML.IDPMetadataFile = "" },
			`line 24: organizations[1].saml.idpMetadataURL: required: set idpMetadataURL or idpMetadataFile`},
		{"plain http metadata", func(c *Config) { c.Organizations[0].SAML.IDPMetadataURL = "http://acme.okta.com/metadata" },
			`line 18: organizations[0].saml.idpMetadataURL: must be an absolute https URL (http only for a loopback host); got "http://acme.okta.com/metadata"`},
		{"no SCIM tokens", func(c *Config) { c.Organizations[1].SCIM.TokensFile = "" },
			`line 27: organizations[1].scim.tokensFile: required when scim.enabled: the file of bearer tokens this organization's IdP uses`},
		{"route names no organization id", func(c *Config) { c.Routes[0].AllowOrganizations = []string{"Acme"} },
			`line 30: routes[0].allowOrganizations[0]: must be an organization id (default, or one matching ^[a-z0-9][a-z0-9-]{0,62}$); got "Acme"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseWithEnv([]byte(orgsOnly), "/etc/portcullis", noEnv)
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(c)
			if diff := cmp.Diff([]string{tt.want}, problemLines(t, c.Validate())); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOrganizationsDir_BadFileRefusedOthersRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("initech.yaml", "id: initech\ndomains: [initech.com]\nsaml:\n  idpMetadataFile: initech.xml\nscim:\n  tokensFile: initech.tokens\n")
	write("typo.yaml", "id: typo\ndomains: [typo.com]\nsaml:\n  idpMetadataFil: typo.xml\n")
	write("clash.yml", "id: clash\ndomains: [acme.com]\nsaml:\n  idpMetadataFile: clash.xml\nscim:\n  tokensFile: clash.tokens\n")
	write("zz-dup.yaml", "id: zz\ndomains: [initech.com]\nsaml:\n  idpMetadataFile: zz.xml\nscim:\n  tokensFile: zz.tokens\n")
	write("notes.txt", "not read")
	write(".hidden.yaml", "not read either")
	cfg := strings.Replace(orgsOnly, "organizations:\n", "organizationsDir: "+dir+"\norganizations:\n", 1)
	c, err := ParseWithEnv([]byte(cfg), "/etc/portcullis", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	files, err := c.ReadOrganizationsDir()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		if f.Err != nil {
			got[filepath.Base(f.Path)] = f.Err.Error()
		} else {
			got[filepath.Base(f.Path)] = "ok " + f.Org.ID
		}
	}
	want := map[string]string{
		"clash.yml": "organization file " + filepath.Join(dir, "clash.yml") +
			": domains[0]: acme.com is already a domain of acme (the config file's organizations); a domain belongs to one organization",
		"initech.yaml": "ok initech",
		"zz-dup.yaml": "organization file " + filepath.Join(dir, "zz-dup.yaml") +
			": domains[0]: initech.com is already a domain of initech (" + filepath.Join(dir, "initech.yaml") + "); a domain belongs to one organization",
		"typo.yaml": "organization file " + filepath.Join(dir, "typo.yaml") +
			": line 3: saml.idpMetadataURL: required: set idpMetadataURL or idpMetadataFile\n" +
			"line 4: saml.idpMetadataFil: unknown field (did you mean idpMetadataFile?)\n" +
			"scim.tokensFile: required when scim.enabled: the file of bearer tokens this organization's IdP uses",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	for _, f := range files {
		if f.Org != nil && f.Org.SAML.IDPMetadataFile != filepath.Join(dir, "initech.xml") {
			t.Errorf("relative idpMetadataFile not resolved against the file's directory: %q", f.Org.SAML.IDPMetadataFile)
		}
	}
}
