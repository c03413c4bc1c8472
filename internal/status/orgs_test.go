package status

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// orgsSource serves a default organization and two others: acme loaded a
// minute ago, globex never loaded.
func orgsSource() []Organization {
	return []Organization{
		{ID: "default", MetadataLoadedAt: testNow.Add(-time.Hour)},
		{ID: "acme", Name: "Acme Corp", Domains: []string{"acme.test", "acme.co.uk"}, MetadataLoadedAt: testNow.Add(-time.Minute)},
		{ID: "globex", Name: "Globex <Inc>", Domains: []string{"globex.test"}, Degraded: "no idp metadata loaded"},
	}
}

// row returns the Organizations row of id.
func row(t *testing.T, body, id string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, `data-organization="`+id+`"`)
	if !ok {
		t.Fatalf("no Organizations row for %s", id)
	}
	r, _, _ := strings.Cut(rest, "</tr>")
	return r
}

func TestHandler_OrganizationsSection(t *testing.T) {
	t.Parallel()
	ring := NewAuditRing(10)
	audit := zap.New(ring.Core())
	audit.Info("login failed", zap.String("event", "login_failed"), zap.String("reason", "domain_not_allowed"),
		zap.String("organization", "acme"), zap.String("user", "mallory@globex.test"))
	audit.Info("access denied", zap.String("event", "access_denied"), zap.String("reason", "inactive"),
		zap.String("organization", "globex"), zap.String("user", "gina@globex.test"))
	audit.Info("access denied", zap.String("event", "access_denied"), zap.String("reason", "inactive"),
		zap.String("user", "dora@example.com")) // the default organization's: no organization field
	h := New(Options{Organizations: orgsSource, Audit: ring, Now: func() time.Time { return testNow }})

	_, _, body := get(t, h, "/")
	acme := row(t, body, "acme")
	for _, want := range []string{"Acme Corp", "acme.test, acme.co.uk", "loaded 1m0s ago", `class="ok"`} {
		if !strings.Contains(acme, want) {
			t.Errorf("acme's row lacks %q:\n%s", want, acme)
		}
	}
	globex := row(t, body, "globex")
	for _, want := range []string{"Globex &lt;Inc&gt;", "never loaded", `class="degraded"`, "no idp metadata loaded"} {
		if !strings.Contains(globex, want) {
			t.Errorf("globex's row lacks %q:\n%s", want, globex)
		}
	}
	if def := row(t, body, "default"); !strings.Contains(def, "every domain no other organization claims") {
		t.Errorf("default's row: %s", def)
	}
	for _, u := range []string{"mallory@globex.test", "gina@globex.test", "dora@example.com"} {
		if !strings.Contains(body, u) {
			t.Errorf("unfiltered audit list lacks %s", u)
		}
	}

	_, _, body = get(t, h, "/?organization=globex")
	if !strings.Contains(body, "gina@globex.test") || strings.Contains(body, "mallory@globex.test") || strings.Contains(body, "dora@example.com") {
		t.Errorf("audit filtered to globex shows the wrong entries:\n%s", body)
	}
	if strings.Contains(body, `data-organization="acme"`) {
		t.Error("filtered to globex, the Organizations section still lists acme")
	}
	_, _, body = get(t, h, "/?organization=default")
	if !strings.Contains(body, "dora@example.com") || strings.Contains(body, "gina@globex.test") {
		t.Error("audit filtered to default does not show exactly the entries without an organization")
	}
	_, _, body = get(t, h, "/?organization=%3Cscript%3E")
	if strings.Contains(body, "<script>") || !strings.Contains(body, `id="no-organization"`) {
		t.Error("an unknown organization filter is not reported, or not escaped")
	}
}

func TestHandler_NoOrganizationsSectionForTheDefaultAlone(t *testing.T) {
	t.Parallel()
	h := New(Options{Organizations: func() []Organization { return []Organization{{ID: "default"}} }})
	if _, _, body := get(t, h, "/"); strings.Contains(body, `id="organizations"`) {
		t.Error("a single-IdP config shows an Organizations section")
	}
}

func TestHandler_OrganizationsListBounded(t *testing.T) {
	t.Parallel()
	var orgs []Organization
	for i := range 1000 {
		orgs = append(orgs, Organization{ID: fmt.Sprintf("org%04d", i), Domains: []string{fmt.Sprintf("org%04d.test", i)}})
	}
	h := New(Options{Organizations: func() []Organization { return orgs }})
	_, _, body := get(t, h, "/")
	if n := strings.Count(body, "data-organization="); n != maxOrgs {
		t.Errorf("%d organizations listed, want %d", n, maxOrgs)
	}
	if !strings.Contains(body, "And 900 more organizations") {
		t.Error("the page does not say how many organizations it left out")
	}
	_, _, body = get(t, h, "/?organization=org0999")
	if strings.Count(body, "data-organization=") != 1 || !strings.Contains(body, "org0999.test") {
		t.Error("the filter does not find an organization beyond the first page")
	}
}
