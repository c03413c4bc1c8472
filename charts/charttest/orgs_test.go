package charttest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// orgsDirPath is where the chart mounts organizationsDir.
const orgsDirPath = "/etc/portcullis-orgs.d"

func init() {
	ciCases["organizations"] = renderCase{
		kinds: map[string]int{"ServiceAccount": 1, "ConfigMap": 2, "Service": 1, "Deployment": 1, "PodDisruptionBudget": 1},
		check: checkOrganizations,
	}
}

// checkOrganizations: organizations from the values reach the config (an
// inline metadata XML as a projected file), and organizationsDir is the
// chart's ConfigMap, mounted read-only outside the checksummed config.
func checkOrganizations(t *testing.T, rel *release, vals map[string]any) {
	c := rel.config
	if c.HasDefaultOrg() {
		t.Errorf("a top-level IdP was rendered (%q, %q); the values name none", c.SAML.IDPMetadataURL, c.SAML.IDPMetadataFile)
	}
	var ids []string
	for _, o := range c.Organizations {
		ids = append(ids, o.ID)
	}
	if !slices.Equal(ids, []string{"acme", "globex"}) {
		t.Fatalf("config organizations %v, want acme, globex", ids)
	}
	acme, globex := c.Organizations[0], c.Organizations[1]
	if acme.SAML.IDPMetadataURL == "" || acme.SAML.Attributes.Email != "email" || !slices.Equal(acme.Domains, []string{"acme.com", "acme.co.uk"}) {
		t.Errorf("acme %+v", acme)
	}
	wantFile := configDir + "/org-globex-idp-metadata.xml"
	if globex.SAML.IDPMetadataFile != wantFile || !slices.Equal(globex.Hosts, []string{"globex.app.example.com"}) {
		t.Errorf("globex %+v, want its metadata at %s", globex, wantFile)
	}
	if src, ok := rel.files[wantFile]; !ok || !strings.Contains(string(fileText(t, rel, src)), "sts.windows.net/globex") {
		t.Errorf("%s is not projected from the ConfigMap's copy of globex's idpMetadata (%+v)", wantFile, src)
	}
	if c.OrganizationsDir != orgsDirPath {
		t.Errorf("config organizationsDir %q, want %s", c.OrganizationsDir, orgsDirPath)
	}
	v := volume(rel.pod, "organizations")
	if v == nil || v.ConfigMap == nil {
		t.Fatalf("no organizations ConfigMap volume: %+v", rel.pod.Volumes)
	}
	cm := findByName(rel.configMaps, v.ConfigMap.Name)
	if cm == nil {
		t.Fatalf("the organizations volume names ConfigMap %s, which is not rendered", v.ConfigMap.Name)
	}
	o, err := c.ParseOrganization([]byte(cm.Data["initech.yaml"]), "initech.yaml")
	if err != nil || o.ID != "initech" {
		t.Errorf("initech.yaml in the ConfigMap does not parse as an organization: %+v %v", o, err)
	}
	if !mountedReadOnlyAt(rel.portcullis, "organizations", orgsDirPath) {
		t.Errorf("organizations volume not mounted read-only at %s: %+v", orgsDirPath, rel.portcullis.VolumeMounts)
	}
	if got := c.Routes[0].AllowOrganizations; !slices.Equal(got, []string{"acme"}) {
		t.Errorf("route allowOrganizations %v", got)
	}
}

func fileText(t *testing.T, rel *release, src fileSource) []byte {
	t.Helper()
	return fileContent(t, rel, nil, src)
}

func mountedReadOnlyAt(c *corev1.Container, volume, dir string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume && m.MountPath == dir && m.ReadOnly {
			return true
		}
	}
	return false
}

// TestOrganizationsDir_ChangesDoNotRestartPods: a changed organization file
// leaves the pod template alone (Portcullis applies it live), while a
// change to organizations in the values rolls the pods.
func TestOrganizationsDir_ChangesDoNotRestartPods(t *testing.T) {
	base := readValues(t, filepath.Join(chartDir, "ci", "organizations-values.yaml"))
	annotations := func(vals map[string]any) map[string]string {
		return decodeManifest(t, mustRender(t, vals)).deployments[0].Spec.Template.Annotations
	}
	before := annotations(base)
	dirChanged := merge(base, map[string]any{"organizationsDir": map[string]any{"files": map[string]any{
		"initech.yaml": "id: initech\ndomains: [initech.com, initech.co.uk]\nsaml:\n  idpMetadataURL: https://initech.okta.com/md\n"}}})
	if after := annotations(dirChanged); after["checksum/config"] != before["checksum/config"] {
		t.Error("changing an organizationsDir file changes checksum/config: every pod would restart")
	}
	orgs := slices.Clone(base["organizations"].([]any))[:1]
	if after := annotations(merge(base, map[string]any{"organizations": orgs})); after["checksum/config"] == before["checksum/config"] {
		t.Error("removing an organization from the values leaves checksum/config unchanged: pods keep the old config")
	}
}

// TestOrganizationsDir_ExistingConfigMap mounts the user's ConfigMap and
// renders none.
func TestOrganizationsDir_ExistingConfigMap(t *testing.T) {
	vals := merge(minimalValues(), map[string]any{"organizationsDir": map[string]any{"existingConfigMap": "my-orgs"}})
	rel := checkRelease(t, decodeManifest(t, mustRender(t, vals)), nil)
	if v := volume(rel.pod, "organizations"); v == nil || v.ConfigMap == nil || v.ConfigMap.Name != "my-orgs" {
		t.Errorf("organizations volume %+v, want ConfigMap my-orgs", v)
	}
	if len(rel.configMaps) != 1 {
		t.Errorf("%d ConfigMaps rendered, want only the config's", len(rel.configMaps))
	}
	if rel.config.OrganizationsDir != orgsDirPath || !rel.config.HasDefaultOrg() {
		t.Errorf("organizationsDir %q default org %v", rel.config.OrganizationsDir, rel.config.HasDefaultOrg())
	}
}

// TestOrganizations_BadValues: what the schema and the template checks
// refuse about organizations, each with a message saying what to do.
func TestOrganizations_BadValues(t *testing.T) {
	org := func(id string, saml map[string]any) map[string]any {
		return map[string]any{"id": id, "domains": []any{id + ".com"}, "saml": saml}
	}
	noTopIdP := minimalValues()
	noTopIdP["saml"] = merge(fixedSecrets["saml"].(map[string]any), nil)
	for _, tc := range []struct {
		name string
		vals map[string]any
		want []string
	}{
		{"no IdP at all", noTopIdP, []string{"set exactly one of saml.idpMetadataURL", "0 are set"}},
		{"organization with two metadata sources", merge(minimalValues(), map[string]any{"organizations": []any{
			org("acme", map[string]any{"idpMetadataURL": "https://acme.okta.com/md", "idpMetadata": "<md/>"})}}),
			[]string{"organizations[0] (acme): set exactly one of saml.idpMetadataURL", "2 are set"}},
		{"organization id default", merge(minimalValues(), map[string]any{"organizations": []any{
			org("default", map[string]any{"idpMetadataURL": "https://acme.okta.com/md"})}}),
			[]string{"/organizations/0/id"}},
		{"organization id with capitals", merge(minimalValues(), map[string]any{"organizations": []any{
			org("Acme", map[string]any{"idpMetadataURL": "https://acme.okta.com/md"})}}),
			[]string{"/organizations/0/id", "does not match pattern"}},
		{"organization without domains", merge(minimalValues(), map[string]any{"organizations": []any{
			map[string]any{"id": "acme", "saml": map[string]any{"idpMetadataURL": "https://acme.okta.com/md"}}}}),
			[]string{"/organizations/0", "missing property 'domains'"}},
		{"organization misspelt key", merge(minimalValues(), map[string]any{"organizations": []any{
			org("acme", map[string]any{"idpMetadataUrl": "https://acme.okta.com/md"})}}),
			[]string{"/organizations/0/saml", "additional properties 'idpMetadataUrl' not allowed"}},
		{"files and existingConfigMap", merge(minimalValues(), map[string]any{"organizationsDir": map[string]any{
			"existingConfigMap": "mine", "files": map[string]any{"a.yaml": "id: a"}}}),
			[]string{"organizationsDir.existingConfigMap is set, so leave organizationsDir.files empty"}},
		{"file not yaml", merge(minimalValues(), map[string]any{"organizationsDir": map[string]any{
			"files": map[string]any{"acme.json": "{}"}}}),
			[]string{`organizationsDir.files: "acme.json" must end in .yaml`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, loadChart(t), tc.vals)
			if err == nil {
				t.Fatal("rendered; want the values refused")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}
