package samlsp

import (
	"flag"
	"fmt"
	"testing"

	"github.com/portcullis-sso/portcullis/config"
)

// benchOrgs is how many organizations BenchmarkOrganizationChecks serves
// besides its one-organization baseline (bench/orgs-scale.sh sets it).
var benchOrgs = flag.Int("orgs", 1000, "organizations for BenchmarkOrganizationChecks")

// BenchmarkOrganizationChecks measures what every proxied request asks the
// SP about organizations (Admits for the session's organization, HostOrg
// for the request's host) with one organization and with -orgs: map
// lookups, so the cost must not grow with the number of organizations.
func BenchmarkOrganizationChecks(b *testing.B) {
	for _, n := range []int{1, *benchOrgs} {
		h := newHarnessWith(b, harnessOpts{noLoad: true, config: func(c *config.Config) {
			for i := range n {
				id := fmt.Sprintf("org%04d", i)
				o := config.Organization{ID: id, Domains: []string{id + ".example"}, Hosts: []string{id + ".app.example.com"},
					SAML: config.OrgSAML{IDPMetadataFile: c.SAML.IDPMetadataFile}}
				c.Organizations = append(c.Organizations, o)
			}
		}})
		last := fmt.Sprintf("org%04d", n-1)
		host := last + ".app.example.com"
		b.Run(fmt.Sprintf("orgs=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !h.sp.Admits(host, last) || h.sp.HostOrg(host) != last || h.sp.Admits("app.example.com", "nope") {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}
